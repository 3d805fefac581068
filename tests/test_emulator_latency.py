"""The emulator's latency: status sequences, exact completion times, speed and set_latency."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from conftest import assert_same_rows

from genie_tools.emulator import GenieEmulator, MessageInfo

QUERY_SEQUENCE = [
    "SUBMITTED",
    "FETCHING_METADATA",
    "FILTERING_CONTEXT",
    "ASKING_AI",
    "PENDING_WAREHOUSE",
    "EXECUTING_QUERY",
    "COMPLETED",
]
TEXT_SEQUENCE = ["SUBMITTED", "FETCHING_METADATA", "FILTERING_CONTEXT", "ASKING_AI", "COMPLETED"]
QUESTION = "What was total revenue by year?"
FAST_QUESTION = "How many orders were placed in 1996?"
UNANSWERABLE = "What is the airspeed velocity of an unladen swallow?"
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "QUERY_RESULT_EXPIRED"}


def _sales(emu: GenieEmulator) -> str:
    return next(s.id for s in emu.config.spaces if s.title == "Sales & revenue")


def _poll(
    w: Any, space: str, conv: str, msg: str, *, interval: float = 0.05, limit: float = 15.0
) -> list[tuple[float, float, str]]:
    """Poll get_message until terminal: (sent_at, answered_at, status) per poll."""
    seen: list[tuple[float, float, str]] = []
    deadline = time.time() + limit
    while time.time() < deadline:
        before = time.time()
        status = w.genie.get_message(space, conv, msg).status.value
        seen.append((before, time.time(), status))
        if status in TERMINAL:
            return seen
        time.sleep(interval)
    raise AssertionError(f"message did not finish within {limit} s: {seen[-3:]}")


def _info(emu: GenieEmulator, message_id: str) -> MessageInfo:
    return next(m for m in emu.messages() if m.message_id == message_id)


def _wait_completed_at(emu: GenieEmulator, message_id: str, limit: float = 10.0) -> MessageInfo:
    """Wait until the emulator knows the message's exact completion time."""
    deadline = time.time() + limit
    while time.time() < deadline:
        info = _info(emu, message_id)
        if info.completed_at is not None:
            return info
        time.sleep(0.02)
    raise AssertionError("the query never finished running")


def _warm_up(emu: GenieEmulator, w: Any, space: str) -> None:
    """Ask one instant question so that the engine has read the space's data."""
    assert emu.service.latency.speed == 0
    warm = w.genie.start_conversation(space, FAST_QUESTION).response
    _poll(w, space, warm.conversation_id, warm.message_id, interval=0.02, limit=10)


def _is_subsequence(seen: list[str], sequence: list[str]) -> bool:
    it = iter(sequence)
    return all(status in it for status in seen)


def _dedupe(statuses: list[str]) -> list[str]:
    out: list[str] = []
    for s in statuses:
        if not out or out[-1] != s:
            out.append(s)
    return out


def test_query_message_walks_every_status_in_order(
    make_emulator: Callable[..., GenieEmulator],
) -> None:
    emu = make_emulator(speed=0, qpm=1000, seed=11, config={"latency": {"total_seconds": 1.0}})
    w = emu.workspace_client()
    space = _sales(emu)
    # Warm the engine at speed 0 first (see the fresh-emulator test for why).
    _warm_up(emu, w, space)
    emu.set_latency(total_seconds=1.0, speed=1)
    started = w.genie.start_conversation(space, QUESTION).response
    assert started.message.status.value == "SUBMITTED"
    polls = _poll(w, space, started.conversation_id, started.message_id)

    statuses = [s for _, _, s in polls]
    assert statuses[-1] == "COMPLETED"
    assert _is_subsequence(_dedupe(statuses), QUERY_SEQUENCE), statuses
    # Polling every 50 ms over ~1 s must catch the message in progress at least twice.
    assert len(set(statuses)) >= 3, statuses

    events = [e for e in emu.events() if e.message_id == started.message_id]
    assert [e.status for e in events] == QUERY_SEQUENCE
    times = [e.at for e in events]
    assert times == sorted(times)
    assert {e.space_id for e in events} == {space}
    assert {e.conversation_id for e in events} == {started.conversation_id}

    info = _info(emu, started.message_id)
    assert info.status == "COMPLETED"
    assert info.completed_at is not None
    assert info.created_at + 0.5 <= info.completed_at <= info.created_at + 3.0
    assert events[0].at == info.created_at
    assert events[-1].at == info.completed_at
    assert info.polls == len(polls)
    assert info.sql is not None
    assert "samples.tpch.orders" in info.sql

    first_completed = next(i for i, (_, _, s) in enumerate(polls) if s == "COMPLETED")
    assert polls[first_completed][1] >= info.completed_at
    # ... and the poll before it was sent before completion (so it saw it in progress).
    assert polls[first_completed - 1][0] <= info.completed_at


def test_first_question_on_a_fresh_emulator_starts_submitted(
    make_emulator: Callable[..., GenieEmulator],
) -> None:
    # The time the emulator spends getting ready to interpret (reading the space's
    # data on first use) must not eat into the message's planned schedule.
    emu = make_emulator(speed=1, qpm=1000, seed=12, config={"latency": {"total_seconds": 1.0}})
    w = emu.workspace_client()
    space = _sales(emu)
    started = w.genie.start_conversation(space, QUESTION).response
    first_poll = w.genie.get_message(space, started.conversation_id, started.message_id)
    assert started.message.status.value == "SUBMITTED"
    assert first_poll.status.value in QUERY_SEQUENCE[:4]
    _poll(w, space, started.conversation_id, started.message_id)


def test_clarification_skips_the_warehouse(make_emulator: Callable[..., GenieEmulator]) -> None:
    emu = make_emulator(speed=0, qpm=1000, seed=3)
    w = emu.workspace_client()
    space = _sales(emu)
    _warm_up(emu, w, space)
    emu.set_latency(total_seconds=0.6, speed=1)
    started = w.genie.start_conversation(space, UNANSWERABLE).response
    polls = _poll(w, space, started.conversation_id, started.message_id)
    statuses = _dedupe([s for _, _, s in polls])
    assert statuses[-1] == "COMPLETED"
    assert _is_subsequence(statuses, TEXT_SEQUENCE), statuses

    events = [e.status for e in emu.events() if e.message_id == started.message_id]
    assert events == TEXT_SEQUENCE
    info = _info(emu, started.message_id)
    assert info.sql is None
    assert info.completed_at is not None
    assert info.created_at + 0.2 <= info.completed_at <= info.created_at + 2.0

    final = w.genie.get_message(space, started.conversation_id, started.message_id)
    assert all(a.query is None for a in final.attachments)
    texts = [a.text for a in final.attachments if a.text is not None]
    assert len(texts) == 1
    assert texts[0].purpose.value == "FOLLOW_UP_QUESTION"


def test_speed_zero_answers_at_once(make_emulator: Callable[..., GenieEmulator]) -> None:
    emu = make_emulator(speed=0, qpm=1000, seed=5)
    w = emu.workspace_client()
    space = _sales(emu)

    clar = w.genie.start_conversation(space, UNANSWERABLE).response
    polls = _poll(w, space, clar.conversation_id, clar.message_id, interval=0.05, limit=2)
    assert [s for _, _, s in polls] == ["COMPLETED"]

    query = w.genie.start_conversation(space, FAST_QUESTION).response
    polls = _poll(w, space, query.conversation_id, query.message_id, interval=0.05, limit=2)
    assert len(polls) <= 2, polls
    assert polls[-1][2] == "COMPLETED"
    info = _info(emu, query.message_id)
    assert info.completed_at is not None
    # The only delay is DuckDB running the query.
    assert info.completed_at - info.created_at < 0.5


def test_speed_two_doubles_the_schedule(make_emulator: Callable[..., GenieEmulator]) -> None:
    one = make_emulator(speed=0, qpm=1000, seed=21)
    two = make_emulator(speed=0, qpm=1000, seed=21)
    ids = {}
    for speed, emu in ((1, one), (2, two)):
        w = emu.workspace_client()
        _warm_up(emu, w, _sales(emu))  # the same draws in both: the seeds stay aligned
        emu.set_latency(total_seconds=0.5, speed=speed)
        ids[speed] = w.genie.start_conversation(_sales(emu), QUESTION).response.message_id
    d1 = _wait_completed_at(one, ids[1])
    d2 = _wait_completed_at(two, ids[2])
    assert d1.completed_at is not None
    assert d2.completed_at is not None
    dur1 = d1.completed_at - d1.created_at
    dur2 = d2.completed_at - d2.created_at
    assert 0.1 < dur1 < 2.0
    assert 1.8 <= dur2 / dur1 <= 2.2, (dur1, dur2)

    # Every phase is stretched, not just the total.
    time.sleep(max(0.0, d2.completed_at - time.time()) + 0.05)
    ev1 = [e.at - d1.created_at for e in one.events() if e.message_id == ids[1]]
    ev2 = [e.at - d2.created_at for e in two.events() if e.message_id == ids[2]]
    assert len(ev1) == len(ev2) == len(QUERY_SEQUENCE)
    for a, b in zip(ev1[1:], ev2[1:], strict=True):
        assert abs(b - 2 * a) < 0.05 * max(1.0, b), (ev1, ev2)


def test_set_latency_applies_to_new_messages_only(
    make_emulator: Callable[..., GenieEmulator],
) -> None:
    emu = make_emulator(
        speed=1, qpm=1000, seed=2, config={"latency": {"total_seconds": 4.0, "jitter": 0}}
    )
    w = emu.workspace_client()
    space = _sales(emu)
    before = w.genie.start_conversation(space, FAST_QUESTION).response
    emu.set_latency(total_seconds=0.4)
    after = w.genie.start_conversation(space, FAST_QUESTION).response

    # The new message finishes on its own short schedule while the old one is still running.
    polls = _poll(w, space, after.conversation_id, after.message_id, limit=3)
    assert polls[-1][2] == "COMPLETED"
    old = w.genie.get_message(space, before.conversation_id, before.message_id)
    assert old.status.value not in TERMINAL

    info_before = _wait_completed_at(emu, before.message_id)
    info_after = _wait_completed_at(emu, after.message_id)
    assert info_before.completed_at is not None
    assert info_after.completed_at is not None
    assert abs((info_before.completed_at - info_before.created_at) - 4.0) < 0.05
    assert abs((info_after.completed_at - info_after.created_at) - 0.4) < 0.05


def test_set_latency_speed_only_keeps_total_seconds(
    make_emulator: Callable[..., GenieEmulator],
) -> None:
    emu = make_emulator(
        speed=1, qpm=1000, seed=8, config={"latency": {"total_seconds": 0.3, "jitter": 0}}
    )
    emu.set_latency(speed=2)
    w = emu.workspace_client()
    started = w.genie.start_conversation(_sales(emu), UNANSWERABLE).response
    info = _wait_completed_at(emu, started.message_id)
    assert info.completed_at is not None
    # 0.3 s at speed 2, not the default phases' ~3 s at speed 2.
    assert abs((info.completed_at - info.created_at) - 0.6) < 0.05


def test_query_result_running_then_succeeded(
    make_emulator: Callable[..., GenieEmulator],
    duckdb_reference: Callable[[str], list[tuple[Any, ...]]],
) -> None:
    phases = {
        "SUBMITTED": 0.05,
        "FETCHING_METADATA": 0.05,
        "FILTERING_CONTEXT": 0.05,
        "ASKING_AI": 0.05,
        "PENDING_WAREHOUSE": 0.05,
        "EXECUTING_QUERY": 2.0,
    }
    emu = make_emulator(speed=1, qpm=1000, seed=4, config={"latency": {"phases": phases}})
    w = emu.workspace_client()
    space = _sales(emu)
    started = w.genie.start_conversation(space, QUESTION).response
    conv, mid = started.conversation_id, started.message_id

    deadline = time.time() + 5
    msg = w.genie.get_message(space, conv, mid)
    while msg.status.value != "EXECUTING_QUERY" and time.time() < deadline:
        time.sleep(0.03)
        msg = w.genie.get_message(space, conv, mid)
    assert msg.status.value == "EXECUTING_QUERY"
    queries = [a for a in msg.attachments if a.query is not None]
    assert len(queries) == 1
    attachment = queries[0]
    assert attachment.query.statement_id

    running = w.genie.get_message_attachment_query_result(
        space, conv, mid, attachment.attachment_id
    ).statement_response
    assert running.status.state.value == "RUNNING"
    assert running.statement_id == attachment.query.statement_id
    assert running.result is None

    polls = _poll(w, space, conv, mid, limit=8)
    assert polls[-1][2] == "COMPLETED"
    done = w.genie.get_message_attachment_query_result(
        space, conv, mid, attachment.attachment_id
    ).statement_response
    assert done.status.state.value == "SUCCEEDED"
    assert done.statement_id == attachment.query.statement_id
    assert_same_rows(done, duckdb_reference(attachment.query.query))
