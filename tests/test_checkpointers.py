"""checkpointer_from_url / acheckpointer_from_url: state survives a reopen, bad URLs fail
clearly, passwords never show. SQLite on disk and Postgres are real (see postgres_fixture)."""

from __future__ import annotations

import asyncio
import logging
import operator
import socket
import sys
from pathlib import Path
from typing import Annotated, Any, TypedDict
from urllib.parse import urlsplit, urlunsplit

import pytest
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.graph import START, StateGraph
from langgraph.graph.message import add_messages

from genie_tools.errors import ConfigurationError
from genie_tools.graph.checkpoint import acheckpointer_from_url, checkpointer_from_url, redact_url

THREAD = {"configurable": {"thread_id": "thread-1"}}
OTHER = {"configurable": {"thread_id": "thread-2"}}


class Counter(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
    turns: Annotated[int, operator.add]


def _respond(state: Counter) -> dict[str, Any]:
    return {"messages": [AIMessage(f"turn {state.get('turns', 0) + 1}")], "turns": 1}


def _graph(saver: Any) -> Any:
    builder = StateGraph(Counter)
    builder.add_node("respond", _respond)
    builder.add_edge(START, "respond")
    return builder.compile(checkpointer=saver)


def _turn(text: str) -> dict[str, Any]:
    return {"messages": [HumanMessage(text)]}


def _contents(values: dict[str, Any]) -> list[str]:
    return [m.content for m in values["messages"]]


TWO_TURNS = ["one", "turn 1", "two", "turn 2"]


@pytest.fixture(params=["sqlite", "postgres"])
def durable_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of each durable kind: a SQLite file, and a fresh Postgres database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/checkpoints.db"  # an absolute path: four slashes
    return str(request.getfixturevalue("postgres_url"))


SAVERS = {
    ("sqlite", "sync"): "SqliteSaver",
    ("sqlite", "async"): "AsyncSqliteSaver",
    ("postgres", "sync"): "PostgresSaver",
    ("postgres", "async"): "AsyncPostgresSaver",
}


def _kind(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgres"


# --- state persists across turns and across a reopen ------------------------------------


def test_sync_state_survives_reopen(durable_url: str) -> None:
    with checkpointer_from_url(durable_url) as saver:
        assert type(saver).__name__ == SAVERS[_kind(durable_url), "sync"]
        graph = _graph(saver)
        graph.invoke(_turn("one"), THREAD)
        out = graph.invoke(_turn("two"), THREAD)
        assert out["turns"] == 2
        assert _contents(out) == TWO_TURNS

    with checkpointer_from_url(durable_url) as saver:  # a new connection, as after a restart
        graph = _graph(saver)
        assert _contents(graph.get_state(THREAD).values) == TWO_TURNS
        assert graph.get_state(OTHER).values == {}
        out = graph.invoke(_turn("three"), THREAD)
        assert out["turns"] == 3
        assert _contents(out)[-1] == "turn 3"
        assert len(list(saver.list(THREAD))) >= 6  # input + step checkpoints of 3 turns


def test_async_state_survives_reopen(durable_url: str) -> None:
    async def scenario() -> None:
        async with acheckpointer_from_url(durable_url) as saver:
            assert type(saver).__name__ == SAVERS[_kind(durable_url), "async"]
            graph = _graph(saver)
            await graph.ainvoke(_turn("one"), THREAD)
            out = await graph.ainvoke(_turn("two"), THREAD)
            assert out["turns"] == 2
            assert _contents(out) == TWO_TURNS

        async with acheckpointer_from_url(durable_url) as saver:
            graph = _graph(saver)
            assert _contents((await graph.aget_state(THREAD)).values) == TWO_TURNS
            assert (await graph.aget_state(OTHER)).values == {}
            out = await graph.ainvoke(_turn("three"), THREAD)
            assert out["turns"] == 3

    asyncio.run(scenario())


def test_sync_and_async_share_the_store(durable_url: str) -> None:
    with checkpointer_from_url(durable_url) as saver:
        _graph(saver).invoke(_turn("one"), THREAD)

    async def resume() -> dict[str, Any]:
        async with acheckpointer_from_url(durable_url) as saver:
            result: dict[str, Any] = await _graph(saver).ainvoke(_turn("two"), THREAD)
            return result

    assert _contents(asyncio.run(resume())) == TWO_TURNS


def test_memory_keeps_state_while_open_only() -> None:
    with checkpointer_from_url("memory://") as saver:
        assert type(saver).__name__ == "InMemorySaver"
        graph = _graph(saver)
        graph.invoke(_turn("one"), THREAD)
        assert _contents(graph.invoke(_turn("two"), THREAD)) == TWO_TURNS
    with checkpointer_from_url("memory://") as saver:
        assert _graph(saver).get_state(THREAD).values == {}

    async def scenario() -> list[str]:
        async with acheckpointer_from_url("memory://") as saver:
            graph = _graph(saver)
            await graph.ainvoke(_turn("one"), THREAD)
            return _contents(await graph.ainvoke(_turn("two"), THREAD))

    assert asyncio.run(scenario()) == TWO_TURNS


def test_sqlite_in_memory_and_relative_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with checkpointer_from_url("sqlite:///:memory:") as saver:
        assert _contents(_graph(saver).invoke(_turn("one"), THREAD)) == ["one", "turn 1"]
    assert not (tmp_path / ":memory:").exists()

    monkeypatch.chdir(tmp_path)
    with checkpointer_from_url("sqlite:///state/nested/ck.db") as saver:  # parents are made
        _graph(saver).invoke(_turn("one"), THREAD)
    assert (tmp_path / "state" / "nested" / "ck.db").is_file()


def test_postgres_setup_is_idempotent_and_databases_are_isolated(
    postgres_url: str, postgres_server: str
) -> None:
    import psycopg

    for _ in range(2):  # setup() runs on every open; the second must find nothing to do
        with checkpointer_from_url(postgres_url) as saver:
            _graph(saver).invoke(_turn("one"), THREAD)
    with psycopg.connect(postgres_url) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables").fetchall()}
        rows = conn.execute("SELECT count(DISTINCT thread_id) FROM checkpoints").fetchone()
    assert {"checkpoints", "checkpoint_writes", "checkpoint_migrations"} <= tables
    assert rows == (1,)
    with psycopg.connect(postgres_server) as conn:  # the test got its own database
        assert urlsplit(postgres_url).path.lstrip("/") in {
            r[0] for r in conn.execute("SELECT datname FROM pg_database").fetchall()
        }
        assert urlsplit(postgres_server).path != urlsplit(postgres_url).path


# --- bad URLs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("", "not a checkpointer URL"),
        ("checkpoints.db", r"use sqlite:///checkpoints\.db"),
        ("mysql://root:hunter2hunter2@db/app", "Unknown checkpointer URL scheme 'mysql'"),
        ("memory://somewhere", "use plain memory://"),
        ("sqlite://", "Malformed SQLite"),
        ("sqlite:///", "Malformed SQLite"),
        ("sqlite://host/file.db", "Malformed SQLite"),
        ("sqlite:///file.db?mode=ro", "Malformed SQLite"),
        ("postgresql://genie:hunter2hunter2@db:notaport/app", "port must be a number"),
        ("postgresql://genie:hunter2hunter2@db:99999/app", "port must be a number"),
        ("postgres://genie:hunter2/hunter2@db/app", "Malformed Postgres"),  # unescaped '/'
        # libpq quotes the bad token, password and all: it is scrubbed, and not chained
        ("postgresql://genie:hunter2%zzhunter2@127.0.0.1:1/app", "invalid percent-encoded"),
    ],
)
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_bad_urls_raise_configuration_errors(url: str, match: str, mode: str) -> None:
    with pytest.raises(ConfigurationError, match=match) as error:
        _open(url, mode)
    assert "hunter2" not in _chain(error.value)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_not_a_sqlite_database(tmp_path: Path, mode: str) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database file" * 100)
    with pytest.raises(ConfigurationError, match=r"Could not open the sqlite .*not a database"):
        _open(f"sqlite:///{junk}", mode)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_missing_postgres_extra_names_it(monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    monkeypatch.setitem(sys.modules, "langgraph.checkpoint.postgres", None)
    monkeypatch.setitem(sys.modules, "langgraph.checkpoint.postgres.aio", None)
    with pytest.raises(ConfigurationError, match=r"genie-tools\[postgres\]") as error:
        _open("postgresql://genie:hunter2hunter2@127.0.0.1:1/app", mode)
    assert "uv sync --extra postgres" in str(error.value)
    assert "hunter2" not in str(error.value)


def test_errors_inside_the_block_pass_through(tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="mine"), checkpointer_from_url(f"sqlite:///{tmp_path}/a.db"):
        raise KeyError("mine")


# --- passwords never show ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://genie:s3cret@db:5432/app", "postgresql://genie:***@db:5432/app"),
        ("postgresql://genie@db/app?password=s3cret&sslmode=require",
         "postgresql://genie@db/app?password=***&sslmode=require"),
        ("postgresql://genie:p%40ss@db/app", "postgresql://genie:***@db/app"),
        ("postgresql://genie:p@ss@db/app", "postgresql://genie:***@db/app"),
        ("postgresql://genie:a/b?c@db/app", "postgresql://***@db/app"),
        ("postgresql://db/app", "postgresql://db/app"),
        ("host=db password='s e c' user=genie", "host=db password=*** user=genie"),
        ("sqlite:///tmp/x.db", "sqlite:///tmp/x.db"),
    ],
)  # fmt: skip
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def _with_password(url: str, password: str | None, *, port: int | None = None) -> str:
    parts = urlsplit(url)
    host = f"{parts.hostname}:{port or parts.port}"
    userinfo = f"{parts.username}:{password}" if password else f"{parts.username}"
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{host}"))


def _open(url: str, mode: str) -> None:
    """Open and close the checkpointer of ``url``, with the sync or the async helper."""
    if mode == "sync":
        with checkpointer_from_url(url):
            return

    async def enter() -> None:
        async with acheckpointer_from_url(url):
            return

    asyncio.run(enter())


def _closed_port() -> int:
    """A loopback port with nothing listening (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _chain(error: BaseException | None) -> str:
    text = ""
    while error is not None:
        text += f"{error!s} {error!r} "
        error = error.__cause__ or error.__context__
    return text


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_wrong_password_is_redacted(
    postgres_url: str, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "Wr0ngPassw0rd-Zq"
    url = _with_password(postgres_url, secret)
    caplog.set_level(logging.DEBUG, logger="genie_tools.graph.checkpoint")

    with pytest.raises(ConfigurationError, match="Could not open the postgres") as error:
        _open(url, mode)
    assert "password authentication failed" in str(error.value)
    assert ":***@127.0.0.1" in str(error.value)
    assert secret not in _chain(error.value)
    assert ":***@" in caplog.text
    assert secret not in caplog.text


def test_unreachable_server_is_redacted(postgres_url: str) -> None:
    url = _with_password(postgres_url, "Unreach4ble-Secret", port=_closed_port())
    with pytest.raises(ConfigurationError, match="database is reachable") as error:
        _open(url, "sync")
    assert "Unreach4ble" not in _chain(error.value)


def test_open_checkpointer_shows_no_password(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    password = urlsplit(postgres_url).password
    assert password, "the test server must use a password"
    caplog.set_level(logging.DEBUG, logger="genie_tools.graph.checkpoint")
    with checkpointer_from_url(postgres_url) as saver:
        assert password not in repr(saver)
        assert password not in repr(saver.conn)  # type: ignore[attr-defined]
    assert "Opening the postgres checkpointer" in caplog.text
    assert password not in caplog.text
