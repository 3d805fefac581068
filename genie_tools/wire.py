"""Pure functions from Genie's JSON (the Databricks SDK's wire format) to our models.

Nothing here does I/O, so sync and async clients share it and tests can feed it
recorded bodies. Field names follow ``databricks.sdk.service.dashboards`` (``GenieMessage``,
``GenieAttachment``, ``GenieQueryAttachment``, ``TextAttachment``, ``GenieSpace``) and
``databricks.sdk.service.sql.StatementResponse``.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
from dataclasses import dataclass, field
from typing import Any

from genie_tools.models import (
    ColumnInfo,
    GenieAnswer,
    QueryResult,
    ResultColumn,
    SpaceInfo,
    TableInfo,
    Timings,
)

__all__ = [
    "MessageView",
    "StatementView",
    "build_answer",
    "error_fields",
    "ms_to_datetime",
    "parse_message",
    "parse_retry_after",
    "parse_space",
    "parse_statement",
]

FOLLOW_UP = "FOLLOW_UP_QUESTION"


@dataclass(frozen=True)
class QueryAttachmentView:
    """The (last) query attachment of a message."""

    attachment_id: str | None
    sql: str | None
    title: str | None
    description: str | None
    statement_id: str | None
    row_count: int | None
    truncated: bool


@dataclass(frozen=True)
class MessageView:
    """What a ``GenieMessage`` body says, flattened."""

    space_id: str
    conversation_id: str
    message_id: str
    content: str
    status: str
    created_ms: int | None = None
    updated_ms: int | None = None
    error_type: str | None = None
    error_text: str | None = None
    query: QueryAttachmentView | None = None
    texts: list[str] = field(default_factory=list)
    clarification: str | None = None
    suggested_questions: list[str] = field(default_factory=list)


def parse_message(body: dict[str, Any], *, space_id: str | None = None) -> MessageView:
    """Flatten a ``GenieMessage`` body.

    Genie may correct itself and attach several queries: the last one wins, as in the
    Genie UI. Text attachments with purpose ``FOLLOW_UP_QUESTION`` are a clarification.

    Example:
        >>> v = parse_message({"message_id": "m", "conversation_id": "c", "space_id": "s",
        ...     "content": "q", "status": "COMPLETED", "attachments": [
        ...     {"attachment_id": "a", "query": {"query": "SELECT 1", "statement_id": "st",
        ...      "query_result_metadata": {"row_count": 1, "is_truncated": False}}},
        ...     {"attachment_id": "t", "text": {"content": "One."}}]})
        >>> v.status, v.query.sql, v.texts
        ('COMPLETED', 'SELECT 1', ['One.'])
    """
    query: QueryAttachmentView | None = None
    texts: list[str] = []
    clarification: str | None = None
    suggested: list[str] = []
    for att in body.get("attachments") or []:
        if not isinstance(att, dict):
            continue
        if isinstance(att.get("query"), dict):
            q = att["query"]
            meta = q.get("query_result_metadata") or {}
            query = QueryAttachmentView(
                attachment_id=att.get("attachment_id") or q.get("id"),
                sql=q.get("query"),
                title=q.get("title"),
                description=q.get("description"),
                statement_id=q.get("statement_id"),
                row_count=_int(meta.get("row_count")),
                truncated=bool(meta.get("is_truncated")),
            )
        elif isinstance(att.get("text"), dict):
            text = att["text"]
            content = text.get("content")
            if not content:
                continue
            if text.get("purpose") == FOLLOW_UP:
                clarification = content
            else:
                texts.append(content)
        elif isinstance(att.get("suggested_questions"), dict):
            questions = att["suggested_questions"].get("questions") or []
            suggested.extend(q for q in questions if isinstance(q, str) and q)
    raw_error = body.get("error")
    error: dict[str, Any] = raw_error if isinstance(raw_error, dict) else {}
    return MessageView(
        space_id=body.get("space_id") or space_id or "",
        conversation_id=body.get("conversation_id") or "",
        message_id=body.get("message_id") or body.get("id") or "",
        content=body.get("content") or "",
        status=body.get("status") or "SUBMITTED",
        created_ms=_int(body.get("created_timestamp")),
        updated_ms=_int(body.get("last_updated_timestamp")),
        error_type=error.get("type"),
        error_text=error.get("error"),
        query=query,
        texts=texts,
        clarification=clarification,
        suggested_questions=suggested,
    )


@dataclass(frozen=True)
class StatementView:
    """A ``StatementResponse``: its state and, when it succeeded, the typed result."""

    state: str
    error_message: str | None = None
    result: QueryResult | None = None
    external_links: list[dict[str, Any]] = field(default_factory=list)
    columns: list[ResultColumn] = field(default_factory=list)
    row_format: str | None = None
    total_row_count: int | None = None


def parse_statement(stmt: dict[str, Any], *, truncated: bool = False) -> StatementView:
    """Parse a ``statement_response``; inline ``data_array`` rows become a typed result.

    Args:
        stmt: The ``statement_response`` object.
        truncated: Truncation known from elsewhere (the attachment's metadata).

    Example:
        >>> s = parse_statement({"statement_id": "x", "status": {"state": "SUCCEEDED"},
        ...     "manifest": {"schema": {"columns": [
        ...         {"name": "n", "type_name": "LONG", "position": 0}]}, "truncated": True},
        ...     "result": {"data_array": [["5000"]]}})
        >>> s.state, s.result.rows, s.result.truncated
        ('SUCCEEDED', [[5000]], True)
    """
    status = stmt.get("status") or {}
    state = status.get("state") or "UNKNOWN"
    error = status.get("error") or {}
    manifest = stmt.get("manifest") or {}
    columns = _columns(manifest)
    result_body = stmt.get("result") or {}
    links = [link for link in result_body.get("external_links") or [] if isinstance(link, dict)]
    result = None
    if state == "SUCCEEDED" and not links:
        result = QueryResult(
            columns=columns,
            rows=result_body.get("data_array") or [],
            truncated=bool(manifest.get("truncated")) or truncated,
            statement_id=stmt.get("statement_id"),
        )
    return StatementView(
        state=state,
        error_message=error.get("message"),
        result=result,
        external_links=sorted(links, key=lambda link: _int(link.get("chunk_index")) or 0),
        columns=columns,
        row_format=manifest.get("format"),
        total_row_count=_int(manifest.get("total_row_count")),
    )


def _columns(manifest: dict[str, Any]) -> list[ResultColumn]:
    raw = (manifest.get("schema") or {}).get("columns") or []
    ordered = sorted(
        (c for c in raw if isinstance(c, dict)), key=lambda c: _int(c.get("position")) or 0
    )
    return [
        ResultColumn(
            name=str(c.get("name") or f"col{i}"),
            type_name=str(c.get("type_name") or "STRING"),
            type_text=c.get("type_text"),
        )
        for i, c in enumerate(ordered)
    ]


def build_answer(
    view: MessageView,
    *,
    question: str,
    result: QueryResult | None,
    timings: Timings,
    status: str | None = None,
) -> GenieAnswer:
    """The :class:`GenieAnswer` for a finished message and its (optional) result.

    ``text`` is Genie's text answer; for a clarification (no other text), its question.

    Example:
        >>> view = parse_message({"message_id": "m", "conversation_id": "c", "space_id": "s",
        ...     "content": "q", "status": "COMPLETED", "attachments": [{"attachment_id": "t",
        ...     "text": {"content": "Which year?", "purpose": "FOLLOW_UP_QUESTION"}}]})
        >>> a = build_answer(view, question="q", result=None, timings=Timings())
        >>> a.is_clarification, a.text, a.clarification_question
        (True, 'Which year?', 'Which year?')
    """
    q = view.query
    # A clarification is Genie's whole answer: it is the text too, as in Genie's UI.
    text = "\n\n".join(view.texts) or view.clarification
    return GenieAnswer(
        question=question,
        status=status or view.status,
        text=text or None,
        is_clarification=view.clarification is not None,
        clarification_question=view.clarification,
        sql=q.sql if q else None,
        title=q.title if q else None,
        description=q.description if q else None,
        suggested_questions=view.suggested_questions,
        result=result,
        space_id=view.space_id,
        conversation_id=view.conversation_id,
        message_id=view.message_id,
        attachment_id=q.attachment_id if q else None,
        timings=timings,
    )


def parse_space(body: dict[str, Any]) -> SpaceInfo:
    """A ``GenieSpace`` body as :class:`SpaceInfo`.

    Tables, columns, sample questions and instructions come from ``serialized_space``
    when the body has it.

    Example:
        >>> parse_space({"space_id": "s", "title": "Sales"}).detailed
        False
    """
    info: dict[str, Any] = {
        "space_id": body.get("space_id") or "",
        "title": body.get("title") or "",
        "description": body.get("description"),
        "warehouse_id": body.get("warehouse_id"),
    }
    raw = body.get("serialized_space")
    if raw:
        try:
            doc = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            info.update(_serialized_details(doc))
    return SpaceInfo(**info)


def _serialized_details(doc: dict[str, Any]) -> dict[str, Any]:
    tables = []
    for t in (doc.get("data_sources") or {}).get("tables") or []:
        if not isinstance(t, dict) or not t.get("identifier"):
            continue
        columns = [
            ColumnInfo(name=c["column_name"], description=_text(c.get("description")))
            for c in t.get("column_configs") or []
            if isinstance(c, dict) and c.get("column_name")
        ]
        tables.append(
            TableInfo(
                name=t["identifier"], description=_text(t.get("description")), columns=columns
            )
        )
    samples = [
        text
        for q in (doc.get("config") or {}).get("sample_questions") or []
        if isinstance(q, dict) and (text := _text(q.get("question")))
    ]
    instructions = [
        text
        for i in (doc.get("instructions") or {}).get("text_instructions") or []
        if isinstance(i, dict) and (text := _text(i.get("content")))
    ]
    return {
        "tables": tables,
        "sample_questions": samples,
        "instructions": "\n\n".join(instructions) or None,
        "detailed": True,
    }


def _text(value: Any) -> str | None:
    # serialized_space keeps text as lists of lines; older layouts use plain strings.
    if isinstance(value, list):
        value = "".join(str(v) for v in value)
    return str(value) if value else None


def error_fields(body: Any) -> tuple[str | None, str | None]:
    """``(error_code, message)`` of a Databricks error body (either may be None)."""
    if isinstance(body, dict):
        return body.get("error_code") or body.get("error"), body.get("message") or body.get(
            "error_description"
        )
    return None, None


def parse_retry_after(value: str | None, *, now: dt.datetime | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date).

    Example:
        >>> parse_retry_after("7"), parse_retry_after(None), parse_retry_after("soon")
        (7.0, None, None)
    """
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    now = now or dt.datetime.now(dt.UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - now).total_seconds())


def ms_to_datetime(ms: int | None) -> dt.datetime | None:
    """An epoch-milliseconds timestamp as an aware UTC datetime."""
    return None if ms is None else dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


def _int(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None
