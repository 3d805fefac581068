"""The shared core: operations as generators of effects, run by a sync or an async driver.

Every operation (ask, wait, get_result…) is written once, as a generator that *yields*
what it needs done — a :class:`~genie_tools.transport.Request`, a :class:`Sleep`, an
:class:`Emit` of a progress event — and receives the outcome (a ``Response``, or a
``TransportFailure`` thrown in). All decisions (retry or not, how long to back off,
when to poll, how to recover an ambiguous submit) are made inside the generator, in
plain code. :func:`iter_sync` runs an operation with ``httpx.Client`` and
``time.sleep``; :func:`iter_async` with ``httpx.AsyncClient`` and ``asyncio.sleep``.
That is the only difference between ``GenieClient`` and ``AsyncGenieClient``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import re
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import unquote

from genie_tools.auth import AuthSource
from genie_tools.cache import AnswerCache
from genie_tools.connection import TransportFailure, connect_deadline
from genie_tools.errors import (
    CircuitOpenError,
    ConfigurationError,
    GenieError,
    RateLimitedError,
    ServiceUnavailableError,
    error_for_status,
)
from genie_tools.limits import HostLimits, limits_for
from genie_tools.models import MessageRef, ProgressEvent, ProgressKind
from genie_tools.paths import API, STATEMENTS
from genie_tools.polling import Deadline, PollSchedule
from genie_tools.settings import GenieSettings, check_host
from genie_tools.transport import AsyncTransport, Request, Response, SyncTransport, what_failed
from genie_tools.wire import error_fields, parse_retry_after

T = TypeVar("T")
logger = logging.getLogger("genie_tools.client")

__all__ = [
    "Bounded",
    "Context",
    "Done",
    "Emit",
    "Flow",
    "OpStats",
    "Sleep",
    "backoff_delay",
    "call",
    "check_request",
    "connect_limit",
    "iter_async",
    "iter_sync",
    "log_budget_wait",
]


@dataclass(frozen=True)
class Sleep:
    """Effect: wait this many seconds."""

    seconds: float


@dataclass(frozen=True)
class Emit:
    """Effect: report a progress event to whoever is listening."""

    event: ProgressEvent


Effect = Request | Sleep | Emit
Flow = Generator[Effect, Any, T]


class Bounded(Generator[Effect, Any, T]):
    """An operation whose timeout also covers connecting to the workspace.

    The flow is built on its first step with the time then left, and every step runs
    inside :func:`~genie_tools.connection.connect_deadline`: finding the host and
    authenticating (on the first request, or before the first step on the event loop)
    count against the operation's own timeout as well as ``connect_timeout``.

    Args:
        timeout: Seconds for the whole operation, connecting included.
        build: Makes the flow from the seconds left.

    Example:
        >>> def answer(left: float):
        ...     return 42
        ...     yield
        >>> flow = Bounded(5.0, answer)
        >>> try:
        ...     next(flow)
        ... except StopIteration as stop:
        ...     stop.value
        42
    """

    def __init__(self, timeout: float, build: Callable[[float], Flow[T]]) -> None:
        self.timeout = timeout
        self._at = time.monotonic() + timeout
        self._build = build
        self._flow: Flow[T] | None = None

    def send(self, value: Any) -> Effect:
        """Run the operation to its next effect (building it on the first step)."""
        with connect_deadline(self._at):
            if self._flow is None:
                # Never zero: a flow given no time at all could not even report its timeout.
                self._flow = self._build(max(self._at - time.monotonic(), 0.001))
            return self._flow.send(value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Effect:
        """Hand an exception to the operation at its current step."""
        if self._flow is None:
            raise typ if val is None else val
        with connect_deadline(self._at):
            return self._flow.throw(typ, val, tb) if val is not None else self._flow.throw(typ)

    def close(self) -> None:
        """Close the operation (its ``finally`` blocks run)."""
        if self._flow is not None:
            self._flow.close()


def connect_limit(flow: Flow[Any]) -> float | None:
    """The operation's own timeout when connecting must respect it, else ``None``."""
    return flow.timeout if isinstance(flow, Bounded) else None


@dataclass(frozen=True)
class Done:
    """Driver output: the operation's result, after all its events."""

    value: Any


@dataclass
class OpStats:
    """What one operation cost; becomes the answer's ``Timings``."""

    started: float = field(default_factory=time.monotonic)
    requests: int = 0
    retries: int = 0
    polls: int = 0
    rate_limit_wait: float = 0.0


class Context:
    """What operations share within one client: settings, auth, cache, randomness."""

    def __init__(
        self, settings: GenieSettings, auth: AuthSource, cache: AnswerCache | None
    ) -> None:
        self.settings = settings
        self.auth = auth
        self.cache = cache
        self.rng = random.Random()
        self.schedule = PollSchedule(
            first_delay=settings.poll_first_delay,
            min_interval=settings.poll_min_interval,
            max_interval=settings.poll_max_interval,
        )
        self._limits: HostLimits | None = None

    @property
    def limits(self) -> HostLimits:
        """The process-wide limiter and breaker of this client's workspace."""
        if self._limits is None:
            self._limits = limits_for(self.auth.host, self.settings)
        return self._limits

    @staticmethod
    def now() -> float:
        """Monotonic seconds (for intervals and deadlines)."""
        return time.monotonic()

    @staticmethod
    def wall() -> dt.datetime:
        """Aware UTC wall-clock time (for timestamps shared with the server)."""
        return dt.datetime.now(dt.UTC)

    def event(self, kind: ProgressKind, stats: OpStats, detail: str = "", **fields: Any) -> Emit:
        """An :class:`Emit` of a progress event timed from the operation's start."""
        elapsed = round(self.now() - stats.started, 4)
        return Emit(ProgressEvent(kind=kind, elapsed_seconds=elapsed, detail=detail, **fields))


def backoff_delay(attempt: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with jitter: half fixed, half random (``attempt`` from 0).

    Half the delay is kept so retries never bunch up at zero; the random half spreads
    many clients that failed together.

    Example:
        >>> r = random.Random(0)
        >>> [round(backoff_delay(a, base=0.25, cap=8, rng=r), 3) for a in range(4)]
        [0.231, 0.439, 0.71, 1.259]
    """
    ceiling = min(cap, base * (2**attempt))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


def _too_late(deadline: Deadline | None, delay: float, now: float) -> bool:
    return deadline is not None and now + delay > deadline.at


def check_breaker(ctx: Context, *, ref: MessageRef | None = None) -> None:
    """Raise :class:`CircuitOpenError` if calls to the workspace are paused."""
    wait = ctx.limits.breaker.before_call(ctx.now())
    if wait > 0:
        raise CircuitOpenError(
            f"Calls to {ctx.limits.host} are paused for {wait:.1f} s after "
            f"{ctx.limits.breaker.failures} consecutive failures; retry after that "
            "(check the workspace's status and the network).",
            retry_after=wait,
            ref=ref,
        )


def call(
    ctx: Context,
    request: Request,
    *,
    stats: OpStats,
    deadline: Deadline | None = None,
    ref: MessageRef | None = None,
    allow: frozenset[int] = frozenset(),
) -> Flow[Response]:
    """Send an *idempotent* request, retrying transient failures.

    5xx answers and lost connections back off exponentially with jitter (a 503's
    ``Retry-After`` is honoured); 429 waits exactly ``Retry-After``; one 401 is retried
    with fresh credentials; other 4xx raise the typed error at once. Never use this for
    a question-creating POST (see :mod:`genie_tools.submission`).

    Args:
        ctx: The client context.
        request: The request.
        stats: Counters of the operation.
        deadline: Give up instead of waiting past this.
        ref: The message concerned, attached to errors.
        allow: Non-2xx statuses to return instead of raising.
    """
    s = ctx.settings
    attempt = throttled = 0
    reauthenticated = False
    # Pre-signed links point at cloud storage, not the workspace: no breaker for them.
    breaker = None if request.external else ctx.limits.breaker
    while True:
        if breaker is not None:
            check_breaker(ctx, ref=ref)
        stats.requests += 1
        retry_after: float | None = None
        try:
            response: Response = yield request
        except TransportFailure as exc:
            if breaker is not None:
                breaker.record_failure(ctx.now())
            problem: GenieError = ServiceUnavailableError(
                f"No answer from Genie to {request.describe()} ({exc}); check the network "
                "and the workspace, then retry.",
                ref=ref,
            )
        else:
            if breaker is not None and response.status >= 500:
                breaker.record_failure(ctx.now())
            elif breaker is not None:
                breaker.record_success()
            if response.ok or response.status in allow:
                return response
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            problem = _http_error(response, request, retry_after, ref)
            if response.status == 401 and not reauthenticated:
                reauthenticated = True  # a token may have expired in flight
                continue
            if response.status == 429:
                throttled += 1
                wait = retry_after if retry_after is not None else 1.0
                if _too_late(deadline, wait, ctx.now()) or (
                    deadline is None and throttled > s.max_retries
                ):
                    raise problem
                yield ctx.event("retry", stats, f"HTTP 429: waiting {wait:g} s", wait_seconds=wait)
                yield Sleep(wait)
                continue
            if response.status < 500:
                raise problem
        if attempt >= s.max_retries:
            raise problem
        delay = (
            retry_after
            if retry_after is not None
            else backoff_delay(
                attempt, base=s.retry_backoff_base, cap=s.retry_backoff_max, rng=ctx.rng
            )
        )
        if _too_late(deadline, delay, ctx.now()):
            raise problem
        attempt += 1
        stats.retries += 1
        logger.info(
            "%s failed (%s); retry %d in %.2f s",
            request.describe(),
            type(problem).__name__,
            attempt,
            delay,
        )
        yield ctx.event(
            "retry",
            stats,
            f"{request.describe()} failed; retry {attempt} in {delay:.2f} s",
            wait_seconds=delay,
        )
        yield Sleep(delay)


def _http_error(
    response: Response, request: Request, retry_after: float | None, ref: MessageRef | None
) -> GenieError:
    code, message = error_fields(response.body)
    return error_for_status(
        response.status,
        code,
        message,
        what=what_failed(request, response),
        retry_after=retry_after,
        ref=ref,
    )


def rate_limited(ctx: Context, wait: float, *, ref: MessageRef | None = None) -> RateLimitedError:
    """The error for a question budget wait that would pass the deadline."""
    lim = ctx.limits.limiter
    return RateLimitedError(
        f"The question budget for {ctx.limits.host} ({lim.qpm} per {lim.window:g} s) is used "
        f"up for the next {wait:.1f} s, beyond this call's timeout; retry later or raise "
        "the timeout.",
        retry_after=wait,
        ref=ref,
    )


BUDGET_WAIT_LOG_SECONDS = 1.0
"""Budget waits longer than this are logged at INFO (shorter ones are routine pacing)."""


def log_budget_wait(ctx: Context, wait: float, why: str) -> None:
    """Say at INFO that a question waits ``wait`` s for the budget, when that is noticeable.

    The same wait is also a ``rate_limit`` progress event; the log line is for callers
    that do not watch progress (``ask()``), so a slow pace is never silent. It names the
    host and the budget, nothing else (no question text, no credentials).
    """
    if wait > BUDGET_WAIT_LOG_SECONDS:
        logger.info("waiting %.1f s for the question budget of %s (%s)", wait, ctx.limits.host, why)


# Where the client may send credentials: Genie's spaces API and the statement API's
# result chunks. Segments are what ids.segment() makes: unreserved characters or %XX.
_SEGMENT = r"[A-Za-z0-9_.~%-]+"
_ALLOWED_PATHS = (
    re.compile(re.escape(API) + rf"(?:/{_SEGMENT})*"),
    re.compile(re.escape(STATEMENTS) + rf"/{_SEGMENT}/result/chunks/[0-9]+"),
)


def check_request(request: Request) -> None:
    """Refuse a request that would leave Genie's API, whatever built it.

    The last line of defence behind the id checks and encoded segments: the drivers
    call it for every request, so no path (a bug, a crafted id that slipped through)
    can send the user's credentials elsewhere in the workspace. Pre-signed links carry
    no credentials; they must still be https URLs (http only on loopback).

    Raises:
        ConfigurationError: The request is outside the allowed paths.

    Example:
        >>> check_request(Request("GET", "/api/2.0/genie/spaces/01ef/conversations"))
        >>> check_request(Request("GET", "/api/2.0/preview/scim/v2/Users"))
        Traceback (most recent call last):
        ...
        genie_tools.errors.ConfigurationError: Refused to send GET '/api/2.0/preview/scim/...
    """
    if request.external:
        try:
            check_host(request.path)
            return
        except ValueError:
            raise ConfigurationError(
                f"Refused to follow a {request.method} link that is not an https URL."
            ) from None
    path = request.path
    dots = any(unquote(part) in (".", "..") for part in path.split("/"))
    if dots or not any(p.fullmatch(path) for p in _ALLOWED_PATHS):
        raise ConfigurationError(
            f"Refused to send {request.method} {path!r}: it is outside Genie's API "
            "(/api/2.0/genie/spaces/...). Check the ids passed to the client."
        )


# drivers -------------------------------------------------------------------------
def iter_sync(flow: Flow[Any], transport: SyncTransport) -> Iterator[ProgressEvent | Done]:
    """Run ``flow`` with blocking I/O, yielding its events and finally :class:`Done`."""
    value: Any = None
    error: BaseException | None = None
    try:
        while True:
            try:
                effect = flow.throw(error) if error is not None else flow.send(value)
            except StopIteration as stop:
                yield Done(stop.value)
                return
            value, error = None, None
            if isinstance(effect, Request):
                try:
                    check_request(effect)
                    value = transport.send(effect)
                except Exception as exc:  # handed to the flow, which decides
                    error = exc
            elif isinstance(effect, Sleep):
                if effect.seconds > 0:
                    time.sleep(effect.seconds)
            else:
                yield effect.event
    finally:
        flow.close()


async def iter_async(
    flow: Flow[Any], transport: AsyncTransport
) -> AsyncIterator[ProgressEvent | Done]:
    """Run ``flow`` on the event loop, yielding its events and finally :class:`Done`."""
    # Connect first, on a worker thread: the flow's first step may need the host, and
    # the SDK's blocking auth must never run on the event loop.
    await transport.ensure_ready(connect_limit(flow))
    value: Any = None
    error: BaseException | None = None
    try:
        while True:
            try:
                effect = flow.throw(error) if error is not None else flow.send(value)
            except StopIteration as stop:
                yield Done(stop.value)
                return
            value, error = None, None
            if isinstance(effect, Request):
                try:
                    check_request(effect)
                    value = await transport.send(effect)
                except Exception as exc:  # handed to the flow, which decides
                    error = exc
            elif isinstance(effect, Sleep):
                if effect.seconds > 0:
                    await asyncio.sleep(effect.seconds)
            else:
                yield effect.event
    finally:
        flow.close()


def run_sync(flow: Flow[T], transport: SyncTransport) -> T:
    """Run ``flow`` to its result, discarding events."""
    for item in iter_sync(flow, transport):
        if isinstance(item, Done):
            return item.value
    raise RuntimeError("operation ended without a result")  # pragma: no cover


async def run_async(flow: Flow[T], transport: AsyncTransport) -> T:
    """Run ``flow`` to its result on the event loop, discarding events."""
    async for item in iter_async(flow, transport):
        if isinstance(item, Done):
            return item.value
    raise RuntimeError("operation ended without a result")  # pragma: no cover
