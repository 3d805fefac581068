"""An optional TTL cache of answers to identical *first* questions in a space.

Genie's question budget is small, and dashboards, agents and tests often ask the same
opening question again. Only first questions are cached: a follow-up's answer depends
on its conversation, so follow-ups always go to Genie.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from genie_tools.models import GenieAnswer

__all__ = ["AnswerCache"]

_SPACES = re.compile(r"\s+")


class AnswerCache:
    """Answers by (host, space, normalised question), each kept for ``ttl`` seconds.

    Thread-safe; least recently used entries go first when ``max_entries`` is reached.

    Example:
        >>> cache = AnswerCache(ttl=60, max_entries=10)
        >>> cache.get("h", "space", "Revenue by year?") is None
        True
        >>> cache.hits, cache.misses
        (0, 1)
    """

    def __init__(
        self, *, ttl: float, max_entries: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, str, str], tuple[float, GenieAnswer]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def _key(host: str, space_id: str, question: str) -> tuple[str, str, str]:
        # Case and spacing do not change what Genie is asked to do.
        return host, space_id, _SPACES.sub(" ", question.strip().lower())

    def get(self, host: str, space_id: str, question: str) -> GenieAnswer | None:
        """The cached answer (marked ``from_cache``), or None; counts a hit or a miss."""
        key = self._key(host, space_id, question)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] <= self._clock():
                if entry is not None:
                    del self._entries[key]
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry[1].model_copy(update={"from_cache": True})

    def put(self, host: str, space_id: str, question: str, answer: GenieAnswer) -> None:
        """Keep ``answer`` for ``ttl`` seconds."""
        key = self._key(host, space_id, question)
        with self._lock:
            self._entries[key] = (self._clock() + self.ttl, answer)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        """Drop every entry (the counters stay)."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
