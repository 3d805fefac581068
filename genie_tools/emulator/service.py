"""The Genie service behind the HTTP routes: spaces, conversations, messages, limits.

Operations are plain methods that return wire JSON or raise :class:`ApiError`;
the HTTP layer (``server.py``) only translates. Query execution is handed back
to the caller as a callable so that it runs off the event loop.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
import zlib
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from genie_tools.emulator.config import EmulatorConfig
from genie_tools.emulator.data import Database
from genie_tools.emulator.engine import Interpretation, SpaceEngine, summarize
from genie_tools.emulator.faults import Fault, FaultPlan
from genie_tools.emulator.latency import LatencyModel
from genie_tools.emulator.records import Conversation, Message
from genie_tools.emulator.results import TableResult, run_query
from genie_tools.emulator.spaces import PERMISSION_RANK, SpaceDecl
from genie_tools.emulator.state import StateStore


class ApiError(Exception):
    """An error answer: HTTP status plus Databricks' ``{"error_code", "message"}`` body."""

    def __init__(
        self, status: int, error_code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message
        self.headers = headers or {}


@dataclass
class Stats:
    """Counters for tests and benchmarks (read with ``GenieEmulator.stats()``)."""

    questions: int = 0
    questions_by_space: Counter[str] = field(default_factory=Counter)
    questions_by_conversation: Counter[str] = field(default_factory=Counter)
    polls: int = 0
    polls_by_message: Counter[str] = field(default_factory=Counter)
    rate_limited: int = 0
    rate_limited_by_space: Counter[str] = field(default_factory=Counter)
    token_requests: int = 0
    requests: Counter[str] = field(default_factory=Counter)
    result_fetches: int = 0
    auth_failures: int = 0


class RateLimiter:
    """A sliding window of question timestamps for the whole workspace."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._times: deque[float] = deque()

    def wait_for(self, now: float) -> float | None:
        """Seconds until a question would be accepted (None: it would be now)."""
        while self._times and self._times[0] <= now - self.window:
            self._times.popleft()
        if len(self._times) >= self.limit:
            return self._times[0] + self.window - now
        return None

    def acquire(self, now: float) -> float | None:
        """Record a question at ``now``; return seconds to wait instead when over the limit."""
        wait = self.wait_for(now)
        if wait is None:
            self._times.append(now)
        return wait


def _page(items: list[Any], page_size: int | None, page_token: str | None) -> tuple[list[Any], str]:
    try:
        start = int(page_token) if page_token else 0
    except ValueError as exc:
        raise ApiError(400, "INVALID_PARAMETER_VALUE", "page_token is not valid") from exc
    if start < 0:
        raise ApiError(400, "INVALID_PARAMETER_VALUE", "page_token is not valid")
    size = page_size if page_size and page_size > 0 else 100
    chunk = items[start : start + size]
    next_token = str(start + size) if start + size < len(items) else ""
    return chunk, next_token


class GenieService:
    """Everything the emulator knows and does, independent of HTTP."""

    def __init__(
        self,
        config: EmulatorConfig,
        database: Database,
        *,
        speed: float,
        seed: int,
        clock: Callable[[], float] = time.time,
        llm: Any = None,
        state: StateStore | None = None,
    ) -> None:
        self.config = config
        self.db = database
        self.clock = clock
        self.lock = threading.RLock()
        self._rng = random.Random(seed)
        self.latency = LatencyModel(config.latency, speed=speed, seed=seed)
        self.faults = FaultPlan(config.faults, seed=seed)
        self.limiter = RateLimiter(config.limits.qpm, config.limits.rate_window_seconds)
        self.spaces: dict[str, SpaceDecl] = {s.id: s for s in config.spaces}
        self.engines = {
            s.id: SpaceEngine(s, database.cursor, llm=llm, names=database.names)
            for s in config.spaces
        }
        self.conversations: dict[str, Conversation] = {}
        self.messages: dict[str, Message] = {}
        self.stats = Stats()
        self.created = clock()
        self.state = state
        self._unrestored: set[str] = set()  # loaded conversations whose readings are unread
        interrupted = self._load_state() if state is not None else []
        # Reading each space's data takes a moment: do it now, off the request path.
        self._preparing = threading.Thread(
            target=self._prepare_engines, args=(interrupted,), name="genie-nl2sql", daemon=True
        )
        self._preparing.start()

    def _prepare_engines(self, interrupted: list[Message]) -> None:
        for engine in self.engines.values():
            engine.prepare()
        for msg in interrupted:  # queries cut short by the previous process's exit
            self.execute(msg)

    def _load_state(self) -> list[Message]:
        """Read the stored conversations of spaces that still exist.

        Returns:
            Messages whose query had not finished when the previous process stopped.
        """
        assert self.state is not None
        self.conversations, self.messages, rng = self.state.restore(set(self.spaces))
        self._unrestored = set(self.conversations)
        if rng is not None:  # ids continue where they stopped instead of repeating
            self._rng.setstate(rng)
        return [
            m
            for m in self.messages.values()
            if self.needs_execution(m) and m.result is None and m.error is None
        ]

    def save(self, msg: Message) -> None:
        """Write a changed message (and its conversation) to the state folder, if any."""
        conv = self.conversations.get(msg.conversation_id)
        if self.state is not None and conv is not None:
            self.state.save(conv, msg)

    def close(self) -> None:
        """Wait for background work on the data to finish (before the data is closed)."""
        self._preparing.join()
        if self.state is not None:
            self.state.close()

    # ids ---------------------------------------------------------------
    def new_id(self) -> str:
        """A 32-hex-digit id, deterministic by seed (and unused, with stored state)."""
        while True:
            new = f"{self._rng.getrandbits(128):032x}"
            if new not in self.conversations and new not in self.messages:
                return new

    def new_statement_id(self) -> str:
        """A UUID-shaped id, as SQL statement ids are."""
        h = self.new_id()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    @staticmethod
    def user_id(principal: str) -> int:
        """A stable numeric user id for a principal."""
        return 1_000_000 + zlib.crc32(principal.encode())

    # spaces --------------------------------------------------------------
    def space(self, space_id: str, principal: str, *, need: str = "CAN_VIEW") -> SpaceDecl:
        """The space, if ``principal`` holds at least ``need`` on it."""
        space = self.spaces.get(space_id)
        if space is None or space.permission_for(principal) == 0:
            raise ApiError(
                404, "RESOURCE_DOES_NOT_EXIST", f"Genie space {space_id} does not exist."
            )
        if space.permission_for(principal) < PERMISSION_RANK[need]:
            raise ApiError(
                403,
                "PERMISSION_DENIED",
                f"User {principal} does not have {need} permission on Genie space {space_id}. "
                f"Ask the space owner to grant {need}.",
            )
        return space

    def space_wire(self, space: SpaceDecl, *, serialized: bool) -> dict[str, Any]:
        """The ``GenieSpace`` JSON."""
        body: dict[str, Any] = {
            "space_id": space.id,
            "title": space.title,
            "description": space.description,
            "warehouse_id": space.warehouse_id,
            "parent_path": space.parent_path,
            "etag": f"{zlib.crc32(space.model_dump_json().encode()):08x}",
        }
        if serialized:
            body["serialized_space"] = space.serialized()
        return body

    def readable_tables(self, principal: str) -> set[tuple[str, str, str]]:
        """Tables of the spaces ``principal`` may run: ``(catalog, schema, table)``, lower."""
        need = PERMISSION_RANK["CAN_RUN"]
        return {
            tuple(t.name.lower().split("."))  # type: ignore[misc]
            for s in self.spaces.values()
            if s.permission_for(principal) >= need
            for t in s.tables
        }

    def list_spaces(
        self, principal: str, page_size: int | None, token: str | None
    ) -> dict[str, Any]:
        """Spaces the principal can see, a page at a time."""
        visible = [s for s in self.spaces.values() if s.permission_for(principal) > 0]
        page, next_token = _page(visible, page_size, token)
        body: dict[str, Any] = {"spaces": [self.space_wire(s, serialized=False) for s in page]}
        if next_token:
            body["next_page_token"] = next_token
        return body

    # conversations ----------------------------------------------------
    def conversation(self, space_id: str, conversation_id: str, principal: str) -> Conversation:
        """A conversation of the space, visible to its owner."""
        conv = self.conversations.get(conversation_id)
        if conv is None or conv.space_id != space_id:
            raise ApiError(
                404, "RESOURCE_DOES_NOT_EXIST", f"Conversation {conversation_id} does not exist."
            )
        if conv.principal != principal:
            raise ApiError(
                403, "PERMISSION_DENIED", f"Conversation {conversation_id} belongs to another user."
            )
        return conv

    def message(
        self, space_id: str, conversation_id: str, message_id: str, principal: str
    ) -> Message:
        """A message of the conversation."""
        self.conversation(space_id, conversation_id, principal)
        msg = self.messages.get(message_id)
        if msg is None or msg.conversation_id != conversation_id:
            raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"Message {message_id} does not exist.")
        return msg

    def list_conversations(
        self, space_id: str, principal: str, include_all: bool, size: int | None, token: str | None
    ) -> dict[str, Any]:
        """Conversations of a space, newest first: the caller's, or everyone's (CAN_MANAGE)."""
        self.space(space_id, principal, need="CAN_MANAGE" if include_all else "CAN_VIEW")
        convs = [
            c
            for c in self.conversations.values()
            if c.space_id == space_id and (include_all or c.principal == principal)
        ]
        convs.sort(key=lambda c: c.created, reverse=True)
        page, next_token = _page(convs, size, token)
        body: dict[str, Any] = {"conversations": [c.to_summary() for c in page]}
        if next_token:
            body["next_page_token"] = next_token
        return body

    def list_messages(
        self, space_id: str, conversation_id: str, principal: str, size: int | None, tok: str | None
    ) -> dict[str, Any]:
        """Messages of a conversation, oldest first."""
        conv = self.conversation(space_id, conversation_id, principal)
        now = self.clock()
        msgs = [self.messages[m] for m in conv.message_ids]
        page, next_token = _page(msgs, size, tok)
        body: dict[str, Any] = {"messages": [m.to_wire(now) for m in page]}
        if next_token:
            body["next_page_token"] = next_token
        return body

    def delete_conversation(self, space_id: str, conversation_id: str, principal: str) -> None:
        """Delete a conversation and its messages."""
        conv = self.conversation(space_id, conversation_id, principal)
        for mid in conv.message_ids:
            self.messages.pop(mid, None)
        del self.conversations[conv.id]
        if self.state is not None:
            self.state.delete_conversation(conv.id)

    def _history(self, conv: Conversation) -> list[Interpretation]:
        """The conversation's interpretations, their readings re-derived after a restart."""
        history = [self.messages[m].interpretation for m in conv.message_ids]
        if conv.id in self._unrestored:
            self._unrestored.discard(conv.id)
            engine = self.engines[conv.space_id]
            for k, interpretation in enumerate(history):
                engine.restore(interpretation, history[:k])
        return history

    # questions ---------------------------------------------------------
    def history(
        self, space_id: str, conversation_id: str | None, content: Any, principal: str
    ) -> list[Interpretation]:
        """Check a question as :meth:`ask` would, and return its conversation's history.

        Used before a slow interpretation (an LLM backend) runs off the lock, so that a
        bad or rate-limited question costs no model call.
        """
        self._check_question(space_id, conversation_id, content, principal)
        wait = self.limiter.wait_for(self.clock())
        if wait is not None:
            raise self._rate_limited(space_id, wait)
        if conversation_id is None:
            return []
        return self._history(self.conversations[conversation_id])

    def _check_question(
        self, space_id: str, conversation_id: str | None, content: Any, principal: str
    ) -> tuple[SpaceDecl, Conversation | None]:
        limits = self.config.limits
        space = self.space(space_id, principal, need="CAN_RUN")
        if not isinstance(content, str) or not content.strip():
            raise ApiError(400, "INVALID_PARAMETER_VALUE", "content must be a non-empty string.")
        if len(content) > limits.max_message_length:
            raise ApiError(
                400,
                "INVALID_PARAMETER_VALUE",
                f"content is {len(content)} characters; the limit is {limits.max_message_length}.",
            )
        if conversation_id is None:
            used = sum(1 for c in self.conversations.values() if c.space_id == space_id)
            if used >= limits.max_conversations_per_space:
                raise ApiError(
                    400,
                    "RESOURCE_LIMIT_EXCEEDED",
                    f"Space {space_id} has reached {limits.max_conversations_per_space} "
                    "conversations; delete old ones to start new ones.",
                )
            conv = None
        else:
            conv = self.conversation(space_id, conversation_id, principal)
            if len(conv.message_ids) >= limits.max_messages_per_conversation:
                raise ApiError(
                    400,
                    "RESOURCE_LIMIT_EXCEEDED",
                    f"Conversation {conversation_id} has reached "
                    f"{limits.max_messages_per_conversation} messages; start a new conversation.",
                )
        return space, conv

    def _rate_limited(self, space_id: str, wait: float) -> ApiError:
        limits = self.config.limits
        self.stats.rate_limited += 1
        self.stats.rate_limited_by_space[space_id] += 1
        retry_after = max(1, math.ceil(wait))
        return ApiError(
            429,
            "RESOURCE_EXHAUSTED",
            f"Too many questions: the workspace limit is {limits.qpm} per "
            f"{limits.rate_window_seconds:g} s. Retry after {retry_after} s.",
            headers={"Retry-After": str(retry_after)},
        )

    def ask(
        self,
        space_id: str,
        conversation_id: str | None,
        content: Any,
        principal: str,
        interpretation: Interpretation | None = None,
    ) -> tuple[Message, Conversation]:
        """Create a message (and a conversation when ``conversation_id`` is None).

        Validation happens before the rate limiter, so bad requests cost no quota.
        ``interpretation`` is given when it was worked out beforehand (see :meth:`history`).
        """
        space, conv = self._check_question(space_id, conversation_id, content, principal)
        now = self.clock()
        wait = self.limiter.acquire(now)
        if wait is not None:
            raise self._rate_limited(space_id, wait)
        if conv is None:
            conv = Conversation(
                id=self.new_id(),
                space_id=space_id,
                title=content.strip()[:100],
                principal=principal,
                user_id=self.user_id(principal),
                created=now,
                updated=now,
            )
            self.conversations[conv.id] = conv
        if interpretation is None:
            history = self._history(conv)
            interpretation = self.engines[space.id].interpret(content.strip(), history)
        msg = self._new_message(space_id, conv, content, principal, interpretation, now)
        conv.message_ids.append(msg.id)
        conv.updated = now
        self.messages[msg.id] = msg
        self.stats.questions += 1
        self.stats.questions_by_space[space_id] += 1
        self.stats.questions_by_conversation[conv.id] += 1
        if self.state is not None:
            self.state.save(conv, msg)
            self.state.put("rng", json.dumps(self._rng.getstate()))
        return msg, conv

    def _new_message(
        self,
        space_id: str,
        conv: Conversation,
        content: str,
        principal: str,
        interpretation: Interpretation,
        now: float,
    ) -> Message:
        fault = self.faults.take_message_fault(space_id)
        kind = fault.kind if fault else None
        terminal = {"stuck": None, "cancelled": "CANCELLED"}.get(kind or "", "COMPLETED")
        if kind == "failed":
            terminal = "FAILED"
        with_query = interpretation.sql is not None and kind not in ("failed",)
        msg = Message(
            id=self.new_id(),
            space_id=space_id,
            conversation_id=conv.id,
            content=content,
            principal=principal,
            user_id=self.user_id(principal),
            created=now,
            schedule=self.latency.schedule(now, with_query=with_query, terminal=terminal),
            interpretation=interpretation,
            query_attachment_id=self.new_id(),
            text_attachment_id=self.new_id(),
            suggestions_attachment_id=self.new_id(),
            statement_id=self.new_statement_id(),
            result_ttl=self.config.limits.result_ttl_seconds,
            fault=kind,
            expire_on_completion=kind == "expired_result",
        )
        if kind == "failed" and fault is not None:
            msg.error = {"error": fault.error_message, "type": fault.error_type}
        return msg

    def needs_execution(self, msg: Message) -> bool:
        """Whether the message's query should run (not for stuck, failed or cancelled ones)."""
        return msg.has_query and msg.fault not in ("stuck", "failed", "cancelled")

    def execute(self, msg: Message) -> None:
        """Run the message's query (call from a worker thread) and finish its answer."""
        try:
            result = self.run_sql(msg.interpretation.duckdb_sql or "", msg.statement_id)
        except Exception as exc:  # the engine's SQL failed on the warehouse: Genie says FAILED
            with self.lock:
                msg.error = {
                    "error": f"SQL execution failed: {exc}",
                    "type": "SQL_EXECUTION_EXCEPTION",
                }
                msg.result_ready_at = self.clock()
                self.save(msg)
            return
        summary = summarize(result)
        # Readers see the answer complete or not at all: expiry is set with readiness.
        with self.lock:
            msg.result = result
            msg.summary = summary
            ready = self.clock()
            msg.result_ready_at = ready
            done = msg.completed_at() or ready
            msg.expires_at = done if msg.expire_on_completion else done + msg.result_ttl
            self.save(msg)

    def run_sql(self, duckdb_sql: str, statement_id: str, *, capped: bool = True) -> TableResult:
        """Execute DuckDB SQL with Genie's row cap (worker thread)."""
        cap = self.config.limits.max_result_rows if capped else None
        result = run_query(self.db.cursor(), duckdb_sql, max_rows=cap)
        result.statement_id = statement_id
        return result

    def add_fault(self, fault: Fault) -> None:
        """Arm a fault."""
        self.faults.add(fault)
