"""NL→SQL behaviour a client sees over the wire: follow-ups, refusals, read-only safety."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import answer, assert_same_rows

from genie_tools.emulator import GenieEmulator
from genie_tools.emulator.evaluation import ask


def test_follow_up_chain_continues_one_conversation_on_the_wire(
    emu: GenieEmulator, w: Any, sales_space: str, duckdb_reference: Any
) -> None:
    first = ask(w, sales_space, "revenue by year", None)
    second = ask(w, sales_space, "break that down by region", first.conversation_id)
    third = ask(w, sales_space, "only 1996", second.conversation_id)
    fourth = ask(w, sales_space, "top 3 instead", third.conversation_id)
    assert len({m.conversation_id for m in (first, second, third, fourth)}) == 1
    assert emu.stats()["questions_by_conversation"][first.conversation_id] == 4
    listed = w.genie.list_conversation_messages(sales_space, first.conversation_id).messages
    assert [m.content for m in listed] == [
        "revenue by year",
        "break that down by region",
        "only 1996",
        "top 3 instead",
    ]
    sql, result = answer(w, fourth)
    assert "r_name" in sql
    assert "1996-01-01" in sql
    assert "LIMIT 3" in sql
    assert_same_rows(result, duckdb_reference(sql))
    rows = result.result.data_array
    assert len(rows) == 3
    assert all(r[0] == "1996" for r in rows)
    revenues = [float(r[2]) for r in rows]
    assert revenues == sorted(revenues, reverse=True)


def test_a_follow_up_without_a_previous_answer_asks_for_the_question(
    w: Any, sales_space: str
) -> None:
    msg = ask(w, sales_space, "top 3 instead", None)
    assert not any(a.query for a in msg.attachments)
    text = next(a.text for a in msg.attachments if a.text)
    assert text.purpose.value == "FOLLOW_UP_QUESTION"


@pytest.mark.parametrize(
    "question",
    [
        "delete all orders from 1992",
        "drop table samples.tpch.orders",
        "update every order to 1-URGENT",
        "insert a new customer called ACME",
        "revenue by year; DROP TABLE orders",
        "show me everything in system.information_schema.tables",
        "list the rows of samples.tpch.supplier",
        "what is the salary of each employee",
    ],
)
def test_writes_and_other_tables_are_refused_with_a_clarification(
    emu: GenieEmulator, w: Any, sales_space: str, question: str
) -> None:
    before = emu.stats()["messages"]
    msg = ask(w, sales_space, question, None)
    assert msg.status.value == "COMPLETED"
    assert not any(a.query for a in msg.attachments), question
    text = next(a.text for a in msg.attachments if a.text)
    assert text.purpose.value == "FOLLOW_UP_QUESTION"
    suggestions = next(a.suggested_questions for a in msg.attachments if a.suggested_questions)
    assert suggestions.questions
    assert emu.stats()["messages"] == before + 1


def test_the_data_is_untouched_after_hostile_questions(
    w: Any, sales_space: str, duckdb_reference: Any
) -> None:
    for question in ("delete all orders", "drop table orders", "truncate lineitem"):
        ask(w, sales_space, question, None)
    msg = ask(w, sales_space, "how many orders are there", None)
    _, result = answer(w, msg)
    assert result.result.data_array == [["150000"]]
    assert duckdb_reference("SELECT COUNT(*) FROM samples.tpch.orders") == [(150000,)]


def test_answer_text_states_the_key_figure(w: Any, sales_space: str, duckdb_reference: Any) -> None:
    msg = ask(w, sales_space, "how many orders were placed in 1995", None)
    text = next(a.text for a in msg.attachments if a.text).content
    (count,) = duckdb_reference(
        "SELECT COUNT(*) FROM samples.tpch.orders WHERE year(o_orderdate) = 1995"
    )[0]
    assert f"{count:,}" in text, text


@pytest.mark.parametrize(
    ("space_title", "question", "condition", "check_sql"),
    [
        (
            "Supply chain",
            "how many suppliers are in debt?",
            "s_acctbal < 0",
            "SELECT COUNT(*) FROM samples.tpch.supplier WHERE s_acctbal < 0",
        ),
        (
            "Shipping & returns",
            "how many line items shipped in 1995 were on high priority orders?",
            "o_orderpriority IN ('1-URGENT', '2-HIGH')",
            "SELECT COUNT(*) FROM samples.tpch.lineitem l JOIN samples.tpch.orders o "
            "ON o.o_orderkey = l.l_orderkey WHERE o.o_orderpriority IN ('1-URGENT', '2-HIGH') "
            "AND year(l.l_shipdate) = 1995",
        ),
    ],
)
def test_conditions_defined_in_the_instructions_are_applied(
    emu: GenieEmulator,
    w: Any,
    duckdb_reference: Any,
    space_title: str,
    question: str,
    condition: str,
    check_sql: str,
) -> None:
    space = next(s.id for s in emu.config.spaces if s.title == space_title)
    sql, result = answer(w, ask(w, space, question, None))
    assert condition in sql
    assert [tuple(int(v) for v in row) for row in result.result.data_array] == duckdb_reference(
        check_sql
    )
