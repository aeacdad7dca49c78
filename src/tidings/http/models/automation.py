"""The automation API's answers: actions, rules, dry runs, jobs, replay."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

Instant = str  # ISO-8601 UTC


class ActionType(BaseModel):
    type: str
    builtin: bool
    description: str


class Actions(BaseModel):
    items: list[ActionType]
    jobs: list[str] = Field(description="action types that run as jobs (retried, dead-lettered)")


class RuleAction(BaseModel):
    type: str
    config: dict[str, Any] = Field(description="secrets shown masked")


class Rule(BaseModel):
    id: str
    name: str
    tenantId: str | None = Field(description="null: a global rule")
    priority: int
    enabled: bool
    disabledReason: str | None
    trigger: dict[str, Any]
    action: RuleAction
    retry: dict[str, Any] | None
    author: str | None
    createdAt: float
    updatedAt: float


class SavedRule(Rule):
    secret: str | None = Field(
        default=None, description="a webhook secret the server generated: shown this once"
    )


class RuleList(BaseModel):
    items: list[Rule]


class DryRun(BaseModel):
    matched: bool
    reasons: list[str] = Field(description="why it would not fire")
    actions: list[RuleAction] = Field(description="what it would run, rendered")


class RulePack(BaseModel):
    name: str
    description: str


class RulePackList(BaseModel):
    items: list[RulePack]


class Attempt(BaseModel):
    attempt: int
    time: Instant
    durationMs: float
    outcome: str = Field(description="succeeded, failed, dead or abandoned")
    status: int | None = Field(description="the HTTP status of a webhook call")
    detail: str | None
    worker: str | None


class Job(BaseModel):
    id: int
    status: str
    tenantId: str | None
    ruleId: str | None
    eventId: str | None
    eventPosition: int | None
    eventType: str | None
    attemptCount: int
    nextRunAt: Instant | None
    lastError: str | None
    discardReason: str | None
    requestId: str | None = Field(
        default=None, description="X-Request-ID of the request that published the event"
    )
    createdAt: Instant
    updatedAt: Instant
    attempts: list[Attempt]


class JobPage(BaseModel):
    items: list[Job]
    next: str | None = Field(description="pass as ?before= for the next page; null at the end")


class Retried(BaseModel):
    retried: int = Field(ge=0)


class Discarded(BaseModel):
    discarded: int = Field(ge=0)


class Processing(BaseModel):
    eventId: str
    processed: bool
    state: str = Field(description="no_jobs, pending, failed or processed")
    jobs: dict[str, int] = Field(description="jobs by status")


class ReplayReport(BaseModel):
    events: int
    scanned: int
    matched: int
    queued: int
    existing: dict[str, int] = Field(description="(event, rule) pairs that had a job, by status")
    byRule: dict[str, int]
    dryRun: bool
