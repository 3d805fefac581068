"""GenieToolkit: Genie as LangChain tools, driven by a real LangChain agent over the emulator.

The agent is LangChain 1.x ``create_agent`` with a scripted fake chat model (the one
part that cannot run here); the tools, the Genie client, the SDK auth and the emulator
are real. Conversation continuity is asserted from the emulator's own records.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver

from genie_tools import GenieSettings
from genie_tools.conversations import InMemoryConversationStore
from genie_tools.emulator import GenieEmulator
from genie_tools.emulator.faults import Fault
from genie_tools.formatting import approx_tokens
from genie_tools.models import GenieAnswer
from genie_tools.tools import GenieSpace, GenieToolkit, create_genie_tool

FAST = {"qpm": 100_000, "submit_recovery_seconds": 1.0, "retry_backoff_base": 0.05}


class ScriptedChat(GenericFakeChatModel):
    """A fake chat model that plays a script and accepts tools (it ignores them)."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedChat:  # type: ignore[override]
        return self


def call(name: str, **args: Any) -> AIMessage:
    """An assistant turn that calls one tool."""
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": f"c-{id(args)}"}])


pytestmark = pytest.mark.usefixtures("fresh_limits")


@pytest.fixture
def toolkit(emu: GenieEmulator) -> GenieToolkit:
    return GenieToolkit(
        spaces=[s.id for s in emu.config.spaces],
        workspace=emu.workspace_client(),
        settings=GenieSettings(**FAST),
    )


def conversations_of(emu: GenieEmulator, contents: list[str]) -> list[str]:
    """The Genie conversation of each question, in order, from the emulator's records."""
    by_content = {m.content: m.conversation_id for m in emu.messages()}
    return [by_content[c] for c in contents]


def tool_messages(result: dict[str, Any]) -> list[ToolMessage]:
    return [m for m in result["messages"] if isinstance(m, ToolMessage)]


# ---------------------------------------------------------------- the agent, sync and async
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_agent_follow_ups_share_a_conversation_per_thread(
    emu: GenieEmulator, toolkit: GenieToolkit, mode: str
) -> None:
    year = {"sync": 1995, "async": 1994}[mode]  # distinct questions: the emulator is shared
    first, follow, other = (
        f"How many orders were placed in {year}?",
        f"only the 1-URGENT ones from {year}",
        f"What was total revenue in {year}?",
    )
    script = iter(
        [
            call("ask_genie", question=first, space="sales_revenue"),
            AIMessage(content="There were many orders."),
            call("ask_genie", question=follow),  # no space: the thread's active one
            AIMessage(content="Fewer urgent ones."),
            call("ask_genie", question=other, space="sales_revenue"),
            AIMessage(content="Revenue found."),
        ]
    )
    agent = create_agent(
        ScriptedChat(messages=script), toolkit.get_tools(), checkpointer=InMemorySaver()
    )
    a = {"configurable": {"thread_id": f"alice-{mode}"}}
    b = {"configurable": {"thread_id": f"bob-{mode}"}}

    def run(text: str, config: dict[str, Any]) -> dict[str, Any]:
        payload = {"messages": [{"role": "user", "content": text}]}
        if mode == "sync":
            return agent.invoke(payload, config)  # type: ignore[arg-type]
        return asyncio.run(agent.ainvoke(payload, config))  # type: ignore[arg-type]

    r1 = run("orders in 1995?", a)
    r2 = run("and urgent?", a)
    r3 = run("revenue?", b)

    for result in (r1, r2, r3):
        (message,) = tool_messages(result)[-1:]
        assert message.status == "success"
        assert isinstance(message.artifact, GenieAnswer)
        assert "SELECT" in message.content
        assert "message_id:" in message.content
    c1, c2, c3 = conversations_of(emu, [first, follow, other])
    assert c1 == c2, "the follow-up continued alice's Genie conversation"
    assert c3 != c1, "bob's thread got its own Genie conversation"
    follow_sql = tool_messages(r2)[-1].artifact.sql
    assert "1-URGENT" in follow_sql
    assert str(year) in follow_sql


def test_new_conversation_and_reset(emu: GenieEmulator, toolkit: GenieToolkit) -> None:
    ask, *_, reset = toolkit.get_tools()
    cfg = {"configurable": {"thread_id": "reset-thread"}}
    q = [
        "How many customers are in the MACHINERY segment?",
        "How many customers are in the HOUSEHOLD segment?",
        "How many customers are in the FURNITURE segment?",
    ]
    ask.invoke({"question": q[0], "space": "sales_revenue"}, cfg)
    ask.invoke({"question": q[1], "space": "sales_revenue", "new_conversation": True}, cfg)
    reset.invoke({}, cfg)
    ask.invoke({"question": q[2], "space": "sales_revenue"}, cfg)
    c = conversations_of(emu, q)
    assert len(set(c)) == 3


# ---------------------------------------------------------------- content within the budget
def test_5000_row_answer_fits_the_budget_and_the_artifact_keeps_every_row(
    emu: GenieEmulator, toolkit: GenieToolkit
) -> None:
    ask = toolkit.get_tools()[0]
    message = ask.invoke(
        {
            "type": "tool_call",
            "id": "big",
            "name": "ask_genie",
            "args": {"question": "Revenue by customer", "space": "sales_revenue"},
        },
        {"configurable": {"thread_id": "big"}},
    )
    answer = message.artifact
    assert answer.result is not None
    assert answer.result.truncated
    assert answer.result.row_count == 5000
    assert len(answer.result.rows) == 5000
    assert approx_tokens(message.content) <= toolkit.token_budget
    assert "5,000-row cap" in message.content  # Genie's own truncation, said plainly
    assert "more rows not shown" in message.content  # and the budget's
    assert "get_genie_query_result" in message.content

    # paging: page 2 of 100 rows continues where page 1 stopped, without asking Genie again
    asked = len(emu.messages())
    page = next(t for t in toolkit.get_tools() if t.name == "get_genie_query_result")
    out = page.invoke(
        {
            "type": "tool_call",
            "id": "p2",
            "name": "get_genie_query_result",
            "args": {"message_id": answer.message_id, "page": 2, "page_size": 100},
        },
        {"configurable": {"thread_id": "big"}},
    )
    assert out.status == "success"
    assert out.artifact.rows == answer.result.rows[100:200]
    assert out.content.startswith("Rows 101-200 of 5,000.")
    assert len(emu.messages()) == asked
    # another thread cannot page through this thread's answers
    stranger = page.invoke(
        {
            "type": "tool_call",
            "id": "p3",
            "name": "get_genie_query_result",
            "args": {"message_id": answer.message_id},
        },
        {"configurable": {"thread_id": "someone-else"}},
    )
    assert stranger.status == "error"
    assert "Unknown message_id" in stranger.content


def test_clarification_is_shown_as_genies_question(toolkit: GenieToolkit) -> None:
    ask = toolkit.get_tools()[0]
    message = ask.invoke(
        {
            "type": "tool_call",
            "id": "cl",
            "name": "ask_genie",
            "args": {"question": "What's the weather in Paris?", "space": "supply_chain"},
        },
        {"configurable": {"thread_id": "clarify"}},
    )
    assert message.status == "success"
    assert message.artifact.is_clarification
    assert "needs clarification" in message.content
    assert "SELECT" not in message.content


# ---------------------------------------------------------------- errors the agent can read
@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (Fault(kind="failed", error_type="SQL_EXECUTION_EXCEPTION", count=1), "rephrase"),
        (Fault(kind="stuck", count=1), "did not answer in time"),
        (Fault(kind="http_error", status=503, count=None, path="/messages"), "Genie"),
    ],
    ids=["query-failed", "timeout", "service-down"],
)
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_genie_failures_become_error_tool_messages_and_the_run_continues(
    make_emulator: Any, fault: Fault, expected: str, mode: str
) -> None:
    emu = make_emulator(qpm=100_000, seed=11)
    kit = GenieToolkit(
        spaces=[s.id for s in emu.config.spaces],
        workspace=emu.workspace_client(),
        settings=GenieSettings(**{**FAST, "max_retries": 1}),
        timeout=2.0,
    )
    emu.inject(fault)
    script = iter(
        [
            call(
                "ask_genie", question="How many orders were placed in 1995?", space="sales_revenue"
            ),
            AIMessage(content="Genie failed; I will say so."),
        ]
    )
    agent = create_agent(ScriptedChat(messages=script), kit.get_tools())
    payload = {"messages": [{"role": "user", "content": "orders?"}]}
    result = agent.invoke(payload) if mode == "sync" else asyncio.run(agent.ainvoke(payload))
    (message,) = tool_messages(result)
    assert message.status == "error"
    assert expected in message.content
    assert result["messages"][-1].content == "Genie failed; I will say so."  # the run went on


def test_rate_limit_and_permission_errors_say_what_to_do(make_emulator: Any) -> None:
    emu = make_emulator(qpm=1, seed=12)
    kit = GenieToolkit(
        spaces=[s.id for s in emu.config.spaces],
        workspace=emu.workspace_client(),
        settings=GenieSettings(**{**FAST, "qpm": 1}),
        timeout=1.0,
    )
    ask = kit.get_tools()[0]

    def asked(question: str, thread: str) -> ToolMessage:
        return ask.invoke(  # type: ignore[no-any-return]
            {
                "type": "tool_call",
                "id": thread,
                "name": "ask_genie",
                "args": {"question": question, "space": "sales_revenue"},
            },
            {"configurable": {"thread_id": thread}},
        )

    assert asked("How many customers are there?", "t1").status == "success"
    limited = asked("How many parts are there?", "t2")
    assert limited.status == "error"
    assert "rate limited: retry in" in limited.content


def test_permission_errors_say_what_to_do(make_emulator: Any) -> None:
    from databricks.sdk import WorkspaceClient

    from genie_tools.emulator.config import EmulatorConfig
    from genie_tools.emulator.spaces import default_spaces_path, load_spaces

    spaces = load_spaces(default_spaces_path())
    config = EmulatorConfig(
        spaces=[s.model_copy(update={"permissions": {"*": "CAN_VIEW"}}) for s in spaces],
        principals={"bob@example.com": {"token": "bob-pat-0002"}},
    )
    acl = make_emulator(config=config, seed=13)
    bob = WorkspaceClient(host=acl.url, token="bob-pat-0002", auth_type="pat")
    tool = create_genie_tool(
        spaces[1].id, name="ask_supply", description="Supply chain.", workspace=bob,
        settings=GenieSettings(**FAST),
    )  # fmt: skip
    denied = tool.invoke(
        {"type": "tool_call", "id": "d", "name": "ask_supply", "args": {"question": "parts?"}}
    )
    assert denied.status == "error"
    assert "ask its owner for CAN RUN" in denied.content
    assert not acl.messages()  # nothing was asked


# ---------------------------------------------------------------- progress
def test_progress_reaches_custom_events_and_the_graph_stream(make_emulator: Any) -> None:
    emu = make_emulator(qpm=100_000, seed=14, speed=1)
    emu.set_latency(total_seconds=1.0)
    kit = GenieToolkit(
        spaces=[s.id for s in emu.config.spaces],
        workspace=emu.workspace_client(),
        settings=GenieSettings(**FAST),
    )
    tools = kit.get_tools()
    script = iter(
        [call("ask_genie", question="How many parts are there?", space="supply_chain"),
         AIMessage(content="done")]
    )  # fmt: skip
    agent = create_agent(ScriptedChat(messages=script), tools)
    chunks = list(
        agent.stream({"messages": [{"role": "user", "content": "parts?"}]}, stream_mode="custom")
    )
    statuses = [
        c["genie_progress"]["status"] for c in chunks if c["genie_progress"]["kind"] == "status"
    ]
    assert statuses[0] == "SUBMITTED"
    assert "EXECUTING_QUERY" in statuses
    assert all(c["genie_progress"]["space"] == "supply_chain" for c in chunks)

    async def events() -> list[dict[str, Any]]:
        ask = tools[0]
        out = []
        async for e in ask.astream_events(
            {"question": "How many suppliers are there?", "space": "supply_chain"}, version="v2"
        ):
            if e["event"] == "on_custom_event":
                out.append(e)
        return out

    custom = asyncio.run(events())
    assert custom
    assert all(e["name"] == "genie_progress" for e in custom)
    assert any(e["data"]["status"] == "EXECUTING_QUERY" for e in custom)


# ---------------------------------------------------------------- schemas and construction
def test_schemas_pass_openai_strict_conversion(toolkit: GenieToolkit) -> None:
    from langchain_openai import ChatOpenAI

    model = ChatOpenAI(model="gpt-4o-mini", api_key="sk-test-no-network")  # type: ignore[arg-type]
    bound = model.bind_tools(toolkit.get_tools(), strict=True)
    specs = bound.kwargs["tools"]  # type: ignore[attr-defined]
    assert [s["function"]["name"] for s in specs] == [t.name for t in toolkit.get_tools()]

    def check(schema: dict[str, Any], where: str) -> None:
        if schema.get("type") == "object" or "properties" in schema:
            assert schema.get("additionalProperties") is False, where
            assert set(schema.get("required", [])) == set(schema.get("properties", {})), where
            for name, prop in schema.get("properties", {}).items():
                assert "default" not in prop, f"{where}.{name}"
                check(prop, f"{where}.{name}")
        for option in schema.get("anyOf", []):
            check(option, where)

    for spec in specs:
        assert spec["function"]["strict"] is True
        check(spec["function"]["parameters"], spec["function"]["name"])
    ask = specs[0]["function"]["parameters"]["properties"]["space"]
    names = next(o["enum"] for o in ask["anyOf"] if "enum" in o)
    assert names == ["sales_revenue", "supply_chain", "shipping_returns"]
    json.dumps(specs)  # serialisable as sent


def test_bad_configuration_raises_at_build_time_without_network() -> None:
    from genie_tools.errors import ConfigurationError

    with pytest.raises(ConfigurationError):
        GenieToolkit(spaces=[])
    with pytest.raises(ConfigurationError, match="space id"):
        GenieToolkit(spaces=["not a space id!"])
    with pytest.raises(ConfigurationError):
        GenieToolkit(spaces=[GenieSpace(id="a1", name="x"), GenieSpace(id="b2", name="x")])
    with pytest.raises(ConfigurationError):
        GenieToolkit(spaces=["a1"], store=object())
    kit = GenieToolkit(spaces=["a1"], workspace="no-such-profile")  # no network, no error yet
    assert kit.client is None


def test_single_space_tool_is_named_from_the_space(emu: GenieEmulator) -> None:
    sales = next(s.id for s in emu.config.spaces if s.title == "Sales & revenue")
    tool = create_genie_tool(
        sales, workspace=emu.workspace_client(), settings=GenieSettings(**FAST),
        store=InMemoryConversationStore(),
    )  # fmt: skip
    assert tool.name == "ask_genie_sales_revenue"
    assert "Revenue, orders and customers" in tool.description
    assert set(tool.args) == {"question", "new_conversation"}
    out = tool.invoke({"question": "How many orders were placed in 1993?"})
    assert "1993" in out
    assert "message_id:" in out
