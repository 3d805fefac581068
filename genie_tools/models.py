"""What the client hands back: answers, results, references, progress and spaces.

Everything here is a pydantic model that survives ``model_dump_json()`` /
``model_validate_json()`` and LangGraph checkpoint serializers unchanged: rows keep
their types (``Decimal``, ``date``, ``datetime``…) because :class:`QueryResult`
re-types them from its columns whenever it is validated.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from genie_tools._optional import require
from genie_tools.ids import check_id, check_optional_id
from genie_tools.values import format_value, parse_value

if TYPE_CHECKING:
    from genie_tools.errors import GenieError

__all__ = [
    "AskOutcome",
    "ColumnInfo",
    "GenieAnswer",
    "MessageRef",
    "ProgressEvent",
    "QueryResult",
    "ResultColumn",
    "SpaceInfo",
    "TableInfo",
    "Timings",
]

TERMINAL_STATUSES = frozenset({"COMPLETED", "FAILED", "CANCELLED", "QUERY_RESULT_EXPIRED"})


class _Model(BaseModel):
    # Frozen: answers are values (cached, checkpointed, shared between tasks).
    model_config = ConfigDict(frozen=True, extra="ignore", ser_json_inf_nan="strings")


class ResultColumn(_Model):
    """One result column: its name and Genie's types (e.g. ``DECIMAL``, ``DECIMAL(18,2)``)."""

    name: str
    type_name: str = "STRING"
    type_text: str | None = None


class QueryResult(_Model):
    """A query result with typed values.

    Attributes:
        columns: Column names and types, in order.
        rows: Values typed from the manifest (``int``, ``Decimal``, ``float``, ``date``,
            ``datetime``, ``bool``, ``str``; ``None`` for nulls).
        row_count: Rows carried here (``len(rows)``).
        truncated: True when Genie cut the result (at 5,000 rows): more rows exist;
            ``download_full_result()`` fetches them.
        statement_id: The SQL statement that produced the rows.
        reexecuted: True when the result had expired and was re-run for this answer.

    Example:
        >>> r = QueryResult(
        ...     columns=[ResultColumn(name="year", type_name="INT"),
        ...              ResultColumn(name="revenue", type_name="DECIMAL")],
        ...     rows=[["1995", "10.50"], ["1996", None]],
        ... )
        >>> r.rows[0], r.row_count
        ([1995, Decimal('10.50')], 2)
        >>> print(r.to_markdown())
        | year | revenue |
        | --- | --- |
        | 1995 | 10.50 |
        | 1996 | null |
    """

    columns: list[ResultColumn]
    rows: list[list[Any]] = Field(default_factory=list)
    row_count: int = 0
    truncated: bool = False
    statement_id: str | None = None
    reexecuted: bool = False

    @model_validator(mode="before")
    @classmethod
    def _type_rows(cls, data: Any) -> Any:
        # Rows arrive as wire strings (from Genie or from JSON) or typed (from Python,
        # from msgpack); parse_value is idempotent, so both end up typed.
        if not isinstance(data, dict):
            return data
        columns = [
            c if isinstance(c, ResultColumn) else ResultColumn.model_validate(c)
            for c in data.get("columns") or []
        ]
        kinds = [c.type_name for c in columns]
        rows = [
            [parse_value(v, kinds[i] if i < len(kinds) else None) for i, v in enumerate(row)]
            for row in data.get("rows") or []
        ]
        return {**data, "columns": columns, "rows": rows, "row_count": len(rows)}

    @property
    def column_names(self) -> list[str]:
        """The column names, in order."""
        return [c.name for c in self.columns]

    def to_records(self) -> list[dict[str, Any]]:
        """The rows as dictionaries keyed by column name.

        Example:
            >>> QueryResult(columns=[ResultColumn(name="n", type_name="LONG")],
            ...             rows=[["3"]]).to_records()
            [{'n': 3}]
        """
        names = self.column_names
        return [dict(zip(names, row, strict=False)) for row in self.rows]

    def to_pandas(self) -> Any:
        """The rows as a ``pandas.DataFrame`` (needs the optional ``pandas`` package).

        Raises:
            MissingExtraError: pandas is not installed.
        """
        pd = require("pandas", extra="pandas", purpose="QueryResult.to_pandas()")
        return pd.DataFrame(self.rows, columns=self.column_names)

    def to_markdown(self, *, max_rows: int | None = 20, max_chars: int | None = None) -> str:
        """A markdown table, cut to ``max_rows`` rows and ``max_chars`` characters.

        Whenever rows are left out, a last line says how many and why, so a reader
        (person or model) never takes a partial table for the whole answer.

        Args:
            max_rows: Most rows to show (``None``: all).
            max_chars: Most characters for the table (``None``: no limit); whole rows are
                dropped to fit, the header always stays.

        Returns:
            The table and, if anything was left out, an explicit note.
        """
        header = "| " + " | ".join(_cell(n) for n in self.column_names) + " |"
        lines = [header, "| " + " | ".join("---" for _ in self.columns) + " |"]
        used = len(header) + len(lines[1]) + 2
        shown = 0
        for row in self.rows:
            if max_rows is not None and shown >= max_rows:
                break
            line = "| " + " | ".join(_cell(format_value(v)) for v in row) + " |"
            if max_chars is not None and used + len(line) + 1 > max_chars:
                break
            lines.append(line)
            used += len(line) + 1
            shown += 1
        notes = []
        if shown < self.row_count:
            notes.append(f"showing {shown:,} of {self.row_count:,} rows")
        if self.truncated:
            notes.append(
                f"Genie truncated the result at {self.row_count:,} rows, more rows exist "
                "(download_full_result() fetches them all)"
            )
        if notes:
            lines.append("")
            lines.append("_Note: " + "; ".join(notes) + "._")
        return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\r", " ").replace("\n", " ")


class MessageRef(_Model):
    """Where a submitted question lives; enough to wait for it again, even elsewhere.

    Store it (e.g. in a LangGraph checkpoint) between ``submit()`` and ``wait()`` so that
    a restart resumes polling the same message instead of asking again. Its ids go into
    URLs, so each must be a Genie id (:func:`genie_tools.ids.check_id`), also when read
    back from storage: a malformed one fails validation.

    Example:
        >>> MessageRef(space_id="s1", conversation_id="c1", message_id="m1").message_id
        'm1'
        >>> MessageRef(space_id="s1", conversation_id="../x", message_id="m1")
        Traceback (most recent call last):
        ...
        pydantic_core._pydantic_core.ValidationError: 1 validation error for MessageRef
        ...
    """

    space_id: str
    conversation_id: str
    message_id: str
    question: str | None = None
    submitted_at: dt.datetime | None = None
    attachment_id: str | None = None

    @field_validator("space_id", "conversation_id", "message_id", mode="before")
    @classmethod
    def _check_ids(cls, value: Any, info: Any) -> str:
        return check_id(value, kind=info.field_name.removesuffix("_id"))

    @field_validator("attachment_id", mode="before")
    @classmethod
    def _check_attachment(cls, value: Any) -> str | None:
        return check_optional_id(value, kind="attachment")


class Timings(_Model):
    """How long an answer took and what it cost in requests.

    Attributes:
        submitted_at: When Genie created the message (server clock).
        completed_at: When Genie finished it (its last update, server clock).
        returned_at: When this client had the whole answer (local clock).
        elapsed_seconds: Local time from the question being accepted to the answer.
        polls: ``get_message`` polls made while waiting.
        requests: HTTP requests made for this answer (polls, result, retries…).
        retries: Requests repeated after a transient failure.
        rate_limit_wait_seconds: Time spent waiting for the question budget.
    """

    submitted_at: dt.datetime | None = None
    completed_at: dt.datetime | None = None
    returned_at: dt.datetime | None = None
    elapsed_seconds: float = 0.0
    polls: int = 0
    requests: int = 0
    retries: int = 0
    rate_limit_wait_seconds: float = 0.0


class GenieAnswer(_Model):
    """Genie's answer to one question.

    Attributes:
        question: The question as asked.
        status: The message's final status (``COMPLETED``; a re-run expired result is
            ``COMPLETED`` again).
        text: Genie's text answer or summary.
        is_clarification: True when Genie asks a question back instead of answering.
        clarification_question: That question.
        sql: The SQL Genie ran, if any.
        title: The query's title.
        description: Genie's description of the query.
        suggested_questions: Follow-up questions Genie suggests.
        result: The typed query result, if Genie ran SQL.
        space_id: The space.
        conversation_id: The conversation: pass it to ``ask()`` to follow up.
        message_id: The message.
        attachment_id: The query attachment, if any.
        timings: Timings and request counts.
        from_cache: True when served from the client's answer cache.
    """

    question: str
    status: str = "COMPLETED"
    text: str | None = None
    is_clarification: bool = False
    clarification_question: str | None = None
    sql: str | None = None
    title: str | None = None
    description: str | None = None
    suggested_questions: list[str] = Field(default_factory=list)
    result: QueryResult | None = None
    space_id: str
    conversation_id: str
    message_id: str
    attachment_id: str | None = None
    timings: Timings = Field(default_factory=Timings)
    from_cache: bool = False

    @property
    def ref(self) -> MessageRef:
        """A :class:`MessageRef` to this answer's message."""
        return MessageRef(
            space_id=self.space_id,
            conversation_id=self.conversation_id,
            message_id=self.message_id,
            question=self.question,
            submitted_at=self.timings.submitted_at,
            attachment_id=self.attachment_id,
        )

    def to_markdown(self, *, max_rows: int | None = 20, max_chars: int | None = None) -> str:
        """The answer for a reader: text, clarification, SQL and a (cut) result table.

        Example:
            >>> a = GenieAnswer(question="q", text="42 orders.", space_id="s",
            ...                 conversation_id="c", message_id="m")
            >>> a.to_markdown()
            '42 orders.'
        """
        parts = []
        if self.is_clarification:
            parts.append(self.clarification_question or self.text or "")
        elif self.text:
            parts.append(self.text)
        if self.sql:
            parts.append(f"```sql\n{self.sql.strip()}\n```")
        if self.result is not None:
            parts.append(self.result.to_markdown(max_rows=max_rows, max_chars=max_chars))
        if self.suggested_questions and self.is_clarification:
            parts.append(
                "Suggested questions:\n" + "\n".join(f"- {q}" for q in self.suggested_questions)
            )
        return "\n\n".join(p for p in parts if p)


ProgressKind = Literal[
    "rate_limit",
    "submitted",
    "recovered",
    "status",
    "stall",
    "retry",
    "answer",
    "conversation_gone",
]


class ProgressEvent(_Model):
    """Something that happened while a question was being answered.

    ``iter_progress()`` yields one event per status change (``kind="status"``), events
    for waits and retries, and always ends with ``kind="answer"`` carrying the answer.

    Attributes:
        kind: ``rate_limit`` (waiting for the question budget), ``submitted``,
            ``recovered`` (an ambiguous submit was found by listing), ``status``,
            ``stall`` (status unchanged for ``stall_seconds``), ``retry``, ``answer``,
            ``conversation_gone`` (a stored conversation was deleted or expired: the
            question goes to a new one).
        elapsed_seconds: Seconds since the operation started.
        status: The message status, for ``status`` and ``stall`` events.
        ref: The message, once submitted.
        wait_seconds: How long the client waits, for ``rate_limit`` and ``retry``.
        detail: A short human-readable description.
        answer: The answer, on the final ``answer`` event.
    """

    kind: ProgressKind
    elapsed_seconds: float = 0.0
    status: str | None = None
    ref: MessageRef | None = None
    wait_seconds: float | None = None
    detail: str = ""
    answer: GenieAnswer | None = None


class ColumnInfo(_Model):
    """A column of a space's table, with its comment."""

    name: str
    description: str | None = None


class TableInfo(_Model):
    """A table of a space (``catalog.schema.table``) and its columns."""

    name: str
    description: str | None = None
    columns: list[ColumnInfo] = Field(default_factory=list)


class SpaceInfo(_Model):
    """A Genie space: what it is about and what it can answer.

    ``tables``, ``sample_questions`` and ``instructions`` come from the space's
    ``serialized_space``, which Genie only returns to principals with CAN EDIT;
    ``detailed`` says whether they were available.
    """

    space_id: str
    title: str
    description: str | None = None
    warehouse_id: str | None = None
    tables: list[TableInfo] = Field(default_factory=list)
    sample_questions: list[str] = Field(default_factory=list)
    instructions: str | None = None
    detailed: bool = False

    def to_markdown(self) -> str:
        """A short description for a tool or a prompt.

        Example:
            >>> print(SpaceInfo(space_id="s", title="Sales", description="Revenue.").to_markdown())
            **Sales**: Revenue.
        """
        lines = [f"**{self.title}**" + (f": {self.description}" if self.description else "")]
        if self.tables:
            lines.append("Tables: " + ", ".join(t.name for t in self.tables))
        if self.sample_questions:
            lines.append("Sample questions:")
            lines.extend(f"- {q}" for q in self.sample_questions)
        return "\n".join(lines)


@dataclass(frozen=True)
class AskOutcome:
    """One item of ``ask_many()``: the question and its answer or its error."""

    question: str
    answer: GenieAnswer | None = None
    error: GenieError | None = None

    @property
    def ok(self) -> bool:
        """True when the question was answered."""
        return self.answer is not None
