"""When to poll next: an adaptive, status-aware schedule, stall detection and a deadline.

Genie does not say how long an answer will take, and the same space answers in 3 s
or in 3 minutes. A fixed interval is either wasteful (many polls on long answers) or
slow (late detection on short ones). :class:`PollSchedule` instead waits a *fraction
of the time already elapsed*: the interval grows geometrically with the wait, so the
number of polls grows with the logarithm of the duration while the detection lag stays
a small, constant share of it.

The fraction depends on the status, because only some statuses can end the wait.
A message finishes from ``EXECUTING_QUERY`` (or from ``ASKING_AI`` when Genie answers
with text only), so those are polled closely; the early phases (``SUBMITTED``,
``FETCHING_METADATA``, ``FILTERING_CONTEXT``) cannot complete and are polled sparsely.
With the defaults, simulated against the emulator's latency model (log-normal phases),
the median detection lag is ~3 % of the duration (≥ 50 ms) and a 30 s answer takes
~13 polls where a 0.5 s fixed interval takes ~60.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = ["DEFAULT_FRACTIONS", "Deadline", "PollSchedule", "StallDetector"]

DEFAULT_FRACTIONS: Mapping[str, float] = MappingProxyType(
    {
        # Cannot finish from here: back off quickly (doubling).
        "SUBMITTED": 1.0,
        "FETCHING_METADATA": 1.0,
        "FILTERING_CONTEXT": 1.0,
        # A text-only answer (e.g. a clarification) finishes from ASKING_AI.
        "ASKING_AI": 0.35,
        # The query starts next: look again soon to catch EXECUTING_QUERY early.
        "PENDING_WAREHOUSE": 0.25,
        # The answer is near: ~6 % of the elapsed time keeps the median lag near 3 %.
        "EXECUTING_QUERY": 0.06,
    }
)
_UNKNOWN_STATUS_FRACTION = 0.35


@dataclass(frozen=True)
class PollSchedule:
    """The delay before the next poll, from the status and the time elapsed.

    Args:
        first_delay: Delay before the first poll after submitting.
        min_interval: Shortest delay between polls.
        max_interval: Longest delay between polls.
        fractions: Per status, the delay as a fraction of the elapsed time.

    Example:
        >>> s = PollSchedule()
        >>> s.next_delay("SUBMITTED", elapsed=0.0, polls=0)
        0.15
        >>> s.next_delay("FILTERING_CONTEXT", elapsed=2.0, polls=3)
        2.0
        >>> round(s.next_delay("EXECUTING_QUERY", elapsed=20.0, polls=9), 2)
        1.2
        >>> s.next_delay("ASKING_AI", elapsed=600.0, polls=40)
        5.0
    """

    first_delay: float = 0.15
    min_interval: float = 0.1
    max_interval: float = 5.0
    fractions: Mapping[str, float] = field(default_factory=lambda: DEFAULT_FRACTIONS)

    def next_delay(self, status: str | None, *, elapsed: float, polls: int) -> float:
        """Seconds to wait before the next poll.

        Args:
            status: The last status seen (``None`` if none yet).
            elapsed: Seconds since the question was submitted.
            polls: Polls made so far for this message.
        """
        if polls == 0:
            return min(self.first_delay, self.max_interval)
        fraction = self.fractions.get(status or "", _UNKNOWN_STATUS_FRACTION)
        return min(self.max_interval, max(self.min_interval, fraction * max(elapsed, 0.0)))


class StallDetector:
    """Notices a status that stays the same for too long.

    :meth:`observe` returns True once per stretch of an unchanged status, when it has
    lasted ``stall_seconds``; a new status starts a new stretch.

    Example:
        >>> d = StallDetector(10.0)
        >>> d.observe("ASKING_AI", now=0.0), d.observe("ASKING_AI", now=10.5)
        (False, True)
        >>> d.observe("ASKING_AI", now=30.0), d.observe("EXECUTING_QUERY", now=31.0)
        (False, False)
    """

    def __init__(self, stall_seconds: float | None) -> None:
        self.stall_seconds = stall_seconds
        self.status: str | None = None
        self.since = 0.0
        self._reported = False

    def observe(self, status: str, *, now: float) -> bool:
        """Record the status seen at ``now``; True if it has just become a stall."""
        if status != self.status:
            self.status, self.since, self._reported = status, now, False
            return False
        if self.stall_seconds is None or self._reported:
            return False
        if now - self.since >= self.stall_seconds:
            self._reported = True
            return True
        return False

    def unchanged_for(self, now: float) -> float:
        """Seconds the current status has lasted."""
        return max(0.0, now - self.since)


@dataclass(frozen=True)
class Deadline:
    """A point on the monotonic clock after which an operation gives up.

    Example:
        >>> d = Deadline.after(5.0, now=100.0)
        >>> d.remaining(now=103.0), d.expired(now=106.0)
        (2.0, True)
    """

    at: float

    @classmethod
    def after(cls, seconds: float, *, now: float | None = None) -> Deadline:
        """The deadline ``seconds`` from ``now`` (default: the monotonic clock)."""
        return cls((time.monotonic() if now is None else now) + seconds)

    def remaining(self, *, now: float) -> float:
        """Seconds left (never negative)."""
        return max(0.0, self.at - now)

    def expired(self, *, now: float) -> bool:
        """Whether the deadline has passed."""
        return now >= self.at
