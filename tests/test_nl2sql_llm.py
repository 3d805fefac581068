"""The optional LLM backend: a LangChain chat model writes the SQL; unsafe or broken SQL and
an unavailable model fall back to the built-in engine. (A fake chat model stands in for a
hosted LLM, which cannot run here.)"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import answer, assert_same_rows
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import BaseMessage

from genie_tools.emulator import GenieEmulator
from genie_tools.emulator.evaluation import ask
from genie_tools.emulator.nl2sql.llm import extract_sql, load_chat_model

SALES_BY_SEGMENT = """```sql
SELECT c.c_mktsegment AS segment, COUNT(*) AS customers
FROM samples.tpch.customer c
GROUP BY c.c_mktsegment
```"""


class RecordingModel(FakeListChatModel):
    """A fake chat model that remembers what it was asked."""

    seen: list[list[BaseMessage]] = []  # noqa: RUF012 - pydantic field default

    def invoke(self, messages: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        self.seen.append(list(messages))
        return super().invoke(messages, *args, **kwargs)


class BrokenModel(FakeListChatModel):
    def invoke(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        raise ConnectionError("model endpoint unreachable")


def test_the_models_sql_answers_and_is_checked_against_duckdb(
    make_emulator: Any, duckdb_reference: Any
) -> None:
    model = RecordingModel(responses=[SALES_BY_SEGMENT])
    emu: GenieEmulator = make_emulator(qpm=100, llm=model)
    w = emu.workspace_client()
    space = emu.config.spaces[0]
    msg = ask(w, space.id, "customers per segment please", None)
    sql, stmt = answer(w, msg)
    assert sql == extract_sql(SALES_BY_SEGMENT)
    assert_same_rows(stmt, duckdb_reference(sql), ordered=False)
    prompt = model.seen[-1]
    assert "samples.tpch.customer" in str(prompt[0].content)  # the space's tables
    assert prompt[-1].content == "customers per segment please"


def test_follow_ups_send_the_conversation_to_the_model(make_emulator: Any) -> None:
    model = RecordingModel(responses=[SALES_BY_SEGMENT, SALES_BY_SEGMENT])
    emu: GenieEmulator = make_emulator(qpm=100, llm=model)
    w = emu.workspace_client()
    space = emu.config.spaces[0]
    first = ask(w, space.id, "customers per segment", None)
    ask(w, space.id, "and only for EUROPE?", first.conversation_id)
    chat = model.seen[-1]
    assert [m.type for m in chat] == ["system", "human", "ai", "human"]
    assert "c_mktsegment" in str(chat[2].content)


@pytest.mark.parametrize(
    "reply",
    [
        "```sql\nDELETE FROM samples.tpch.orders\n```",
        "```sql\nSELECT * FROM samples.tpch.supplier\n```",  # not a Sales table
        "```sql\nSELECT no_such_column FROM samples.tpch.orders\n```",  # does not compile
        "I am not sure, maybe look at the orders table?",
        "UNANSWERABLE",
    ],
)
def test_unusable_model_answers_fall_back_to_the_built_in_engine(
    make_emulator: Any, reply: str, duckdb_reference: Any
) -> None:
    emu: GenieEmulator = make_emulator(qpm=100, llm=FakeListChatModel(responses=[reply]))
    w = emu.workspace_client()
    space = emu.config.spaces[0]
    msg = ask(w, space.id, "how many orders were placed in 1995", None)
    sql, stmt = answer(w, msg)
    assert "DELETE" not in sql.upper()
    assert "supplier" not in sql
    assert "o_orderdate" in sql
    assert_same_rows(stmt, duckdb_reference(sql))
    assert duckdb_reference("SELECT COUNT(*) FROM samples.tpch.orders") == [(150000,)]


def test_an_unavailable_model_does_not_fail_the_question(make_emulator: Any) -> None:
    emu: GenieEmulator = make_emulator(qpm=100, llm=BrokenModel(responses=["unused"]))
    w = emu.workspace_client()
    msg = ask(w, emu.config.spaces[0].id, "revenue by region", None)
    assert msg.status.value == "COMPLETED"
    assert any(a.query for a in msg.attachments)


def make_fake_model() -> FakeListChatModel:
    return FakeListChatModel(responses=[SALES_BY_SEGMENT])


def test_the_model_can_be_named_in_the_config(make_emulator: Any) -> None:
    emu: GenieEmulator = make_emulator(qpm=100, config={"llm": "test_nl2sql_llm:make_fake_model"})
    msg = ask(emu.workspace_client(), emu.config.spaces[0].id, "segments", None)
    att = next(a for a in msg.attachments if a.query is not None)
    assert att.query.query == extract_sql(SALES_BY_SEGMENT)


def test_bad_model_paths_are_clear_errors() -> None:
    with pytest.raises(ValueError, match=r"package\.module:name"):
        load_chat_model("no_colon_here")
    with pytest.raises(ModuleNotFoundError):
        load_chat_model("not_a_module_anywhere:model")
