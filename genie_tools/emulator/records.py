"""Conversations and messages as the emulator keeps them, and how they look on the wire.

A message's status is derived from the clock, its planned schedule and whether
its query has finished, so nothing needs a timer and every transition time is
exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from genie_tools.emulator.engine import Interpretation
from genie_tools.emulator.latency import TERMINAL, Step
from genie_tools.emulator.results import TableResult


@dataclass
class Conversation:
    """A Genie conversation in one space."""

    id: str
    space_id: str
    title: str
    principal: str
    user_id: int
    created: float
    updated: float
    message_ids: list[str] = field(default_factory=list)

    def to_wire(self) -> dict[str, Any]:
        """The ``GenieConversation`` JSON."""
        return {
            "id": self.id,
            "conversation_id": self.id,
            "space_id": self.space_id,
            "title": self.title,
            "user_id": self.user_id,
            "created_timestamp": _ms(self.created),
            "last_updated_timestamp": _ms(self.updated),
        }

    def to_summary(self) -> dict[str, Any]:
        """The ``GenieConversationSummary`` JSON used in listings."""
        return {
            "conversation_id": self.id,
            "title": self.title,
            "created_timestamp": _ms(self.created),
        }


@dataclass
class Message:
    """A question and Genie's answer to it."""

    id: str
    space_id: str
    conversation_id: str
    content: str
    principal: str
    user_id: int
    created: float
    schedule: list[Step]
    interpretation: Interpretation
    query_attachment_id: str
    text_attachment_id: str
    suggestions_attachment_id: str
    statement_id: str
    result_ttl: float
    fault: str | None = None
    error: dict[str, str] | None = None
    result: TableResult | None = None
    result_ready_at: float | None = None
    expires_at: float | None = None
    cancelled_at: float | None = None
    feedback: dict[str, str] | None = None
    expire_on_completion: bool = False
    summary: str = ""

    @property
    def has_query(self) -> bool:
        """Whether Genie answers with SQL (rather than a clarification)."""
        return self.interpretation.sql is not None

    def completed_at(self) -> float | None:
        """When the message reached its terminal status (None if it has not or never will)."""
        last = self.schedule[-1]
        if last.status not in TERMINAL:
            return self.cancelled_at
        at = last.at
        if self.has_query and last.status == "COMPLETED":
            if self.result_ready_at is None and self.error is None:
                return self.cancelled_at
            at = max(at, self.result_ready_at or at)
        if self.cancelled_at is not None and self.cancelled_at < at:
            return self.cancelled_at
        return at

    def terminal_status(self) -> str | None:
        """The final status, once known."""
        if self.cancelled_at is not None and self.completed_at() == self.cancelled_at:
            return "CANCELLED"
        last = self.schedule[-1].status
        if last == "COMPLETED" and self.error is not None:
            return "FAILED"
        return last if last in TERMINAL else None

    def status(self, now: float) -> str:
        """The status a client sees at ``now``."""
        done = self.completed_at()
        if done is not None and done <= now:
            terminal = self.terminal_status() or "COMPLETED"
            if terminal == "COMPLETED" and self.expires_at is not None and self.expires_at <= now:
                return "QUERY_RESULT_EXPIRED"
            return terminal
        current = self.schedule[0].status
        for step in self.schedule:
            if step.at <= now and step.status not in TERMINAL:
                current = step.status
        return current

    def events(self, now: float) -> list[tuple[float, str]]:
        """Every status change up to ``now``: ``(time, status)`` in order."""
        out: list[tuple[float, str]] = []
        done = self.completed_at()
        for step in self.schedule:
            if step.status in TERMINAL:
                continue
            if step.at > now or (done is not None and step.at > done):
                break
            out.append((step.at, step.status))
        if done is not None and done <= now:
            out.append((done, self.terminal_status() or "COMPLETED"))
            if self.expires_at is not None and self.expires_at <= now:
                out.append((self.expires_at, "QUERY_RESULT_EXPIRED"))
        return out

    def to_wire(self, now: float) -> dict[str, Any]:
        """The ``GenieMessage`` JSON at ``now``."""
        status = self.status(now)
        body: dict[str, Any] = {
            "id": self.id,
            "message_id": self.id,
            "space_id": self.space_id,
            "conversation_id": self.conversation_id,
            "content": self.content,
            "status": status,
            "user_id": self.user_id,
            "created_timestamp": _ms(self.created),
            "last_updated_timestamp": _ms(self._last_update(now)),
        }
        attachments = self._attachments(status)
        if attachments:
            body["attachments"] = attachments
        if status == "FAILED" and self.error is not None:
            body["error"] = self.error
        if self.feedback is not None:
            body["feedback"] = self.feedback
        return body

    def _last_update(self, now: float) -> float:
        events = self.events(now)
        return events[-1][0] if events else self.created

    def _attachments(self, status: str) -> list[dict[str, Any]]:
        i = self.interpretation
        executing = status in ("EXECUTING_QUERY", "COMPLETED", "QUERY_RESULT_EXPIRED")
        done = status in ("COMPLETED", "QUERY_RESULT_EXPIRED")
        out: list[dict[str, Any]] = []
        if self.has_query and executing:
            query: dict[str, Any] = {
                "id": self.query_attachment_id,
                "query": i.sql,
                "title": i.title,
                "description": i.description,
                "statement_id": self.statement_id,
            }
            if done and self.result is not None:
                query["query_result_metadata"] = {
                    "row_count": self.result.row_count,
                    "is_truncated": self.result.truncated,
                }
            out.append({"attachment_id": self.query_attachment_id, "query": query})
        if done:
            text: dict[str, Any] = {"id": self.text_attachment_id}
            if i.clarification is not None:
                text["content"] = i.clarification
                text["purpose"] = "FOLLOW_UP_QUESTION"
            else:
                text["content"] = self.summary
            out.append({"attachment_id": self.text_attachment_id, "text": text})
            if i.suggested_questions:
                out.append(
                    {
                        "attachment_id": self.suggestions_attachment_id,
                        "suggested_questions": {"questions": list(i.suggested_questions)},
                    }
                )
        return out


def _ms(seconds: float) -> int:
    return int(seconds * 1000)
