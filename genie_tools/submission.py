"""Submitting a question exactly once.

A question-creating POST (start-conversation, create-message) costs one of the
workspace's few questions per minute, and a duplicate also answers twice. So it is
never re-sent blindly:

* **Provably not received** — connection refused / connect timeout before sending,
  a 401 (credentials refused before anything ran), a 429 (refused by the limiter) —
  it is sent again (after ``Retry-After`` for a 429).
* **Outcome unknown** — a connection reset or timeout after sending, a 5xx — the
  client *looks for it*: it lists the conversation's messages (follow-up) or the
  space's new conversations (first question) for a message with the same text, created
  at or after the submit time, that no caller in this process has claimed. Found: that
  is the message. Still absent after ``submit_recovery_seconds`` of looking: it did not
  land, and is sent again.
* **Refused** — any other 4xx — raises the typed error.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable

from genie_tools._core import (
    Context,
    Flow,
    OpStats,
    Sleep,
    backoff_delay,
    call,
    check_breaker,
    log_budget_wait,
    rate_limited,
)
from genie_tools.connection import TransportFailure
from genie_tools.errors import (
    GenieError,
    InvalidIdError,
    NotFoundError,
    ServiceUnavailableError,
    error_for_status,
)
from genie_tools.ids import check_id
from genie_tools.models import MessageRef
from genie_tools.paths import conversation_path, space_path
from genie_tools.polling import Deadline
from genie_tools.transport import Request, Response, what_failed
from genie_tools.wire import (
    MessageView,
    error_fields,
    ms_to_datetime,
    parse_message,
    parse_retry_after,
)

__all__ = [
    "ClaimRegistry",
    "claims",
    "find_submitted",
    "submit",
]

logger = logging.getLogger("genie_tools.client")


class ClaimRegistry:
    """Messages this process already owns, so recovery never adopts another caller's.

    Keyed by workspace host and message id; bounded (oldest forgotten first); thread-safe.

    Example:
        >>> reg = ClaimRegistry(max_size=2)
        >>> reg.claim("h", "a"), reg.claim("h", "a"), reg.taken("h", "a"), reg.taken("g", "a")
        (True, False, True, False)
    """

    def __init__(self, max_size: int = 100_000) -> None:
        self._ids: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._lock = threading.Lock()
        self.max_size = max_size

    def claim(self, host: str, message_id: str) -> bool:
        """Take the message; False if it was already taken."""
        with self._lock:
            if (host, message_id) in self._ids:
                return False
            self._ids[host, message_id] = None
            while len(self._ids) > self.max_size:
                self._ids.popitem(last=False)
            return True

    def taken(self, host: str, message_id: str) -> bool:
        """Whether the message is already claimed."""
        with self._lock:
            return (host, message_id) in self._ids


claims = ClaimRegistry()
"""The process-wide registry."""


def find_submitted(
    messages: Iterable[MessageView],
    *,
    question: str,
    since_ms: int,
    taken: Callable[[str], bool],
) -> MessageView | None:
    """The earliest unclaimed message with this text created at/after ``since_ms``.

    Example:
        >>> m = MessageView(space_id="s", conversation_id="c", message_id="m1",
        ...                 content="Revenue?", status="SUBMITTED", created_ms=2_000)
        >>> free = lambda message_id: False
        >>> find_submitted([m], question=" Revenue? ", since_ms=1_000, taken=free).message_id
        'm1'
        >>> find_submitted([m], question="Revenue?", since_ms=3_000, taken=free) is None
        True
    """
    wanted = question.strip()
    matches = [
        m
        for m in messages
        if m.content.strip() == wanted
        and (m.created_ms is None or m.created_ms >= since_ms)
        and not taken(m.message_id)
    ]
    matches.sort(key=lambda m: m.created_ms or 0)
    return matches[0] if matches else None


def submit(
    ctx: Context,
    question: str,
    *,
    space_id: str,
    conversation_id: str | None,
    stats: OpStats,
    deadline: Deadline,
    not_before_ms: int | None = None,
) -> Flow[tuple[MessageRef, MessageView]]:
    """Create the message for ``question`` exactly once; returns its ref and first view.

    ``not_before_ms`` (epoch ms) says an earlier attempt may already have created it,
    e.g. a process killed between sending the question and recording the answer's
    id: Genie is searched once for that question, created since then, before asking.
    """
    s = ctx.settings
    if not_before_ms is not None:
        # No clock-skew allowance here: a wider window could adopt the same words asked
        # by another caller just before (another thread's first question). An attempt
        # younger than the HTTP timeout may still be on its way: keep looking a while.
        age = ctx.wall().timestamp() - not_before_ms / 1000
        found = yield from _recover(
            ctx,
            question,
            space_id,
            conversation_id,
            not_before_ms,
            stats,
            deadline,
            patient=age < s.http_timeout,
        )
        if found is not None:
            return found
    if conversation_id is None:
        path = f"{space_path(space_id)}/start-conversation"
    else:
        path = f"{conversation_path(space_id, conversation_id)}/messages"
    request = Request("POST", path, json={"content": question})
    limiter, breaker = ctx.limits.limiter, ctx.limits.breaker
    since_ms: int | None = None
    transient = 0
    reauthenticated = False
    while True:
        # The budget is taken before every send; it is given back whenever the question
        # provably did not reach Genie (so a network blip does not burn the budget).
        while (wait := limiter.try_acquire(acquired_at := ctx.now())) > 0:
            if deadline.remaining(now=ctx.now()) < wait:
                raise rate_limited(ctx, wait)
            log_budget_wait(ctx, wait, f"{limiter.qpm} per {limiter.window:g} s")
            yield ctx.event(
                "rate_limit",
                stats,
                f"waiting {wait:.2f} s for the question budget ({limiter.qpm} per "
                f"{limiter.window:g} s)",
                wait_seconds=wait,
            )
            stats.rate_limit_wait += wait
            yield Sleep(wait)
        check_breaker(ctx)
        if since_ms is None:
            since_ms = int((ctx.wall().timestamp() - s.clock_skew_seconds) * 1000)
        stats.requests += 1
        problem: GenieError
        try:
            response: Response = yield request
        except TransportFailure as exc:
            breaker.record_failure(ctx.now())
            problem = ServiceUnavailableError(
                f"No answer from Genie to {request.describe()} ({exc}); check the network "
                "and the workspace, then retry."
            )
            if exc.sent:
                found = yield from _recover(
                    ctx, question, space_id, conversation_id, since_ms, stats, deadline
                )
                if found is not None:
                    return found
            limiter.release(acquired_at)
        except GenieError:  # no credentials: the request was never sent
            limiter.release(acquired_at)
            raise
        else:
            if response.status < 500:
                breaker.record_success()
            if response.ok:
                # Genie counted it on arrival, later than we took it: count it from now.
                limiter.settle(acquired_at, ctx.now())
                view = parse_message(_message_body(response.body), space_id=space_id)
                claims.claim(ctx.auth.host, view.message_id)
                return _ref(view, question, ctx), view
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            code, message = error_fields(response.body)
            problem = error_for_status(
                response.status,
                code,
                message,
                what=what_failed(request, response),
                retry_after=retry_after,
            )
            if response.status < 500:
                limiter.release(acquired_at)  # refused: Genie did not count it either
            if response.status == 429:
                # Refused before anything ran: wait exactly what Genie asks, then send again.
                wait = retry_after if retry_after is not None else 60.0
                limiter.penalize(ctx.now(), wait)
                if deadline.remaining(now=ctx.now()) < wait:
                    raise problem
                log_budget_wait(ctx, wait, "Genie answered 429")
                yield ctx.event(
                    "rate_limit",
                    stats,
                    f"Genie answered 429: waiting {wait:g} s",
                    wait_seconds=wait,
                )
                stats.rate_limit_wait += wait
                yield Sleep(wait)
                continue
            if response.status == 401 and not reauthenticated:
                reauthenticated = True  # credentials refused: nothing ran; fresh headers
                continue
            if response.status < 500:
                raise problem
            breaker.record_failure(ctx.now())
            found = yield from _recover(
                ctx, question, space_id, conversation_id, since_ms, stats, deadline
            )
            if found is not None:
                return found
            limiter.release(acquired_at)
        # Provably not received (or looked for and absent): send again after a backoff.
        if transient >= s.max_retries:
            raise problem
        delay = backoff_delay(
            transient, base=s.retry_backoff_base, cap=s.retry_backoff_max, rng=ctx.rng
        )
        if deadline.remaining(now=ctx.now()) < delay:
            raise problem
        transient += 1
        stats.retries += 1
        logger.info("question not received by Genie (%s); sending it again", problem.message)
        yield ctx.event(
            "retry",
            stats,
            f"question not received; sending again in {delay:.2f} s",
            wait_seconds=delay,
        )
        yield Sleep(delay)


def _message_body(body: object) -> dict[str, object]:
    # start-conversation wraps the message ({"message": {...}, "conversation_id": ...});
    # create-message answers the message itself.
    if isinstance(body, dict):
        inner = body.get("message")
        if isinstance(inner, dict):
            return {
                **inner,
                "conversation_id": inner.get("conversation_id") or body.get("conversation_id"),
            }
        return body
    return {}


def _ref(view: MessageView, question: str, ctx: Context) -> MessageRef:
    # Ids Genie answered with go into later URLs: a malformed one is a typed error now.
    check_id(view.space_id, kind="space")
    check_id(view.conversation_id, kind="conversation")
    check_id(view.message_id, kind="message")
    return MessageRef(
        space_id=view.space_id,
        conversation_id=view.conversation_id,
        message_id=view.message_id,
        question=question,
        submitted_at=ms_to_datetime(view.created_ms) or ctx.wall(),
    )


def _recover(
    ctx: Context,
    question: str,
    space_id: str,
    conversation_id: str | None,
    since_ms: int,
    stats: OpStats,
    deadline: Deadline,
    *,
    patient: bool = True,
) -> Flow[tuple[MessageRef, MessageView] | None]:
    """Look for the question the ambiguous POST may have created; None if it never landed.

    ``patient`` keeps looking for ``submit_recovery_seconds`` (a request that timed out
    may still be in Genie's hands); otherwise one look decides.
    """
    started = ctx.now()
    pause = 0.25
    host = ctx.auth.host
    checked: dict[str, MessageView] = {}
    while True:
        try:
            if conversation_id is None:
                candidates = yield from _first_messages_since(
                    ctx,
                    space_id,
                    since_ms,
                    stats,
                    deadline,
                    question=question,
                    checked=checked,
                    taken=lambda message_id: claims.taken(host, message_id),
                )
            else:
                candidates = yield from _conversation_messages(
                    ctx, space_id, conversation_id, stats, deadline
                )
        except GenieError as exc:
            if isinstance(exc, NotFoundError) and conversation_id is not None:
                # The conversation is gone: the question cannot be in it. The POST will
                # say so (404); a caller that starts a new conversation searches there.
                return None
            raise ServiceUnavailableError(
                "The answer to the question's submit was lost and Genie could not be asked "
                f"whether it arrived ({exc.message}). It was NOT sent again, to avoid asking "
                "twice; list the conversation's messages later to find it, or ask again.",
                status_code=exc.status_code,
            ) from exc
        found = find_submitted(
            candidates,
            question=question,
            since_ms=since_ms,
            taken=lambda message_id: claims.taken(host, message_id),
        )
        if found is not None and claims.claim(host, found.message_id):
            logger.info("an ambiguous submit had reached Genie: message %s", found.message_id)
            ref = _ref(found, question, ctx)
            yield ctx.event(
                "recovered",
                stats,
                "the question had reached Genie; not sending it again",
                ref=ref,
                status=found.status,
            )
            return ref, found
        looked = ctx.now() - started
        budget = min(ctx.settings.submit_recovery_seconds, deadline.remaining(now=ctx.now()))
        if not patient or looked >= budget:
            return None
        # A request that timed out may still be in Genie's hands: look again shortly.
        wait = min(pause, budget - looked)
        yield Sleep(wait)
        pause = min(pause * 2, 2.0)


def _conversation_messages(
    ctx: Context, space_id: str, conversation_id: str, stats: OpStats, deadline: Deadline
) -> Flow[list[MessageView]]:
    path = f"{conversation_path(space_id, conversation_id)}/messages"
    views: list[MessageView] = []
    token: str | None = None
    for _ in range(100):  # pages; a conversation is short
        params: dict[str, object] = {"page_size": 100}
        if token:
            params["page_token"] = token
        page = yield from call(
            ctx, Request("GET", path, params=params), stats=stats, deadline=deadline
        )
        body = page.body if isinstance(page.body, dict) else {}
        views += [parse_message(m, space_id=space_id) for m in body.get("messages") or []]
        token = body.get("next_page_token")
        if not token:
            break
    return views


def _first_messages_since(
    ctx: Context,
    space_id: str,
    since_ms: int,
    stats: OpStats,
    deadline: Deadline,
    *,
    question: str,
    checked: dict[str, MessageView],
    taken: Callable[[str], bool],
) -> Flow[list[MessageView]]:
    """First messages of this user's conversations started since ``since_ms``.

    Conversations titled like the question are read first, and the search stops at the
    first match; ``checked`` remembers first messages between rounds (they never change).
    """
    listing = yield from call(
        ctx,
        Request("GET", f"{space_path(space_id)}/conversations", params={"page_size": 50}),
        stats=stats,
        deadline=deadline,
    )
    body = listing.body if isinstance(listing.body, dict) else {}
    recent = [
        c
        for c in body.get("conversations") or []
        if isinstance(c, dict)
        and _is_id(c.get("conversation_id"))
        and (c.get("created_timestamp") is None or int(c["created_timestamp"]) >= since_ms)
    ]
    # Genie titles a conversation after its first question (possibly shortened).
    recent.sort(key=lambda c: not question.startswith(str(c.get("title") or "\0")))
    for conv in recent:
        conv_id = str(conv["conversation_id"])
        if conv_id not in checked:
            first = yield from call(
                ctx,
                Request(
                    "GET",
                    f"{conversation_path(space_id, conv_id)}/messages",
                    params={"page_size": 1},
                ),
                stats=stats,
                deadline=deadline,
            )
            body = first.body if isinstance(first.body, dict) else {}
            messages = body.get("messages") or []
            if not messages:
                continue  # being created: look again next round
            checked[conv_id] = parse_message(messages[0], space_id=space_id)
        view = checked[conv_id]
        if view.content.strip() == question.strip() and not taken(view.message_id):
            return [view]
    return list(checked.values())


def _is_id(value: object) -> bool:
    # A listing's entry whose id could not be a Genie id is skipped, not followed.
    try:
        check_id(value, kind="conversation")
    except InvalidIdError:
        return False
    return True
