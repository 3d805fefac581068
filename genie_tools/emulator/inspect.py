"""What tests and benchmarks read back: counters, the status-change log, message timings."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from genie_tools.emulator.service import GenieService


@dataclass(frozen=True)
class StatusEvent:
    """A message entered ``status`` at ``at`` (epoch seconds)."""

    at: float
    space_id: str
    conversation_id: str
    message_id: str
    status: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


@dataclass(frozen=True)
class MessageInfo:
    """One question as the emulator saw it."""

    message_id: str
    space_id: str
    conversation_id: str
    content: str
    status: str
    created_at: float
    completed_at: float | None
    sql: str | None
    polls: int
    fault: str | None


def stats_snapshot(service: GenieService) -> dict[str, Any]:
    """A JSON-ready copy of the counters (call with ``service.lock`` held)."""
    s = service.stats
    return {
        "questions": s.questions,
        "questions_by_space": dict(s.questions_by_space),
        "questions_by_conversation": dict(s.questions_by_conversation),
        "polls": s.polls,
        "polls_by_message": dict(s.polls_by_message),
        "rate_limited": s.rate_limited,
        "rate_limited_by_space": dict(s.rate_limited_by_space),
        "token_requests": s.token_requests,
        "auth_failures": s.auth_failures,
        "result_fetches": s.result_fetches,
        "requests": dict(s.requests),
        "faults_fired": dict(service.faults.fired),
        "conversations": len(service.conversations),
        "messages": len(service.messages),
    }


def event_log(service: GenieService) -> list[StatusEvent]:
    """Every status change so far, in time order (call with ``service.lock`` held)."""
    now = service.clock()
    out = [
        StatusEvent(at, m.space_id, m.conversation_id, m.id, status)
        for m in service.messages.values()
        for at, status in m.events(now)
    ]
    out.sort(key=lambda e: e.at)
    return out


def message_infos(service: GenieService) -> list[MessageInfo]:
    """Every message, oldest first (call with ``service.lock`` held)."""
    now = service.clock()
    return [
        MessageInfo(
            message_id=m.id,
            space_id=m.space_id,
            conversation_id=m.conversation_id,
            content=m.content,
            status=m.status(now),
            created_at=m.created,
            completed_at=m.completed_at(),
            sql=m.interpretation.sql,
            polls=service.stats.polls_by_message.get(m.id, 0),
            fault=m.fault,
        )
        for m in sorted(service.messages.values(), key=lambda m: m.created)
    ]
