"""Every fault the emulator injects, against both clients: answers still arrive, and
each question reaches Genie exactly once (asserted from the emulator's own counters).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from conftest import space_id
from test_client_harness import OTHER_QUESTION, QUESTION, Harness, make_client, mode, same_rows

from genie_tools import (
    GenieTimeoutError,
    QueryCancelledError,
    QueryFailedError,
    RateLimitedError,
)
from genie_tools.emulator import GenieEmulator

__all__ = ["make_client", "mode"]

MakeClient = Callable[..., Harness]
MakeEmulator = Callable[..., GenieEmulator]
Reference = Callable[[str], list[tuple[Any, ...]]]

START = "/api/2.0/genie/spaces/{space_id}/start-conversation"
MESSAGES = "/api/2.0/genie/spaces/{space_id}/conversations/{conversation_id}/messages"
GET_MESSAGE = MESSAGES + "/{message_id}"
FOLLOW_UP_POST = r"/conversations/[0-9a-f]+/messages$"
MESSAGE_GET = r"/messages/[0-9a-f]+$"


def _setup(
    make_emulator: MakeEmulator, make_client: MakeClient, **settings: Any
) -> tuple[GenieEmulator, Harness]:
    emu = make_emulator(seed=1, qpm=1000)
    return emu, make_client(emu, space_id=space_id(emu), **settings)


# --------------------------------------------------------------------------- question POSTs
def test_reset_after_start_conversation_is_recovered_not_resent(
    make_emulator: MakeEmulator, make_client: MakeClient, duckdb_reference: Reference
) -> None:
    emu, genie = _setup(make_emulator, make_client)
    emu.inject(kind="connection_reset", when="after", path="/start-conversation$", method="POST")

    events = genie.progress(QUESTION)

    answer = events[-1].answer
    assert answer is not None
    assert "recovered" in [e.kind for e in events]
    stats = emu.stats()
    assert stats["faults_fired"] == {"connection_reset": 1}
    assert stats["requests"][START] == 1  # never sent again
    assert stats["questions"] == 1
    assert stats["conversations"] == 1
    assert answer.message_id == emu.messages()[0].message_id
    assert answer.result is not None
    assert same_rows(answer.result.rows, duckdb_reference(answer.sql or ""))


def test_reset_after_follow_up_is_recovered_not_resent(
    make_emulator: MakeEmulator, make_client: MakeClient
) -> None:
    emu, genie = _setup(make_emulator, make_client)
    first = genie.ask(QUESTION)
    emu.inject(kind="connection_reset", when="after", path=FOLLOW_UP_POST, method="POST")

    second = genie.ask(OTHER_QUESTION, conversation_id=first.conversation_id)

    assert emu.stats()["faults_fired"] == {"connection_reset": 1}
    assert emu.stats()["questions_by_conversation"] == {first.conversation_id: 2}
    assert [m.content for m in emu.messages()] == [QUESTION, OTHER_QUESTION]
    assert second.message_id == emu.messages()[1].message_id
    assert second.result is not None
    assert second.result.rows[0][0] > 0


def test_reset_before_handling_is_looked_for_then_sent_once_more(
    make_emulator: MakeEmulator, make_client: MakeClient
) -> None:
    emu, genie = _setup(make_emulator, make_client, submit_recovery_seconds=0.6)
    emu.inject(kind="connection_reset", when="before", path="/start-conversation$", method="POST")

    t0 = time.monotonic()
    answer = genie.ask(QUESTION)

    assert time.monotonic() - t0 >= 0.6  # it looked before sending again
    stats = emu.stats()
    assert stats["faults_fired"] == {"connection_reset": 1}
    assert stats["requests"][START] == 2
    assert stats["questions"] == 1
    assert answer.message_id == emu.messages()[0].message_id


@pytest.mark.parametrize("status", [500, 503])
def test_5xx_on_question_posts_never_duplicates(
    make_emulator: MakeEmulator, make_client: MakeClient, status: int
) -> None:
    emu, genie = _setup(make_emulator, make_client, submit_recovery_seconds=0.3)
    emu.inject(kind="http_error", status=status, count=2, path="/start-conversation$")
    first = genie.ask(QUESTION)
    emu.inject(kind="http_error", status=status, count=1, path=FOLLOW_UP_POST, method="POST")
    second = genie.ask(OTHER_QUESTION, conversation_id=first.conversation_id)

    stats = emu.stats()
    assert stats["faults_fired"] == {"http_error": 3}
    assert stats["requests"][START] == 3
    assert stats["questions"] == 2
    assert stats["questions_by_conversation"] == {first.conversation_id: 2}
    assert second.conversation_id == first.conversation_id
    assert second.timings.retries >= 1


def test_post_timing_out_is_looked_for_then_sent_once_more(
    make_emulator: MakeEmulator, make_client: MakeClient
) -> None:
    """A read timeout is ambiguous: the client looks before it sends again.

    (The emulator drops a slow request whose client went away before reading its body,
    so here the question never landed; ``connection_reset`` ``after`` covers the case
    where it did.)
    """
    emu, genie = _setup(make_emulator, make_client, http_timeout=0.4, submit_recovery_seconds=1)
    emu.inject(kind="slow_response", delay_seconds=1.0, path="/start-conversation$", method="POST")

    t0 = time.monotonic()
    events = genie.progress(QUESTION)

    assert time.monotonic() - t0 >= 1.4  # timed out (0.4 s), then looked for 1 s
    kinds = [e.kind for e in events]
    assert "recovered" not in kinds
    assert kinds.count("retry") == 1
    time.sleep(0.8)  # let the slow request finish on the server: it must not add a question
    stats = emu.stats()
    assert stats["faults_fired"] == {"slow_response": 1}
    assert stats["requests"][START] == 2
    assert stats["questions"] == 1
    assert events[-1].answer is not None
    assert events[-1].answer.message_id == emu.messages()[0].message_id


# --------------------------------------------------------------------------- polls and results
def test_get_failures_are_retried_with_backoff(
    make_emulator: MakeEmulator, make_client: MakeClient, duckdb_reference: Reference
) -> None:
    emu, genie = _setup(make_emulator, make_client)
    emu.inject(kind="http_error", status=503, count=2, path=MESSAGE_GET, method="GET")
    emu.inject(kind="connection_reset", when="before", path=MESSAGE_GET, method="GET")
    emu.inject(kind="http_error", status=500, count=2, path="/query-result$")
    emu.inject(kind="slow_response", delay_seconds=0.3, path=MESSAGE_GET, method="GET")

    answer = genie.ask(QUESTION)

    stats = emu.stats()
    assert stats["faults_fired"] == {"http_error": 4, "connection_reset": 1, "slow_response": 1}
    assert stats["questions"] == 1
    assert answer.timings.retries == 5
    assert answer.result is not None
    assert same_rows(answer.result.rows, duckdb_reference(answer.sql or ""))


def test_stuck_message_times_out_with_its_ref_and_can_be_cancelled(
    make_emulator: MakeEmulator, make_client: MakeClient
) -> None:
    emu, genie = _setup(make_emulator, make_client)
    emu.inject(kind="stuck")

    t0 = time.monotonic()
    with pytest.raises(GenieTimeoutError) as err:
        genie.ask(QUESTION, timeout=1.0)
    waited = time.monotonic() - t0

    assert 1.0 <= waited < 1.8
    assert isinstance(err.value, TimeoutError)
    assert err.value.last_status == "EXECUTING_QUERY"
    ref = err.value.ref
    assert ref is not None
    assert ref.message_id == emu.messages()[0].message_id
    assert "wait(ref)" in str(err.value)
    polls = emu.stats()["polls_by_message"][ref.message_id]
    assert 2 <= polls <= 10  # adaptive: neither one poll nor a busy loop

    genie.cancel(ref)
    with pytest.raises(QueryCancelledError):
        genie.wait(ref, timeout=5)
    assert emu.messages()[0].status == "CANCELLED"
    assert emu.stats()["questions"] == 1


def test_stall_is_reported_and_optionally_cancelled(
    make_emulator: MakeEmulator, make_client: MakeClient
) -> None:
    emu, genie = _setup(make_emulator, make_client, stall_seconds=0.4)
    emu.inject(kind="stuck")
    events, error = genie.progress_until_error(QUESTION, timeout=1.5)
    assert isinstance(error, GenieTimeoutError)
    assert error.stalled is False
    stalls = [e for e in events if e.kind == "stall"]
    assert len(stalls) == 1
    assert stalls[0].status == "EXECUTING_QUERY"
    assert 0.4 <= stalls[0].elapsed_seconds < 1.5
    assert emu.messages()[0].status == "EXECUTING_QUERY"  # only reported

    cancelling = make_client(emu, space_id=space_id(emu), stall_seconds=0.4, cancel_on_stall=True)
    emu.inject(kind="stuck")
    events, error = cancelling.progress_until_error(OTHER_QUESTION, timeout=10)
    assert isinstance(error, GenieTimeoutError)
    assert error.stalled is True
    assert [e.kind for e in events].count("stall") == 1
    assert events[-1].elapsed_seconds < 2.0
    assert emu.messages()[1].status == "CANCELLED"
    assert emu.stats()["questions"] == 2


def test_failed_message_raises_with_genies_error_type(
    make_emulator: MakeEmulator, make_client: MakeClient
) -> None:
    emu, genie = _setup(make_emulator, make_client)
    emu.inject(
        kind="failed",
        error_type="RATE_LIMIT_EXCEEDED_GENERIC_EXCEPTION",
        error_message="Too many requests to the model.",
    )
    with pytest.raises(QueryFailedError) as err:
        genie.ask(QUESTION)
    assert type(err.value) is QueryFailedError
    assert err.value.error_type == "RATE_LIMIT_EXCEEDED_GENERIC_EXCEPTION"
    assert "Too many requests to the model." in str(err.value)
    assert "retry" in str(err.value).lower()
    assert err.value.ref is not None
    assert err.value.ref.message_id == emu.messages()[0].message_id
    assert emu.stats()["questions"] == 1  # a failed answer is never re-asked behind your back


def test_cancelled_message_raises_query_cancelled(
    make_emulator: MakeEmulator, make_client: MakeClient
) -> None:
    emu, genie = _setup(make_emulator, make_client)
    emu.inject(kind="cancelled")
    with pytest.raises(QueryCancelledError) as err:
        genie.ask(QUESTION, timeout=10)
    assert isinstance(err.value, QueryFailedError)
    assert err.value.ref is not None
    assert emu.messages()[0].status == "CANCELLED"


# --------------------------------------------------------------------------- 429
def test_429_waits_exactly_retry_after(
    make_emulator: MakeEmulator, make_client: MakeClient
) -> None:
    emu = make_emulator(config={"limits": {"qpm": 1, "rate_window_seconds": 2.0}}, seed=3)
    genie = make_client(emu, space_id=space_id(emu))  # its own budget is not the limit
    genie.ask(OTHER_QUESTION)

    events = genie.progress(QUESTION)

    waits = [e for e in events if e.kind == "rate_limit"]
    assert len(waits) == 1
    assert waits[0].wait_seconds == 2.0  # the emulator's Retry-After
    submitted = next(e for e in events if e.kind == "submitted")
    gap = submitted.elapsed_seconds - waits[0].elapsed_seconds
    assert 2.0 <= gap < 2.4
    stats = emu.stats()
    assert stats["rate_limited"] == 1
    assert stats["questions"] == 2
    assert stats["requests"][START] == 3
    assert events[-1].answer is not None
    assert events[-1].answer.timings.rate_limit_wait_seconds == 2.0
    snapshot = genie.limits.limiter.snapshot()
    assert snapshot["penalties"] == 1
    assert snapshot["effective_limit"] == 50_000  # adaptive: halved after a 429


def test_429_beyond_the_timeout_raises_rate_limited(
    make_emulator: MakeEmulator, make_client: MakeClient
) -> None:
    emu = make_emulator(config={"limits": {"qpm": 1, "rate_window_seconds": 30.0}}, seed=3)
    genie = make_client(emu, space_id=space_id(emu))
    genie.ask(OTHER_QUESTION)
    t0 = time.monotonic()
    with pytest.raises(RateLimitedError) as err:
        genie.ask(QUESTION, timeout=5)
    assert time.monotonic() - t0 < 1.0
    assert 25 <= err.value.retry_after <= 30
    assert err.value.status_code == 429
    assert emu.stats()["questions"] == 1


def test_identical_concurrent_questions_with_a_lost_answer_are_each_asked_once(
    make_emulator: MakeEmulator, make_client: MakeClient
) -> None:
    emu, genie = _setup(make_emulator, make_client)
    emu.inject(kind="connection_reset", when="after", path="/start-conversation$", method="POST")

    outcomes = genie.ask_many([QUESTION] * 3, concurrency=3)

    assert all(o.ok for o in outcomes)
    stats = emu.stats()
    assert stats["faults_fired"] == {"connection_reset": 1}
    assert stats["requests"][START] == 3  # the lost one was found, not sent again
    assert stats["questions"] == 3


def test_unreachable_workspace_fails_cleanly_and_keeps_the_budget(
    make_client: MakeClient, make_emulator: MakeEmulator
) -> None:
    import socket

    from genie_tools import ServiceUnavailableError

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: connections are refused
    emu = make_emulator(seed=1)
    dead = emu.workspace_client()
    dead.config.host = f"http://127.0.0.1:{port}"  # (a Config for a dead host would probe it)
    genie = make_client(emu, space_id=space_id(emu), workspace=dead, max_retries=2, qpm=5)

    t0 = time.monotonic()
    with pytest.raises(ServiceUnavailableError) as err:
        genie.ask(QUESTION)
    assert time.monotonic() - t0 < 2
    assert "No answer from Genie" in str(err.value)
    # Refused connections never reached Genie: the question budget is untouched.
    assert genie.limits.limiter.snapshot()["acquired"] == 0
