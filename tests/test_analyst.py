"""The analyst graph and the ``genie-tools`` CLI, against the emulator.

Routing, fan-out to two spaces in one turn (in parallel), follow-ups, the LLM router
(a scripted fake chat model) and its fallback, ``ask --json``, and a thread resumed by a
second CLI process (SQLite).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langgraph.checkpoint.memory import InMemorySaver

from genie_tools import GenieSettings
from genie_tools.emulator import GenieEmulator
from genie_tools.graph import create_analyst_graph
from genie_tools.session import TURN_SCHEMA, run_turn
from genie_tools.tools import GenieSpace

FAST = {"qpm": 100_000, "submit_recovery_seconds": 1.0, "retry_backoff_base": 0.05}
ROOT = Path(__file__).parent.parent


pytestmark = pytest.mark.usefixtures("fresh_limits")


def spaces_of(emu: GenieEmulator) -> list[GenieSpace]:
    return [GenieSpace(id=s.id, name=s.title) for s in emu.config.spaces]


def analyst(emu: GenieEmulator, **options: Any) -> Any:
    builder = create_analyst_graph(
        spaces_of(emu), workspace=emu.workspace_client(), settings=GenieSettings(**FAST), **options
    )
    return builder.compile(checkpointer=InMemorySaver())


def test_routes_follows_up_and_fans_out_in_parallel(make_emulator: Any) -> None:
    emu = make_emulator(qpm=100_000, seed=31, speed=1)
    emu.set_latency(total_seconds=1.5)
    graph = analyst(emu)
    titles = {s.id: s.title for s in emu.config.spaces}

    first = run_turn(graph, "What was total revenue by year?", thread_id="t1")
    assert first["schema"] == TURN_SCHEMA
    assert [titles[s] for s in first["route"]["spaces"]] == ["Sales & revenue"]
    (answer,) = first["answers"]
    assert answer["row_count"] == 7
    assert first["answer"].startswith("Sales & revenue:")

    follow = run_turn(graph, "break that down by region", thread_id="t1")
    assert follow["route"]["reason"] == "follow-up"
    assert follow["answers"][0]["conversation_id"] == answer["conversation_id"]
    assert "r_name" in follow["answers"][0]["sql"]

    started = time.perf_counter()
    both = run_turn(
        graph, "What was revenue by region, and inventory value by region?", thread_id="t2"
    )
    took = time.perf_counter() - started
    assert sorted(titles[s] for s in both["route"]["spaces"]) == ["Sales & revenue", "Supply chain"]
    assert len({a["conversation_id"] for a in both["answers"]}) == 2  # two Genie conversations
    durations = [
        m.completed_at - m.created_at
        for m in emu.messages()
        if m.conversation_id in {a["conversation_id"] for a in both["answers"]}
    ]
    assert took < sum(durations), (took, durations)  # asked in parallel, not one by one
    assert all(not a["is_clarification"] and a["row_count"] == 5 for a in both["answers"])


def test_ambiguous_question_is_answered_with_a_question(emu: GenieEmulator) -> None:
    graph = analyst(emu)
    asked = len(emu.messages())
    turn = run_turn(graph, "how many orders in 1996?", thread_id="amb")
    assert turn["route"]["spaces"] == []
    assert "Which data should I use" in turn["route"]["ask"]
    assert len(emu.messages()) == asked  # nothing was asked of Genie
    # naming the space answers the router's question
    chosen = run_turn(graph, "how many orders in 1996 in Sales & revenue?", thread_id="amb")
    assert chosen["route"]["reason"] == "named"


class ScriptedChat(GenericFakeChatModel):
    """A fake chat model that plays a script and accepts tools."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedChat:  # type: ignore[override]
        return self


def test_llm_router_and_answer_with_a_fake_model(emu: GenieEmulator) -> None:
    model = ScriptedChat(
        messages=iter(
            [
                AIMessage(
                    content="",
                    tool_calls=[
                        {"name": "_Choice", "args": {"spaces": ["Supply chain"]}, "id": "r1"}
                    ],
                ),
                AIMessage(content="Supply chain counts 1,000 suppliers (see the SQL)."),
            ]
        )
    )
    graph = analyst(emu, llm=model)
    turn = run_turn(graph, "How many suppliers are there?", thread_id="llm")
    assert turn["route"]["reason"] == "llm"
    assert turn["answers"][0]["space"] == "Supply chain"
    assert turn["answer"] == "Supply chain counts 1,000 suppliers (see the SQL)."


class BrokenChat(ScriptedChat):
    def invoke(self, *args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("model endpoint down")


def test_llm_errors_fall_back_to_the_offline_router_and_answer(emu: GenieEmulator) -> None:
    graph = analyst(emu, llm=BrokenChat(messages=iter([])))
    turn = run_turn(graph, "Which suppliers have the most stock?", thread_id="broken")
    assert turn["route"]["reason"] == "match"  # the offline router decided
    assert turn["answers"][0]["space"] == "Supply chain"
    assert turn["answer"].startswith("Supply chain:")  # the deterministic answer


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "genie_tools.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=90,
        cwd=ROOT,
    )


def test_ask_json_and_a_thread_resumed_by_another_process(
    emu: GenieEmulator, tmp_path: Path
) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "GENIE_"))},
        "DATABRICKS_HOST": emu.url,
        "DATABRICKS_TOKEN": emu.token,
        "DATABRICKS_CONFIG_FILE": str(tmp_path / "databrickscfg"),
        "GENIE_TOOLS_HOME": str(tmp_path),
        "GENIE_QPM": "100000",
    }
    first = _cli(
        ["ask", "How many customers are in the BUILDING segment?", "--thread", "cli-1", "--json"],
        env,
    )
    assert first.returncode == 0, first.stderr
    turn = json.loads(first.stdout)
    assert set(turn) == {
        "schema",
        "thread_id",
        "question",
        "route",
        "answers",
        "answer",
        "elapsed_seconds",
    }
    assert turn["schema"] == "genie-tools.turn/1"
    (answer,) = turn["answers"]
    assert set(answer) == {
        "space_id", "space", "text", "sql", "is_clarification", "clarification_question",
        "suggested_questions", "columns", "rows", "row_count", "truncated", "conversation_id",
        "message_id", "error",
    }  # fmt: skip
    assert answer["space"] == "Sales & revenue"
    assert answer["rows"] == [[3706]] or answer["rows"][0][0] > 0
    assert (tmp_path / "threads.db").exists()

    # a new process, the same thread: the follow-up continues the same Genie conversation
    second = _cli(["ask", "only those in EUROPE", "--thread", "cli-1", "--json"], env)
    assert second.returncode == 0, second.stderr
    follow = json.loads(second.stdout)
    assert follow["route"]["reason"] == "follow-up"
    assert follow["answers"][0]["conversation_id"] == answer["conversation_id"]
    assert "EUROPE" in follow["answers"][0]["sql"]

    bad = _cli(["ask", "anything", "--space", "No such space"], env)
    assert bad.returncode != 0
    assert "unknown space" in bad.stderr


def test_spaces_command_lists_the_spaces(emu: GenieEmulator, tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "GENIE_"))},
        "DATABRICKS_HOST": emu.url,
        "DATABRICKS_TOKEN": emu.token,
        "DATABRICKS_CONFIG_FILE": str(tmp_path / "databrickscfg"),
    }
    out = _cli(["spaces", "--json"], env)
    assert out.returncode == 0, out.stderr
    assert sorted(s["title"] for s in json.loads(out.stdout)) == [
        "Sales & revenue", "Shipping & returns", "Supply chain",
    ]  # fmt: skip
