"""The durable Genie node in a real LangGraph graph, against the emulator.

Conversation continuity, clarification by interrupt, progress streaming, errors and
resuming an interrupted turn. The crash-and-restart tests (a killed process) are in
test_graph_crash.py; the checkpointers themselves in test_checkpointers.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, StateGraph
from langgraph.types import Command, Send

from genie_tools import GenieSettings
from genie_tools.emulator import GenieEmulator
from genie_tools.emulator.faults import Fault
from genie_tools.graph import GenieNodeState, GenieState, create_genie_node

FAST = {"qpm": 100_000, "submit_recovery_seconds": 1.0, "retry_backoff_base": 0.05}


pytestmark = pytest.mark.usefixtures("fresh_limits")


def space(emu: GenieEmulator, title: str = "Sales & revenue") -> str:
    return next(s.id for s in emu.config.spaces if s.title == title)


def one_node_graph(
    emu: GenieEmulator,
    *,
    checkpointer: Any = "memory",
    schema: Any = GenieState,
    settings: dict[str, Any] | None = None,
    **options: Any,
) -> Any:
    """The "Sales & revenue" node alone; ``checkpointer=None`` compiles without one."""
    builder = StateGraph(schema)
    builder.add_node(
        "sales",
        create_genie_node(
            space(emu),
            name="sales",
            workspace=emu.workspace_client(),
            settings=GenieSettings(**{**FAST, **(settings or {})}),
            **options,
        ),
    )
    builder.add_edge(START, "sales")
    return builder.compile(
        checkpointer=InMemorySaver() if checkpointer == "memory" else checkpointer
    )


def run(graph: Any, payload: Any, config: dict[str, Any], mode: str) -> dict[str, Any]:
    if mode == "sync":
        return graph.invoke(payload, config)  # type: ignore[no-any-return]
    return asyncio.run(graph.ainvoke(payload, config))  # type: ignore[no-any-return]


def ask(text: str) -> dict[str, Any]:
    return {"messages": [HumanMessage(content=text)]}


def conversation_of(emu: GenieEmulator, question: str) -> str:
    (conversation,) = {m.conversation_id for m in emu.messages() if m.content == question}
    return conversation


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_follow_ups_continue_one_conversation_per_thread(emu: GenieEmulator, mode: str) -> None:
    graph = one_node_graph(emu)
    year = {"sync": 1993, "async": 1992}[mode]
    q1, q2, q3 = (
        f"How many orders were placed in {year}?",
        f"only the 2-HIGH ones from {year}",
        f"What was total revenue in {year}?",
    )
    a = {"configurable": {"thread_id": f"node-a-{mode}"}}
    b = {"configurable": {"thread_id": f"node-b-{mode}"}}
    first = run(graph, ask(q1), a, mode)
    second = run(graph, ask(q2), a, mode)
    other = run(graph, ask(q3), b, mode)

    answer = second["messages"][-1]
    assert isinstance(answer, AIMessage)
    assert answer.name == "sales"
    assert "2-HIGH" in answer.additional_kwargs["genie"]["answer"]["sql"]
    assert str(year) in answer.additional_kwargs["genie"]["answer"]["sql"]
    assert [m.type for m in second["messages"]] == ["human", "ai", "human", "ai"]
    assert conversation_of(emu, q1) == conversation_of(emu, q2)
    assert conversation_of(emu, q3) != conversation_of(emu, q1)
    sid = space(emu)
    state = second["genie"][sid]
    assert state["pending"] is None
    assert state["conversation_id"] == conversation_of(emu, q1)
    assert state["last"]["message_id"] == answer.additional_kwargs["genie"]["answer"]["message_id"]
    assert first["genie"][sid]["conversation_id"] == state["conversation_id"]
    assert other["genie"][sid]["conversation_id"] != state["conversation_id"]


def test_question_key_overrides_the_last_message(emu: GenieEmulator) -> None:
    graph = one_node_graph(emu, schema=GenieNodeState)  # a state with a "question" key
    out = graph.invoke(
        {"messages": [HumanMessage(content="hello")], "question": "How many parts are there?"},
        {"configurable": {"thread_id": "question-key"}},
    )
    assert [m.content for m in emu.messages()].count("How many parts are there?") == 1
    assert out["messages"][-1].type == "ai"


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_clarification_interrupts_and_the_reply_follows_up(emu: GenieEmulator, mode: str) -> None:
    graph = one_node_graph(emu, on_clarification="interrupt")
    config = {"configurable": {"thread_id": f"clarify-{mode}"}}
    vague = f"What's the weather in Lisbon? ({mode})"
    result = run(graph, ask(vague), config, mode)
    (pending,) = result["__interrupt__"]
    assert pending.value["space"] == "sales"
    assert pending.value["question"]  # Genie's question back
    assert pending.value["suggested_questions"]

    segment = {"sync": "AUTOMOBILE", "async": "MACHINERY"}[mode]
    reply = f"How many customers are in the {segment} segment?"
    resumed = run(graph, Command(resume=reply), config, mode)
    last = resumed["messages"][-1]
    assert segment in last.additional_kwargs["genie"]["answer"]["sql"]
    assert resumed["messages"][-2].content == reply  # the human's reply is in the transcript
    # the reply went to the same Genie conversation, once
    assert conversation_of(emu, reply) == conversation_of(emu, vague)
    assert [m.content for m in emu.messages()].count(reply) == 1


def test_clarification_answers_by_default(emu: GenieEmulator) -> None:
    graph = one_node_graph(emu)
    out = graph.invoke(ask("Tell me a joke about revenue"), {"configurable": {"thread_id": "cl2"}})
    last = out["messages"][-1]
    assert "needs clarification" in last.content
    assert last.additional_kwargs["genie"]["answer"]["is_clarification"] is True


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_custom_stream_shows_every_status(make_emulator: Any, mode: str) -> None:
    emu = make_emulator(qpm=100_000, seed=21, speed=1)
    emu.set_latency(total_seconds=4.0)
    graph = one_node_graph(emu)
    config = {"configurable": {"thread_id": f"stream-{mode}"}}

    async def collect_async() -> list[Any]:
        return [
            c
            async for c in graph.astream(
                ask("How many suppliers are there?"), config, stream_mode="custom"
            )
        ]

    if mode == "sync":
        chunks = list(
            graph.stream(ask("How many suppliers are there?"), config, stream_mode="custom")
        )
    else:
        chunks = asyncio.run(collect_async())
    events = [c["genie_progress"] for c in chunks]
    statuses = [e["status"] for e in events if e["kind"] == "status"]
    assert events[0]["kind"] == "submitted"
    assert statuses[-1] == "COMPLETED"
    # every status seen is one Genie went through, in Genie's order, none twice
    order = ["SUBMITTED", "FETCHING_METADATA", "FILTERING_CONTEXT", "ASKING_AI",
             "PENDING_WAREHOUSE", "EXECUTING_QUERY", "COMPLETED"]  # fmt: skip
    assert [order.index(s) for s in statuses] == sorted({order.index(s) for s in statuses})
    assert len(statuses) >= 4  # quick early polls see the phases; the last is COMPLETED
    assert all(e["space"] == "sales" and e["message_id"] for e in events)


def test_limiter_waits_are_streamed(make_emulator: Any) -> None:
    emu = make_emulator(qpm=100_000, seed=22)
    graph = one_node_graph(emu, settings={"qpm": 2, "rate_window_seconds": 2.0})
    config = {"configurable": {"thread_id": "limited"}}
    kinds: list[str] = []
    for q in ("How many parts are there?", "How many suppliers are there?", "How many nations?"):
        kinds += [
            c["genie_progress"]["kind"] for c in graph.stream(ask(q), config, stream_mode="custom")
        ]
    assert "rate_limit" in kinds


def test_genie_failure_becomes_an_answer_that_says_what_to_do(make_emulator: Any) -> None:
    emu = make_emulator(qpm=100_000, seed=23)
    emu.inject(Fault(kind="failed", error_type="SQL_EXECUTION_EXCEPTION", count=1))
    graph = one_node_graph(emu)
    config = {"configurable": {"thread_id": "fails"}}
    out = graph.invoke(ask("How many orders were placed in 1996?"), config)
    last = out["messages"][-1]
    assert "Genie could not answer this question; rephrase it." in last.content
    assert last.additional_kwargs["genie"]["error"] == "QueryFailedError"
    assert out["genie"][space(emu)]["pending"] is None
    ok = graph.invoke(ask("How many orders were placed in 1997?"), config)  # and the thread goes on
    assert "1997" in ok["messages"][-1].additional_kwargs["genie"]["answer"]["sql"]


def test_on_error_raise(make_emulator: Any) -> None:
    from genie_tools.errors import QueryFailedError

    emu = make_emulator(qpm=100_000, seed=24)
    emu.inject(Fault(kind="failed", count=1))
    graph = one_node_graph(emu, on_error="raise")
    with pytest.raises(QueryFailedError):
        graph.invoke(
            ask("How many orders were placed in 1996?"), {"configurable": {"thread_id": "r"}}
        )


def test_parallel_spaces_keep_their_own_state(emu: GenieEmulator) -> None:
    sales, supply = space(emu), space(emu, "Supply chain")
    options = {"workspace": emu.workspace_client(), "settings": GenieSettings(**FAST)}
    builder = StateGraph(GenieState)
    builder.add_node("sales", create_genie_node(sales, name="sales", **options))
    builder.add_node("supply", create_genie_node(supply, name="supply", **options))

    def fan_out(state: GenieState) -> list[Send]:
        return [
            Send("sales", {**state, "question": "How many customers are there?"}),
            Send("supply", {**state, "question": "How many suppliers are there?"}),
        ]

    builder.add_conditional_edges(START, fan_out, ["sales", "supply"])
    graph = builder.compile(checkpointer=InMemorySaver())
    out = graph.invoke(ask("customers and suppliers?"), {"configurable": {"thread_id": "fan"}})
    assert set(out["genie"]) == {sales, supply}
    names = sorted(m.name for m in out["messages"] if m.type == "ai")
    assert names == ["sales", "supply"]


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def checkpointer_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """Each checkpointer the node must work with (Postgres: a fresh database)."""
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'threads.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_follow_ups_with_each_checkpointer(
    emu: GenieEmulator, checkpointer_url: str, mode: str
) -> None:
    from genie_tools.graph import acheckpointer_from_url, checkpointer_from_url

    kind = checkpointer_url.split(":")[0].removesuffix("ql")  # memory, sqlite, postgres
    segment = {"memory": "BUILDING", "sqlite": "FURNITURE", "postgres": "HOUSEHOLD"}[kind]
    year = 1993 if mode == "sync" else 1994  # distinct questions: the emulator is shared
    qs = [
        f"How many orders did {segment} customers place in {year}?",
        f"only the 1-URGENT ones from {segment} in {year}",
        f"What was revenue from {segment} customers in {year}?",
    ]
    a = {"configurable": {"thread_id": f"cp-a-{kind}-{mode}"}}
    b = {"configurable": {"thread_id": f"cp-b-{kind}-{mode}"}}

    if mode == "sync":
        for question, config in ((qs[0], a), (qs[1], a), (qs[2], b)):
            with checkpointer_from_url(checkpointer_url) as saver:  # reopened each turn
                one_node_graph(emu, checkpointer=saver).invoke(ask(question), config)
    else:

        async def turns() -> None:
            for question, config in ((qs[0], a), (qs[1], a), (qs[2], b)):
                async with acheckpointer_from_url(checkpointer_url) as saver:
                    await one_node_graph(emu, checkpointer=saver).ainvoke(ask(question), config)

        asyncio.run(turns())
    if kind != "memory":  # a reopened in-memory saver forgets, by design
        assert conversation_of(emu, qs[0]) == conversation_of(emu, qs[1])
    assert conversation_of(emu, qs[2]) != conversation_of(emu, qs[0])
    for q in qs:
        assert [m.content for m in emu.messages()].count(q) == 1


def test_a_graph_without_checkpointer_still_answers(emu: GenieEmulator) -> None:
    graph = one_node_graph(emu, checkpointer=None)
    out = graph.invoke(ask("How many customers are in the HOUSEHOLD segment?"))
    assert "HOUSEHOLD" in out["messages"][-1].additional_kwargs["genie"]["answer"]["sql"]
