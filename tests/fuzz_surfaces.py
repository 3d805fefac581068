"""The seven fuzzed surfaces: a strategy of inputs and a check of the invariants for each.

Invariants (issue 12, point 7):

* every input ends in a result or a typed error — a
  :class:`~genie_tools.errors.GenieError` (for the tools also an error ``ToolMessage``
  or the argument schema's ``ValidationError``; for settings a pydantic
  ``ValidationError``; for the CLI an exit code with a message; for declarations the
  emulator's ``ConfigError``);
* no request leaves the allowed paths (recorded where requests are sent:
  :class:`fuzz_env.RequestLog`);
* no 5xx from the emulator for a client's mistake;
* no traceback text and no secret (the token) in what a model or a user reads.

A check raises :class:`fuzz_env.Finding` when an invariant breaks.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fuzz_env import FuzzEnv, check_text, unexpected
from fuzz_strategies import (
    any_value,
    declarations,
    ids,
    mostly,
    odd_text,
    optional,
    timeouts,
)
from fuzz_surfaces_outer import (
    check_cli,
    check_declaration,
    check_http,
    check_settings,
    cli_calls,
    http_cases,
    setting_envs,
)
from hypothesis import reject
from hypothesis import strategies as st
from pydantic import ValidationError

from genie_tools.errors import GenieError
from genie_tools.models import MessageRef

__all__ = ["SURFACES", "Surface"]


@dataclass(frozen=True)
class Surface:
    """One fuzzed surface: its inputs, its check, and its share of the CI examples."""

    name: str
    strategy: Callable[[FuzzEnv], st.SearchStrategy[Any]]
    check: Callable[[FuzzEnv, Any], str]
    """Raises a Finding, or returns what happened (for coverage counts)."""
    ci_examples: int


def _questions(env: FuzzEnv) -> st.SearchStrategy[Any]:
    hostile = st.one_of(
        odd_text(80), st.sampled_from(["", "   ", "x" * 30_000, "only 1996"]), any_value
    )
    return mostly(st.sampled_from(env.questions), hostile)


# ---------------------------------------------------------------------------- tools
@st.composite
def _tool_calls(draw: Any, env: FuzzEnv) -> dict[str, Any]:
    real = env.real_ids
    name = draw(st.sampled_from(sorted(env.tools)))
    fields = env.tools[name].args_schema.model_fields  # type: ignore[union-attr]
    plausible = {
        "question": _questions(env),
        "space": st.sampled_from(env.space_names),
        "new_conversation": st.booleans(),
        "message_id": ids(real["message"]),
        "page": st.integers(-2, 10**6),
        "page_size": st.integers(-2, 10**6),
    }
    args = {}
    near = draw(st.integers(0, 3)) < 3  # mostly calls a model could make, with a twist
    for field, info in fields.items():
        likely = plausible.get(field, any_value)
        if near and (info.is_required() or field == "space" or draw(st.booleans())):
            args[field] = draw(mostly(likely, any_value))
        elif not near and draw(st.integers(0, 4)):
            args[field] = draw(st.one_of(likely, any_value))
    if draw(st.integers(0, 9)) == 0:
        args[draw(st.text(max_size=8))] = draw(any_value)
    thread = draw(optional(st.one_of(st.sampled_from(["t1", "t2"]), odd_text(10), st.integers())))
    return {
        "tool": name,
        "args": args,
        "thread": thread,
        "mode": draw(st.sampled_from(["sync", "async"])),
    }


def check_tool(env: FuzzEnv, case: dict[str, Any]) -> str:
    """A tool call ends in a ToolMessage (or the schema's ValidationError), safely worded."""
    tool = env.tools[case["tool"]]
    call = {"name": tool.name, "args": case["args"], "id": "fuzz-call", "type": "tool_call"}
    config: dict[str, Any] = {}
    if case["thread"] is not None:
        config = {"configurable": {"thread_id": case["thread"]}}
    out = None
    with env.log.recording():
        try:
            if case["mode"] == "sync":
                out = tool.invoke(call, config)
            else:
                out = env.run(tool.ainvoke(call, config))
        except ValidationError:
            return "arguments refused by the schema"  # a typed error a ToolNode reports
        except Exception as exc:
            raise unexpected(f"tools/{tool.name}", exc) from exc
    env.log.check(f"tools/{tool.name}", env.url, secret=env.token)
    check_text(f"tools/{tool.name}", env, getattr(out, "content", out))
    return f"{tool.name}: {getattr(out, 'status', '?')}"


# ---------------------------------------------------------------------------- client
def _refs(env: FuzzEnv) -> st.SearchStrategy[Any]:
    real = env.real_ids
    crafted = st.builds(
        MessageRef.model_construct,  # as a checkpoint restores it: no validation
        space_id=ids(real["space"]),
        conversation_id=ids(real["conversation"]),
        message_id=ids(real["message"]),
        attachment_id=optional(ids(real["attachment"])),
    )
    as_dict = st.fixed_dictionaries(
        {
            "space_id": ids(real["space"]),
            "conversation_id": ids(real["conversation"]),
            "message_id": ids(real["message"]),
        }
    )
    return st.one_of(
        st.just(env.answer), st.just(env.answer.ref), crafted, crafted, as_dict, any_value
    )


def _client_calls(env: FuzzEnv) -> st.SearchStrategy[dict[str, Any]]:
    real = env.real_ids
    space, conv = ids(real["space"]), ids(real["conversation"])
    asking = st.fixed_dictionaries(
        {"question": _questions(env)},
        optional={
            "space_id": optional(space),
            "conversation_id": optional(conv),
            "timeout": timeouts,
        },
    )
    ref, rating = _refs(env), st.one_of(st.sampled_from(["POSITIVE", "NONE", "nope"]), any_value)
    by_method = {
        "ask": asking,
        "submit": asking,
        "iter_progress": asking,
        "ask_many": st.fixed_dictionaries(
            {"questions": st.one_of(st.lists(_questions(env), max_size=3), any_value)},
            optional={"concurrency": st.one_of(st.integers(-1, 4), any_value), "timeout": timeouts},
        ),
        "get_space": st.fixed_dictionaries(
            {}, optional={"space_id": optional(space), "refresh": st.booleans()}
        ),
        "list_spaces": st.just({}),
        "delete_conversation": st.fixed_dictionaries(
            {"conversation_id": conv}, optional={"space_id": space}
        ),
        "wait": st.fixed_dictionaries({"ref": ref}, optional={"timeout": timeouts}),
        "get_result": st.fixed_dictionaries({"ref": ref}, optional={"timeout": timeouts}),
        "download_full_result": st.fixed_dictionaries({"ref": ref}, optional={"timeout": timeouts}),
        "cancel": st.fixed_dictionaries({"ref": ref}),
        "send_feedback": st.fixed_dictionaries(
            {"ref": ref, "rating": rating}, optional={"comment": optional(odd_text())}
        ),
    }
    return st.sampled_from(sorted(by_method)).flatmap(
        lambda m: st.fixed_dictionaries(
            {
                "method": st.just(m),
                "kwargs": by_method[m],
                "mode": st.sampled_from(["sync", "async"]),
            }
        )
    )


async def _collect(iterator: Any) -> list[Any]:
    return [item async for item in iterator]


def check_client(env: FuzzEnv, case: dict[str, Any]) -> str:
    """A client call returns or raises a GenieError, and sends only Genie's requests."""
    method, kwargs = case["method"], case["kwargs"]
    surface = f"client/{method}"
    with env.log.recording():
        try:
            if case["mode"] == "sync":
                out = getattr(env.client, method)(**kwargs)
                if method == "iter_progress":
                    list(out)
            else:
                call = getattr(env.aclient, method)(**kwargs)
                env.run(_collect(call) if method == "iter_progress" else call)
        except GenieError as err:
            check_text(surface, env, str(err), "error message")
            outcome = type(err).__name__
        except Exception as exc:
            raise unexpected(surface, exc) from exc
        else:
            outcome = "ok"
    env.log.check(surface, env.url, secret=env.token)
    return f"{method}: {outcome}"


# ---------------------------------------------------------------------------- graph state
def _node_states(env: FuzzEnv) -> st.SearchStrategy[dict[str, Any]]:
    real = env.real_ids
    conv = optional(ids(real["conversation"]))
    iso = st.datetimes().map(lambda d: d.isoformat())
    ref = st.fixed_dictionaries(
        {
            "space_id": ids(real["space"]),
            "conversation_id": ids(real["conversation"]),
            "message_id": ids(real["message"]),
        },
        optional={"attachment_id": optional(ids(real["attachment"])), "question": odd_text()},
    )
    pending = st.fixed_dictionaries(
        {"question": _questions(env), "since": st.one_of(iso, odd_text(10), any_value)},
        optional={"conversation_id": conv, "ref": optional(st.one_of(ref, any_value))},
    )
    space_state = st.fixed_dictionaries(
        {},
        optional={
            "conversation_id": conv,
            "pending": optional(st.one_of(pending, any_value)),
            "last": optional(st.one_of(ref, any_value)),
        },
    )
    genie = st.one_of(
        st.dictionaries(
            st.one_of(st.sampled_from(env.space_ids), odd_text(10)),
            st.one_of(space_state, any_value),
            max_size=2,
        ),
        st.dictionaries(st.sampled_from(env.space_ids), space_state, min_size=1, max_size=2),
        any_value,
    )
    messages = st.lists(
        _questions(env).filter(lambda q: isinstance(q, str)).map(lambda q: ("user", q)), max_size=2
    )
    state = st.fixed_dictionaries(
        {"messages": messages},
        optional={
            "genie": genie,
            "question": optional(_questions(env)),
            "route_to": st.one_of(st.lists(ids(real["space"]), max_size=2), any_value),
            "targets": st.one_of(st.lists(ids(real["space"]), max_size=2), any_value),
        },
    )
    return st.fixed_dictionaries(
        {
            "graph": st.sampled_from(["node", "analyst"]),
            "via": st.sampled_from(["input", "checkpoint"]),
            "state": state,
            "mode": st.sampled_from(["sync", "async"]),
        }
    )


_threads = itertools.count()


def _tampered_thread(graph: Any, state: dict[str, Any]) -> dict[str, Any]:
    """A new thread whose checkpoint holds ``state`` as stored, past every reducer.

    This is what a tampered or corrupted checkpoint (or another version's) looks like
    when it is read back: the values reach the node without passing the graph's input.
    """
    from langgraph.checkpoint.base import create_checkpoint, empty_checkpoint

    saver = graph.checkpointer
    config = {"configurable": {"thread_id": f"fuzz-{next(_threads)}", "checkpoint_ns": ""}}
    values = {k: v for k, v in state.items() if k in graph.channels and k != "messages"}
    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = values
    versions = {k: saver.get_next_version(None, None) for k in values}
    checkpoint["channel_versions"] = versions
    checkpoint = create_checkpoint(checkpoint, None, 0)
    try:
        saver.put(config, checkpoint, {"source": "update", "step": 0, "parents": {}}, versions)
    except (TypeError, ValueError, OverflowError):
        reject()  # a value no checkpointer can store (e.g. an int beyond 64 bits)
    return config


def _graph(env: FuzzEnv, kind: str, *, durable: bool = False) -> Any:
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.graph import START, StateGraph

    from genie_tools.graph import GenieState, create_analyst_graph, create_genie_node

    graphs: dict[tuple[str, bool], Any] = env.__dict__.setdefault("graphs", {})
    if (kind, durable) not in graphs:
        if kind == "node":
            builder = StateGraph(GenieState)
            node = create_genie_node(
                env.space_ids[0], name="sales", workspace=env.w, settings=env.settings
            )
            builder.add_node("sales", node)
            builder.add_edge(START, "sales")
        else:
            builder = create_analyst_graph(env.space_ids, workspace=env.w, settings=env.settings)
        saver = InMemorySaver() if durable else None
        graphs[kind, durable] = builder.compile(checkpointer=saver)
    return graphs[kind, durable]


def check_node(env: FuzzEnv, case: dict[str, Any]) -> str:
    """A graph input ends in a state (or a GenieError), and sends only Genie's requests."""
    via_checkpoint = case.get("via") == "checkpoint"
    surface = f"graph/{case['graph']}" + (" (from a checkpoint)" if via_checkpoint else "")
    graph = _graph(env, case["graph"], durable=via_checkpoint)
    state, config = case["state"], None
    if via_checkpoint:
        config = _tampered_thread(graph, state)
        state = {"messages": state["messages"] or [("user", env.questions[0])]}
    result: Any = None
    with env.log.recording():
        try:
            if case["mode"] == "sync":
                result = graph.invoke(state, config)
            else:
                result = env.run(graph.ainvoke(state, config))
        except GenieError as err:
            check_text(surface, env, str(err), "error message")
            return f"{surface}: {type(err).__name__}"
        except Exception as exc:
            raise unexpected(surface, exc) from exc
    env.log.check(surface, env.url, secret=env.token)
    for message in (result or {}).get("messages", []):
        if message.type != "human":  # the input's own messages are the caller's text
            check_text(surface, env, message.content, "message")
    return (
        f"{surface}: state, {len(env.log.sent)} requests" if env.log.sent else f"{surface}: state"
    )


SURFACES = {
    s.name: s
    for s in [
        Surface("tools", lambda env: _tool_calls(env), check_tool, 80),
        Surface("client", _client_calls, check_client, 70),
        Surface("graph state", _node_states, check_node, 50),
        Surface("cli", lambda env: cli_calls(env), check_cli, 30),
        Surface("settings", lambda env: setting_envs(env), check_settings, 80),
        Surface("declarations", lambda env: declarations(), check_declaration, 30),
        Surface("http api", http_cases, check_http, 120),
    ]
}
"""Every surface, in the order the report lists them."""
