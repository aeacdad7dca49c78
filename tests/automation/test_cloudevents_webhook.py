"""A rule's webhook delivering CloudEvents, structured or binary as the
rule says, to a real receiver that verifies each call with the
``standardwebhooks`` library and parses it with the ``cloudevents`` SDK;
the option is checked like the other webhook options."""

from __future__ import annotations

import base64
import secrets
import time
from typing import Any

import pytest
from cloudevents.core.bindings.http import HTTPMessage, from_http
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from standardwebhooks.webhooks import Webhook

from receivers import Delivery, WebhookReceiver
from support import Admin, ServerProcess, unique


@pytest.fixture
def hub(automation_server: ServerProcess) -> Any:
    client = Admin(automation_server.url)
    yield client
    client.close()


def whsec() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def webhook_rule(tenant: str, url: str, secret: str, mode: Any) -> dict[str, Any]:
    return {
        "name": unique("rule"),
        "tenantId": tenant,
        "trigger": {"type": "course.completed"},
        "action": {
            "type": "trigger_webhook",
            "config": {"url": url, "secret": secret, "cloudevents": mode},
        },
        "retry": {"schedule": [0, 0.3]},
    }


def completed(tenant: str) -> dict[str, Any]:
    return {
        "type": "course.completed",
        "tenantId": tenant,
        "entityId": "c-101",
        "actor": {"userId": "u1"},
        "data": {"courseId": "c-101", "userId": "u1", "completedAt": "2026-11-22T10:00:00Z"},
    }


def stored(hub: Admin, tenant: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        items = hub.http.get("/api/events/log", params={"tenantId": tenant}).json()["items"]
        if items:
            return dict(items[0])
        time.sleep(0.1)
    raise AssertionError("the event was not stored")


def parsed(delivery: Delivery) -> CloudEvent:
    event = from_http(HTTPMessage(delivery.headers, delivery.raw), JSONFormat(), CloudEvent)
    assert isinstance(event, CloudEvent)
    return event


@pytest.mark.parametrize("mode", ["structured", "binary"])
def test_a_rule_delivers_its_event_as_a_signed_cloudevent(
    hub: Admin, receiver: WebhookReceiver, mode: str
) -> None:
    tenant, secret, name = hub.tenant(), whsec(), unique("ce")
    url = receiver.endpoint(name, secret)
    response = hub.http.post("/api/admin/rules", json=webhook_rule(tenant, url, secret, mode))
    assert response.status_code == 201, response.text
    assert hub.publish(completed(tenant)).status_code == 202
    (delivery,) = receiver.wait_for(name, 1)
    # Standard Webhooks over the body actually sent (binary mode: the data).
    Webhook(secret).verify(delivery.raw, delivery.headers)
    assert delivery.verified
    event = parsed(delivery)
    envelope = stored(hub, tenant)
    assert event.get_id() == envelope["id"] and event.get_type() == "course.completed"
    assert event.get_source() == f"/tenants/{tenant}" and event.get_subject() == "c-101"
    assert event.get_extension("tenantid") == tenant
    assert event.get_extension("audiences") == ",".join(envelope["audiences"])
    assert event.get_data() == envelope["data"]
    if mode == "structured":
        assert delivery.headers["content-type"] == "application/cloudevents+json"
        assert event.get_extension("position") == envelope["position"]
        assert not any(h.startswith("ce-") for h in delivery.headers)
    else:
        assert delivery.headers["content-type"] == "application/json"
        assert delivery.headers["ce-id"] == envelope["id"]
        assert event.get_extension("position") == str(envelope["position"])  # a header: text
    assert delivery.headers["webhook-id"].startswith("job_")  # the job's, stable over retries


@pytest.mark.parametrize("mode", ["binary ", "json", 1, True])
def test_an_unknown_mode_is_refused_naming_the_option(hub: Admin, mode: Any) -> None:
    tenant = hub.tenant()
    body = webhook_rule(tenant, "https://hooks.example.com/x", whsec(), mode)
    response = hub.http.post("/api/admin/rules", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "/action/config/cloudevents"
