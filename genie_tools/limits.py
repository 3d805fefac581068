"""The question budget and the circuit breaker, shared per workspace by the whole process.

Genie allows a few questions per minute *per workspace*, however many clients ask.
Every :class:`~genie_tools.client.GenieClient` and ``AsyncGenieClient`` for the same
host therefore draws from one :class:`RateLimiter` (see :func:`limits_for`). The
limiter never sleeps: it answers "go" or "wait N seconds", and the caller sleeps the
way it can (``time.sleep`` or ``asyncio.sleep``), so one thread-safe object serves
both worlds.

It adapts when Genie still answers 429 (other processes or replicas share the
workspace): the local limit is halved and recovers by one question per quiet window.

A :class:`CircuitBreaker` per host stops calling a workspace that keeps failing
(5xx, resets, timeouts) and lets one trial call through after a cooldown.

**The budget hint protocol.** A workspace object handed to a client (a
``WorkspaceClient``, or a ``Config``) may say what budget its workspace allows with two
plain attributes: ``genie_questions_per_minute`` (an ``int``: questions per window) and,
optionally, ``genie_rate_window_seconds`` (the window, 60 when absent). The local
emulator's ``workspace_client()`` sets them, so a client built on it takes the
emulator's budget instead of Genie's default of 5 per minute. Explicit settings
(``GenieSettings(qpm=...)`` or ``GENIE_QPM`` / ``GENIE_RATE_WINDOW_SECONDS``) win over
the hint (:func:`settings_with_budget_hint`).
"""

from __future__ import annotations

import bisect
import logging
import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from genie_tools.settings import GenieSettings

__all__ = [
    "BUDGET_HINT",
    "BUDGET_WINDOW_HINT",
    "CircuitBreaker",
    "HostLimits",
    "RateLimiter",
    "budget_hint",
    "limits_for",
    "reset_limits",
    "settings_with_budget_hint",
]

logger = logging.getLogger(__name__)

BUDGET_HINT = "genie_questions_per_minute"
"""Attribute of a workspace object: the questions its workspace allows per window."""
BUDGET_WINDOW_HINT = "genie_rate_window_seconds"
"""Attribute of a workspace object: the window of :data:`BUDGET_HINT`, in seconds."""
# The settings fields a hint would replace: when any is set explicitly, the hint is ignored.
_BUDGET_FIELDS = frozenset({"qpm", "rate_window_seconds"})


class RateLimiter:
    """A sliding-window question budget with 429 back-pressure. Thread-safe.

    Args:
        qpm: Questions allowed per window.
        window: Window length in seconds (60 for "per minute").
        burst: Most questions within ``burst * window / qpm`` seconds; ``None`` lets the
            whole budget go at once. ``burst=1`` spaces questions evenly.

    Example:
        >>> lim = RateLimiter(2, window=60.0)
        >>> lim.try_acquire(now=0.0), lim.try_acquire(now=1.0), lim.try_acquire(now=2.0)
        (0.0, 0.0, 58.02)
        >>> lim.try_acquire(now=60.02)
        0.0
    """

    def __init__(
        self, qpm: int, *, window: float = 60.0, burst: int | None = None, margin: float = 0.02
    ) -> None:
        # ``margin``: Genie counts arrivals on its own clock; a question sent exactly at
        # the window's edge may still land inside it (and a 429 costs a whole second).
        self.margin = margin
        self._lock = threading.Lock()
        self._times: deque[float] = deque()
        self._blocked_until = 0.0
        self._reduced: int | None = None
        self._penalized_at = -math.inf
        self.configure(qpm, window=window, burst=burst)
        self.acquired = 0
        self.penalties = 0

    def configure(self, qpm: int, *, window: float, burst: int | None) -> None:
        """Change the budget (applies from the next question)."""
        with self._lock:
            self.qpm, self.window, self.burst = qpm, window, burst

    def effective_limit(self, now: float) -> int:
        """The current budget per window: ``qpm``, or less while recovering from a 429."""
        with self._lock:
            return self._effective(now)

    def _effective(self, now: float) -> int:
        if self._reduced is None:
            return self.qpm
        # the budget doubles back for every quiet window since the last 429
        quiet = int((now - self._penalized_at) // self.window)
        recovered = self._reduced * 2 ** min(quiet, 30)
        if recovered >= self.qpm:
            self._reduced = None
            return self.qpm
        return recovered

    def try_acquire(self, now: float) -> float:
        """Take one question from the budget, or say how long to wait.

        Returns:
            ``0.0`` when the question may go now (it is counted), else the seconds to
            wait before trying again (nothing is counted).
        """
        with self._lock:
            while self._times and self._times[0] <= now - self.window - self.margin:
                self._times.popleft()
            wait = self._blocked_until - now
            limit = self._effective(now)
            if len(self._times) >= limit:
                wait = max(wait, self._times[-limit] + self.window + self.margin - now)
            if self.burst is not None and len(self._times) >= self.burst:
                span = self.burst * self.window / limit  # spacing follows the current budget
                wait = max(wait, self._times[-self.burst] + span + self.margin - now)
            if wait > 0:
                return wait
            self._times.append(now)
            self.acquired += 1
            return 0.0

    def release(self, acquired_at: float) -> None:
        """Give back a question taken at ``acquired_at`` that provably never reached Genie.

        Example:
            >>> lim = RateLimiter(1, window=60.0, margin=0.0)
            >>> lim.try_acquire(now=5.0), lim.try_acquire(now=6.0)
            (0.0, 59.0)
            >>> lim.release(5.0); lim.try_acquire(now=6.0)
            0.0
        """
        with self._lock:
            try:
                self._times.remove(acquired_at)
            except ValueError:
                return  # already out of the window
            self.acquired -= 1

    def settle(self, acquired_at: float, now: float) -> None:
        """Count a question taken at ``acquired_at`` from ``now``, when its answer came.

        Genie counts a question when it *arrives*, which is after the client took it from
        the budget by however long authentication and the network took (the first
        question of a client also resolves its credentials). Counting from the answer's
        arrival is the safe bound: the window never closes before Genie's does.

        Example:
            >>> lim = RateLimiter(1, window=60.0, margin=0.0)
            >>> lim.try_acquire(now=0.0)
            0.0
            >>> lim.settle(0.0, now=0.5); lim.try_acquire(now=60.0)
            0.5
        """
        with self._lock:
            try:
                self._times.remove(acquired_at)
            except ValueError:
                return  # released, or already out of the window
            # keep the window ordered: concurrent questions may be answered out of order
            bisect.insort(self._times, max(now, acquired_at))

    def penalize(self, now: float, retry_after: float) -> None:
        """Genie answered 429: hold every question for ``retry_after`` and halve the budget.

        429s within one window of the last halving extend the hold but do not halve again.

        Example:
            >>> lim = RateLimiter(10, window=60.0)
            >>> lim.penalize(0.0, 5.0); lim.penalize(1.0, 5.0)
            >>> lim.effective_limit(2.0), lim.try_acquire(2.0)
            (5, 4.0)
        """
        with self._lock:
            # 429s that arrive while an earlier one's Retry-After runs come from the same
            # burst: they extend the hold but halve the budget only once.
            if now >= self._blocked_until and now - self._penalized_at >= self.window:
                self._reduced = max(1, self._effective(now) // 2)
                self._penalized_at = now
                self.penalties += 1
                logger.info(
                    "Genie answered 429; question budget lowered to %d per %g s",
                    self._reduced,
                    self.window,
                )
            self._blocked_until = max(self._blocked_until, now + retry_after)

    def snapshot(self, now: float | None = None) -> dict[str, Any]:
        """Counters for tests, benchmarks and metrics."""
        now = time.monotonic() if now is None else now
        with self._lock:
            return {
                "qpm": self.qpm,
                "effective_limit": self._effective(now),
                "acquired": self.acquired,
                "penalties": self.penalties,
                "blocked_for": max(0.0, self._blocked_until - now),
            }


class CircuitBreaker:
    """Stops calling a workspace after ``threshold`` consecutive failures. Thread-safe.

    Closed: calls go through. Open (after ``threshold`` failures in a row): calls are
    refused for ``cooldown`` seconds. Then one trial call goes through (half-open): a
    success closes the circuit, a failure opens it again.

    Example:
        >>> b = CircuitBreaker(2, cooldown=10.0)
        >>> b.record_failure(now=0.0); b.record_failure(now=1.0)
        >>> b.before_call(now=2.0), b.state
        (9.0, 'open')
        >>> b.before_call(now=11.0), b.state
        (0.0, 'half_open')
        >>> b.record_success(); b.state
        'closed'
    """

    def __init__(self, threshold: int, *, cooldown: float) -> None:
        self._lock = threading.Lock()
        self.threshold = threshold
        self.cooldown = cooldown
        self.state = "closed"
        self.failures = 0
        self.opened = 0
        self._opened_at = 0.0
        self._trial_started = 0.0

    def configure(self, threshold: int, *, cooldown: float) -> None:
        """Change the thresholds."""
        with self._lock:
            self.threshold, self.cooldown = threshold, cooldown

    def before_call(self, now: float) -> float:
        """``0.0`` if a call may go now, else seconds until one may."""
        with self._lock:
            if self.state == "closed":
                return 0.0
            reopen_at = self._opened_at + self.cooldown
            if self.state == "open" and now >= reopen_at:
                self.state, self._trial_started = "half_open", now
                return 0.0
            if self.state == "half_open" and now - self._trial_started > self.cooldown:
                # The trial call never reported back (its caller was cancelled): allow another.
                self._trial_started = now
                return 0.0
            return max(reopen_at - now, 0.1) if self.state == "open" else 0.5

    def record_success(self) -> None:
        """A call reached Genie and got an answer (any non-5xx status)."""
        with self._lock:
            self.failures = 0
            self.state = "closed"

    def record_failure(self, now: float) -> None:
        """A call failed (5xx, connection error, timeout)."""
        with self._lock:
            self.failures += 1
            if self.state == "half_open" or (
                self.state == "closed" and self.failures >= self.threshold
            ):
                if self.state == "closed":
                    logger.warning(
                        "%d consecutive Genie failures: pausing calls for %g s",
                        self.failures,
                        self.cooldown,
                    )
                self.state, self._opened_at = "open", now
                self.opened += 1


@dataclass(frozen=True)
class HostLimits:
    """The limiter and breaker of one workspace host."""

    host: str
    limiter: RateLimiter
    breaker: CircuitBreaker


_registry: dict[str, HostLimits] = {}
_registry_lock = threading.Lock()


def limits_for(host: str, settings: GenieSettings) -> HostLimits:
    """The process-wide limits of ``host``, created on first use.

    A client configured differently from the existing limits of its host reconfigures
    them for every client of that host (and says so in the log): one workspace has one
    budget.

    Example:
        >>> from genie_tools.settings import GenieSettings
        >>> a = limits_for("https://example.cloud.databricks.com", GenieSettings())
        >>> a is limits_for("https://example.cloud.databricks.com/", GenieSettings())
        True
    """
    key = host.rstrip("/").lower()
    s = settings
    with _registry_lock:
        found = _registry.get(key)
        if found is None:
            found = HostLimits(
                key,
                RateLimiter(s.qpm, window=s.rate_window_seconds, burst=s.rate_burst),
                CircuitBreaker(s.breaker_failure_threshold, cooldown=s.breaker_cooldown_seconds),
            )
            _registry[key] = found
            return found
    lim, brk = found.limiter, found.breaker
    if (lim.qpm, lim.window, lim.burst) != (s.qpm, s.rate_window_seconds, s.rate_burst):
        logger.warning(
            "question budget for %s changed from %d/%gs to %d/%gs by a new client",
            key,
            lim.qpm,
            lim.window,
            s.qpm,
            s.rate_window_seconds,
        )
        lim.configure(s.qpm, window=s.rate_window_seconds, burst=s.rate_burst)
    if (brk.threshold, brk.cooldown) != (s.breaker_failure_threshold, s.breaker_cooldown_seconds):
        brk.configure(s.breaker_failure_threshold, cooldown=s.breaker_cooldown_seconds)
    return found


def reset_limits() -> None:
    """Forget every host's limits (for tests)."""
    with _registry_lock:
        _registry.clear()


def budget_hint(workspace: object) -> tuple[int, float] | None:
    """The budget a workspace object declares (see the module's hint protocol), if any.

    Returns:
        ``(questions, window_seconds)`` within :class:`GenieSettings`' ranges (a larger
        allowance is lowered to the most the settings accept), or ``None`` when the
        object declares nothing usable (an unusable hint is logged and ignored).

    Example:
        >>> class Emulated:
        ...     genie_questions_per_minute = 100
        >>> budget_hint(Emulated()), budget_hint(object())
        ((100, 60.0), None)
    """
    from genie_tools.settings import GenieSettings

    qpm = getattr(workspace, BUDGET_HINT, None)
    window = getattr(workspace, BUDGET_WINDOW_HINT, None)
    if qpm is None:
        return None
    window = 60.0 if window is None else window
    numbers = (int, float)
    if (
        isinstance(qpm, bool)
        or not isinstance(qpm, int)
        or isinstance(window, bool)
        or not isinstance(window, numbers)
        or qpm < 1
        or not 0 < window <= 3600  # also refuses NaN
    ):
        logger.warning(
            "ignoring the workspace's question budget hint %s=%r, %s=%r (expected an "
            "int >= 1 and seconds in (0, 3600])",
            BUDGET_HINT,
            qpm,
            BUDGET_WINDOW_HINT,
            window,
        )
        return None
    # More than the settings allow is no reason to refuse: the settings' maximum is safe.
    most = GenieSettings.model_fields["qpm"].metadata
    ceiling = min((m.le for m in most if getattr(m, "le", None) is not None), default=qpm)
    return min(qpm, ceiling), float(window)


def settings_with_budget_hint(settings: GenieSettings, workspace: object) -> GenieSettings:
    """``settings`` with the budget ``workspace`` declares, unless the budget was set explicitly.

    A budget given as an argument or by ``GENIE_QPM`` / ``GENIE_RATE_WINDOW_SECONDS``
    wins (and a differing hint is logged at INFO, so the slower pace is no surprise).

    Example:
        >>> from genie_tools.settings import GenieSettings
        >>> class Emulated:
        ...     genie_questions_per_minute = 100
        >>> settings_with_budget_hint(GenieSettings(), Emulated()).qpm
        100
        >>> settings_with_budget_hint(GenieSettings(qpm=3), Emulated()).qpm
        3
    """
    hint = budget_hint(workspace)
    if hint is None:
        return settings
    qpm, window = hint
    if settings.model_fields_set & _BUDGET_FIELDS:
        if (settings.qpm, settings.rate_window_seconds) != (qpm, window):
            logger.info(
                "question budget %d per %g s from the settings wins over the workspace's "
                "%d per %g s",
                settings.qpm,
                settings.rate_window_seconds,
                qpm,
                window,
            )
        return settings
    update: dict[str, Any] = {"qpm": qpm, "rate_window_seconds": window}
    if settings.rate_burst is not None and settings.rate_burst > qpm:
        update["rate_burst"] = qpm  # (the settings' rule: a burst never exceeds qpm)
    logger.debug("question budget %d per %g s, declared by the workspace client", qpm, window)
    return settings.model_copy(update=update)
