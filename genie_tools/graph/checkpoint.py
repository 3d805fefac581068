"""LangGraph checkpointers from one URL, for the CLI, serving and your own graphs.

- ``memory://``: ``InMemorySaver`` (this process only, gone on exit);
- ``sqlite:///relative/file.db``, ``sqlite:////absolute/file.db`` or ``sqlite:///:memory:``:
  ``SqliteSaver`` / ``AsyncSqliteSaver``;
- ``postgresql://user:password@host:5432/db`` (or ``postgres://``): ``PostgresSaver`` /
  ``AsyncPostgresSaver`` (extra: ``postgres``).

SQLite paths follow SQLAlchemy: three slashes then a relative path, four for an absolute
one; missing parent folders are created. Postgres URLs are libpq's, query parameters
included (``?sslmode=require``); the checkpoint tables are created or migrated on open.
Databricks Lakebase is Postgres: databricks-langchain's Lakebase ``CheckpointSaver`` is a
``PostgresSaver``, so a ``postgresql://`` URL to a Lakebase instance works here (with a
fixed credential; for rotating OAuth tokens use that ``CheckpointSaver`` itself).

Bad URLs, unreachable databases and missing extras raise
:class:`~genie_tools.errors.ConfigurationError`. Passwords never appear in an error, a log
line or a repr: :func:`redact_url` hides them.

Example:
    >>> from langgraph.graph import START, MessagesState, StateGraph
    >>> builder = StateGraph(MessagesState)
    >>> _ = builder.add_node("echo", lambda state: {"messages": [("ai", "hi")]})
    >>> _ = builder.add_edge(START, "echo")
    >>> with checkpointer_from_url("sqlite:///:memory:") as saver:
    ...     graph = builder.compile(checkpointer=saver)
    ...     config = {"configurable": {"thread_id": "t1"}}
    ...     _ = graph.invoke({"messages": [("user", "hello")]}, config)
    ...     len(graph.get_state(config).values["messages"])
    2
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import SplitResult, parse_qsl, unquote, urlsplit

from genie_tools._optional import MissingExtraError, require
from genie_tools.errors import ConfigurationError

if TYPE_CHECKING:
    from langgraph.checkpoint.base import BaseCheckpointSaver

__all__ = ["acheckpointer_from_url", "checkpointer_from_url", "redact_url"]

_log = logging.getLogger(__name__)

_EXAMPLES = "memory://, sqlite:///path/to/file.db or postgresql://user:password@host:5432/db"
_QUERY_SECRET = re.compile(r"(?i)\b(password|passwd|pwd)=('[^']*'|[^&\s]*)")


@dataclass(frozen=True, repr=False)
class _Target:
    """A parsed checkpointer URL; ``secrets`` are scrubbed from any message."""

    kind: Literal["memory", "sqlite", "postgres"]
    location: str  # the SQLite path, or the Postgres URL as given
    shown: str  # the URL with its password hidden
    secrets: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"_Target({self.kind}, {self.shown})"


def redact_url(url: str) -> str:
    """``url`` with its password (in the user info or the query) replaced by ``***``.

    Example:
        >>> redact_url("postgresql://genie:s3cret@db:5432/app?sslmode=require")
        'postgresql://genie:***@db:5432/app?sslmode=require'
    """
    text = _QUERY_SECRET.sub(r"\1=***", url)
    scheme, sep, rest = text.partition("://")
    if not sep or "@" not in rest:
        return text
    ends = [i for i in (rest.find(c) for c in "/?#") if i >= 0]
    netloc, tail = rest[: min(ends, default=len(rest))], rest[min(ends, default=len(rest)) :]
    if "@" not in netloc:  # an unescaped '/', '?' or '#' in the password: hide all before '@'
        return f"{scheme}://***@{rest.rpartition('@')[2]}"
    userinfo, _, host = netloc.rpartition("@")
    user, colon, _ = userinfo.partition(":")
    return f"{scheme}://{user}{':***' if colon else ''}@{host}{tail}"


def _parse(url: str) -> _Target:
    shown = redact_url(url)
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep:
        hint = f" (a SQLite file? use sqlite:///{url})" if url.endswith((".db", ".sqlite")) else ""
        raise ConfigurationError(f"{shown!r} is not a checkpointer URL{hint}; use {_EXAMPLES}.")
    if scheme == "memory":
        if rest:
            raise ConfigurationError(f"Malformed checkpointer URL {shown!r}: use plain memory://.")
        return _Target("memory", "", shown)
    if scheme == "sqlite":
        path = rest[1:] if rest.startswith("/") else ""
        if not path or "?" in path or "#" in path:
            raise ConfigurationError(
                f"Malformed SQLite checkpointer URL {shown!r}: use sqlite:///relative/file.db, "
                "sqlite:////absolute/file.db or sqlite:///:memory: (no host, no query)."
            )
        return _Target("sqlite", path, shown)
    if scheme in ("postgresql", "postgres"):
        parts = urlsplit(url)
        password = parts.password
        secrets = {password, unquote(password)} if password else set()
        secrets |= {v for k, v in parse_qsl(parts.query) if k.lower() == "password" and v}
        if not _valid_port(parts):
            raise ConfigurationError(
                f"Malformed Postgres checkpointer URL {shown!r}: the port must be a number "
                "from 1 to 65535 (and special characters in the password percent-encoded)."
            )
        return _Target("postgres", url, shown, tuple(sorted(secrets, key=len, reverse=True)))
    raise ConfigurationError(
        f"Unknown checkpointer URL scheme {scheme!r} in {shown!r}; use {_EXAMPLES}."
    )


def _valid_port(parts: SplitResult) -> bool:
    # Not raised from the ValueError: its text may quote a password that urlsplit took
    # for the port.
    try:
        parts.port  # noqa: B018 - parses the port
    except ValueError:
        return False
    return True


def _postgres(module: str) -> ModuleType:
    try:
        return require(module, extra="postgres", purpose="The Postgres checkpointer")
    except MissingExtraError as exc:
        raise ConfigurationError(str(exc)) from exc


def _open_error(target: _Target, exc: BaseException) -> ConfigurationError:
    detail = str(exc).strip()
    for secret in target.secrets:
        detail = detail.replace(secret, "***")
    return ConfigurationError(
        f"Could not open the {target.kind} checkpointer at {target.shown!r} "
        f"({type(exc).__name__}: {detail}). Check the URL, that the database is reachable "
        "and that the credentials are right."
    )


def _saver_class(target: _Target, *, aio: bool) -> tuple[Any, tuple[type[BaseException], ...]]:
    """The saver class for ``target`` and the errors that mean "cannot open it"."""
    if target.kind == "sqlite":
        from langgraph.checkpoint.sqlite import SqliteSaver
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        return (AsyncSqliteSaver if aio else SqliteSaver), (sqlite3.Error, OSError)
    if aio:
        saver = _postgres("langgraph.checkpoint.postgres.aio").AsyncPostgresSaver
    else:
        saver = _postgres("langgraph.checkpoint.postgres").PostgresSaver
    return saver, (_postgres("psycopg").Error,)


def _make_parent(target: _Target) -> None:
    if target.kind == "sqlite" and target.location != ":memory:":
        Path(target.location).parent.mkdir(parents=True, exist_ok=True)


@contextmanager
def checkpointer_from_url(url: str) -> Iterator[BaseCheckpointSaver[Any]]:
    """Open the checkpointer that ``url`` names, and close it on exit.

    Args:
        url: ``memory://``, ``sqlite:///path/to/file.db`` (or ``sqlite:///:memory:``) or
            ``postgresql://user:password@host:port/db``.

    Yields:
        A ready checkpointer for ``StateGraph.compile(checkpointer=...)``; for Postgres
        its tables are set up.

    Raises:
        ConfigurationError: The URL is malformed or of an unknown scheme, the database
            cannot be opened, or the ``postgres`` extra is not installed.

    Example:
        >>> with checkpointer_from_url("memory://") as saver:
        ...     type(saver).__name__
        'InMemorySaver'
    """
    target = _parse(url)
    _log.debug("Opening the %s checkpointer at %s", target.kind, target.shown)
    if target.kind == "memory":
        from langgraph.checkpoint.memory import InMemorySaver

        yield InMemorySaver()
        return
    saver_cls, errors = _saver_class(target, aio=False)
    with ExitStack() as stack:
        failure = None
        try:
            _make_parent(target)
            saver = stack.enter_context(saver_cls.from_conn_string(target.location))
            saver.setup()
        except errors as exc:
            failure = _open_error(target, exc)
        if failure:  # raised outside `except`: the driver's own text is not kept as context
            raise failure
        yield saver


@asynccontextmanager
async def acheckpointer_from_url(url: str) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    """Open the async-capable checkpointer that ``url`` names, and close it on exit.

    The async twin of :func:`checkpointer_from_url`, for ``ainvoke`` / ``astream``:
    ``AsyncSqliteSaver`` and ``AsyncPostgresSaver`` (``InMemorySaver`` serves both).

    Args:
        url: ``memory://``, ``sqlite:///path/to/file.db`` (or ``sqlite:///:memory:``) or
            ``postgresql://user:password@host:port/db``.

    Yields:
        A ready async checkpointer; for Postgres its tables are set up.

    Raises:
        ConfigurationError: The URL is malformed or of an unknown scheme, the database
            cannot be opened, or the ``postgres`` extra is not installed.

    Example:
        >>> import asyncio
        >>> async def main():
        ...     async with acheckpointer_from_url("sqlite:///:memory:") as saver:
        ...         return type(saver).__name__
        >>> asyncio.run(main())
        'AsyncSqliteSaver'
    """
    target = _parse(url)
    _log.debug("Opening the async %s checkpointer at %s", target.kind, target.shown)
    if target.kind == "memory":
        from langgraph.checkpoint.memory import InMemorySaver

        yield InMemorySaver()
        return
    saver_cls, errors = _saver_class(target, aio=True)
    async with AsyncExitStack() as stack:
        failure = None
        try:
            _make_parent(target)
            saver = await stack.enter_async_context(saver_cls.from_conn_string(target.location))
            await saver.setup()
        except errors as exc:
            failure = _open_error(target, exc)
        if failure:
            raise failure
        yield saver
