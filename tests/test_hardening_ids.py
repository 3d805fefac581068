"""Crafted ids never steer a request outside Genie's API (issue 12, point 1).

Every client method (sync and async), the node's state (as input and as read back from a
checkpoint) and the analyst graph are driven with ids such as
``../../../2.0/preview/scim/v2/Users?`` against the real emulator over loopback. A
recording ``httpx`` client sees every request as it leaves (after httpx normalises
``..``): none may fall outside ``/api/2.0/genie/spaces/...`` (and the statement and
download paths the client needs), and a bad id is a typed :class:`InvalidIdError`.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from langchain_core.messages import AIMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, StateGraph
from pydantic import ValidationError

from genie_tools import AsyncGenieClient, GenieClient, GenieSettings
from genie_tools._core import run_sync
from genie_tools._flows import simple_flow
from genie_tools.emulator import GenieEmulator
from genie_tools.errors import BadRequestError, ConfigurationError, InvalidIdError
from genie_tools.graph import GenieState, create_analyst_graph, create_genie_node
from genie_tools.graph.node import create_genie_subgraph
from genie_tools.models import GenieAnswer, MessageRef

FAST = {"qpm": 100_000, "submit_recovery_seconds": 1.0, "retry_backoff_base": 0.05}

# The issue's own examples first, then other ways out of a path segment.
CRAFTED: list[Any] = [
    "../../../2.0/preview/scim/v2/Users?",
    "../../../../2.0/clusters/delete?",
    "../../../../../2.0/preview/scim/v2/Users?x&",
    "..",
    "a/b",
    "x?y=1",
    "x#frag",
    "%2e%2e",
    "a b",
    "\ud800",
    "a\x00b",
    123,
]
_SEGMENT = r"[A-Za-z0-9_.~%-]+"
ALLOWED = re.compile(
    rf"/api/2\.0/genie/spaces(/{_SEGMENT})*"
    rf"|/api/2\.0/sql/statements/{_SEGMENT}/result/chunks/[0-9]+"
    rf"|/emulator/download/{_SEGMENT}/[0-9]+"  # the emulator's pre-signed chunk links
)


class Recorder:
    """Every request a client sends, as it leaves (method and raw path)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []

    def hook(self, request: httpx.Request) -> None:
        self.requests.append((request.method, request.url.raw_path.decode().split("?")[0]))

    async def ahook(self, request: httpx.Request) -> None:
        self.hook(request)

    def outside(self) -> list[tuple[str, str]]:
        """Requests outside Genie's paths (or with a dot segment)."""
        return [
            (m, p)
            for m, p in self.requests
            if not ALLOWED.fullmatch(p) or any(s in (".", "..") for s in p.split("/"))
        ]

    def sync_client(self, **options: Any) -> httpx.Client:
        return httpx.Client(event_hooks={"request": [self.hook]}, **options)

    def async_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(event_hooks={"request": [self.ahook]})


pytestmark = pytest.mark.usefixtures("fresh_limits")


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


@pytest.fixture(scope="module")
def answered(emu: GenieEmulator, sales_space: str) -> GenieAnswer:
    """A real answer with a query result (its ids are the good ones to corrupt)."""
    with GenieClient(emu.workspace_client(), settings=GenieSettings(**FAST)) as genie:
        answer = genie.ask("How many orders were placed during 1995?", space_id=sales_space)
    assert answer.attachment_id
    assert answer.result is not None
    return answer


def bad_ref(answer: GenieAnswer, field: str, bad: Any) -> MessageRef:
    """The answer's ref with one id corrupted, as a tampered store would hand it back."""
    return answer.ref.model_copy(update={field: bad})  # model_copy does not validate


REF_FIELDS = ["space_id", "conversation_id", "message_id", "attachment_id"]


def sync_calls(answer: GenieAnswer) -> dict[str, Callable[[GenieClient, Any], Any]]:
    conv = answer.conversation_id
    calls: dict[str, Callable[[GenieClient, Any], Any]] = {
        "get_space": lambda c, bad: c.get_space(bad),
        "get_space(refresh)": lambda c, bad: c.get_space(bad, refresh=True),
        "delete_conversation": lambda c, bad: c.delete_conversation(bad),
        "delete_conversation(space)": lambda c, bad: c.delete_conversation(conv, space_id=bad),
        "ask(space)": lambda c, bad: c.ask("revenue by year", space_id=bad),
        "ask(conversation)": lambda c, bad: c.ask("only 1996", conversation_id=bad),
        "submit(space)": lambda c, bad: c.submit("revenue by year", space_id=bad),
        "submit(conversation)": lambda c, bad: c.submit("only 1996", conversation_id=bad),
        "iter_progress": lambda c, bad: list(c.iter_progress("only 1996", conversation_id=bad)),
        "iter_submit": lambda c, bad: list(c.iter_submit("only 1996", conversation_id=bad)),
        "ask_many": lambda c, bad: c.ask_many(["revenue by year"], space_id=bad),
    }
    for field in REF_FIELDS:
        ref = lambda bad, f=field: bad_ref(answer, f, bad)  # noqa: E731
        calls[f"get_result({field})"] = lambda c, bad, r=ref: c.get_result(r(bad))
        calls[f"download_full_result({field})"] = lambda c, bad, r=ref: c.download_full_result(
            r(bad)
        )
        calls[f"get_result(answer.{field})"] = lambda c, bad, f=field: c.get_result(
            answer.model_copy(update={f: bad})
        )
        if field == "attachment_id":
            continue  # the calls below do not use the attachment
        calls[f"wait({field})"] = lambda c, bad, r=ref: c.wait(r(bad))
        calls[f"iter_wait({field})"] = lambda c, bad, r=ref: list(c.iter_wait(r(bad)))
        calls[f"send_feedback({field})"] = lambda c, bad, r=ref: c.send_feedback(r(bad), True)
        calls[f"cancel({field})"] = lambda c, bad, r=ref: c.cancel(r(bad))
    return calls


def test_every_sync_method_refuses_crafted_ids_without_a_request(
    emu: GenieEmulator, sales_space: str, answered: GenieAnswer, rec: Recorder
) -> None:
    calls = sync_calls(answered)
    with GenieClient(
        emu.workspace_client(),
        space_id=sales_space,
        settings=GenieSettings(**FAST),
        http_client=rec.sync_client(),
    ) as genie:
        for name, call in calls.items():
            for bad in CRAFTED:
                with pytest.raises(InvalidIdError) as caught:
                    call(genie, bad)
                assert caught.value.kind in ("space", "conversation", "message", "attachment")
                assert rec.requests == [], (name, bad, rec.requests)
        # An empty id where one is required (elsewhere "" means "none": the default).
        with pytest.raises(InvalidIdError):
            genie.delete_conversation("")
        with pytest.raises(InvalidIdError):
            genie.wait(bad_ref(answered, "message_id", ""))


async def _drain(items: Any) -> list[Any]:
    return [item async for item in items]


def async_calls(answer: GenieAnswer) -> dict[str, Callable[[AsyncGenieClient, Any], Any]]:
    conv = answer.conversation_id
    calls: dict[str, Callable[[AsyncGenieClient, Any], Any]] = {
        "get_space": lambda c, bad: c.get_space(bad),
        "delete_conversation": lambda c, bad: c.delete_conversation(bad),
        "delete_conversation(space)": lambda c, bad: c.delete_conversation(conv, space_id=bad),
        "ask(space)": lambda c, bad: c.ask("revenue by year", space_id=bad),
        "ask(conversation)": lambda c, bad: c.ask("only 1996", conversation_id=bad),
        "submit(conversation)": lambda c, bad: c.submit("only 1996", conversation_id=bad),
        "iter_progress": lambda c, bad: _drain(c.iter_progress("q", conversation_id=bad)),
        "iter_submit": lambda c, bad: _drain(c.iter_submit("q", conversation_id=bad)),
        "ask_many": lambda c, bad: c.ask_many(["revenue by year"], space_id=bad),
    }
    for field in REF_FIELDS:
        ref = lambda bad, f=field: bad_ref(answer, f, bad)  # noqa: E731
        calls[f"get_result({field})"] = lambda c, bad, r=ref: c.get_result(r(bad))
        calls[f"download_full_result({field})"] = lambda c, bad, r=ref: c.download_full_result(
            r(bad)
        )
        if field == "attachment_id":
            continue
        calls[f"wait({field})"] = lambda c, bad, r=ref: c.wait(r(bad))
        calls[f"iter_wait({field})"] = lambda c, bad, r=ref: _drain(c.iter_wait(r(bad)))
        calls[f"send_feedback({field})"] = lambda c, bad, r=ref: c.send_feedback(r(bad), False)
        calls[f"cancel({field})"] = lambda c, bad, r=ref: c.cancel(r(bad))
    return calls


def test_every_async_method_refuses_crafted_ids_without_a_request(
    emu: GenieEmulator, sales_space: str, answered: GenieAnswer, rec: Recorder
) -> None:
    async def main() -> None:
        pool = rec.async_client()
        genie = AsyncGenieClient(
            emu.workspace_client(),
            space_id=sales_space,
            settings=GenieSettings(**FAST),
            http_client=pool,
        )
        for name, call in async_calls(answered).items():
            for bad in CRAFTED:
                with pytest.raises(InvalidIdError):
                    await call(genie, bad)
                assert rec.requests == [], (name, bad, rec.requests)
        await pool.aclose()

    asyncio.run(main())


def test_the_issues_examples(emu: GenieEmulator, sales_space: str, rec: Recorder) -> None:
    with GenieClient(
        emu.workspace_client(), space_id=sales_space, http_client=rec.sync_client()
    ) as genie:
        with pytest.raises(InvalidIdError, match="space id") as caught:
            genie.get_space("../../../2.0/preview/scim/v2/Users?")
        assert caught.value.kind == "space"
        with pytest.raises(InvalidIdError, match="conversation id"):
            genie.delete_conversation("../../../../2.0/clusters/delete?")
    assert rec.requests == []
    with pytest.raises(InvalidIdError):
        GenieClient(space_id="../../../2.0/preview/scim/v2/Users?")
    # The paths built from checked, encoded ids are the ones Genie serves.
    with GenieClient(
        emu.workspace_client(),
        space_id=sales_space,
        settings=GenieSettings(**FAST),
        http_client=rec.sync_client(),
    ) as genie:
        assert genie.get_space().title == "Sales & revenue"
        first = genie.ask("How many orders were there in 1997?")
        more = genie.ask("only the 1-URGENT ones", conversation_id=first.conversation_id)
        assert genie.get_result(more).row_count >= 1
        assert genie.download_full_result(first).row_count >= 1
        genie.send_feedback(first, True, comment="good\x00 answer")
        genie.delete_conversation(first.conversation_id)
    assert rec.requests
    assert rec.outside() == []


def test_message_refs_validate_their_ids() -> None:
    good = {"space_id": "s1", "conversation_id": "c1", "message_id": "m1"}
    assert MessageRef(**good).message_id == "m1"
    for field in ("space_id", "conversation_id", "message_id", "attachment_id"):
        for bad in ("../../2.0/clusters/delete?", "a/b", 7):
            with pytest.raises(ValidationError, match=r"not a Genie id|must be a string"):
                MessageRef.model_validate({**good, field: bad})
            with pytest.raises(ValidationError):
                MessageRef.model_validate_json(json.dumps({**good, field: bad}))


def test_the_drivers_refuse_any_path_outside_genie(emu: GenieEmulator, rec: Recorder) -> None:
    """The last line of defence: a request built wrongly anywhere is never sent."""
    with GenieClient(emu.workspace_client(), http_client=rec.sync_client()) as genie:
        for path in (
            "/api/2.0/preview/scim/v2/Users",
            "/api/2.0/genie/spaces/../../clusters/delete",
            "/api/2.0/genie/spaces/x/%2e%2e/%2E%2E/y",
            "/api/2.0/genie/spacesX",
        ):
            with pytest.raises(ConfigurationError, match="outside Genie's API"):
                run_sync(simple_flow(genie._ctx, "DELETE", path), genie._transport)
    assert rec.requests == []


class HostileDownloads(httpx.HTTPTransport):
    """The real emulator, except that a download's chunk links point elsewhere."""

    def __init__(self, link: dict[str, Any]) -> None:
        super().__init__()
        self.link = link

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.method != "GET" or "/downloads/" not in request.url.path:
            return response
        response.read()
        body = response.json()
        links = body["statement_response"].get("result", {}).get("external_links") or []
        if links:
            links[-1].update(self.link)
        return httpx.Response(response.status_code, json=body)


@pytest.mark.parametrize(
    "link",
    [
        {"next_chunk_internal_link": "/api/2.0/clusters/delete?x=1"},
        {"next_chunk_internal_link": "/api/2.0/sql/statements/../../clusters/result/chunks/1"},
        {"next_chunk_internal_link": "https://elsewhere.invalid/api/2.0/sql/statements/a/b"},
        {"external_link": "file:///etc/passwd"},
        {"external_link": "http://example.com/chunk"},
    ],
)
def test_a_download_never_follows_links_outside_the_apis(
    emu: GenieEmulator, answered: GenieAnswer, rec: Recorder, link: dict[str, Any]
) -> None:
    http = rec.sync_client(transport=HostileDownloads(link))
    with (
        GenieClient(
            emu.workspace_client(), settings=GenieSettings(**FAST), http_client=http
        ) as genie,
        pytest.raises(BadRequestError, match="not followed"),
    ):
        genie.download_full_result(answered)
    assert rec.requests
    assert rec.outside() == []


# ------------------------------------------------------------------- graph state
CRAFTED_CONVERSATION = "../../../../../2.0/preview/scim/v2/Users?x&"


def node_graph(
    emu: GenieEmulator, sales_space: str, rec: Recorder, **options: Any
) -> tuple[Any, Any]:
    sync = GenieClient(
        emu.workspace_client(), settings=GenieSettings(**FAST), http_client=rec.sync_client()
    )
    aio = AsyncGenieClient(
        emu.workspace_client(), settings=GenieSettings(**FAST), http_client=rec.async_client()
    )
    builder = StateGraph(GenieState)
    node = create_genie_node(sales_space, name="sales", client=sync, async_client=aio, **options)
    builder.add_node("sales", node)
    builder.add_edge(START, "sales")
    return builder.compile(checkpointer=InMemorySaver()), sync


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_crafted_conversation_in_the_graph_input_sends_nothing(
    emu: GenieEmulator, sales_space: str, rec: Recorder, mode: str
) -> None:
    graph, _ = node_graph(emu, sales_space, rec)
    payload = {
        "messages": [("user", "revenue by year")],
        "genie": {sales_space: {"conversation_id": CRAFTED_CONVERSATION}},
    }
    config = {"configurable": {"thread_id": f"crafted-{mode}"}}
    if mode == "sync":
        result = graph.invoke(payload, config)
    else:
        result = asyncio.run(graph.ainvoke(payload, config))
    reply = result["messages"][-1]
    assert isinstance(reply, AIMessage)
    assert reply.additional_kwargs["genie"]["error"] == "InvalidIdError"
    assert "conversation id" in reply.content
    assert "nothing was sent" in reply.content
    assert rec.requests == []
    # The bad id is dropped: the next turn asks Genie normally, on its paths only.
    after = graph.invoke(
        {"messages": [("user", "How many orders were placed during 1994?")]}, config
    )
    assert after["messages"][-1].additional_kwargs["genie"].get("answer")
    assert rec.requests
    assert rec.outside() == []


def test_a_crafted_input_raises_typed_with_on_error_raise(
    emu: GenieEmulator, sales_space: str, rec: Recorder
) -> None:
    graph, _ = node_graph(emu, sales_space, rec, on_error="raise")
    payload = {
        "messages": [("user", "revenue by year")],
        "genie": {sales_space: {"conversation_id": CRAFTED_CONVERSATION}},
    }
    with pytest.raises(InvalidIdError):
        graph.invoke(payload, {"configurable": {"thread_id": "crafted-raise"}})
    with pytest.raises(ConfigurationError, match="must be an object"):
        graph.invoke(
            {"messages": [("user", "q")], "genie": {sales_space: "x"}},
            {"configurable": {"thread_id": "crafted-shape"}},
        )
    assert rec.requests == []


@pytest.mark.parametrize(
    "ref",
    [
        {"conversation_id": CRAFTED_CONVERSATION},
        {"message_id": "../../../../../../2.0/clusters/delete?"},
        {"space_id": "../../../2.0/preview/scim/v2/Users?"},
        {"space_id": "0123456789abcdef0123456789abcdef"},  # a well-formed id, another space
    ],
)
def test_a_crafted_message_read_back_from_a_checkpoint_is_never_polled(
    emu: GenieEmulator, sales_space: str, rec: Recorder, ref: dict[str, Any]
) -> None:
    sync = GenieClient(
        emu.workspace_client(), settings=GenieSettings(**FAST), http_client=rec.sync_client()
    )
    graph = create_genie_subgraph(sales_space, name="sales", client=sync).compile(
        checkpointer=InMemorySaver()
    )
    config = {"configurable": {"thread_id": f"checkpoint-{sorted(ref.items())}"}}
    good = {"space_id": sales_space, "conversation_id": "c1", "message_id": "m1"}
    pending = {
        "question": "revenue by year",
        "since": "2026-01-01T00:00:00+00:00",
        "conversation_id": None,
        "ref": {**good, **ref},
    }
    # As if a checkpoint store held it: the turn resumes at "wait".
    graph.update_state(config, {"genie": {sales_space: {"pending": pending}}}, as_node="submit")
    result = graph.invoke(None, config)
    reply = result["messages"][-1]
    assert reply.additional_kwargs["genie"]["error"] == "InvalidIdError"
    assert result["genie"][sales_space]["pending"] is None
    assert rec.requests == []


def test_the_analyst_graph_with_crafted_state_stays_on_genies_paths(
    emu: GenieEmulator, rec: Recorder
) -> None:
    ids = [s.id for s in emu.config.spaces]
    sync = GenieClient(
        emu.workspace_client(), settings=GenieSettings(**FAST), http_client=rec.sync_client()
    )
    graph = create_analyst_graph(ids, client=sync).compile(checkpointer=InMemorySaver())
    sales = ids[0]
    result = graph.invoke(
        {
            "messages": [("user", "What was total revenue by year?")],
            "route_to": [sales, "../../../2.0/clusters/delete?"],
            "genie": {
                sales: {"conversation_id": CRAFTED_CONVERSATION},
                "../../x": {"conversation_id": "../../y"},
            },
        },
        {"configurable": {"thread_id": "analyst-crafted"}},
    )
    assert "nothing was sent" in result["messages"][-1].content
    assert rec.outside() == []
    assert all("/conversations" not in path for _, path in rec.requests)
