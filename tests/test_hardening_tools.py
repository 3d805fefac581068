"""Hostile text in tools and the client, and the polish of issue 12 (points 3 and polish).

Nothing but deliberate errors leaves a tool: a lone surrogate, control characters, wrong
types, crafted ids or a failing store end as ``ToolMessage(status="error")`` (or are
cleaned), and a real LangChain ``create_agent`` run continues to the model's final
answer. The client refuses non-string and non-Unicode questions and non-finite timeouts
with typed errors; clarifications carry their text; the analyst names spaces by title.
"""

from __future__ import annotations

import asyncio
import math
import re
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from test_hardening_ids import Recorder

from genie_tools import GenieClient, GenieSettings
from genie_tools.conversations import InMemoryConversationStore
from genie_tools.emulator import GenieEmulator
from genie_tools.errors import BadRequestError, ConfigurationError
from genie_tools.graph import create_analyst_graph, create_genie_node
from genie_tools.models import MessageRef
from genie_tools.tools import GenieSpace, GenieToolkit

FAST = {"qpm": 100_000, "submit_recovery_seconds": 1.0, "retry_backoff_base": 0.05}


class ScriptedChat(GenericFakeChatModel):
    """A fake chat model that plays a script and accepts tools (it ignores them)."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedChat:  # type: ignore[override]
        return self


def tool_call(name: str, call_id: str, **args: Any) -> dict[str, Any]:
    return {"type": "tool_call", "id": call_id, "name": name, "args": args}


pytestmark = pytest.mark.usefixtures("fresh_limits")


def make_toolkit(emu: GenieEmulator, rec: Recorder, **options: Any) -> GenieToolkit:
    client = GenieClient(
        emu.workspace_client(), settings=GenieSettings(**FAST), http_client=rec.sync_client()
    )
    return GenieToolkit(
        spaces=[
            GenieSpace(id=s.id, name=re.sub(r"\W+", "_", s.title.lower()), description=s.title)
            for s in emu.config.spaces
        ],
        client=client,
        **options,
    )


# ------------------------------------------------------------- the agent keeps going
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_surrogate_in_an_agent_run_is_an_error_tool_message_and_the_run_goes_on(
    emu: GenieEmulator, mode: str
) -> None:
    rec = Recorder()
    toolkit = make_toolkit(emu, rec)
    script = iter(
        [
            AIMessage(
                content="",
                tool_calls=[
                    {
                        "name": "ask_genie",
                        "args": {"question": "revenue \ud800 by year", "space": "sales_revenue"},
                        "id": "bad",
                    }
                ],
            ),
            AIMessage(content="Genie could not take that question; here is what I know."),
        ]
    )
    agent = create_agent(ScriptedChat(messages=script), toolkit.get_tools())
    payload = {"messages": [{"role": "user", "content": "revenue by year?"}]}
    run = agent.invoke if mode == "sync" else lambda p: asyncio.run(agent.ainvoke(p))
    result = run(payload)  # type: ignore[arg-type]
    (message,) = [m for m in result["messages"] if isinstance(m, ToolMessage)]
    assert message.status == "error"
    assert "question" in message.content
    assert "surrogate" in message.content
    assert "\ud800" not in message.content
    assert "Traceback" not in message.content
    assert result["messages"][-1].content.startswith("Genie could not take that question")
    assert [p for _, p in rec.requests if "conversation" in p] == []  # nothing was asked


def test_control_characters_are_cleaned_before_genie_sees_them(emu: GenieEmulator) -> None:
    rec = Recorder()
    ask = make_toolkit(emu, rec).get_tools()[0]
    question = "How many orders were placed during 1993?"
    message = ask.invoke(
        tool_call("ask_genie", "cc", question=f"\x00{question}\x1b[31m\r\n", space="sales_revenue"),
        {"configurable": {"thread_id": "control-characters"}},
    )
    assert message.status == "success"
    assert message.artifact.question == f"{question}[31m"
    asked = [m.content for m in emu.messages() if "1993" in m.content]
    assert asked
    assert all(not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", c) for c in asked)


# ------------------------------------------------------------- every tool, odd arguments
ODD: list[Any] = ["\ud800", "\udfff tail", "../../../2.0/clusters/delete?", 123, ["a"], None]


def test_odd_arguments_to_every_tool_end_as_tool_messages(emu: GenieEmulator) -> None:
    rec = Recorder()
    tools = {t.name: t for t in make_toolkit(emu, rec).get_tools()}
    cases = [("ask_genie", "question", {"space": "sales_revenue"})]
    cases += [("ask_genie", "space", {"question": "revenue by year"})]
    cases += [("describe_genie_space", "space", {})]
    cases += [("get_genie_query_result", "message_id", {})]
    cases += [("get_genie_query_result", "page", {"message_id": "m1"})]
    cases += [("reset_genie_conversation", "space", {})]
    config = {"configurable": {"thread_id": "odd"}}
    for name, field, others in cases:
        for i, value in enumerate(ODD):
            if field == "space" and value is None and name != "describe_genie_space":
                continue  # no space: a legitimate default
            if field == "page" and value is None:
                continue
            if field == "question" and value == ODD[2]:
                continue  # odd, but a question: Genie answers it
            message = tools[name].invoke(
                tool_call(name, f"{name}-{i}", **{**others, field: value}), config
            )
            assert isinstance(message, ToolMessage), (name, field, value)
            assert message.status == "error", (name, field, value, message.content)
            assert "Traceback" not in message.content
            assert not re.search(r"[\ud800-\udfff]", message.content)
    assert [p for _, p in rec.requests if "conversation" in p] == []
    assert rec.outside() == []


def test_a_crafted_message_id_names_the_id(emu: GenieEmulator) -> None:
    rec = Recorder()
    page = make_toolkit(emu, rec).get_tools()[3]
    message = page.invoke(
        tool_call("get_genie_query_result", "p", message_id="../../../2.0/clusters/delete?"),
        {"configurable": {"thread_id": "crafted-message"}},
    )
    assert message.status == "error"
    assert "message id" in message.content
    assert "not a Genie id" in message.content
    assert rec.requests == []


class BrokenStore(InMemoryConversationStore):
    """A store that fails the way third-party storage can (a bug, a lost connection)."""

    def conversation(self, thread_id: str, space_id: str) -> str | None:
        raise RuntimeError("storage backend went away: password=hunter2")


def test_an_unexpected_failure_is_an_error_tool_message_without_details(
    emu: GenieEmulator,
) -> None:
    rec = Recorder()
    ask = make_toolkit(emu, rec, store=BrokenStore()).get_tools()[0]
    for invoke in (ask.invoke, lambda *a: asyncio.run(ask.ainvoke(*a))):
        message = invoke(
            tool_call("ask_genie", "u", question="revenue by year", space="sales_revenue"),
            {"configurable": {"thread_id": "broken-store"}},
        )
        assert message.status == "error"
        assert "unexpectedly (RuntimeError)" in message.content
        assert "hunter2" not in message.content
        assert "Traceback" not in message.content
    assert rec.requests == []


def test_a_corrupted_stored_conversation_is_dropped_not_sent(emu: GenieEmulator) -> None:
    rec = Recorder()
    store = InMemoryConversationStore()
    toolkit = make_toolkit(emu, rec, store=store)
    sales = toolkit.resolved_spaces()[0]
    # What a tampered persistent store could hand back (no validation on the way in).
    tampered = MessageRef.model_construct(
        space_id=sales.id, conversation_id="../../../../2.0/clusters/delete?", message_id="m1"
    )
    store.remember("tampered", tampered)
    ask = toolkit.get_tools()[0]
    config = {"configurable": {"thread_id": "tampered"}}
    args = {"question": "How many orders were placed during 1992?", "space": sales.name}
    message = ask.invoke(tool_call("ask_genie", "t1", **args), config)
    assert message.status == "error"
    assert "conversation id" in message.content
    assert [p for _, p in rec.requests if "conversation" in p] == []
    again = ask.invoke(tool_call("ask_genie", "t2", **args), config)
    assert again.status == "success"
    assert rec.outside() == []


# ------------------------------------------------------------- the client's own checks
def test_the_client_refuses_non_text_questions_typed(emu: GenieEmulator, sales_space: str) -> None:
    rec = Recorder()
    with GenieClient(
        emu.workspace_client(),
        space_id=sales_space,
        settings=GenieSettings(**FAST),
        http_client=rec.sync_client(),
    ) as genie:
        with pytest.raises(BadRequestError, match="must be a string, not int"):
            genie.ask(123)  # type: ignore[arg-type]
        with pytest.raises(BadRequestError, match="lone surrogate"):
            genie.ask("\ud800")
        with pytest.raises(BadRequestError, match="lone surrogate"):
            genie.submit("revenue \udc00 by year")
        with pytest.raises(BadRequestError, match="empty"):
            genie.ask("\x00\x07 \r\n")
        assert rec.requests == []
        answer = genie.ask("How many orders were placed\x00 during 1996?\x1b")
        assert answer.question == "How many orders were placed during 1996?"
        with pytest.raises(BadRequestError, match=r"comment .*lone surrogate"):
            genie.send_feedback(answer, True, comment="nice \ud800")


@pytest.mark.parametrize("timeout", [math.nan, math.inf, -math.inf, -1, 0, "10", True])
def test_timeouts_must_be_finite_and_positive(
    emu: GenieEmulator, sales_space: str, timeout: Any
) -> None:
    rec = Recorder()
    with GenieClient(
        emu.workspace_client(), space_id=sales_space, http_client=rec.sync_client()
    ) as genie:
        ref = MessageRef(space_id=sales_space, conversation_id="c1", message_id="m1")
        for call in (
            lambda: genie.ask("How many orders were placed during 1995?", timeout=timeout),
            lambda: genie.submit("How many orders were placed during 1995?", timeout=timeout),
            lambda: genie.wait(ref, timeout=timeout),
            lambda: genie.get_result(ref, timeout=timeout),
        ):
            with pytest.raises(ConfigurationError, match="finite number of seconds"):
                call()
    assert rec.requests == []
    with pytest.raises(ConfigurationError):
        GenieToolkit(spaces=[sales_space], timeout=timeout)
    with pytest.raises(ConfigurationError):
        create_genie_node(sales_space, timeout=timeout)


def test_a_clarification_carries_its_text(emu: GenieEmulator) -> None:
    supply = next(s.id for s in emu.config.spaces if s.title == "Supply chain")
    with GenieClient(emu.workspace_client(), settings=GenieSettings(**FAST)) as genie:
        answer = genie.ask("What's the weather in Paris?", space_id=supply)
    assert answer.is_clarification
    assert answer.clarification_question
    assert answer.text == answer.clarification_question


def test_analyst_answers_name_spaces_given_by_id_by_their_title(emu: GenieEmulator) -> None:
    ids = [s.id for s in emu.config.spaces]
    client = GenieClient(emu.workspace_client(), settings=GenieSettings(**FAST))
    graph = create_analyst_graph(ids, client=client).compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "titles"}}
    routed = graph.invoke({"messages": [("user", "What was total revenue by year?")]}, config)
    forced = graph.invoke(
        {"messages": [("user", "How many suppliers are there?")], "route_to": [ids[1]]}, config
    )
    for result, title in ((routed, "Sales & revenue"), (forced, "Supply chain")):
        content = result["messages"][-1].content
        assert content.startswith(f"{title}: "), content
        assert not re.search(r"\b[0-9a-f]{32}\b", content)
