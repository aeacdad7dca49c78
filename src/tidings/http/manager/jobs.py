"""``/admin/jobs``: failed work (seed 001's "handle failed events").

* ``GET /admin/jobs``: jobs by status (default: the failed and dead ones,
  which need attention), filtered by tenant, rule, type and time range,
  newest first, paged with ``before``; each with its event, rule, attempts
  and next retry.
* ``POST /admin/jobs/{id}/retry`` and ``/discard`` (with a reason): htmx gets
  the job's row back, a plain form a redirect to the list.
* ``POST /admin/jobs/retry``: retries every failed or dead job of the
  filtered set (bounded by :data:`~tidings.services.jobs.RETRY_MATCHING_MAX`).
* ``POST /admin/jobs/replay/count`` then ``/admin/jobs/replay``: a time range
  through the rules again, a dry-run count first, then the real replay.

Every read and change goes through :class:`~tidings.services.jobs.Jobs` with
the session's principal: a tenant-bound key sees and changes its tenant only.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.datastructures import FormData
from starlette.responses import Response

from tidings.automation.replay import ReplayReport
from tidings.core.envelope import iso_utc
from tidings.errors import InvalidInput
from tidings.http.events import node
from tidings.http.manager.forms import field_text, refusal
from tidings.http.manager.render import is_htmx, redirect, render
from tidings.http.manager.session import AdminPage
from tidings.http.params import ascii_int, instant
from tidings.services.jobs import ATTENTION, DISCARDABLE, RETRYABLE
from tidings.services.sessions import AdminSession
from tidings.store.base import AttemptRecord, JobFilter, JobRecord

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
MAX_REASON = 2000
MAX_FILTER_CHARS = 200
# (value of ?status=, label, the job states it shows), in tab order.
TABS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("attention", "Needs attention", ATTENTION),
    ("failed", "Failed (retrying)", ("failed",)),
    ("dead", "Dead", ("dead",)),
    ("pending", "Pending", ("pending", "running")),
    ("discarded", "Discarded", ("discarded",)),
    ("succeeded", "Succeeded", ("succeeded",)),
    ("all", "All", ()),
)
BADGES = {
    "dead": "bad",
    "failed": "warn",
    "pending": "info",
    "running": "info",
    "succeeded": "ok",
    "discarded": "",
    "abandoned": "warn",
}
FIELDS = ("status", "tenant", "rule", "event", "type", "since", "until")


@dataclass(frozen=True, slots=True)
class Filters:
    """The list's filters as the form holds them (text, empty when unset)."""

    status: str = "attention"
    tenant: str = ""
    rule: str = ""
    event: str = ""  # an event id: its jobs (the event page links here)
    type: str = ""
    since: str = ""
    until: str = ""

    @classmethod
    def of(cls, values: Any, session: AdminSession) -> Filters:
        """From query parameters or form fields; a tenant-bound session's
        tenant is fixed."""
        given = {name: field_text(values.get(name)).strip()[:MAX_FILTER_CHARS] for name in FIELDS}
        if session.tenant_id is not None:
            given["tenant"] = session.tenant_id
        return cls(**{**given, "status": given["status"] or "attention"})

    def query(self, *, before: int | None = None, limit: int = PAGE_SIZE) -> JobFilter:
        """The store filter; :class:`InvalidInput` naming the bad field."""
        statuses = next((s for value, _, s in TABS if value == self.status), None)
        if statuses is None:
            raise InvalidInput(f"unknown status {self.status!r}", field="status")
        since = _instant(self.since, "since")
        until = _instant(self.until, "until")
        if since is not None and until is not None and until <= since:
            raise InvalidInput("until must be after since", field="until")
        return JobFilter(
            statuses=statuses,
            rule_id=self.rule or None,
            event_id=self.event or None,
            event_type=self.type or None,
            since=since,
            until=until,
            before_id=before,
            limit=limit,
        )

    @property
    def tenant_id(self) -> str | None:
        return self.tenant or None

    def link(self, **changes: str | int) -> str:
        """This list's URL with ``changes`` (empty values left out)."""
        values: dict[str, Any] = {n: getattr(self, n) for n in FIELDS} | changes
        return "/admin/jobs?" + urlencode({k: v for k, v in values.items() if v})


@dataclass(frozen=True, slots=True)
class AttemptView:
    number: int
    at: str
    outcome: str
    badge: str
    status_code: int | None
    duration: str
    detail: str


@dataclass(frozen=True, slots=True)
class JobView:
    """A job as its row shows it."""

    job: JobRecord
    badge: str
    next_run: str | None
    updated: str
    attempts: tuple[AttemptView, ...]
    retryable: bool
    discardable: bool

    @classmethod
    def of(cls, job: JobRecord) -> JobView:
        return cls(
            job=job,
            badge=BADGES.get(job.status, ""),
            next_run=iso_utc(job.run_at) if job.status in ("pending", "failed") else None,
            updated=iso_utc(job.updated_at),
            attempts=tuple(_attempt(a) for a in job.history),
            retryable=job.status in RETRYABLE,
            discardable=job.status in DISCARDABLE,
        )


@router.get("/admin/jobs")
async def jobs_page(request: Request, session: AdminPage) -> Response:
    filters = Filters.of(request.query_params, session)
    return await _page(request, session, filters, request.query_params.get("before"))


@router.post("/admin/jobs/retry")
async def retry_filtered(request: Request, session: AdminPage) -> Response:
    """Retry every failed or dead job of the filtered set."""
    filters = Filters.of(await request.form(), session)
    try:
        query = replace(filters.query(), statuses=_bulk_states(filters))
    except InvalidInput as exc:
        return await _page(request, session, filters, None, error=refusal(exc), status=422)
    count = (
        0
        if not query.statuses
        else await node(request).jobs.retry_matching(
            session.principal, query, tenant_id=filters.tenant_id
        )
    )
    notice = f"Retried {count:,} job{'' if count == 1 else 's'}: queued to run now."
    if is_htmx(request):
        return await _page(request, session, filters, None, notice=notice)
    return redirect(request, filters.link())


@router.post("/admin/jobs/{job_id}/retry")
async def retry_one(request: Request, job_id: str, session: AdminPage) -> Response:
    number = ascii_int(job_id, "job_id", 1)
    jobs = node(request).jobs
    try:
        job = await jobs.retry(session.principal, number)
    except InvalidInput as exc:
        return await _row_or_back(request, session, number, error=refusal(exc))
    return _row_answer(request, session, job, notice="Queued to run now.")


@router.post("/admin/jobs/{job_id}/discard")
async def discard_one(request: Request, job_id: str, session: AdminPage) -> Response:
    number = ascii_int(job_id, "job_id", 1)
    reason = field_text((await request.form()).get("reason")).strip()
    if not reason or len(reason) > MAX_REASON:
        error = f"Reason: say why this job is given up (1 to {MAX_REASON:,} characters)."
        return await _row_or_back(request, session, number, error=error)
    try:
        job = await node(request).jobs.discard(session.principal, number, reason)
    except InvalidInput as exc:
        return await _row_or_back(request, session, number, error=refusal(exc))
    return _row_answer(request, session, job, notice="Discarded.")


@router.post("/admin/jobs/replay/count")
async def replay_count(request: Request, session: AdminPage) -> Response:
    """The dry run: how many jobs the replay would queue."""
    return await _replay(request, session, dry_run=True)


@router.post("/admin/jobs/replay")
async def replay_run(request: Request, session: AdminPage) -> Response:
    return await _replay(request, session, dry_run=False)


# -- helpers --------------------------------------------------------------------


async def _page(
    request: Request,
    session: AdminSession,
    filters: Filters,
    before_text: str | None,
    *,
    error: str | None = None,
    notice: str | None = None,
    status: int = 200,
    replay: dict[str, Any] | None = None,
) -> Response:
    jobs = node(request).jobs
    items: list[JobRecord] = []
    counts: dict[str, int] = {}
    query: JobFilter | None = None
    if error is None:
        try:
            before = ascii_int(before_text or None, "before", 1)
            query = filters.query(before=before)
        except InvalidInput as exc:
            error, status = refusal(exc), 422
    if query is not None:
        items = await jobs.list_jobs(
            session.principal, query, tenant_id=filters.tenant_id, history=True
        )
        everything = JobFilter(
            rule_id=query.rule_id,
            event_id=query.event_id,
            event_type=query.event_type,
            since=query.since,
            until=query.until,
        )
        counts = await jobs.count(session.principal, everything, tenant_id=filters.tenant_id)
    context = {
        "title": "Failed work",
        "filters": filters,
        "tabs": [(value, label, _total(counts, states)) for value, label, states in TABS],
        "rows": [JobView.of(j) for j in items],
        "retry_count": sum(counts.get(s, 0) for s in _bulk_states(filters)),
        "older": filters.link(before=items[-1].id) if len(items) == PAGE_SIZE else None,
        "newest": filters.link() if before_text else None,
        "error": error,
        "notice": notice,
        "replay_view": replay or {"replay": _replay_form(FormData(), session)},
    }
    if is_htmx(request) and request.method == "POST":  # the panel, and the tabs' new counts
        return render(request, "_jobs_panel.html", {**context, "oob": True}, session=session)
    return render(request, "jobs.html", context, session=session, status=status)


def _total(counts: dict[str, int], states: tuple[str, ...]) -> int:
    """Jobs in ``states`` (none: every state)."""
    return sum(n for state, n in counts.items() if not states or state in states)


def _bulk_states(filters: Filters) -> tuple[str, ...]:
    """What a bulk retry of this tab retries: its failed and dead jobs only
    (succeeded or discarded ones are retried one by one, on purpose)."""
    states = next((s for v, _, s in TABS if v == filters.status), ATTENTION) or ATTENTION
    return tuple(s for s in states if s in ATTENTION)


def _row_answer(
    request: Request, session: AdminSession, job: JobRecord, *, notice: str
) -> Response:
    if not is_htmx(request):
        return redirect(request, "/admin/jobs")
    return _row(request, session, job, notice=notice)


async def _row_or_back(
    request: Request, session: AdminSession, job_id: int, *, error: str
) -> Response:
    """A refused change: the row with the reason (htmx), else the list."""
    job = await node(request).jobs.get(session.principal, job_id)
    if is_htmx(request):
        return _row(request, session, job, error=error)
    return await _page(request, session, Filters(status="all"), None, error=error, status=422)


def _row(
    request: Request,
    session: AdminSession,
    job: JobRecord,
    *,
    notice: str | None = None,
    error: str | None = None,
) -> Response:
    # htmx swaps only 2xx answers, so a refusal is a 200 row with its message.
    context = {"row": JobView.of(job), "row_notice": notice, "row_error": error}
    return render(request, "_jobs_row.html", context, session=session)


async def _replay(request: Request, session: AdminSession, *, dry_run: bool) -> Response:
    form = await request.form()
    values = _replay_form(form, session)
    context: dict[str, Any] = {"replay": values, "report": None, "error": None}
    try:
        since = _required_instant(values["since"], "from")
        until = _required_instant(values["until"], "to")
        report: ReplayReport = await node(request).jobs.replay(
            session.principal,
            since=since,
            until=until,
            tenant_id=values["tenant"] or None,
            rule_id=values["rule"] or None,
            dry_run=dry_run,
        )
        context["report"] = report
    except InvalidInput as exc:
        context["error"] = refusal(exc)
    if is_htmx(request):
        return render(request, "_jobs_replay.html", context, session=session)
    filters = Filters.of({}, session)
    return await _page(request, session, filters, None, replay=context)


def _replay_form(form: FormData, session: AdminSession) -> dict[str, str]:
    values = {
        name: field_text(form.get(name)).strip()[:MAX_FILTER_CHARS]
        for name in ("since", "until", "tenant", "rule")
    }
    if session.tenant_id is not None:
        values["tenant"] = session.tenant_id
    return values


def _attempt(attempt: AttemptRecord) -> AttemptView:
    return AttemptView(
        number=attempt.attempt,
        at=iso_utc(attempt.started_at),
        outcome=attempt.outcome,
        badge=BADGES.get(attempt.outcome, "bad"),
        status_code=attempt.status_code,
        duration=f"{attempt.duration_ms:,.0f} ms",
        detail=attempt.detail,
    )


def _instant(value: str, field: str) -> float | None:
    """A ``datetime-local`` value (UTC), an ISO-8601 date-time or epoch seconds."""
    return instant(value, field) if value else None


def _required_instant(value: str, field: str) -> float:
    if not value:
        raise InvalidInput(f"{field} is required", field=field)
    return instant(value, field)
