"""HTTP clients for a Tidings server: :class:`TidingsClient` (sync) and
:class:`AsyncTidingsClient` (asyncio).

Both share :class:`BaseClient`, which holds every non-I/O decision. Each
operation is a small generator that yields what it needs (a request to
send, or a pause before retrying) and returns the parsed answer; the two
clients only differ in how they run those steps. So request building,
problem parsing and the retry policy exist once.

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
import random
import time
from collections.abc import Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import quote

import httpx

from tidings import __version__, errors
from tidings.core.ids import new_event_id
from tidings.errors import TidingsError, Unavailable

T = TypeVar("T")
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
# An operation yields steps; after a request it receives the response (or
# the transport error is thrown into it); it returns the parsed answer.
Operation = Generator[Step, httpx.Response | None, T]


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
    """``Retry-After`` in seconds (delta or HTTP date), or None."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


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


class BaseClient:
    """Configuration and every operation, without I/O.

    ``url`` is the server's base URL; ``token`` the bearer credential (an
    API key ``tdk_...``, the admin key, or a user JWT).
    """

    _http: httpx.Client | httpx.AsyncClient

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        backoff: float = 0.25,
        max_backoff: float = MAX_RETRY_AFTER_S,
    ) -> None:
        self.base_url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff

    def _client_options(self) -> dict[str, Any]:
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return {"base_url": self.base_url, "headers": headers, "timeout": self.timeout}

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
            try:
                response = yield request
            except httpx.TransportError as exc:
                if retry and attempt < self.max_retries:
                    yield Pause(backoff_s(attempt, self.backoff, self.max_backoff))
                    attempt += 1
                    continue
                raise Unavailable(
                    f"cannot reach {self.base_url}: {type(exc).__name__}: {exc}".rstrip(": ")
                ) from None
            assert response is not None
            if response.is_success:
                return response.json() if response.content else None
            if retry and response.status_code in RETRY_STATUSES and attempt < self.max_retries:
                wait = retry_after_s(response)
                if wait is None:
                    wait = backoff_s(attempt, self.backoff, self.max_backoff)
                yield Pause(min(wait, self.max_backoff))
                attempt += 1
                continue
            raise error_from_response(response)

    # -- operations -----------------------------------------------------------

    def _publish(
        self, event: Mapping[str, Any], idempotency_key: str | None
    ) -> Operation[dict[str, Any]]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        answer = yield from self._call(
            "POST", "/api/events", json=with_event_id(event), headers=headers, retry=True
        )
        return dict(answer)

    def _publish_batch(
        self, events: Iterable[Mapping[str, Any]]
    ) -> Operation[list[dict[str, Any]]]:
        body = {"events": [with_event_id(e) for e in events]}
        answer = yield from self._call("POST", "/api/events/batch", json=body, retry=True)
        return list(answer["results"])

    def _stream_ticket(self) -> Operation[str]:
        answer = yield from self._call("POST", "/api/events/tickets")
        return str(answer["ticket"])

    def _history(self, filters: Mapping[str, Any]) -> Operation[dict[str, Any]]:
        params: dict[str, Any] = {}
        for name, value in filters.items():
            key = HISTORY_FILTERS.get(name)
            if key is None:
                known = ", ".join(sorted(HISTORY_FILTERS))
                raise TypeError(f"history() got an unknown filter {name!r}; known: {known}")
            params[key] = value
        answer = yield from self._call("GET", "/api/events/log", params=params)
        return dict(answer)

    def _put_tenant(
        self, tenant_id: str, name: str, settings: Mapping[str, Any] | None
    ) -> Operation[dict[str, Any]]:
        body = {"name": name, "settings": dict(settings or {})}
        answer = yield from self._call(
            "PUT", f"/api/admin/tenants/{_segment(tenant_id)}", json=body
        )
        return dict(answer)

    def _put_user(
        self,
        tenant_id: str,
        user_id: str,
        system_role: str,
        *,
        grant: Sequence[str],
        revoke: Sequence[str],
        resources: Sequence[str],
        platform: bool,
        platform_tenants: Sequence[str] | None,
    ) -> Operation[dict[str, Any]]:
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

    def _put_role(
        self, role: str, permissions: Sequence[str], tenant_id: str | None
    ) -> Operation[dict[str, Any]]:
        body: dict[str, Any] = {"permissions": list(permissions)}
        if tenant_id is not None:
            body["tenantId"] = tenant_id
        answer = yield from self._call("PUT", f"/api/admin/roles/{_segment(role)}", json=body)
        return dict(answer)

    def _create_api_key(
        self, scopes: Sequence[str], tenant_id: str | None, name: str
    ) -> Operation[dict[str, Any]]:
        body: dict[str, Any] = {"scopes": list(scopes), "name": name}
        if tenant_id is not None:
            body["tenantId"] = tenant_id
        answer = yield from self._call("POST", "/api/admin/api-keys", json=body)
        return dict(answer)

    def _notify(
        self, user_id: str, title: str, fields: Mapping[str, Any]
    ) -> Operation[dict[str, Any]]:
        body = {
            "userId": user_id,
            "title": title,
            **{k: v for k, v in fields.items() if v is not None},
        }
        answer = yield from self._call("POST", "/api/notifications", json=body)
        return dict(answer)


class TidingsClient(BaseClient):
    """Blocking client (``httpx.Client``); use it as a context manager or
    call :meth:`close`."""

    _http: httpx.Client

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        backoff: float = 0.25,
        max_backoff: float = MAX_RETRY_AFTER_S,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(
            url,
            token=token,
            timeout=timeout,
            max_retries=max_retries,
            backoff=backoff,
            max_backoff=max_backoff,
        )
        self._http = httpx.Client(transport=transport, **self._client_options())

    def _run(self, operation: Operation[T]) -> T:
        reply: httpx.Response | None = None
        thrown: httpx.TransportError | None = None
        while True:
            try:
                step = operation.throw(thrown) if thrown else operation.send(reply)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            reply, thrown = None, None
            if isinstance(step, Pause):
                time.sleep(step.seconds)
                continue
            try:
                reply = self._http.send(step)
            except httpx.TransportError as exc:
                thrown = exc

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

    def publish(
        self, event: Mapping[str, Any], idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Publish one event; returns ``{"id", "position"}`` once it is durable."""
        return self._run(self._publish(event, idempotency_key))

    def publish_batch(self, events: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Publish several events atomically; one ``{"id", "position"}`` each."""
        return self._run(self._publish_batch(events))

    def stream_ticket(self) -> str:
        """A single-use stream ticket for the current user (JWT callers)."""
        return self._run(self._stream_ticket())

    def history(self, **filters: Any) -> dict[str, Any]:
        """One page of the log, newest first unless ``order="asc"``:
        ``{"items": [...], "nextCursor": str | None}``. Filters: ``types``,
        ``entity_type``, ``entity_id``, ``since``/``until`` (ISO-8601),
        ``cursor``, ``limit``, ``order``, ``tenant_id`` (admin credentials)."""
        return self._run(self._history(filters))

    def put_tenant(
        self, tenant_id: str, name: str, settings: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Create or update a tenant (admin)."""
        return self._run(self._put_tenant(tenant_id, name, settings))

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
    ) -> dict[str, Any]:
        """Create or update a user (admin); their open streams follow at once."""
        return self._run(
            self._put_user(
                tenant_id,
                user_id,
                system_role,
                grant=grant,
                revoke=revoke,
                resources=resources,
                platform=platform,
                platform_tenants=platform_tenants,
            )
        )

    def put_role(
        self, role: str, permissions: Sequence[str], tenant_id: str | None = None
    ) -> dict[str, Any]:
        """Set a role's default permissions, globally or for one tenant (admin)."""
        return self._run(self._put_role(role, permissions, tenant_id))

    def create_api_key(
        self, scopes: Sequence[str], tenant_id: str | None = None, name: str = "api key"
    ) -> dict[str, Any]:
        """Create an API key (admin); the answer's ``key`` is shown only once."""
        return self._run(self._create_api_key(scopes, tenant_id, name))

    def notify(
        self,
        user_id: str,
        title: str,
        *,
        type: str = "info",
        body: str = "",
        link: str | None = None,
        tenant_id: str | None = None,
    ) -> dict[str, Any]:
        """Create an in-app notification for a user (pushed live to them)."""
        fields = {"type": type, "body": body, "link": link, "tenantId": tenant_id}
        return self._run(self._notify(user_id, title, fields))


class AsyncTidingsClient(BaseClient):
    """Asyncio client (``httpx.AsyncClient``); use it with ``async with`` or
    call :meth:`aclose`. Same methods as :class:`TidingsClient`, awaited."""

    _http: httpx.AsyncClient

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        backoff: float = 0.25,
        max_backoff: float = MAX_RETRY_AFTER_S,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(
            url,
            token=token,
            timeout=timeout,
            max_retries=max_retries,
            backoff=backoff,
            max_backoff=max_backoff,
        )
        self._http = httpx.AsyncClient(transport=transport, **self._client_options())

    async def _run(self, operation: Operation[T]) -> T:
        reply: httpx.Response | None = None
        thrown: httpx.TransportError | None = None
        while True:
            try:
                step = operation.throw(thrown) if thrown else operation.send(reply)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            reply, thrown = None, None
            if isinstance(step, Pause):
                await asyncio.sleep(step.seconds)
                continue
            try:
                reply = await self._http.send(step)
            except httpx.TransportError as exc:
                thrown = exc

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def publish(
        self, event: Mapping[str, Any], idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Publish one event; returns ``{"id", "position"}`` once it is durable."""
        return await self._run(self._publish(event, idempotency_key))

    async def publish_batch(self, events: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Publish several events atomically; one ``{"id", "position"}`` each."""
        return await self._run(self._publish_batch(events))

    async def stream_ticket(self) -> str:
        """A single-use stream ticket for the current user (JWT callers)."""
        return await self._run(self._stream_ticket())

    async def history(self, **filters: Any) -> dict[str, Any]:
        """One page of the log, newest first unless ``order="asc"``:
        ``{"items": [...], "nextCursor": str | None}``. Filters: ``types``,
        ``entity_type``, ``entity_id``, ``since``/``until`` (ISO-8601),
        ``cursor``, ``limit``, ``order``, ``tenant_id`` (admin credentials)."""
        return await self._run(self._history(filters))

    async def put_tenant(
        self, tenant_id: str, name: str, settings: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Create or update a tenant (admin)."""
        return await self._run(self._put_tenant(tenant_id, name, settings))

    async def put_user(
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
    ) -> dict[str, Any]:
        """Create or update a user (admin); their open streams follow at once."""
        return await self._run(
            self._put_user(
                tenant_id,
                user_id,
                system_role,
                grant=grant,
                revoke=revoke,
                resources=resources,
                platform=platform,
                platform_tenants=platform_tenants,
            )
        )

    async def put_role(
        self, role: str, permissions: Sequence[str], tenant_id: str | None = None
    ) -> dict[str, Any]:
        """Set a role's default permissions, globally or for one tenant (admin)."""
        return await self._run(self._put_role(role, permissions, tenant_id))

    async def create_api_key(
        self, scopes: Sequence[str], tenant_id: str | None = None, name: str = "api key"
    ) -> dict[str, Any]:
        """Create an API key (admin); the answer's ``key`` is shown only once."""
        return await self._run(self._create_api_key(scopes, tenant_id, name))

    async def notify(
        self,
        user_id: str,
        title: str,
        *,
        type: str = "info",
        body: str = "",
        link: str | None = None,
        tenant_id: str | None = None,
    ) -> dict[str, Any]:
        """Create an in-app notification for a user (pushed live to them)."""
        fields = {"type": type, "body": body, "link": link, "tenantId": tenant_id}
        return await self._run(self._notify(user_id, title, fields))
