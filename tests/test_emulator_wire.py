"""Every Genie method of the real Databricks SDK against the emulator, checked against DuckDB.

The core check: each example question of each bundled space is asked over the wire, and the
rows Genie sends back equal what an independent DuckDB connection returns for the SQL shown in
the query attachment.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import re
import time
from typing import Any

import httpx
import pytest
import sqlglot
from conftest import assert_same_rows, parse_wire
from databricks.sdk import WorkspaceClient
from databricks.sdk.config import Config
from databricks.sdk.errors import BadRequest, NotFound, PermissionDenied, Unauthenticated
from databricks.sdk.service._internal import Wait
from databricks.sdk.service.dashboards import (
    GenieFeedbackRating,
    GenieMessage,
    MessageStatus,
    TextAttachmentPurpose,
)
from databricks.sdk.service.sql import StatementState

from genie_tools.emulator import GenieEmulator
from genie_tools.emulator.spaces import default_spaces_path, load_spaces

SPACES = load_spaces(default_spaces_path())
SPACE_BY_TITLE = {s.title: s for s in SPACES}
SALES = SPACE_BY_TITLE["Sales & revenue"]
SUPPLY = SPACE_BY_TITLE["Supply chain"]
SHIPPING = SPACE_BY_TITLE["Shipping & returns"]
EXAMPLES = [(s.id, e.question, e.sql) for s in SPACES for e in s.example_sqls]
EXAMPLE_IDS = [f"{s.title}#{i}" for s in SPACES for i, _ in enumerate(s.example_sqls)]

TERMINAL = {
    MessageStatus.COMPLETED,
    MessageStatus.FAILED,
    MessageStatus.CANCELLED,
    MessageStatus.QUERY_RESULT_EXPIRED,
}
UNANSWERABLE = "What is the airspeed velocity of an unladen swallow carrying a coconut?"
NO_SUCH_ID = "0" * 32

# A question whose answer is far over Genie's 5,000-row cap (113,200 rows on TPC-H SF 0.1,
# more than one 100,000-row download chunk). No bundled example returns over 5,000 rows.
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


# helpers ---------------------------------------------------------------------
def wait_done(w: WorkspaceClient, space_id: str, conv_id: str, msg_id: str) -> GenieMessage:
    """Poll get_message quickly (the emulator runs at speed 0) until a terminal status."""
    deadline = time.monotonic() + 15
    while True:
        msg = w.genie.get_message(space_id, conv_id, msg_id)
        if msg.status in TERMINAL:
            return msg
        assert time.monotonic() < deadline, f"message stuck in {msg.status}"
        time.sleep(0.02)


def ask(w: WorkspaceClient, space_id: str, question: str) -> GenieMessage:
    """Start a conversation with ``question`` and wait for the answer."""
    started = w.genie.start_conversation(space_id, question)
    return wait_done(w, space_id, started.response.conversation_id, started.response.message_id)


def follow_up(w: WorkspaceClient, space_id: str, conv_id: str, question: str) -> GenieMessage:
    """Ask a follow-up question in a conversation and wait for the answer."""
    created = w.genie.create_message(space_id, conv_id, question)
    return wait_done(w, space_id, conv_id, created.response.message_id)


def query_attachment(msg: GenieMessage) -> Any:
    found = [a for a in msg.attachments or [] if a.query is not None]
    assert len(found) == 1, msg.attachments
    return found[0]


def text_attachment(msg: GenieMessage) -> Any:
    found = [a for a in msg.attachments or [] if a.text is not None]
    assert len(found) == 1, msg.attachments
    return found[0]


def has_top_level_order(sql: str) -> bool:
    """Whether the query's outermost SELECT has ORDER BY (window ORDER BYs don't count)."""
    return sqlglot.parse_one(sql, read="databricks").args.get("order") is not None


def order_key_columns(sql: str, names: list[str]) -> list[int] | None:
    """Result-column positions of the outer ORDER BY keys, or None if one is not a column."""
    order = sqlglot.parse_one(sql, read="databricks").args.get("order")
    if order is None:
        return None
    positions = []
    for ordered in order.expressions:
        key = ordered.this
        if not isinstance(key, sqlglot.exp.Column) or key.name not in names:
            return None
        positions.append(names.index(key.name))
    return positions


def assert_rows_as_sql_orders(stmt: Any, expected: list[tuple[Any, ...]], sql: str) -> None:
    """Same rows as DuckDB, in the order the SQL asks for.

    Rows that tie on every ORDER BY key may come in either order (two runs of the same query
    need not agree on them), so with ties the rows are compared as a multiset and the order is
    checked on the sort keys.
    """
    if not has_top_level_order(sql):
        assert_same_rows(stmt, expected, ordered=False)
        return
    columns = stmt.manifest.schema.columns
    keys = order_key_columns(sql, [c.name for c in columns])
    if keys is None:
        assert_same_rows(stmt, expected, ordered=True)
        return
    assert_same_rows(stmt, expected, ordered=False)
    got = [
        tuple(norm(parse_wire(row[i], columns[i].type_name.value)) for i in keys)
        for row in stmt.result.data_array or []
    ]
    want = [tuple(norm(row[i]) for i in keys) for row in expected]
    assert got == want


def norm(value: Any) -> Any:
    if isinstance(value, (float, decimal.Decimal)):
        return round(float(value), 6)
    return value


# Databricks type_name -> the SQL type the Statement Execution API shows as type_text.
TYPE_TEXT = {
    "LONG": "BIGINT",
    "INT": "INT",
    "SHORT": "SMALLINT",
    "BYTE": "TINYINT",
    "DOUBLE": "DOUBLE",
    "FLOAT": "FLOAT",
    "BOOLEAN": "BOOLEAN",
    "DATE": "DATE",
    "TIMESTAMP": "TIMESTAMP",
    "STRING": "STRING",
}
DECIMAL_TEXT = re.compile(r"DECIMAL\(\d+,\d+\)")


def type_text_matches(type_name: str, type_text: str) -> bool:
    if type_name == "DECIMAL":
        return DECIMAL_TEXT.fullmatch(type_text) is not None
    return TYPE_TEXT.get(type_name) == type_text


def check_result_wire(stmt: Any) -> None:
    """Wire details every client relies on: manifest columns and string/None cells."""
    assert stmt.status.state == StatementState.SUCCEEDED
    columns = stmt.manifest.schema.columns
    assert columns, "a result without columns"
    assert [c.position for c in columns] == list(range(len(columns)))
    assert stmt.manifest.schema.column_count == len(columns)
    for c in columns:
        assert c.name
        assert c.type_name is not None
        assert type_text_matches(c.type_name.value, c.type_text.upper()), (c.name, c.type_text)
    rows = stmt.result.data_array or []
    for row in rows:
        assert len(row) == len(columns)
        assert all(v is None or isinstance(v, str) for v in row), row
    assert stmt.result.row_count == len(rows)
    assert stmt.manifest.total_row_count == len(rows)


def check_timestamp_cells(stmt: Any) -> None:
    """TIMESTAMP cells travel as Databricks renders them: ``1997-01-01T00:00:00.000Z``."""
    columns = stmt.manifest.schema.columns
    for row in stmt.result.data_array or []:
        for value, column in zip(row, columns, strict=True):
            if column.type_name.value == "TIMESTAMP" and value is not None:
                assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", value), value


def raw_headers(emu: GenieEmulator) -> dict[str, str]:
    return {"Authorization": f"Bearer {emu.token}"}


@pytest.fixture
def answered(w: WorkspaceClient) -> GenieMessage:
    """A finished answer to the first Sales example."""
    return ask(w, SALES.id, SALES.example_sqls[0].question)


# the core: every example question, compared with DuckDB ---------------------
@pytest.mark.parametrize(("space_id", "question", "example_sql"), EXAMPLES, ids=EXAMPLE_IDS)
def test_every_example_answers_with_duckdbs_rows(
    w: WorkspaceClient,
    duckdb_reference: Any,
    space_id: str,
    question: str,
    example_sql: str,
) -> None:
    msg = ask(w, space_id, question)
    assert msg.status == MessageStatus.COMPLETED
    att = query_attachment(msg)
    sql = att.query.query
    assert sql == example_sql.strip()
    result = w.genie.get_message_attachment_query_result(
        space_id, msg.conversation_id, msg.message_id, att.attachment_id
    )
    stmt = result.statement_response
    check_result_wire(stmt)
    assert stmt.statement_id == att.query.statement_id
    check_timestamp_cells(stmt)
    expected = duckdb_reference(sql)
    assert expected, "every bundled example returns rows"
    assert_rows_as_sql_orders(stmt, expected, sql)
    meta = att.query.query_result_metadata
    assert meta.row_count == len(expected)
    assert meta.is_truncated is False
    assert stmt.manifest.truncated is False


# spaces -------------------------------------------------------------------------
def test_list_spaces_walks_three_pages(w: WorkspaceClient) -> None:
    titles: list[str] = []
    ids: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        page = w.genie.list_spaces(page_size=1, page_token=token)
        pages += 1
        assert len(page.spaces) == 1
        titles += [s.title for s in page.spaces]
        ids += [s.space_id for s in page.spaces]
        token = page.next_page_token
        if not token:
            break
        assert pages < 10
    assert pages == 3
    assert titles == ["Sales & revenue", "Supply chain", "Shipping & returns"]
    assert ids == [s.id for s in SPACES]
    everything = w.genie.list_spaces()
    assert [s.title for s in everything.spaces] == titles
    assert not everything.next_page_token
    assert all(s.serialized_space is None for s in everything.spaces)


def test_get_space_plain(w: WorkspaceClient) -> None:
    space = w.genie.get_space(SUPPLY.id)
    assert space.space_id == SUPPLY.id
    assert space.title == "Supply chain"
    assert space.description == SUPPLY.description
    assert space.warehouse_id == SUPPLY.warehouse_id
    assert space.serialized_space is None


@pytest.mark.parametrize("space", SPACES, ids=[s.title for s in SPACES])
def test_get_space_serialized(w: WorkspaceClient, space: Any) -> None:
    got = w.genie.get_space(space.id, include_serialized_space=True)
    assert got.title == space.title
    doc = json.loads(got.serialized_space)
    identifiers = [t["identifier"] for t in doc["data_sources"]["tables"]]
    assert identifiers == [t.name for t in space.tables]
    examples = doc["instructions"]["example_question_sqls"]
    assert [e["question"] for e in examples] == [[e.question] for e in space.example_sqls]
    assert [e["sql"] for e in examples] == [[e.sql] for e in space.example_sqls]
    assert all(e["id"] for e in examples)


# conversations and messages -----------------------------------------------------
def test_start_conversation_returns_a_wait(w: WorkspaceClient) -> None:
    question = SALES.example_sqls[1].question
    waiter = w.genie.start_conversation(SALES.id, question)
    assert isinstance(waiter, Wait)
    started = waiter.response
    assert len(started.conversation_id) == 32
    assert len(started.message_id) == 32
    assert started.conversation_id != started.message_id
    assert started.message.content == question
    assert started.conversation.title == question
    msg = waiter.result(timeout=dt.timedelta(seconds=15))
    assert msg.status == MessageStatus.COMPLETED
    assert (msg.conversation_id, msg.message_id) == (
        started.conversation_id,
        started.message_id,
    )
    assert msg.space_id == SALES.id
    assert msg.content == question


def test_start_conversation_and_wait(w: WorkspaceClient, duckdb_reference: Any) -> None:
    question = SHIPPING.example_sqls[0].question
    msg = w.genie.start_conversation_and_wait(
        SHIPPING.id, question, timeout=dt.timedelta(seconds=15)
    )
    assert msg.status == MessageStatus.COMPLETED
    assert msg.content == question
    att = query_attachment(msg)
    stmt = w.genie.get_message_attachment_query_result(
        SHIPPING.id, msg.conversation_id, msg.message_id, att.attachment_id
    ).statement_response
    assert_same_rows(stmt, duckdb_reference(att.query.query))


def test_create_message_continues_the_conversation(w: WorkspaceClient, emu: GenieEmulator) -> None:
    first = ask(w, SALES.id, SALES.example_sqls[0].question)
    waiter = w.genie.create_message(SALES.id, first.conversation_id, SALES.example_sqls[2].question)
    assert isinstance(waiter, Wait)
    assert waiter.response.conversation_id == first.conversation_id
    assert waiter.response.message_id != first.message_id
    second = waiter.result(timeout=dt.timedelta(seconds=15))
    assert second.status == MessageStatus.COMPLETED
    assert second.conversation_id == first.conversation_id
    assert query_attachment(second).query.query == SALES.example_sqls[2].sql.strip()
    assert emu.stats()["questions_by_conversation"][first.conversation_id] == 2


def test_create_message_and_wait(w: WorkspaceClient, emu: GenieEmulator) -> None:
    first = w.genie.start_conversation_and_wait(
        SUPPLY.id, SUPPLY.example_sqls[0].question, timeout=dt.timedelta(seconds=15)
    )
    second = w.genie.create_message_and_wait(
        SUPPLY.id,
        first.conversation_id,
        SUPPLY.example_sqls[1].question,
        timeout=dt.timedelta(seconds=15),
    )
    assert second.status == MessageStatus.COMPLETED
    assert second.conversation_id == first.conversation_id
    assert second.message_id != first.message_id
    assert second.content == SUPPLY.example_sqls[1].question
    assert emu.stats()["questions_by_conversation"][first.conversation_id] == 2


def test_get_message(w: WorkspaceClient, answered: GenieMessage) -> None:
    again = w.genie.get_message(SALES.id, answered.conversation_id, answered.message_id)
    assert again.message_id == answered.message_id
    assert again.id == answered.message_id
    assert again.conversation_id == answered.conversation_id
    assert again.space_id == SALES.id
    assert again.content == SALES.example_sqls[0].question
    assert again.status == MessageStatus.COMPLETED
    assert again.created_timestamp is not None
    assert again.last_updated_timestamp >= again.created_timestamp
    assert again.as_dict()["attachments"] == answered.as_dict()["attachments"]


def test_all_query_result_paths_agree(
    w: WorkspaceClient, answered: GenieMessage, duckdb_reference: Any
) -> None:
    att = query_attachment(answered)
    ids = (SALES.id, answered.conversation_id, answered.message_id)
    current = w.genie.get_message_attachment_query_result(*ids, att.attachment_id)
    deprecated = w.genie.get_message_query_result(*ids)
    by_attachment = w.genie.get_message_query_result_by_attachment(*ids, att.attachment_id)
    expected = duckdb_reference(att.query.query)
    for result in (current, deprecated, by_attachment):
        stmt = result.statement_response
        check_result_wire(stmt)
        assert stmt.statement_id == att.query.statement_id
        assert_same_rows(stmt, expected)
    assert deprecated.as_dict() == current.as_dict()
    assert by_attachment.as_dict() == current.as_dict()


def test_query_result_of_unknown_attachment_is_not_found(
    w: WorkspaceClient, answered: GenieMessage
) -> None:
    with pytest.raises(NotFound):
        w.genie.get_message_attachment_query_result(
            SALES.id, answered.conversation_id, answered.message_id, NO_SUCH_ID
        )


def test_execute_message_attachment_query(
    w: WorkspaceClient, answered: GenieMessage, duckdb_reference: Any
) -> None:
    att = query_attachment(answered)
    ids = (SALES.id, answered.conversation_id, answered.message_id, att.attachment_id)
    before = w.genie.get_message_attachment_query_result(*ids).statement_response
    rerun = w.genie.execute_message_attachment_query(*ids).statement_response
    check_result_wire(rerun)
    assert rerun.statement_id
    assert rerun.statement_id != before.statement_id
    assert rerun.result.data_array == before.result.data_array
    assert_same_rows(rerun, duckdb_reference(att.query.query))
    after = w.genie.get_message_attachment_query_result(*ids).statement_response
    assert after.statement_id == rerun.statement_id


def test_list_conversations_paginates_newest_first(w: WorkspaceClient) -> None:
    mine = [ask(w, SUPPLY.id, e.question) for e in SUPPLY.example_sqls[:3]]
    listed: list[Any] = []
    token: str | None = None
    for _ in range(1000):
        page = w.genie.list_conversations(SUPPLY.id, page_size=2, page_token=token)
        assert len(page.conversations or []) <= 2
        listed += page.conversations or []
        token = page.next_page_token
        if not token:
            break
    ids = [c.conversation_id for c in listed]
    assert len(ids) == len(set(ids)), "a conversation appeared on two pages"
    assert len(ids) >= 3
    whole = w.genie.list_conversations(SUPPLY.id, page_size=1000)
    assert [c.conversation_id for c in whole.conversations] == ids
    # The three just created are the newest, so they lead the list in reverse order.
    assert ids[:3] == [m.conversation_id for m in reversed(mine)]
    assert [c.title for c in listed[:3]] == [e.question for e in reversed(SUPPLY.example_sqls[:3])]
    stamps = [c.created_timestamp for c in listed]
    assert stamps == sorted(stamps, reverse=True)
    # Conversations of other spaces never show up.
    other = {c.conversation_id for c in w.genie.list_conversations(SALES.id).conversations}
    assert not other & set(ids)


def _config_with_manager_and_bob(emu_principal: str) -> dict[str, Any]:
    spaces = [s.model_dump() for s in SPACES]
    for s in spaces:
        s["permissions"] = {"*": "CAN_EDIT", emu_principal: "CAN_MANAGE"}
    return {"spaces": spaces, "principals": {"bob@example.com": {"token": "bob-token"}}}


def test_list_conversations_include_all(make_emulator: Any) -> None:
    from genie_tools.emulator.auth import DEFAULT_PRINCIPAL

    emu = make_emulator(config=_config_with_manager_and_bob(DEFAULT_PRINCIPAL), qpm=1000)
    me = emu.workspace_client()
    bob = WorkspaceClient(host=emu.url, token="bob-token", auth_type="pat")
    mine = ask(me, SALES.id, SALES.example_sqls[0].question)
    bobs = [ask(bob, SALES.id, e.question) for e in SALES.example_sqls[1:3]]
    own = me.genie.list_conversations(SALES.id).conversations
    assert [c.conversation_id for c in own] == [mine.conversation_id]
    everyone = me.genie.list_conversations(SALES.id, include_all=True).conversations
    assert [c.conversation_id for c in everyone] == [
        bobs[1].conversation_id,
        bobs[0].conversation_id,
        mine.conversation_id,
    ]
    paged = me.genie.list_conversations(SALES.id, include_all=True, page_size=2)
    assert len(paged.conversations) == 2
    rest = me.genie.list_conversations(
        SALES.id, include_all=True, page_size=2, page_token=paged.next_page_token
    )
    assert [c.conversation_id for c in paged.conversations + rest.conversations] == [
        c.conversation_id for c in everyone
    ]
    assert not rest.next_page_token
    bob_own = bob.genie.list_conversations(SALES.id).conversations
    assert {c.conversation_id for c in bob_own} == {m.conversation_id for m in bobs}
    # Someone else's conversation stays private to its owner.
    with pytest.raises((NotFound, PermissionDenied)):
        bob.genie.get_message(SALES.id, mine.conversation_id, mine.message_id)


def test_list_conversations_include_all_needs_can_manage(make_emulator: Any) -> None:
    """The SDK documents include_all as requiring CAN MANAGE on the space."""
    emu = make_emulator(
        config={"principals": {"bob@example.com": {"token": "bob-token"}}}, qpm=1000
    )
    bob = WorkspaceClient(host=emu.url, token="bob-token", auth_type="pat")
    ask(emu.workspace_client(), SALES.id, SALES.example_sqls[0].question)
    with pytest.raises(PermissionDenied):
        bob.genie.list_conversations(SALES.id, include_all=True)


def test_list_conversation_messages_in_order_and_pages(w: WorkspaceClient) -> None:
    questions = [e.question for e in SHIPPING.example_sqls[:3]]
    first = ask(w, SHIPPING.id, questions[0])
    conv = first.conversation_id
    later = [follow_up(w, SHIPPING.id, conv, q) for q in questions[1:]]
    listed = w.genie.list_conversation_messages(SHIPPING.id, conv)
    assert [m.content for m in listed.messages] == questions
    assert [m.message_id for m in listed.messages] == [first.message_id] + [
        m.message_id for m in later
    ]
    assert all(m.status == MessageStatus.COMPLETED for m in listed.messages)
    assert all(m.conversation_id == conv for m in listed.messages)
    assert not listed.next_page_token
    page1 = w.genie.list_conversation_messages(SHIPPING.id, conv, page_size=2)
    assert [m.content for m in page1.messages] == questions[:2]
    assert page1.next_page_token
    page2 = w.genie.list_conversation_messages(
        SHIPPING.id, conv, page_size=2, page_token=page1.next_page_token
    )
    assert [m.content for m in page2.messages] == questions[2:]
    assert not page2.next_page_token


def test_delete_conversation(w: WorkspaceClient) -> None:
    msg = ask(w, SUPPLY.id, SUPPLY.example_sqls[4].question)
    conv = msg.conversation_id
    w.genie.delete_conversation(SUPPLY.id, conv)
    with pytest.raises(NotFound):
        w.genie.get_message(SUPPLY.id, conv, msg.message_id)
    with pytest.raises(NotFound):
        w.genie.list_conversation_messages(SUPPLY.id, conv)
    with pytest.raises(NotFound):
        w.genie.create_message(SUPPLY.id, conv, SUPPLY.example_sqls[0].question)
    with pytest.raises(NotFound):
        w.genie.delete_conversation(SUPPLY.id, conv)
    listed = w.genie.list_conversations(SUPPLY.id, page_size=1000).conversations or []
    assert conv not in {c.conversation_id for c in listed}


def test_send_message_feedback(w: WorkspaceClient, answered: GenieMessage) -> None:
    ids = (SALES.id, answered.conversation_id, answered.message_id)
    assert w.genie.get_message(*ids).feedback is None
    w.genie.send_message_feedback(*ids, GenieFeedbackRating.POSITIVE)
    assert w.genie.get_message(*ids).feedback.rating == GenieFeedbackRating.POSITIVE
    w.genie.send_message_feedback(*ids, GenieFeedbackRating.NEGATIVE, comment="wrong year")
    feedback = w.genie.get_message(*ids).feedback
    assert feedback.rating == GenieFeedbackRating.NEGATIVE
    assert feedback.comment == "wrong year"
    # Listings carry the feedback too.
    listed = w.genie.list_conversation_messages(SALES.id, answered.conversation_id)
    assert listed.messages[0].feedback.rating == GenieFeedbackRating.NEGATIVE


# full-result download past the 5,000-row cap -----------------------------------
def _config_with_big_example() -> dict[str, Any]:
    spaces = [s.model_dump() for s in SPACES]
    for s in spaces:
        if s["id"] == SHIPPING.id:
            s["example_sqls"].append({"question": BIG_QUESTION, "sql": BIG_SQL})
    return {"spaces": spaces}


def test_full_download_past_the_row_cap(make_emulator: Any, duckdb_reference: Any) -> None:
    emu = make_emulator(config=_config_with_big_example(), qpm=1000)
    w = emu.workspace_client()
    msg = ask(w, SHIPPING.id, BIG_QUESTION)
    assert msg.status == MessageStatus.COMPLETED
    att = query_attachment(msg)
    assert att.query.query == BIG_SQL.strip()
    full = duckdb_reference(att.query.query)
    assert len(full) > 100_000, "the question must exceed the cap and one download chunk"

    # The ordinary result stops at 5,000 rows and says so in both places.
    assert att.query.query_result_metadata.is_truncated is True
    assert att.query.query_result_metadata.row_count == 5_000
    ids = (SHIPPING.id, msg.conversation_id, msg.message_id, att.attachment_id)
    stmt = w.genie.get_message_attachment_query_result(*ids).statement_response
    check_result_wire(stmt)
    assert len(stmt.result.data_array) == 5_000
    assert stmt.manifest.truncated is True
    assert_same_rows(stmt, full[:5_000])

    generated = w.genie.generate_download_full_query_result(*ids)
    assert generated.download_id
    assert generated.download_id_signature
    deadline = time.monotonic() + 15
    while True:
        got = w.genie.get_download_full_query_result(
            *ids, generated.download_id, generated.download_id_signature
        ).statement_response
        if got.status.state == StatementState.SUCCEEDED:
            break
        assert got.status.state in (StatementState.PENDING, StatementState.RUNNING)
        assert time.monotonic() < deadline, "download never finished"
        time.sleep(0.05)

    links = got.result.external_links
    assert len(links) == got.manifest.total_chunk_count >= 2
    assert [link.chunk_index for link in links] == list(range(len(links)))
    assert got.manifest.total_row_count == len(full)
    assert got.manifest.truncated is False
    columns = got.manifest.schema.columns
    assert [c.name for c in columns] == [c.name for c in stmt.manifest.schema.columns]
    rows: list[list[str | None]] = []
    with httpx.Client(timeout=30) as http:
        for link in links:
            assert link.row_offset == len(rows)
            response = http.get(link.external_link)  # pre-signed: no Authorization header
            assert response.status_code == 200
            chunk = response.json()
            assert len(chunk) == link.row_count
            rows += chunk
        unsigned = http.get(links[0].external_link.split("?")[0])
        assert unsigned.status_code == 403
    assert all(v is None or isinstance(v, str) for row in rows for v in row)
    parsed = [
        tuple(parse_wire(v, c.type_name.value) for v, c in zip(row, columns, strict=True))
        for row in rows
    ]
    assert parsed == full

    with pytest.raises(PermissionDenied):
        w.genie.get_download_full_query_result(*ids, generated.download_id, "0" * 64)


# wire details -------------------------------------------------------------------
def test_finished_message_wire_shape(emu: GenieEmulator, answered: GenieMessage) -> None:
    url = (
        f"{emu.url}/api/2.0/genie/spaces/{SALES.id}/conversations/"
        f"{answered.conversation_id}/messages/{answered.message_id}"
    )
    body = httpx.get(url, headers=raw_headers(emu)).json()
    assert body["status"] == "COMPLETED"
    assert body["id"] == body["message_id"] == answered.message_id
    assert body["conversation_id"] == answered.conversation_id
    assert isinstance(body["created_timestamp"], int)
    assert isinstance(body["last_updated_timestamp"], int)
    assert "error" not in body
    kinds = [
        next(k for k in ("query", "text", "suggested_questions") if k in a)
        for a in body["attachments"]
    ]
    assert kinds == ["query", "text", "suggested_questions"]
    query, text, suggested = body["attachments"]
    q = query["query"]
    assert query["attachment_id"] == q["id"]
    assert q["query"] == SALES.example_sqls[0].sql.strip()
    assert q["title"]
    assert q["description"]
    assert re.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", q["statement_id"])
    assert q["query_result_metadata"] == {"row_count": 7, "is_truncated": False}
    assert text["text"]["content"]
    assert text["attachment_id"] == text["text"]["id"]
    assert text["text"].get("purpose") != "FOLLOW_UP_QUESTION"
    questions = suggested["suggested_questions"]["questions"]
    assert questions
    assert all(isinstance(x, str) and x for x in questions)
    assert SALES.example_sqls[0].question not in questions
    assert set(questions) <= set(SALES.sample_questions)
    assert len({a["attachment_id"] for a in body["attachments"]}) == 3


def test_manifest_type_text_is_upper_case_sql(
    emu: GenieEmulator, w: WorkspaceClient, answered: GenieMessage
) -> None:
    """Statement responses spell type_text as SQL types: "BIGINT", "DECIMAL(18,2)", "STRING".

    (Real Genie answers e.g. ``{"type_name": "LONG", "type_text": "BIGINT"}``; the lower-case
    "bigint" spelling is Unity Catalog's table-column format, not the Statement Execution API's.)
    """
    att = query_attachment(answered)
    url = (
        f"{emu.url}/api/2.0/genie/spaces/{SALES.id}/conversations/{answered.conversation_id}"
        f"/messages/{answered.message_id}/attachments/{att.attachment_id}/query-result"
    )
    body = httpx.get(url, headers=raw_headers(emu)).json()
    columns = body["statement_response"]["manifest"]["schema"]["columns"]
    assert [c["name"] for c in columns] == ["order_year", "revenue"]
    for c in columns:
        assert type_text_matches(c["type_name"], c["type_text"]), c


def test_text_attachment_carries_the_key_figures(
    w: WorkspaceClient, answered: GenieMessage
) -> None:
    att = query_attachment(answered)
    stmt = w.genie.get_message_attachment_query_result(
        SALES.id, answered.conversation_id, answered.message_id, att.attachment_id
    ).statement_response
    summary = text_attachment(answered).text.content
    first_row = stmt.result.data_array[0]
    columns = stmt.manifest.schema.columns
    for value, column in zip(first_row, columns, strict=True):
        if column.type_name.value == "DECIMAL":
            # figures are written for people: thousands separators, two decimals
            assert f"{float(value):,.2f}" in summary, summary
        elif value is not None:
            assert value in summary, summary


def test_clarification_for_an_unanswerable_question(w: WorkspaceClient) -> None:
    msg = ask(w, SALES.id, UNANSWERABLE)
    assert msg.status == MessageStatus.COMPLETED
    assert not [a for a in msg.attachments or [] if a.query is not None]
    text = text_attachment(msg).text
    assert text.purpose == TextAttachmentPurpose.FOLLOW_UP_QUESTION
    assert text.content
    suggested = [a for a in msg.attachments if a.suggested_questions is not None]
    assert len(suggested) == 1
    questions = suggested[0].suggested_questions.questions
    assert questions
    assert set(questions) <= set(SALES.sample_questions)
    with pytest.raises(NotFound):
        w.genie.get_message_query_result(SALES.id, msg.conversation_id, msg.message_id)


def test_well_known_databricks_config(emu: GenieEmulator, w: WorkspaceClient) -> None:
    response = httpx.get(f"{emu.url}/.well-known/databricks-config")  # public: no token
    assert response.status_code == 200
    doc = response.json()
    assert doc["oidc_endpoint"] == f"{emu.url}/oidc"
    assert doc["workspace_id"] == emu.config.workspace_id
    assert w.config.workspace_id == emu.config.workspace_id
    discovery = httpx.get(f"{doc['oidc_endpoint']}/.well-known/oauth-authorization-server")
    assert discovery.status_code == 200
    assert discovery.json()["token_endpoint"] == f"{emu.url}/oidc/v1/token"


# bad input ------------------------------------------------------------------------
def test_unknown_space_is_not_found(w: WorkspaceClient) -> None:
    with pytest.raises(NotFound):
        w.genie.get_space(NO_SUCH_ID)
    with pytest.raises(NotFound):
        w.genie.start_conversation(NO_SUCH_ID, SALES.example_sqls[0].question)
    with pytest.raises(NotFound):
        w.genie.list_conversations(NO_SUCH_ID)


def test_unknown_conversation_and_message_are_not_found(
    w: WorkspaceClient, answered: GenieMessage
) -> None:
    with pytest.raises(NotFound):
        w.genie.get_message(SALES.id, NO_SUCH_ID, answered.message_id)
    with pytest.raises(NotFound):
        w.genie.list_conversation_messages(SALES.id, NO_SUCH_ID)
    with pytest.raises(NotFound):
        w.genie.create_message(SALES.id, NO_SUCH_ID, SALES.example_sqls[0].question)
    with pytest.raises(NotFound):
        w.genie.get_message(SALES.id, answered.conversation_id, NO_SUCH_ID)
    with pytest.raises(NotFound):
        w.genie.get_message_query_result(SALES.id, answered.conversation_id, NO_SUCH_ID)
    # The right ids under the wrong space do not resolve either.
    with pytest.raises(NotFound):
        w.genie.get_message(SUPPLY.id, answered.conversation_id, answered.message_id)


def test_malformed_json_body_is_a_400(emu: GenieEmulator) -> None:
    response = httpx.post(
        f"{emu.url}/api/2.0/genie/spaces/{SALES.id}/start-conversation",
        content=b'{"content": "What was total revenue by year?"',
        headers={**raw_headers(emu), "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"error_code", "message"}
    assert body["error_code"]
    assert body["message"]


def test_empty_content_is_a_bad_request(w: WorkspaceClient, answered: GenieMessage) -> None:
    with pytest.raises(BadRequest):
        w.genie.start_conversation(SALES.id, "")
    with pytest.raises(BadRequest):
        w.genie.start_conversation(SALES.id, "   ")
    with pytest.raises(BadRequest):
        w.genie.create_message(SALES.id, answered.conversation_id, "")


def test_wrong_method_is_a_405_with_a_json_body(emu: GenieEmulator, answered: GenieMessage) -> None:
    url = (
        f"{emu.url}/api/2.0/genie/spaces/{SALES.id}/conversations/"
        f"{answered.conversation_id}/messages/{answered.message_id}"
    )
    response = httpx.put(url, json={"content": "x"}, headers=raw_headers(emu))
    assert response.status_code == 405
    body = response.json()
    assert set(body) == {"error_code", "message"}
    assert body["message"]


@pytest.mark.parametrize("authorization", [None, "Bearer dapi-not-the-token", "Basic Zm9vOmJhcg=="])
def test_missing_or_wrong_token_is_a_401(emu: GenieEmulator, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    before = emu.stats()["auth_failures"]
    response = httpx.get(f"{emu.url}/api/2.0/genie/spaces", headers=headers)
    assert response.status_code == 401
    body = response.json()
    assert set(body) == {"error_code", "message"}
    assert body["message"]
    assert emu.stats()["auth_failures"] == before + 1


def test_sdk_with_wrong_token_is_unauthenticated(emu: GenieEmulator) -> None:
    bad = WorkspaceClient(
        config=Config(host=emu.url, token="dapi-wrong", auth_type="pat", retry_timeout_seconds=5)
    )
    with pytest.raises(Unauthenticated):
        bad.genie.list_spaces()
    with pytest.raises(Unauthenticated):
        bad.genie.start_conversation(SALES.id, SALES.example_sqls[0].question)
