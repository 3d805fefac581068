"""GenieClient / AsyncGenieClient against the emulator: answers, conversations, results, spaces.

Every test runs twice (``mode``: sync, async). Values are checked against DuckDB running
Genie's SQL on the same TPC-H data, and question counts against the emulator's counters.
"""

from __future__ import annotations

import datetime as dt
import decimal
import itertools
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from conftest import space_id
from test_client_harness import OTHER_QUESTION, QUESTION, Harness, make_client, mode, same_rows

from genie_tools import (
    BadRequestError,
    ConfigurationError,
    GenieAnswer,
    MessageRef,
    NotFoundError,
    QueryResult,
)
from genie_tools.emulator import GenieEmulator
from genie_tools.emulator.spaces import default_spaces_path, load_spaces

__all__ = ["make_client", "mode"]  # fixtures imported for pytest

MakeClient = Callable[..., Harness]
Reference = Callable[[str], list[tuple[Any, ...]]]

SPACES = load_spaces(default_spaces_path())
SHIPPING = next(s for s in SPACES if s.title == "Shipping & returns")
# 113,200 rows on TPC-H SF 0.1: far over Genie's 5,000-row cap (see test_emulator_wire.py).
BIG_QUESTION = (
    "List every line item shipped before June 1993 with its order key, line number, "
    "ship date and price."
)
BIG_SQL = """
SELECT l.l_orderkey AS order_key,
       l.l_linenumber AS line_number,
       l.l_shipdate AS ship_date,
       l.l_extendedprice AS extended_price
FROM samples.tpch.lineitem l
WHERE l.l_shipdate < DATE '1993-06-01'
ORDER BY order_key, line_number
"""


def _big_config() -> dict[str, Any]:
    spaces = [s.model_dump() for s in SPACES]
    for s in spaces:
        if s["id"] == SHIPPING.id:
            s["example_sqls"].append({"question": BIG_QUESTION, "sql": BIG_SQL})
    return {"spaces": spaces}


def _questions_by_conversation(emu: GenieEmulator) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for m in emu.messages():
        out.setdefault(m.conversation_id, []).append(m.content)
    return out


def test_ask_returns_typed_rows_equal_to_duckdb(
    make_client: MakeClient, emu: GenieEmulator, sales_space: str, duckdb_reference: Reference
) -> None:
    genie = make_client(emu, space_id=sales_space)
    answer = genie.ask(QUESTION)

    assert answer.status == "COMPLETED"
    assert answer.space_id == sales_space
    assert answer.sql is not None
    assert "samples.tpch" in answer.sql
    assert answer.result is not None
    assert [c.name for c in answer.result.columns] == ["order_year", "revenue"]
    assert [c.type_name for c in answer.result.columns] == ["LONG", "DECIMAL"]
    assert all(
        isinstance(r[0], int) and isinstance(r[1], decimal.Decimal) for r in answer.result.rows
    )
    assert same_rows(answer.result.rows, duckdb_reference(answer.sql))
    assert answer.result.row_count == 7
    assert answer.result.truncated is False
    assert answer.text
    assert "3,124,626,834.64" in answer.text  # the 1992 figure, as Genie's summary words it
    assert answer.suggested_questions
    assert answer.is_clarification is False
    info = next(m for m in emu.messages() if m.message_id == answer.message_id)
    assert info.content == QUESTION
    assert info.sql == answer.sql
    assert answer.attachment_id
    assert answer.timings.polls == emu.stats()["polls_by_message"][answer.message_id]
    assert answer.timings.submitted_at is not None
    assert answer.timings.completed_at is not None
    assert answer.timings.returned_at is not None
    assert answer.timings.returned_at >= answer.timings.completed_at


def test_follow_ups_continue_the_conversation(
    make_client: MakeClient, emu: GenieEmulator, sales_space: str, duckdb_reference: Reference
) -> None:
    genie = make_client(emu, space_id=sales_space)
    first = genie.ask(QUESTION)
    second = genie.ask("only 1996", conversation_id=first.conversation_id)
    third = genie.ask("break that down by region", conversation_id=first.conversation_id)

    assert second.conversation_id == third.conversation_id == first.conversation_id
    assert _questions_by_conversation(emu)[first.conversation_id] == [
        QUESTION,
        "only 1996",
        "break that down by region",
    ]
    assert emu.stats()["questions_by_conversation"][first.conversation_id] == 3
    assert second.sql is not None
    assert "1996" in second.sql
    assert second.result is not None
    assert len(second.result.rows) == 1
    assert second.result.rows[0][0] == 1996
    assert same_rows(second.result.rows, duckdb_reference(second.sql))
    assert third.result is not None
    assert same_rows(third.result.rows, duckdb_reference(third.sql or ""), ordered=False)
    assert "region" in " ".join(c.name for c in third.result.columns)


def test_clarification_is_flagged(
    make_client: MakeClient, emu: GenieEmulator, sales_space: str
) -> None:
    genie = make_client(emu, space_id=sales_space)
    answer = genie.ask("What is the airspeed velocity of an unladen swallow?")
    assert answer.is_clarification is True
    assert answer.clarification_question
    assert answer.sql is None
    assert answer.result is None
    assert set(answer.suggested_questions) <= set(SPACES[0].sample_questions)
    assert answer.clarification_question in answer.to_markdown()


def test_truncated_result_is_flagged_and_full_download_returns_every_row(
    make_client: MakeClient,
    make_emulator: Callable[..., GenieEmulator],
    duckdb_reference: Reference,
) -> None:
    emu = make_emulator(config=_big_config(), qpm=1000)
    genie = make_client(emu, space_id=SHIPPING.id)
    answer = genie.ask(BIG_QUESTION)
    full = duckdb_reference(BIG_SQL)
    assert len(full) > 100_000

    result = answer.result
    assert result is not None
    assert result.truncated is True
    assert result.row_count == 5_000
    assert [c.type_name for c in result.columns] == ["LONG", "INT", "DATE", "DECIMAL"]
    first = result.rows[0]
    assert isinstance(first[0], int)
    assert isinstance(first[2], dt.date)
    assert isinstance(first[3], decimal.Decimal)
    assert same_rows(result.rows, full[:5_000])
    table = result.to_markdown(max_rows=3)
    assert "showing 3 of 5,000 rows" in table
    assert "truncated the result at 5,000 rows" in table

    everything = genie.download_full_result(answer)
    assert everything.truncated is False
    assert everything.row_count == len(full)
    assert same_rows(everything.rows, full)
    assert emu.stats()["questions"] == 1


def test_progress_stream_follows_the_emulators_status_changes(
    make_client: MakeClient, make_emulator: Callable[..., GenieEmulator]
) -> None:
    emu = make_emulator(speed=1, seed=3, config={"latency": {"total_seconds": 1.5, "jitter": 0}})
    genie = make_client(emu, space_id=space_id(emu))
    events = genie.progress(QUESTION)

    kinds = [e.kind for e in events]
    assert kinds[0] == "submitted"
    assert kinds[-1] == "answer"
    assert events[-1].answer is not None
    answer = events[-1].answer
    seen = [e.status for e in events if e.kind == "status"]
    actual = [e.status for e in emu.events() if e.message_id == answer.message_id]
    assert seen[-1] == "COMPLETED"
    assert seen == [s for s in actual if s in seen]  # in the emulator's order, none invented
    assert len(seen) >= 3  # quick early polls catch the early phases
    assert all(a.elapsed_seconds <= b.elapsed_seconds for a, b in itertools.pairwise(events))
    assert events[0].ref is not None
    assert events[0].ref.message_id == answer.message_id
    # Detection: adaptive polling notices completion soon, with few polls.
    info = next(m for m in emu.messages() if m.message_id == answer.message_id)
    assert info.completed_at is not None
    assert answer.timings.returned_at is not None
    lag = answer.timings.returned_at.timestamp() - info.completed_at
    assert 0 <= lag < 0.3
    assert answer.timings.polls <= 10
    assert answer.timings.polls == info.polls


def test_submit_then_wait_from_a_stored_ref(
    make_client: MakeClient, emu: GenieEmulator, sales_space: str, duckdb_reference: Reference
) -> None:
    genie = make_client(emu, space_id=sales_space)
    before = emu.stats()["questions"]
    ref = genie.submit(OTHER_QUESTION)
    stored = ref.model_dump_json()

    restarted = make_client(emu, space_id=sales_space)  # e.g. after a process restart
    answer = restarted.wait(MessageRef.model_validate_json(stored))
    assert answer.message_id == ref.message_id
    assert answer.question == OTHER_QUESTION
    assert answer.result is not None
    assert same_rows(answer.result.rows, duckdb_reference(answer.sql or ""))
    assert emu.stats()["questions"] == before + 1
    again = restarted.wait(ref)  # waiting twice asks nothing
    assert again.result == answer.result
    assert emu.stats()["questions"] == before + 1


def test_ask_many_returns_per_item_results_and_errors(
    make_client: MakeClient, emu: GenieEmulator, sales_space: str
) -> None:
    genie = make_client(emu, space_id=sales_space)
    before = emu.stats()["questions"]
    outcomes = genie.ask_many([QUESTION, "   ", OTHER_QUESTION, QUESTION], concurrency=3)

    assert [o.question for o in outcomes] == [QUESTION, "   ", OTHER_QUESTION, QUESTION]
    assert [o.ok for o in outcomes] == [True, False, True, True]
    assert isinstance(outcomes[1].error, BadRequestError)
    assert outcomes[2].answer is not None
    assert outcomes[2].answer.result is not None
    assert outcomes[2].answer.result.rows[0][0] > 0
    ids = {o.answer.conversation_id for o in outcomes if o.answer}
    assert len(ids) == 3  # each question its own conversation
    assert emu.stats()["questions"] == before + 3


def test_spaces(make_client: MakeClient, emu: GenieEmulator, sales_space: str) -> None:
    genie = make_client(emu, space_id=sales_space)
    spaces = genie.list_spaces()
    assert [s.title for s in spaces] == [s.title for s in SPACES]
    assert all(not s.detailed for s in spaces)

    info = genie.get_space()
    decl = SPACES[0]
    assert info.detailed is True
    assert info.title == decl.title
    assert info.description == decl.description
    assert [t.name for t in info.tables] == [t.name for t in decl.tables]
    orders = info.tables[0]
    assert [c.name for c in orders.columns] == list(decl.tables[0].columns)
    assert orders.columns[0].description == decl.tables[0].columns["o_orderkey"]
    assert info.sample_questions == decl.sample_questions
    assert info.instructions is not None
    assert "Revenue" in info.instructions
    assert genie.get_space() is info  # cached
    assert genie.get_space(space_id(emu, "Supply chain")).title == "Supply chain"
    with pytest.raises(NotFoundError):
        genie.get_space("0" * 32)


def test_expired_result_is_rerun(
    make_client: MakeClient,
    make_emulator: Callable[..., GenieEmulator],
    duckdb_reference: Reference,
) -> None:
    emu = make_emulator(seed=2, qpm=1000)
    genie = make_client(emu, space_id=space_id(emu))
    emu.inject(kind="expired_result")
    answer = genie.ask(QUESTION)

    assert answer.status == "COMPLETED"
    assert answer.result is not None
    assert answer.result.reexecuted is True
    assert same_rows(answer.result.rows, duckdb_reference(answer.sql or ""))
    assert emu.stats()["faults_fired"] == {"expired_result": 1}
    assert (
        emu.stats()["requests"].get(
            "/api/2.0/genie/spaces/{space_id}/conversations/{conversation_id}/messages/"
            "{message_id}/attachments/{attachment_id}/execute-query"
        )
        == 1
    )
    again = genie.get_result(answer)
    assert again.rows == answer.result.rows
    assert emu.stats()["questions"] == 1


def test_expired_result_without_rerun_raises(
    make_client: MakeClient, make_emulator: Callable[..., GenieEmulator]
) -> None:
    from genie_tools import ResultExpiredError

    emu = make_emulator(seed=2, qpm=1000)
    genie = make_client(emu, space_id=space_id(emu), rerun_expired_results=False)
    emu.inject(kind="expired_result")
    with pytest.raises(ResultExpiredError) as err:
        genie.ask(QUESTION)
    assert err.value.ref is not None
    assert "expired" in str(err.value)


def test_feedback_cancel_and_delete(
    make_client: MakeClient, make_emulator: Callable[..., GenieEmulator]
) -> None:
    emu = make_emulator(seed=4, qpm=1000)
    genie = make_client(emu, space_id=space_id(emu))
    answer = genie.ask(QUESTION)
    genie.send_feedback(answer, "positive", comment="spot on")
    assert emu.service.messages[answer.message_id].feedback == {
        "rating": "POSITIVE",
        "comment": "spot on",
    }
    genie.send_feedback(answer.ref, False)
    assert emu.service.messages[answer.message_id].feedback == {"rating": "NEGATIVE"}
    with pytest.raises(BadRequestError):
        genie.send_feedback(answer, "MEH")

    emu.inject(kind="stuck")
    ref = genie.submit(OTHER_QUESTION)
    genie.cancel(ref)
    assert next(m for m in emu.messages() if m.message_id == ref.message_id).status == "CANCELLED"

    genie.delete_conversation(answer.conversation_id)
    assert answer.conversation_id not in emu.service.conversations
    with pytest.raises(NotFoundError):
        genie.wait(answer.ref, timeout=5)


def test_answer_cache_serves_identical_first_questions_only(
    make_client: MakeClient, make_emulator: Callable[..., GenieEmulator]
) -> None:
    emu = make_emulator(seed=5, qpm=1000)
    genie = make_client(emu, space_id=space_id(emu), cache_ttl_seconds=60)
    first = genie.ask(QUESTION)
    again = genie.ask("  what was TOTAL revenue by year?  ")
    assert again.from_cache is True
    assert first.from_cache is False
    assert again.message_id == first.message_id
    assert again.result == first.result
    genie.ask(QUESTION, conversation_id=first.conversation_id)  # follow-ups always go to Genie
    assert emu.stats()["questions"] == 2
    assert genie.cache is not None
    assert (genie.cache.hits, genie.cache.misses) == (1, 1)


def test_answers_survive_json_and_checkpoint_serialisation(
    make_client: MakeClient, emu: GenieEmulator, sales_space: str
) -> None:
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    answer = make_client(emu, space_id=sales_space).ask(QUESTION)
    restored = GenieAnswer.model_validate_json(answer.model_dump_json())
    assert restored == answer
    assert restored.result is not None
    assert isinstance(restored.result.rows[0][1], decimal.Decimal)
    assert json.loads(answer.model_dump_json())["result"]["rows"][0][1] == str(
        answer.result.rows[0][1]  # type: ignore[union-attr]
    )

    serde = JsonPlusSerializer()
    assert serde.loads_typed(serde.dumps_typed(answer)) == answer
    assert serde.loads_typed(serde.dumps_typed(answer.ref)) == answer.ref
    assert QueryResult.model_validate(answer.result.model_dump()) == answer.result  # type: ignore[union-attr]


def test_missing_space_and_empty_question_fail_locally(
    make_client: MakeClient, emu: GenieEmulator
) -> None:
    genie = make_client(emu)
    before = emu.stats()["requests"].copy()
    with pytest.raises(ConfigurationError, match="GENIE_SPACE_ID"):
        genie.ask(QUESTION)
    with pytest.raises(BadRequestError):
        genie.ask("  ", space_id=space_id(emu))
    assert emu.stats()["requests"] == before


def test_unknown_conversation_is_not_found(
    make_client: MakeClient, emu: GenieEmulator, sales_space: str
) -> None:
    genie = make_client(emu, space_id=sales_space)
    before = emu.stats()["questions"]
    t0 = time.monotonic()
    with pytest.raises(NotFoundError) as err:
        genie.ask(QUESTION, conversation_id="0" * 32)
    assert time.monotonic() - t0 < 2  # a 404 is final: no retries, no recovery
    assert "does not exist" in str(err.value)
    assert err.value.status_code == 404
    assert emu.stats()["questions"] == before
