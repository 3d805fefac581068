"""Genie's answers as compact markdown for a language model, within a token budget.

A model reads Genie's answer text, the SQL (so it can say how a number was computed),
as many result rows as the budget allows, and explicit notes about anything left out:
rows beyond the budget (with the call that pages through them) and Genie's own
5,000-row cap. A clarification is shown as the question Genie asks back.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from genie_tools.models import GenieAnswer, QueryResult
from genie_tools.values import format_value

__all__ = ["DEFAULT_TOKEN_BUDGET", "answer_content", "approx_tokens", "page_content"]

DEFAULT_TOKEN_BUDGET = 2_000
TokenCounter = Callable[[str], int]


def approx_tokens(text: str) -> int:
    """A cheap token estimate (about four characters per token for English and tables).

    Example:
        >>> approx_tokens("twelve chars")
        3
    """
    return math.ceil(len(text) / 4)


def answer_content(
    answer: GenieAnswer,
    *,
    space_name: str,
    token_budget: int = DEFAULT_TOKEN_BUDGET,
    count_tokens: TokenCounter = approx_tokens,
) -> str:
    """The answer as markdown for a model, at most ``token_budget`` tokens where possible.

    Example:
        >>> a = GenieAnswer(question="q", text="There are 42 orders.", space_id="s",
        ...                 conversation_id="c", message_id="m1")
        >>> print(answer_content(a, space_name="Sales"))
        Genie (Sales): There are 42 orders.
        <BLANKLINE>
        message_id: m1
    """
    if answer.is_clarification:
        return _clarification(answer, space_name)
    head = [f"Genie ({space_name}): {(answer.text or 'Answered.').strip()}"]
    if answer.sql:
        head.append(f"SQL:\n```sql\n{answer.sql.strip()}\n```")
    tail = []
    if answer.suggested_questions:
        tail.append(
            "Suggested follow-ups:\n" + "\n".join(f"- {q}" for q in answer.suggested_questions)
        )
    tail.append(f"message_id: {answer.message_id}")
    result = answer.result
    if result is None or not result.columns:
        return "\n\n".join(head + tail)

    def render(rows: int) -> str:
        table = _table(result, 0, rows, answer.message_id, page_size=max(rows, 1))
        return "\n\n".join([*head, _result_line(result), table, *tail])

    rows = _fit(lambda n: count_tokens(render(n)), token_budget, result.row_count)
    return render(rows)


def page_content(
    result: QueryResult,
    *,
    message_id: str,
    page: int,
    page_size: int,
    token_budget: int = DEFAULT_TOKEN_BUDGET,
    count_tokens: TokenCounter = approx_tokens,
) -> str:
    """One page of an earlier answer's rows, as markdown within the budget.

    Example:
        >>> from genie_tools.models import ResultColumn
        >>> r = QueryResult(columns=[ResultColumn(name="n", type_name="INT")],
        ...                 rows=[[i] for i in range(5)])
        >>> print(page_content(r, message_id="m1", page=2, page_size=2))
        Rows 3-4 of 5.
        <BLANKLINE>
        | n |
        | --- |
        | 2 |
        | 3 |
        <BLANKLINE>
        _More rows: get_genie_query_result(message_id="m1", page=3, page_size=2)._
    """
    start = (page - 1) * page_size
    if start >= result.row_count and result.row_count:
        last = math.ceil(result.row_count / page_size)
        return (
            f"Page {page} is past the end: the result has {result.row_count:,} rows ({last} pages)."
        )

    def render(rows: int) -> str:
        shown = f"Rows {start + 1}-{start + rows} of {result.row_count:,}."
        if result.truncated:
            shown += " Genie capped the result at this many rows; more rows exist."
        return "\n\n".join([shown, _table(result, start, rows, message_id, page_size)])

    rows = _fit(
        lambda n: count_tokens(render(n)), token_budget, min(page_size, result.row_count - start)
    )
    return render(rows)


def _fit(size: Callable[[int], int], budget: int, most: int) -> int:
    """The most rows (at least one, when there are any) whose rendering fits the budget."""
    if most <= 0:
        return 0
    low, high = 1, most
    if size(high) <= budget:
        return high
    while low < high:  # binary search: rendering is monotonic in the number of rows
        mid = (low + high + 1) // 2
        if size(mid) <= budget:
            low = mid
        else:
            high = mid - 1
    return low


def _result_line(result: QueryResult) -> str:
    if result.truncated:
        return (
            f"Result: the first {result.row_count:,} rows (Genie's 5,000-row cap: the full "
            "result is larger, so totals over these rows would be wrong; ask Genie to "
            "aggregate instead)."
        )
    return f"Result: {result.row_count:,} row{'s' if result.row_count != 1 else ''}."


def _table(result: QueryResult, start: int, rows: int, message_id: str, page_size: int) -> str:
    lines = [
        "| " + " | ".join(_cell(c.name) for c in result.columns) + " |",
        "| " + " | ".join("---" for _ in result.columns) + " |",
    ]
    for row in result.rows[start : start + rows]:
        lines.append("| " + " | ".join(_cell(format_value(v)) for v in row) + " |")
    end = start + rows
    if end < result.row_count:
        call = _next_call(message_id, end, page_size if rows == page_size else rows)
        lines.append("")
        if start == 0:
            lines.append(f"_{result.row_count - end:,} more rows not shown; next: {call}._")
        else:
            lines.append(f"_More rows: {call}._")
    return "\n".join(lines)


def _next_call(message_id: str, end: int, size: int) -> str:
    """The ``get_genie_query_result`` call whose page starts right after row ``end``."""
    size = next(d for d in range(max(size, 1), 0, -1) if end % d == 0)
    page = end // size + 1
    return f'get_genie_query_result(message_id="{message_id}", page={page}, page_size={size})'


def _clarification(answer: GenieAnswer, space_name: str) -> str:
    question = (answer.clarification_question or answer.text or "").strip()
    parts = [f"Genie ({space_name}) needs clarification: {question}"]
    if answer.suggested_questions:
        parts.append(
            "Questions Genie can answer:\n"
            + "\n".join(f"- {q}" for q in answer.suggested_questions)
        )
    parts.append("Ask again with a more specific question (the conversation continues).")
    parts.append(f"message_id: {answer.message_id}")
    return "\n\n".join(parts)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\r", " ").replace("\n", " ")
