"""Conversations that outlive the process: the emulator's state in a SQLite file.

With ``GenieEmulator(state_dir=...)`` every conversation, message (question, status
schedule, SQL, answer, feedback) and query result is written through to
``<state_dir>/emulator-state.sqlite3`` as it changes, and read back by the next
emulator started on the same folder, so that ``genie-tools ask --thread`` continues a
conversation in a new process. The planner's reading of each earlier question (what a
follow-up edits) is not stored: it is re-derived by replaying the conversation's
questions through the engine, which is deterministic, so it always fits the engine
that reads it. The default user's token and client secret are kept too, so clients
configured for the folder's emulator keep working; the file is private to its owner.

Safe for processes one after another (and, through SQLite's locking, for two at once,
though each then only sees the other's conversations when it starts).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from genie_tools.emulator.engine import Interpretation
from genie_tools.emulator.latency import Step
from genie_tools.emulator.records import Conversation, Message
from genie_tools.emulator.results import Column, TableResult

STATE_FILE = "emulator-state.sqlite3"
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS conversations (id TEXT PRIMARY KEY, body TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS messages (id TEXT PRIMARY KEY, conversation_id TEXT NOT NULL, "
    "created REAL NOT NULL, body TEXT NOT NULL)",
)


class StateStore:
    """The emulator's conversations, messages and results in ``<folder>/emulator-state.sqlite3``.

    Args:
        folder: Created if missing (private to the user: it holds the default token).

    Example:
        >>> store = StateStore(Path("/tmp/genie-state"))  # doctest: +SKIP
        >>> conversations, messages = store.load()  # doctest: +SKIP
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.folder / STATE_FILE
        path.touch(mode=0o600, exist_ok=True)
        os.chmod(path, 0o600)  # it holds the default user's token
        self.path = path
        # One connection for every thread, serialized by the lock (writes are small).
        self._con = sqlite3.connect(path, check_same_thread=False, timeout=30)
        self._lock = threading.Lock()
        with self._lock, self._con:
            self._con.execute("PRAGMA journal_mode=WAL")
            for statement in _SCHEMA:
                self._con.execute(statement)

    def __repr__(self) -> str:
        return f"StateStore({str(self.folder)!r})"

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._con.close()

    # secrets and counters ------------------------------------------------
    def value(self, key: str, make: Callable[[], str]) -> str:
        """A stored value, made and stored by ``make()`` the first time."""
        with self._lock, self._con:
            row = self._con.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            if row is not None:
                return str(row[0])
            made = make()
            self._con.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (key, made))
            return made

    def put(self, key: str, value: str) -> None:
        """Store a value."""
        with self._lock, self._con:
            self._con.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def get(self, key: str) -> str | None:
        """A stored value, or None."""
        with self._lock:
            row = self._con.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    # records --------------------------------------------------------------
    def save(self, conversation: Conversation, message: Message | None = None) -> None:
        """Write a conversation (and one of its messages) through to the file."""
        with self._lock, self._con:
            self._con.execute(
                "INSERT OR REPLACE INTO conversations (id, body) VALUES (?, ?)",
                (conversation.id, _dumps(_conversation_json(conversation))),
            )
            if message is not None:
                self._con.execute(
                    "INSERT OR REPLACE INTO messages (id, conversation_id, created, body) "
                    "VALUES (?, ?, ?, ?)",
                    (message.id, conversation.id, message.created, _dumps(message_json(message))),
                )

    def delete_conversation(self, conversation_id: str) -> None:
        """Forget a conversation and its messages."""
        with self._lock, self._con:
            self._con.execute("DELETE FROM messages WHERE conversation_id = ?", (conversation_id,))
            self._con.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))

    def load(self) -> tuple[list[Conversation], list[Message]]:
        """Every stored conversation and message (messages oldest first)."""
        with self._lock:
            convs = self._con.execute("SELECT body FROM conversations").fetchall()
            msgs = self._con.execute("SELECT body FROM messages ORDER BY created, id").fetchall()
        return (
            [_conversation(json.loads(r[0])) for r in convs],
            [message_from_json(json.loads(r[0])) for r in msgs],
        )

    def restore(
        self, space_ids: set[str]
    ) -> tuple[dict[str, Conversation], dict[str, Message], tuple[Any, ...] | None]:
        """What a new service starts from: the conversations of spaces that still exist.

        Returns:
            Conversations and messages by id, and the id generator's state (or None).
        """
        stored_conversations, stored_messages = self.load()
        conversations = {c.id: c for c in stored_conversations if c.space_id in space_ids}
        messages = {m.id: m for m in stored_messages if m.conversation_id in conversations}
        for conv in conversations.values():
            conv.message_ids = [m for m in conv.message_ids if m in messages]
        rng = self.get("rng")
        if rng is None:
            return conversations, messages, None
        version, internal, gauss = json.loads(rng)
        return conversations, messages, (version, tuple(internal), gauss)


def _dumps(body: dict[str, Any]) -> str:
    # ensure_ascii: a lone surrogate in a question is stored, not an encoding error.
    return json.dumps(body, ensure_ascii=True, separators=(",", ":"))


def _conversation_json(c: Conversation) -> dict[str, Any]:
    return {
        "id": c.id,
        "space_id": c.space_id,
        "title": c.title,
        "principal": c.principal,
        "user_id": c.user_id,
        "created": c.created,
        "updated": c.updated,
        "message_ids": list(c.message_ids),
    }


def _conversation(d: dict[str, Any]) -> Conversation:
    return Conversation(**d)


_INTERPRETATION = ("question", "sql", "duckdb_sql", "title", "description", "clarification")
_MESSAGE = (
    "id space_id conversation_id content principal user_id created query_attachment_id "
    "text_attachment_id suggestions_attachment_id statement_id result_ttl fault error "
    "result_ready_at expires_at cancelled_at feedback expire_on_completion summary"
).split()


def message_json(m: Message) -> dict[str, Any]:
    """A message as JSON (its interpretation without the planner's reading)."""
    i = m.interpretation
    body: dict[str, Any] = {k: getattr(m, k) for k in _MESSAGE}
    body["schedule"] = [[s.status, s.at] for s in m.schedule]
    body["interpretation"] = {k: getattr(i, k) for k in _INTERPRETATION}
    body["interpretation"]["suggested_questions"] = list(i.suggested_questions)
    r = m.result
    body["result"] = (
        None
        if r is None
        else {
            "columns": [[c.name, c.type_name, c.type_text] for c in r.columns],
            "rows": r.rows,
            "truncated": r.truncated,
            "statement_id": r.statement_id,
        }
    )
    return body


def message_from_json(d: dict[str, Any]) -> Message:
    """The message :func:`message_json` wrote."""
    fields = {k: d[k] for k in _MESSAGE}
    result = d.get("result")
    return Message(
        **fields,
        schedule=[Step(status, at) for status, at in d["schedule"]],
        interpretation=Interpretation(**d["interpretation"]),
        result=(
            None
            if result is None
            else TableResult(
                columns=[Column(*c) for c in result["columns"]],
                rows=result["rows"],
                truncated=result["truncated"],
                statement_id=result["statement_id"],
            )
        ),
    )
