"""Which Genie conversation each (thread, space) is in, and which answers a thread has seen.

A Genie follow-up only has context inside its conversation, so the tools remember, per
conversation thread of the agent (LangGraph's ``configurable.thread_id``) and per space,
the Genie conversation to continue. Two threads never share a conversation, so one tool
instance can serve many users. The mapping is a small protocol: the in-memory store
here serves scripts and servers; the LangGraph node keeps the same facts in the graph's
checkpointed state instead.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Protocol, runtime_checkable

from genie_tools.models import MessageRef

__all__ = [
    "DEFAULT_THREAD",
    "ConversationStore",
    "InMemoryConversationStore",
    "thread_id_from",
]

DEFAULT_THREAD = "default"
"""The thread of calls made without ``configurable.thread_id`` (single-user scripts)."""


def thread_id_from(config: Any) -> str:
    """The conversation thread of a run, from its ``RunnableConfig``.

    Example:
        >>> thread_id_from({"configurable": {"thread_id": "user-42"}})
        'user-42'
        >>> thread_id_from(None)
        'default'
    """
    configurable = (config or {}).get("configurable") or {}
    thread = configurable.get("thread_id")
    return str(thread) if thread not in (None, "") else DEFAULT_THREAD


@runtime_checkable
class ConversationStore(Protocol):
    """Where the tools keep Genie conversation ids and recent answers, per thread."""

    def conversation(self, thread_id: str, space_id: str) -> str | None:
        """The Genie conversation this thread continues in this space, if any."""
        ...

    def remember(self, thread_id: str, ref: MessageRef) -> None:
        """Record an answered message: its conversation continues, its result can be paged."""
        ...

    def message(self, thread_id: str, message_id: str) -> MessageRef | None:
        """A message this thread was answered with (``None``: not this thread's)."""
        ...

    def reset(self, thread_id: str, space_id: str | None = None) -> None:
        """Forget the thread's conversation in one space, or in every space."""
        ...


class InMemoryConversationStore:
    """A thread-safe, bounded, in-process :class:`ConversationStore`.

    Args:
        max_threads: Threads remembered; the least recently used are forgotten first.
        max_messages: Answers remembered per thread for paging their results.

    Example:
        >>> store = InMemoryConversationStore()
        >>> ref = MessageRef(space_id="s1", conversation_id="c1", message_id="m1")
        >>> store.remember("alice", ref)
        >>> store.conversation("alice", "s1"), store.conversation("bob", "s1")
        ('c1', None)
    """

    def __init__(self, *, max_threads: int = 10_000, max_messages: int = 50) -> None:
        self.max_threads = max_threads
        self.max_messages = max_messages
        self._lock = threading.Lock()
        self._threads: OrderedDict[str, _Thread] = OrderedDict()

    def __repr__(self) -> str:
        return f"InMemoryConversationStore(threads={len(self._threads)})"

    def _thread(self, thread_id: str, *, create: bool) -> _Thread | None:
        thread = self._threads.get(thread_id)
        if thread is None and create:
            thread = self._threads[thread_id] = _Thread()
            while len(self._threads) > self.max_threads:
                self._threads.popitem(last=False)
        if thread is not None:
            self._threads.move_to_end(thread_id)
        return thread

    def conversation(self, thread_id: str, space_id: str) -> str | None:  # noqa: D102
        with self._lock:
            thread = self._thread(thread_id, create=False)
            return thread.conversations.get(space_id) if thread else None

    def remember(self, thread_id: str, ref: MessageRef) -> None:  # noqa: D102
        with self._lock:
            thread = self._thread(thread_id, create=True)
            assert thread is not None
            thread.conversations[ref.space_id] = ref.conversation_id
            thread.messages[ref.message_id] = ref
            thread.messages.move_to_end(ref.message_id)
            while len(thread.messages) > self.max_messages:
                thread.messages.popitem(last=False)

    def message(self, thread_id: str, message_id: str) -> MessageRef | None:  # noqa: D102
        with self._lock:
            thread = self._thread(thread_id, create=False)
            return thread.messages.get(message_id) if thread else None

    def reset(self, thread_id: str, space_id: str | None = None) -> None:  # noqa: D102
        with self._lock:
            thread = self._thread(thread_id, create=False)
            if thread is None:
                return
            if space_id is None:
                thread.conversations.clear()
            else:
                thread.conversations.pop(space_id, None)


class _Thread:
    __slots__ = ("conversations", "messages")

    def __init__(self) -> None:
        self.conversations: dict[str, str] = {}
        self.messages: OrderedDict[str, MessageRef] = OrderedDict()
