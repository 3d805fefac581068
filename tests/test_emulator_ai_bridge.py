"""Databricks' own Genie client (databricks-ai-bridge) answers questions end to end on the emulator.

``databricks_ai_bridge.genie.Genie`` speaks raw REST through the SDK's ``ApiClient``: it starts
a conversation, polls the message, then polls the query attachment's result and renders it as a
markdown table. The figures in that table must be DuckDB's.
"""

from __future__ import annotations

import decimal
import time
from typing import Any

import pytest
from databricks.sdk import WorkspaceClient

from genie_tools.emulator import GenieEmulator
from genie_tools.emulator.spaces import default_spaces_path, load_spaces

SPACES = {s.title: s for s in load_spaces(default_spaces_path())}
SALES = SPACES["Sales & revenue"]
SHIPPING = SPACES["Shipping & returns"]


def example(space: Any, question: str) -> Any:
    return next(e for e in space.example_sqls if e.question == question)


REVENUE_BY_YEAR = example(SALES, "What was total revenue by year?")
ORDERS_1996 = example(SALES, "How many orders were placed in 1996?")
SHIP_MODES = example(SHIPPING, "How many line items were shipped with each ship mode?")


@pytest.fixture
def genie_class(monkeypatch: pytest.MonkeyPatch) -> Any:
    # Imported here, after conftest has pointed MLflow at a temporary tracking folder
    # (file:// URI). MLflow 3.17 refuses file stores unless explicitly allowed.
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    from databricks_ai_bridge.genie import Genie

    return Genie


def markdown_rows(table: str) -> list[list[str]]:
    """The body cells of a ``DataFrame.to_markdown()`` table, without the index column."""
    lines = [line.strip() for line in table.strip().splitlines()]
    assert len(lines) >= 2, table
    assert set(lines[1]) <= set("|:- "), f"no header separator in {table!r}"
    rows = []
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows.append(cells[1:])  # drop the pandas index
    return rows


def markdown_header(table: str) -> list[str]:
    first = table.strip().splitlines()[0]
    return [c.strip() for c in first.strip().strip("|").split("|")][1:]


def same_value(cell: str, want: Any) -> bool:
    if isinstance(want, (int, float, decimal.Decimal)) and not isinstance(want, bool):
        return abs(decimal.Decimal(cell) - decimal.Decimal(str(want))) <= decimal.Decimal("1e-6")
    return cell == str(want)


def assert_table_is(table: str, expected: list[tuple[Any, ...]]) -> None:
    rows = markdown_rows(table)
    assert len(rows) == len(expected), table
    for got, want in zip(rows, expected, strict=True):
        assert len(got) == len(want), (got, want)
        assert all(same_value(c, v) for c, v in zip(got, want, strict=True)), (got, want)


def attachment_sql(w: WorkspaceClient, space_id: str, conversation_id: str) -> list[Any]:
    """The query attachments of a conversation's messages, oldest first."""
    messages = w.genie.list_conversation_messages(space_id, conversation_id).messages
    return [a.query for m in messages for a in m.attachments or [] if a.query is not None]


def test_ask_question_end_to_end_with_follow_up(
    emu: GenieEmulator, w: WorkspaceClient, genie_class: Any, duckdb_reference: Any
) -> None:
    started = time.monotonic()
    genie = genie_class(SALES.id, client=emu.workspace_client())
    assert genie.description == SALES.description

    first = genie.ask_question(REVENUE_BY_YEAR.question)
    assert isinstance(first.result, str)
    assert first.conversation_id
    expected = duckdb_reference(REVENUE_BY_YEAR.sql)
    assert len(expected) == 7
    assert markdown_header(first.result) == ["order_year", "revenue"]
    assert_table_is(first.result, expected)
    # The raw figures appear as Genie sent them (DECIMAL cells are kept as strings).
    for year, revenue in expected:
        assert str(year) in first.result
        assert format(revenue, "f") in first.result
    queries = attachment_sql(w, SALES.id, first.conversation_id)
    assert len(queries) == 1
    assert first.query == queries[0].query == REVENUE_BY_YEAR.sql.strip()
    assert first.description == queries[0].description
    assert first.suggested_questions
    assert set(first.suggested_questions) <= set(SALES.sample_questions)
    assert first.text_attachment_content

    second = genie.ask_question(ORDERS_1996.question, conversation_id=first.conversation_id)
    assert second.conversation_id == first.conversation_id
    (count,) = duckdb_reference(ORDERS_1996.sql)[0]
    assert_table_is(second.result, [(count,)])
    assert str(count) in second.result
    queries = attachment_sql(w, SALES.id, first.conversation_id)
    assert [q.query for q in queries] == [REVENUE_BY_YEAR.sql.strip(), ORDERS_1996.sql.strip()]
    assert second.query == ORDERS_1996.sql.strip()
    assert emu.stats()["questions_by_conversation"][first.conversation_id] == 2
    assert time.monotonic() - started < 20


def test_ask_question_with_pandas_result(
    emu: GenieEmulator, genie_class: Any, duckdb_reference: Any
) -> None:
    genie = genie_class(SHIPPING.id, client=emu.workspace_client(), return_pandas=True)
    response = genie.ask_question(SHIP_MODES.question)
    frame = response.result
    assert list(frame.columns) == ["ship_mode", "line_items_shipped"]
    expected = duckdb_reference(SHIP_MODES.sql)
    assert sorted(map(tuple, frame.itertuples(index=False))) == sorted(expected)
    assert response.query == SHIP_MODES.sql.strip()


def test_ask_question_gets_a_clarification(emu: GenieEmulator, genie_class: Any) -> None:
    genie = genie_class(SALES.id, client=emu.workspace_client())
    response = genie.ask_question("Can you write me a poem about the sea?")
    assert response.conversation_id
    assert not response.query
    assert response.result == response.text_attachment_content
    assert "rephrase" in response.result
    assert response.suggested_questions
    assert set(response.suggested_questions) <= set(SALES.sample_questions)
