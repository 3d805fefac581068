"""Issue 12, points 2 and 4: unreachable or misconfigured workspaces fail within seconds,
typed and naming the host; a stored conversation that is gone is replaced at once.

Everything runs on loopback: a non-resolving name (``.invalid`` never resolves), a
closed loopback port, a loopback socket that never answers, and the emulator.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from databricks.sdk import WorkspaceClient
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, StateGraph

from genie_tools import (
    AsyncGenieClient,
    AuthenticationError,
    GenieClient,
    GenieError,
    GenieSettings,
    PermissionDeniedError,
    ServiceUnavailableError,
    WorkspaceUnreachableError,
)
from genie_tools.auth import AuthSource
from genie_tools.emulator import EmulatorConfig, GenieEmulator
from genie_tools.emulator.spaces import default_spaces_path, load_spaces
from genie_tools.graph import GenieState, create_genie_node

NOWHERE = "https://nonexistent.invalid"
QUESTION = "What was total revenue by year?"


pytestmark = pytest.mark.usefixtures("fresh_limits")


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again: connections are refused


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections and never answers (a black hole)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


def _space(emu: GenieEmulator) -> str:
    return next(s.id for s in emu.config.spaces if s.title == "Sales & revenue")


def _ask_sync(host: str, **settings: Any) -> tuple[BaseException, float]:
    timeout = settings.pop("timeout", None)
    started = time.monotonic()
    with (
        GenieClient(settings=GenieSettings(host=host, space_id="s1", **settings)) as genie,
        pytest.raises(GenieError) as err,
    ):
        genie.ask(QUESTION, timeout=timeout)
    return err.value, time.monotonic() - started


def _ask_async(host: str, **settings: Any) -> tuple[BaseException, float]:
    timeout = settings.pop("timeout", None)

    async def go() -> tuple[BaseException, float, int]:
        ticks = 0

        async def ticker() -> None:  # counts while the client connects: the loop is free
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        beat = asyncio.create_task(ticker())
        started = time.monotonic()
        async with AsyncGenieClient(
            settings=GenieSettings(host=host, space_id="s1", **settings)
        ) as genie:
            with pytest.raises(GenieError) as err:
                await genie.ask(QUESTION, timeout=timeout)
        elapsed = time.monotonic() - started
        beat.cancel()
        assert ticks >= int(elapsed / 0.01 * 0.3)  # never blocked for long
        return err.value, elapsed, ticks

    error, elapsed, _ = asyncio.run(go())
    return error, elapsed


@pytest.mark.parametrize("ask", [_ask_sync, _ask_async], ids=["sync", "async"])
def test_a_host_that_does_not_resolve_fails_at_once_naming_it(
    ask: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABRICKS_TOKEN", raising=False)
    error, elapsed = ask(NOWHERE)
    assert isinstance(error, WorkspaceUnreachableError)
    assert error.cause == "dns"
    assert error.host == NOWHERE
    assert NOWHERE in error.message
    assert "DNS" in error.message
    assert error.__cause__ is None
    assert elapsed < 30
    assert elapsed < 5  # no SDK retries at all: the probe tells at once


@pytest.mark.parametrize("ask", [_ask_sync, _ask_async], ids=["sync", "async"])
def test_a_closed_port_fails_at_once_as_refused(ask: Any, closed_port: int) -> None:
    host = f"http://127.0.0.1:{closed_port}"
    error, elapsed = ask(host)
    assert isinstance(error, WorkspaceUnreachableError)
    assert (error.cause, error.host) == ("refused", host)
    assert "connection refused" in error.message
    assert elapsed < 5


def test_the_environment_host_is_probed_before_the_sdk_retries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The case: only DATABRICKS_HOST, no credentials. The SDK alone spends its
    # retry budget on discovery, then blames the credentials.
    monkeypatch.setenv("DATABRICKS_HOST", NOWHERE)
    monkeypatch.delenv("DATABRICKS_TOKEN", raising=False)
    started = time.monotonic()
    with GenieClient(space_id="s1") as genie, pytest.raises(WorkspaceUnreachableError) as err:
        genie.list_spaces()
    assert err.value.cause == "dns"
    assert time.monotonic() - started < 5


def test_tls_to_a_plain_http_server_is_a_tls_error(emu: GenieEmulator) -> None:
    host = f"https://127.0.0.1:{emu.port}"
    error, elapsed = _ask_sync(host)
    assert isinstance(error, WorkspaceUnreachableError)
    assert error.cause == "tls"
    assert "TLS" in error.message
    assert elapsed < 5


@pytest.mark.parametrize("ask", [_ask_sync, _ask_async], ids=["sync", "async"])
def test_the_operation_timeout_bounds_connecting(ask: Any, silent_port: int) -> None:
    error, elapsed = ask(f"http://127.0.0.1:{silent_port}", timeout=0.5, connect_timeout=60)
    assert isinstance(error, WorkspaceUnreachableError)
    assert error.cause == "timeout"
    assert "0.5 s" in error.message
    assert elapsed < 2


@pytest.mark.parametrize("ask", [_ask_sync, _ask_async], ids=["sync", "async"])
def test_connect_timeout_bounds_a_host_that_never_answers(ask: Any, silent_port: int) -> None:
    error, elapsed = ask(f"http://127.0.0.1:{silent_port}", connect_timeout=1)
    assert isinstance(error, WorkspaceUnreachableError)
    assert error.cause == "timeout"
    assert elapsed < 3


def test_the_sdk_retry_budget_is_bounded_by_connect_timeout(
    emu: GenieEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABRICKS_TOKEN", emu.token)
    monkeypatch.setenv("GENIE_CONNECT_TIMEOUT", "3")
    auth = AuthSource(None, GenieSettings(host=emu.url))
    config = auth.config()
    assert config.retry_timeout_seconds == 3  # not the SDK's 300 s
    assert config.http_timeout_seconds == 3
    assert auth.ready
    assert auth.host == emu.url


def test_a_given_config_for_a_dead_host_fails_on_first_contact(
    emu: GenieEmulator, closed_port: int
) -> None:
    dead = emu.workspace_client()
    dead.config.host = f"http://127.0.0.1:{closed_port}"
    genie = GenieClient(dead, space_id=_space(emu), settings=GenieSettings(max_retries=4))
    started = time.monotonic()
    with pytest.raises(WorkspaceUnreachableError) as err:
        genie.ask(QUESTION)
    assert err.value.cause == "refused"
    assert time.monotonic() - started < 1  # final at first contact: no backoff rounds
    assert genie.limits.limiter.snapshot()["acquired"] == 0  # the budget is untouched


def test_a_wrong_token_names_the_host_and_not_the_token(emu: GenieEmulator) -> None:
    token = "dapi-wrong-token-424242"
    wrong = WorkspaceClient(host=emu.url, token=token, auth_type="pat")
    with GenieClient(wrong) as genie, pytest.raises(AuthenticationError) as err:
        genie.list_spaces()
    assert emu.url in err.value.message
    assert err.value.status_code == 401
    assert token not in str(err.value)
    assert token not in repr(err.value)


def test_a_refused_permission_names_the_host(make_emulator: Any) -> None:
    spaces = [
        s.model_copy(update={"permissions": {"*": "CAN_VIEW"}})
        for s in load_spaces(default_spaces_path())
    ]
    viewer, token = "viewer@example.com", "viewer-pat-0003-secret"
    emu = make_emulator(
        seed=3, config=EmulatorConfig(spaces=spaces, principals={viewer: {"token": token}})
    )
    client = WorkspaceClient(host=emu.url, token=token, auth_type="pat")
    with GenieClient(client) as genie, pytest.raises(PermissionDeniedError) as err:
        genie.ask(QUESTION, space_id=_space(emu))  # CAN_VIEW may not ask
    assert emu.url in err.value.message
    assert token not in str(err.value)


def test_once_the_host_answered_a_refused_connection_is_retried(make_emulator: Any) -> None:
    # Only the first contact is final: later, a refused connection is a blip, retried.
    emu = make_emulator(seed=4)
    settings = GenieSettings(max_retries=2, retry_backoff_base=0.01, retry_backoff_max=0.02)
    genie = GenieClient(emu.workspace_client(), settings=settings)
    assert genie.list_spaces()
    emu.stop()
    with pytest.raises(ServiceUnavailableError) as err:
        genie.list_spaces()
    assert not isinstance(err.value, WorkspaceUnreachableError)
    assert "No answer from Genie to GET" in err.value.message


def _gone_graph(emu: GenieEmulator) -> Any:
    builder = StateGraph(GenieState)
    node = create_genie_node(
        _space(emu),
        name="sales",
        workspace=emu.workspace_client(),
        settings=GenieSettings(qpm=100_000),  # the default 8 s submit recovery
    )
    builder.add_node("sales", node)
    builder.add_edge(START, "sales")
    return builder.compile(checkpointer=InMemorySaver())


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_gone_conversation_is_said_and_replaced_without_a_search(
    emu: GenieEmulator, mode: str
) -> None:
    graph = _gone_graph(emu)
    gone = "0" * 32
    payload = {
        "messages": [("user", QUESTION)],
        "genie": {_space(emu): {"conversation_id": gone}},
    }
    config = {"configurable": {"thread_id": f"gone-{mode}"}}

    async def collect() -> list[Any]:
        return [c async for c in graph.astream(payload, config, stream_mode="custom")]

    started = time.monotonic()
    if mode == "sync":
        chunks = list(graph.stream(payload, config, stream_mode="custom"))
    else:
        chunks = asyncio.run(collect())
    elapsed = time.monotonic() - started
    events = [c["genie_progress"] for c in chunks if "genie_progress" in c]
    notices = [e for e in events if e["kind"] == "conversation_gone"]
    assert len(notices) == 1
    assert gone in notices[0]["detail"]
    assert "new conversation" in notices[0]["detail"]
    assert not any(e["kind"] == "recovered" for e in events)
    assert elapsed < 4  # not the 8 s search for a question that never reached Genie
    state = graph.get_state(config).values
    mine = state["genie"][_space(emu)]
    assert mine["conversation_id"] not in (None, gone)
    assert state["messages"][-1].additional_kwargs["genie"]["answer"]["sql"]
