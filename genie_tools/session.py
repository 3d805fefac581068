"""Running the analyst graph for a person: where Genie is, and one turn at a time.

:func:`open_workspace` finds Genie: a real workspace when one is configured (the SDK's
own settings: ``DATABRICKS_HOST`` / ``DATABRICKS_CONFIG_PROFILE``, or ``GENIE_HOST`` /
``GENIE_PROFILE``), otherwise the local emulator, started in-process. :func:`run_turn`
asks one question on a thread and returns a stable, JSON-ready result (the CLI's
``--json`` output).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage

from genie_tools.client import GenieClient
from genie_tools.settings import GenieSettings
from genie_tools.tools import GenieSpace

__all__ = [
    "TURN_SCHEMA",
    "Workspace",
    "open_workspace",
    "run_turn",
    "workspace_configured",
    "workspace_spaces",
]

TURN_SCHEMA = "genie-tools.turn/1"
"""The version of :func:`run_turn`'s result; it changes only when fields are removed."""


@dataclass
class Workspace:
    """Where Genie answers: the SDK workspace (or profile) and the spaces to use."""

    workspace: Any
    spaces: list[GenieSpace]
    settings: GenieSettings
    emulator: Any = None
    description: str = ""

    @property
    def is_emulator(self) -> bool:
        """True when the local emulator answers."""
        return self.emulator is not None


def workspace_configured(profile: str | None, settings: GenieSettings) -> bool:
    """Whether a real Databricks workspace is configured (else the emulator answers)."""
    env = os.environ
    return bool(
        profile
        or settings.host
        or settings.profile
        or env.get("DATABRICKS_HOST")
        or env.get("DATABRICKS_CONFIG_PROFILE")
    )


@contextmanager
def open_workspace(
    *,
    profile: str | None = None,
    space_ids: list[str] | None = None,
    speed: float = 0.5,
    state_dir: Path | None = None,
) -> Iterator[Workspace]:
    """Genie in a real workspace when one is configured, else the local emulator.

    Args:
        profile: A ``~/.databrickscfg`` profile (a real workspace).
        space_ids: The spaces to use (default: ``GENIE_SPACE_IDS``, else every space
            the principal can see).
        speed: The emulator's latency multiplier (when the emulator answers).
        state_dir: Where the emulator keeps its conversations, so that a later process
            continues them (``None``: in memory, gone with the process).

    Example:
        >>> with open_workspace(speed=0) as ws:  # doctest: +SKIP
        ...     print(ws.description, [s.name for s in ws.spaces])
    """
    settings = GenieSettings()
    if workspace_configured(profile, settings):
        with GenieClient(profile, settings=settings) as client:
            spaces = workspace_spaces(client, space_ids or settings.space_ids)
        yield Workspace(profile, spaces, settings, description="Databricks workspace")
        return
    from genie_tools.emulator import GenieEmulator

    emulator = GenieEmulator(speed=speed, state_dir=state_dir).start()
    try:
        spaces = [
            GenieSpace(id=s.id, name=s.title, description=s.description)
            for s in emulator.config.spaces
            if not space_ids or s.id in space_ids
        ]
        yield Workspace(
            emulator.workspace_client(),
            spaces,
            settings,
            emulator=emulator,
            description=f"local Genie emulator at {emulator.url}",
        )
    finally:
        emulator.stop()


def workspace_spaces(client: GenieClient, space_ids: list[str]) -> list[GenieSpace]:
    """The given spaces, or every space the principal can see, named by their titles."""
    infos = [client.get_space(s) for s in space_ids] if space_ids else client.list_spaces()
    return [GenieSpace(id=i.space_id, name=i.title, description=i.description) for i in infos]


def run_turn(
    graph: Any,
    question: str,
    *,
    thread_id: str,
    space_ids: list[str] | None = None,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Ask ``question`` on ``thread_id`` and return the turn as JSON-ready data.

    The result (schema ``genie-tools.turn/1``)::

        {"schema": "genie-tools.turn/1", "thread_id": str, "question": str,
         "route": {"spaces": [space_id], "reason": str, "ask": str | null},
         "answers": [{"space_id", "space", "text", "sql", "is_clarification",
                      "clarification_question", "suggested_questions", "columns": [{"name",
                      "type"}], "rows": [[...]] (at most 100), "row_count", "truncated",
                      "conversation_id", "message_id", "error"}],
         "answer": str, "elapsed_seconds": float}

    Values in ``rows`` are JSON: numbers, strings, ``null``; decimals and dates as strings.
    """
    started = time.perf_counter()
    config = {"configurable": {"thread_id": thread_id}}
    payload: dict[str, Any] = {"messages": [HumanMessage(content=question)]}
    if space_ids:
        payload["route_to"] = space_ids
    state: dict[str, Any] = {}
    # durability "sync": each step's checkpoint lands before the next (exactly-once on a crash)
    stream = graph.stream(payload, config, stream_mode=["custom", "values"], durability="sync")
    for mode, chunk in stream:
        if mode == "custom" and on_progress is not None and "genie_progress" in chunk:
            on_progress(chunk["genie_progress"])
        elif mode == "values":
            state = chunk
    return turn_result(
        state, question=question, thread_id=thread_id, elapsed=time.perf_counter() - started
    )


def turn_result(
    state: dict[str, Any], *, question: str, thread_id: str, elapsed: float
) -> dict[str, Any]:
    """The last turn of ``state`` as :func:`run_turn` returns it."""
    messages = state.get("messages", [])
    turn: list[AIMessage] = []
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            break
        if isinstance(message, AIMessage):
            turn.append(message)
    turn.reverse()
    answers = [_answer(m) for m in turn if "genie" in m.additional_kwargs]
    final = next((m for m in reversed(turn) if m.name == "analyst"), None)
    route = state.get("route") or {}
    return {
        "schema": TURN_SCHEMA,
        "thread_id": thread_id,
        "question": question,
        "route": {
            "spaces": list(route.get("spaces", [])),
            "reason": route.get("reason"),
            "ask": route.get("ask"),
        },
        "answers": answers,
        "answer": str(final.content) if final is not None else "",
        "elapsed_seconds": round(elapsed, 3),
    }


def _answer(message: AIMessage) -> dict[str, Any]:
    genie = message.additional_kwargs["genie"]
    answer = genie.get("answer") or {}
    result = answer.get("result") or {}
    return {
        "space_id": genie.get("space_id"),
        "space": message.name,
        "text": answer.get("text"),
        "sql": answer.get("sql"),
        "is_clarification": bool(answer.get("is_clarification")),
        "clarification_question": answer.get("clarification_question"),
        "suggested_questions": answer.get("suggested_questions") or [],
        "columns": [
            {"name": c.get("name"), "type": c.get("type_name")} for c in result.get("columns", [])
        ],
        "rows": (result.get("rows") or [])[:100],
        "row_count": result.get("row_count", 0),
        "truncated": bool(result.get("truncated")),
        "conversation_id": answer.get("conversation_id"),
        "message_id": answer.get("message_id"),
        "error": genie.get("error") or (None if answer else str(message.content)),
    }
