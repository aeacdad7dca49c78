"""HTTP clients for a Tidings server: :class:`TidingsClient` (sync) and
:class:`AsyncTidingsClient` (asyncio).

Every public method is written once, in :class:`BaseClient`, as an
:class:`operation`: a small generator that yields what it needs (a request
to send, or a pause before retrying) and returns the parsed answer. The two
clients only differ in how they run those steps (blocking, or awaited), so
request building, problem parsing and the retry policy exist once, and the
methods of both clients have the same names, signatures and docstrings.

Guarantees:

* A ``publish`` or ``publish_batch`` is retried on 429, 503 and connection
  failures, at most ``max_retries`` times, waiting ``Retry-After`` when the
  server gives it (capped) and exponential backoff with jitter otherwise.
  Retrying is safe: an event without an ``id`` gets ``evt_<ULID>`` here,
  before the first attempt, so the server answers a retry with the first
  event instead of storing a second one.
* Every error is a :class:`tidings.errors.TidingsError`: a problem+json
  answer raises the subclass matching its ``code`` (else its status) with
  the server's ``detail`` and ``field``; an unreachable server raises
  :class:`~tidings.errors.Unavailable`. Other requests are never retried.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import random
import time
from collections.abc import Callable, Coroutine, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Concatenate, Generic, ParamSpec, Self, TypeVar, cast, overload
from urllib.parse import quote

import httpx

from tidings import __version__, errors
from tidings.core.ids import new_event_id
from tidings.core.retry import parse_retry_after
from tidings.errors import TidingsError, Unavailable
from tidings.sdk.closing import AsyncClosing

T = TypeVar("T")
P = ParamSpec("P")
HTTPClient = TypeVar("HTTPClient", httpx.Client, httpx.AsyncClient)
Transport = TypeVar("Transport", httpx.BaseTransport, httpx.AsyncBaseTransport)
DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_RETRIES = 3
MAX_RETRY_AFTER_S = 30.0
RETRY_STATUSES = frozenset({429, 503})
USER_AGENT = f"tidings-python/{__version__}"
HISTORY_FILTERS = {
    "types": "types",
    "entity_type": "entityType",
    "entity_id": "entityId",
    "since": "since",
    "until": "until",
    "cursor": "cursor",
    "limit": "limit",
    "order": "order",
    "tenant_id": "tenantId",
}


@dataclass(frozen=True, slots=True)
class Pause:
    """A step of an operation: wait this long, then continue."""

    seconds: float


Step = httpx.Request | Pause
# What an operation is sent back after a step: the answer to its request,
# the transport error that request met, or None after a pause.
Outcome = httpx.Response | httpx.TransportError | None
# An operation yields steps, is sent their outcomes, returns the parsed answer.
Operation = Generator[Step, Outcome, T]


def _error_classes() -> tuple[dict[str, type[TidingsError]], dict[int, type[TidingsError]]]:
    by_code = {
        cls.code: cls
        for name in errors.__all__
        if isinstance(cls := getattr(errors, name), type) and issubclass(cls, TidingsError)
    }
    by_status: dict[int, type[TidingsError]] = {
        400: errors.InvalidInput,
        401: errors.Unauthorized,
        403: errors.Forbidden,
        404: errors.NotFound,
        409: errors.Conflict,
        413: errors.PayloadTooLarge,
        422: errors.InvalidInput,
        429: errors.RateLimited,
        502: errors.Unavailable,
        503: errors.Unavailable,
        504: errors.Unavailable,
    }
    return by_code, by_status


_BY_CODE, _BY_STATUS = _error_classes()


def error_from_response(response: httpx.Response) -> TidingsError:
    """The :class:`TidingsError` an error answer stands for. Reads a
    problem+json body when there is one; anything else (a proxy's HTML page)
    still maps by status, with the start of the body as detail."""
    status = response.status_code
    body: Any = None
    if "json" in response.headers.get("content-type", ""):
        try:
            body = response.json()
        except ValueError:
            body = None
    if isinstance(body, dict):
        detail = str(body.get("detail") or body.get("title") or f"HTTP {status}")
        field = body.get("field")
        code = body.get("code")
    else:
        detail = f"HTTP {status}: {response.text[:200].strip() or response.reason_phrase}"
        field = code = None
    cls = _BY_CODE.get(code) if isinstance(code, str) else None
    if cls is None:
        cls = _BY_STATUS.get(status, TidingsError)
    retry_after = retry_after_s(response)
    extra = {} if retry_after is None else {"retry_after": retry_after}
    error = cls(detail, field=field if isinstance(field, str) else None, **extra)
    error.status = status  # what the server answered (a class's status is its usual one)
    return error


def retry_after_s(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds from now (delta or HTTP date), or None when
    absent or unparseable (:func:`tidings.core.retry.parse_retry_after`)."""
    return parse_retry_after(response.headers.get("retry-after"), time.time())


def backoff_s(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff with jitter: ``base * 2**attempt``, capped, then
    scaled by a random factor in [0.5, 1) so clients never move in step."""
    return min(cap, base * 2.0**attempt) * (0.5 + random.random() / 2)


def _segment(value: str) -> str:
    return quote(value, safe="")


def _clean(params: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            value = ",".join(value)
        out[key] = str(value)
    return out


def with_event_id(event: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``event`` that surely has an ``id`` (what makes a retried
    publish idempotent)."""
    if not isinstance(event, Mapping):
        raise errors.InvalidInput("an event must be a JSON object (a mapping)", field="")
    copy = dict(event)
    if not copy.get("id"):
        copy["id"] = new_event_id()
    return copy


class operation(Generic[P, T]):  # lower case: a decorator, like ``property``
    """A public client method, written once as the generator ``build``.

    Read on a :class:`TidingsClient` it is a method returning ``T``; on an
    :class:`AsyncTidingsClient` a coroutine function returning ``T``; both
    with ``build``'s name, docstring and parameters (``inspect.signature``
    shows them). Read on the class it is this object, which runs the method
    when called with a client first (like a plain function in a class body).
    """

    def __init__(self, build: Callable[Concatenate[Any, P], Operation[T]]) -> None:
        self.build = build
        functools.update_wrapper(self, build)
        signature = inspect.signature(build)
        self.__signature__ = signature.replace(
            return_annotation=_answer(signature.return_annotation)
        )
        self.bound_signature = self.__signature__.replace(
            parameters=list(signature.parameters.values())[1:]
        )

    @overload
    def __get__(self, client: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(self, client: TidingsClient, owner: type[Any]) -> Callable[P, T]: ...
    @overload
    def __get__(
        self, client: AsyncTidingsClient, owner: type[Any]
    ) -> Callable[P, Coroutine[Any, Any, T]]: ...
    def __get__(self, client: BaseClient[Any, Any] | None, owner: type[Any]) -> Any:
        return self if client is None else client._bind(self)

    def __call__(self, client: BaseClient[Any, Any], /, *args: P.args, **kwargs: P.kwargs) -> Any:
        return client._bind(self)(*args, **kwargs)

    def dress(self, method: Callable[P, Any], client: BaseClient[Any, Any]) -> Callable[P, Any]:
        """``method`` (running this operation on ``client``) with ``build``'s
        name, docstring and parameters."""
        functools.update_wrapper(method, self.build)
        method.__qualname__ = f"{type(client).__qualname__}.{self.build.__name__}"
        method.__signature__ = self.bound_signature  # type: ignore[attr-defined]
        return method


def _answer(annotation: Any) -> Any:
    """``T`` of an ``Operation[T]`` return annotation: what the method
    returns (annotations here are strings, PEP 563)."""
    prefix = "Operation["
    if isinstance(annotation, str) and annotation.startswith(prefix):
        return annotation[len(prefix) : -1]
    return inspect.Signature.empty


class BaseClient(Generic[HTTPClient, Transport]):
    """Configuration and every operation, without I/O; :class:`TidingsClient`
    and :class:`AsyncTidingsClient` run them.

    ``url`` is the server's base URL; ``token`` the bearer credential (an
    API key ``tdk_...``, the admin key, or a user JWT); ``transport`` an
    httpx transport to send through (default: the network).
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        backoff: float = 0.25,
        max_backoff: float = MAX_RETRY_AFTER_S,
        transport: Transport | None = None,
    ) -> None:
        self.base_url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._http: HTTPClient = self._open(transport, **self._client_options())

    def _client_options(self) -> dict[str, Any]:
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return {"base_url": self.base_url, "headers": headers, "timeout": self.timeout}

    # -- what each client does its own way -------------------------------------

    def _open(self, transport: Transport | None, **options: Any) -> HTTPClient:
        """The httpx client that sends this client's requests."""
        raise TypeError("use TidingsClient or AsyncTidingsClient; BaseClient sends nothing")

    def _bind(self, op: operation[P, T]) -> Callable[P, Any]:
        """``op`` as a method of this client: blocking in ``TidingsClient``,
        awaitable in ``AsyncTidingsClient`` (never reached on a bare
        ``BaseClient``, whose ``_open`` refuses first)."""
        raise TypeError("use TidingsClient or AsyncTidingsClient; BaseClient sends nothing")

    # -- the one request/response cycle --------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        retry: bool = False,
    ) -> Operation[Any]:
        request = self._http.build_request(
            method, path, json=json, params=_clean(params or {}), headers=headers
        )
        attempt = 0
        while True:
            outcome = yield request
            if isinstance(outcome, httpx.TransportError):
                if retry and attempt < self.max_retries:
                    yield Pause(backoff_s(attempt, self.backoff, self.max_backoff))
                    attempt += 1
                    continue
                failure = f"{type(outcome).__name__}: {outcome}".rstrip(": ")
                raise Unavailable(f"cannot reach {self.base_url}: {failure}") from None
            if outcome is None:
                raise TypeError("a request's outcome is a response or a transport error")
            if outcome.is_success:
                return outcome.json() if outcome.content else None
            if retry and outcome.status_code in RETRY_STATUSES and attempt < self.max_retries:
                wait = retry_after_s(outcome)
                if wait is None:
                    wait = backoff_s(attempt, self.backoff, self.max_backoff)
                yield Pause(min(wait, self.max_backoff))
                attempt += 1
                continue
            raise error_from_response(outcome)

    # -- operations (the public methods of both clients) ------------------------

    @operation
    def publish(
        self, event: Mapping[str, Any], idempotency_key: str | None = None
    ) -> Operation[dict[str, Any]]:
        """Publish one event; returns ``{"id", "position"}`` once it is durable."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        answer = yield from self._call(
            "POST", "/api/events", json=with_event_id(event), headers=headers, retry=True
        )
        return dict(answer)

    @operation
    def publish_batch(self, events: Iterable[Mapping[str, Any]]) -> Operation[list[dict[str, Any]]]:
        """Publish several events atomically; one ``{"id", "position"}`` each."""
        body = {"events": [with_event_id(e) for e in events]}
        answer = yield from self._call("POST", "/api/events/batch", json=body, retry=True)
        return list(answer["results"])

    @operation
    def stream_ticket(self) -> Operation[str]:
        """A single-use stream ticket for the current user (JWT callers)."""
        answer = yield from self._call("POST", "/api/events/tickets")
        return str(answer["ticket"])

    @operation
    def history(self, /, **filters: Any) -> Operation[dict[str, Any]]:
        """One page of the log, newest first unless ``order="asc"``:
        ``{"items": [...], "nextCursor": str | None}``. Filters: ``types``,
        ``entity_type``, ``entity_id``, ``since``/``until`` (ISO-8601),
        ``cursor``, ``limit``, ``order``, ``tenant_id`` (admin credentials)."""
        params: dict[str, Any] = {}
        for name, value in filters.items():
            key = HISTORY_FILTERS.get(name)
            if key is None:
                known = ", ".join(sorted(HISTORY_FILTERS))
                raise TypeError(f"history() got an unknown filter {name!r}; known: {known}")
            params[key] = value
        answer = yield from self._call("GET", "/api/events/log", params=params)
        return dict(answer)

    @operation
    def put_tenant(
        self, tenant_id: str, name: str, settings: Mapping[str, Any] | None = None
    ) -> Operation[dict[str, Any]]:
        """Create or update a tenant (admin)."""
        body = {"name": name, "settings": dict(settings or {})}
        answer = yield from self._call(
            "PUT", f"/api/admin/tenants/{_segment(tenant_id)}", json=body
        )
        return dict(answer)

    @operation
    def put_user(
        self,
        tenant_id: str,
        user_id: str,
        system_role: str,
        *,
        grant: Sequence[str] = (),
        revoke: Sequence[str] = (),
        resources: Sequence[str] = (),
        platform: bool = False,
        platform_tenants: Sequence[str] | None = None,
    ) -> Operation[dict[str, Any]]:
        """Create or update a user (admin); their open streams follow at once."""
        body: dict[str, Any] = {
            "systemRole": system_role,
            "permissionOverrides": {"grant": list(grant), "revoke": list(revoke)},
            "resources": list(resources),
            "platform": platform,
        }
        if platform_tenants is not None:
            body["platformTenants"] = list(platform_tenants)
        path = f"/api/admin/tenants/{_segment(tenant_id)}/users/{_segment(user_id)}"
        answer = yield from self._call("PUT", path, json=body)
        return dict(answer)

    @operation
    def put_role(
        self, role: str, permissions: Sequence[str], tenant_id: str | None = None
    ) -> Operation[dict[str, Any]]:
        """Set a role's default permissions, globally or for one tenant (admin)."""
        body: dict[str, Any] = {"permissions": list(permissions)}
        if tenant_id is not None:
            body["tenantId"] = tenant_id
        answer = yield from self._call("PUT", f"/api/admin/roles/{_segment(role)}", json=body)
        return dict(answer)

    @operation
    def create_api_key(
        self, scopes: Sequence[str], tenant_id: str | None = None, name: str = "api key"
    ) -> Operation[dict[str, Any]]:
        """Create an API key (admin); the answer's ``key`` is shown only once."""
        body: dict[str, Any] = {"scopes": list(scopes), "name": name}
        if tenant_id is not None:
            body["tenantId"] = tenant_id
        answer = yield from self._call("POST", "/api/admin/api-keys", json=body)
        return dict(answer)

    @operation
    def notify(
        self,
        user_id: str,
        title: str,
        *,
        type: str = "info",
        body: str = "",
        link: str | None = None,
        tenant_id: str | None = None,
    ) -> Operation[dict[str, Any]]:
        """Create an in-app notification for a user (pushed live to them)."""
        fields = {"type": type, "body": body, "link": link, "tenantId": tenant_id}
        request = {
            "userId": user_id,
            "title": title,
            **{k: v for k, v in fields.items() if v is not None},
        }
        answer = yield from self._call("POST", "/api/notifications", json=request)
        return dict(answer)

    # -- automation (admin credentials: the same API as the admin UI's) --------

    @operation
    def list_rules(self, tenant_id: str | None = None) -> Operation[list[dict[str, Any]]]:
        """Rules, global and per tenant (``tenant_id``: only that tenant's)."""
        answer = yield from self._call("GET", "/api/admin/rules", params={"tenantId": tenant_id})
        return list(answer["items"])

    @operation
    def get_rule(self, rule_id: str) -> Operation[dict[str, Any]]:
        """One rule (secrets masked)."""
        answer = yield from self._call("GET", f"/api/admin/rules/{_segment(rule_id)}")
        return dict(answer)

    @operation
    def create_rule(self, rule: Mapping[str, Any]) -> Operation[dict[str, Any]]:
        """Create a rule; a webhook secret the server generated is in the
        answer's ``secret``, this once."""
        answer = yield from self._call("POST", "/api/admin/rules", json=dict(rule))
        return dict(answer)

    @operation
    def delete_rule(self, rule_id: str) -> Operation[None]:
        """Delete a rule (its jobs stay, for the record)."""
        yield from self._call("DELETE", f"/api/admin/rules/{_segment(rule_id)}")

    @operation
    def test_rule(self, rule_id: str, event: Mapping[str, Any]) -> Operation[dict[str, Any]]:
        """Dry run: would the rule fire for ``event``, with what configuration?"""
        path = f"/api/admin/rules/{_segment(rule_id)}/test"
        answer = yield from self._call("POST", path, json={"event": dict(event)})
        return dict(answer)

    @operation
    def install_rule_pack(
        self, name: str, tenant_id: str | None = None
    ) -> Operation[list[dict[str, Any]]]:
        """Install a shipped rule pack (again: replaces its rules)."""
        path = f"/api/admin/rule-packs/{_segment(name)}"
        answer = yield from self._call("POST", path, json={"tenantId": tenant_id})
        return list(answer["items"])

    @operation
    def install_own_rule_pack(
        self, pack: Mapping[str, Any], tenant_id: str | None = None
    ) -> Operation[list[dict[str, Any]]]:
        """Install a pack of your own (``{"name", "description", "rules"}``,
        what a pack file holds); again: replaces its rules; one bad rule
        installs none."""
        body = {"tenantId": tenant_id, **pack}
        answer = yield from self._call("POST", "/api/admin/rule-packs", json=body)
        return list(answer["items"])

    @operation
    def list_jobs(
        self,
        *,
        status: str | None = None,
        tenant_id: str | None = None,
        rule_id: str | None = None,
        limit: int = 100,
        before: int | None = None,
    ) -> Operation[dict[str, Any]]:
        """One page of jobs, newest first: ``{"items": [...], "next": str | None}``
        (``status``: a comma list, e.g. ``"failed,dead"``; ``before``: a job id)."""
        params = {
            "status": status,
            "tenantId": tenant_id,
            "ruleId": rule_id,
            "limit": limit,
            "before": before,
        }
        answer = yield from self._call("GET", "/api/admin/jobs", params=params)
        return dict(answer)

    @operation
    def retry_jobs(self, ids: Sequence[int]) -> Operation[int]:
        """Queue failed, dead or finished jobs again now; how many were."""
        answer = yield from self._call("POST", "/api/admin/jobs/retry", json={"ids": list(ids)})
        return int(answer["retried"])

    @operation
    def discard_jobs(self, ids: Sequence[int], reason: str) -> Operation[int]:
        """Give up on jobs, with a reason; how many were discarded."""
        body = {"ids": list(ids), "reason": reason}
        answer = yield from self._call("POST", "/api/admin/jobs/discard", json=body)
        return int(answer["discarded"])

    @operation
    def replay(
        self,
        since: str,
        until: str,
        *,
        tenant_id: str | None = None,
        rule_id: str | None = None,
        dry_run: bool = False,
        force: bool = False,
    ) -> Operation[dict[str, Any]]:
        """Run ``[since, until)`` (ISO-8601) of the log through the rules
        again; the report (``scanned``, ``matched``, ``queued``, ``existing``...)."""
        body = {
            "from": since,
            "to": until,
            "tenantId": tenant_id,
            "ruleId": rule_id,
            "dryRun": dry_run,
            "force": force,
        }
        answer = yield from self._call("POST", "/api/admin/replay", json=body)
        return dict(answer)


def _finish(operation: Operation[T], step: Callable[[Step], Outcome]) -> T:
    """Run ``operation`` to its answer, taking each step with ``step``."""
    try:
        outcome: Outcome = None
        while True:
            outcome = step(operation.send(outcome))
    except StopIteration as done:
        return cast(T, done.value)


class TidingsClient(BaseClient[httpx.Client, httpx.BaseTransport]):
    """Blocking client (``httpx.Client``); use it as a context manager or
    call :meth:`close`."""

    def _open(self, transport: httpx.BaseTransport | None, **options: Any) -> httpx.Client:
        return httpx.Client(transport=transport, **options)

    def _bind(self, op: operation[P, T]) -> Callable[P, T]:
        def method(*args: P.args, **kwargs: P.kwargs) -> T:
            return _finish(op.build(self, *args, **kwargs), self._take)

        return op.dress(method, self)

    def _take(self, step: Step) -> Outcome:
        if isinstance(step, Pause):
            time.sleep(step.seconds)
            return None
        try:
            return self._http.send(step)
        except httpx.TransportError as exc:
            return exc

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncTidingsClient(BaseClient[httpx.AsyncClient, httpx.AsyncBaseTransport], AsyncClosing):
    """Asyncio client (``httpx.AsyncClient``); use it with ``async with`` or
    call :meth:`aclose`. Same methods as :class:`TidingsClient`, awaited."""

    def _open(
        self, transport: httpx.AsyncBaseTransport | None, **options: Any
    ) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=transport, **options)

    def _bind(self, op: operation[P, T]) -> Callable[P, Coroutine[Any, Any, T]]:
        async def method(*args: P.args, **kwargs: P.kwargs) -> T:
            operation = op.build(self, *args, **kwargs)
            outcome: Outcome = None
            try:
                while True:
                    outcome = await self._take(operation.send(outcome))
            except StopIteration as done:
                return cast(T, done.value)

        return op.dress(method, self)

    async def _take(self, step: Step) -> Outcome:
        if isinstance(step, Pause):
            await asyncio.sleep(step.seconds)
            return None
        try:
            return await self._http.send(step)
        except httpx.TransportError as exc:
            return exc

    async def aclose(self) -> None:
        await self._http.aclose()
