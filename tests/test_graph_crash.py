"""Crash and restart of the durable Genie node (issue 6, acceptance 2).

A turn runs in a child process (tests/crash_child.py) against the emulator in this
process; the child is SIGKILLed mid-turn and started again on the same thread and
checkpointer (SQLite, and a real Postgres). The emulator counts what Genie saw: the
question must reach it exactly once, and the restarted turn must end with its answer.

The acceptance test starts each child as a cold ``python tests/crash_child.py`` (about
4 s of imports here). The others fork their turns from a warm server process
(``crash_child.py serve``), a fresh process per turn, to keep CI time down.

Exactly-once holds when the parent graph's own step checkpoint lands before the node
submits (``durability="sync"``, as the README asks); the gap with LangGraph's other
durabilities is pinned as strict ``xfail`` tests: a fix turns them into XPASS (a failure
under ``strict``), so remove the marker with it.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from crash_child import (
    PHASES,
    ColdChild,
    DelayProxy,
    ForkServer,
    TurnSpec,
    run_stress,
)

from genie_tools.emulator import GenieEmulator

TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "QUERY_RESULT_EXPIRED"}
STRESS_SEED = int(os.environ.get("CRASH_STRESS_SEED", "20240606"))
SYNC = ("--durability", "sync")  # the parent graph as the README asks (and the CLI runs it)

# The steps' checkpoints live under the parent task's namespace, whose id comes from the
# parent's step checkpoint. With the parent's durability "exit" that checkpoint is never
# written mid-run; with the default "async" it is written in the background while the
# node already runs (made slow here). A restart then runs the task under a new id:
# `prepare` starts over, with a new `since`, and the question is asked again.
PARENT_CHECKPOINT_RACE = pytest.mark.xfail(
    strict=True,
    reason="documented limit (README: run the parent with durability='sync'): exactly-once "
    "needs the parent's step checkpoint to land before the node submits; 'exit' never "
    "does, 'async' races",
)


# fixtures and helpers ---------------------------------------------------------------------
@pytest.fixture(params=["sqlite", "postgres"])
def checkpointer_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'checkpoints.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture(scope="module")
def fork_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ForkServer]:
    with ForkServer(tmp_path_factory.mktemp("turns")) as server:
        yield server


@pytest.fixture
def proxied(make_emulator: Callable[..., GenieEmulator]) -> Iterator[tuple[Any, DelayProxy]]:
    """An emulator with real latency, behind a proxy that can hold question POSTs."""
    emu = make_emulator(speed=1, qpm=100_000, seed=62)
    with DelayProxy(emu.url) as proxy:
        yield emu, proxy


def space(emu: GenieEmulator, title: str = "Sales & revenue") -> str:
    return next(s.id for s in emu.config.spaces if s.title == title)


def asked(emu: GenieEmulator, question: str) -> list[Any]:
    return [m for m in emu.messages() if m.content == question]


def running(emu: GenieEmulator, question: str) -> bool:
    found = asked(emu, question)
    return bool(found) and found[0].status not in TERMINAL


def reaped(child: Any) -> None:
    child.wait_for(lambda c: False, 10)


# the acceptance test: cold processes ---------------------------------------------------------
def test_killed_turn_resumes_and_asks_genie_once(
    make_emulator: Callable[..., GenieEmulator], checkpointer_url: str
) -> None:
    emu = make_emulator(speed=1, qpm=100_000, seed=61)
    emu.set_latency(total_seconds=3.0)
    q1 = "What are the top 6 customers by revenue?"
    spec = TurnSpec(emu.url, emu.token, space(emu), checkpointer_url, "crash-1", q1, "q1", SYNC)

    child = ColdChild(spec, "run")
    # Genie has the question, has not answered it, and the turn recorded the message's ids
    assert child.wait_for(lambda c: running(emu, q1) and c.step("wait", "start"), 90)
    time.sleep(0.3)
    (message,) = asked(emu, q1)
    assert message.status not in TERMINAL
    child.kill()
    assert child.proc.wait(timeout=10) == -signal.SIGKILL
    assert child.last("result") is None

    resumed = ColdChild(spec, "resume").result(90)
    assert resumed["action"] == "resume"  # the thread's checkpoint had the turn in flight
    assert len(asked(emu, q1)) == 1
    assert resumed["answer"]["message_id"] == message.message_id
    assert resumed["answer"]["sql"].rstrip().endswith("LIMIT 6")
    assert resumed["conversation_id"] == message.conversation_id
    assert resumed["pending"] is None

    emu.set_latency(total_seconds=0.3)
    q2 = "only 1996, top 4"
    follow = ColdChild(dataclasses.replace(spec, question=q2, message_id="q2"), "run").result(90)
    (m2,) = asked(emu, q2)
    assert m2.conversation_id == message.conversation_id  # the same Genie conversation
    assert follow["answer"]["message_id"] == m2.message_id
    assert "1996" in follow["answer"]["sql"]
    assert follow["conversation_id"] == message.conversation_id
    assert len(asked(emu, q1)) == 1


# kill points, one at a time (forked processes) -------------------------------------------------
@pytest.mark.parametrize("point", ["before-post", "waiting", "completed"])
def test_killed_at_a_point_resumes_once(
    fork_server: ForkServer, proxied: tuple[Any, DelayProxy], tmp_path: Path, point: str
) -> None:
    emu, proxy = proxied
    emu.set_latency(total_seconds=1.5)
    question = {
        "before-post": "What are the top 7 customers by revenue?",
        "waiting": "What are the top 8 customers by revenue?",
        "completed": "What are the top 9 customers by revenue?",
    }[point]
    url = f"sqlite:///{tmp_path / 'c.db'}"
    spec = TurnSpec(proxy.url, emu.token, space(emu), url, f"point-{point}", question, "q", SYNC)
    if point == "before-post":
        proxy.drop_questions = True  # the POST never reaches Genie
    child = fork_server.start(spec, "run")
    if point == "before-post":
        assert child.wait_for(lambda c: c.step("submit", "start"), 30)
        time.sleep(0.3)
    elif point == "waiting":
        assert child.wait_for(lambda c: running(emu, question) and c.step("wait", "start"), 30)
    else:  # Genie finished; the turn has not seen it yet (it polls at most every 0.5 s)

        def done(c: Any) -> bool:
            found = asked(emu, question)
            return (
                bool(found)
                and found[0].completed_at is not None
                and (found[0].completed_at <= time.time())
            )

        assert child.wait_for(done, 30)
    assert not child.finished()
    child.kill()
    reaped(child)
    proxy.drop_questions = False

    resumed = fork_server.start(spec, "resume").result(30)
    (message,) = asked(emu, question)
    assert resumed["answer"]["message_id"] == message.message_id
    assert resumed["pending"] is None


def test_killed_after_genie_got_the_question_before_its_ids_were_recorded(
    fork_server: ForkServer, proxied: tuple[Any, DelayProxy], checkpointer_url: str
) -> None:
    emu, proxy = proxied
    emu.set_latency(total_seconds=0.5)
    question = "What are the top 11 customers by revenue?"
    spec = TurnSpec(proxy.url, emu.token, space(emu), checkpointer_url, "ids", question, "q", SYNC)
    proxy.response_delay = 3.0  # Genie created the message; the turn waits for its ids
    child = fork_server.start(spec, "run")
    assert child.wait_for(lambda c: bool(asked(emu, question)), 30)
    assert not child.step("submit", "end")
    child.kill()
    reaped(child)
    proxy.response_delay = 0.0

    resumed = fork_server.start(spec, "resume").result(30)
    assert resumed["action"] == "resume"
    assert len(asked(emu, question)) == 1, "the restarted turn asked Genie again"
    assert resumed["answer"]["message_id"] == asked(emu, question)[0].message_id


def test_restart_while_the_killed_post_is_still_in_flight(
    fork_server: ForkServer, proxied: tuple[Any, DelayProxy], tmp_path: Path
) -> None:
    """A slow Genie front end: the killed turn's POST lands 1 s later; the restart is quicker.

    A restart soon after ``since`` keeps looking for the earlier POST (for up to
    ``submit_recovery_seconds``, while it could still land) before asking again.
    """
    emu, proxy = proxied
    emu.set_latency(total_seconds=0.5)
    question = "What are the top 13 customers by revenue?"
    url = f"sqlite:///{tmp_path / 'c.db'}"
    spec = TurnSpec(proxy.url, emu.token, space(emu), url, "flight", question, "q", SYNC)
    proxy.request_delay = 1.0  # Genie creates the message 1 s after the POST arrived
    child = fork_server.start(spec, "run")
    assert child.wait_for(lambda c: c.step("submit", "start"), 30)
    time.sleep(0.2)
    child.kill()
    reaped(child)
    proxy.request_delay = 0.0

    resumed = fork_server.start(spec, "resume").result(30)
    time.sleep(1.5)  # the held POST has landed by now
    assert len(asked(emu, question)) == 1, "asked again while the first POST was in flight"
    assert resumed["answer"]["message_id"] == asked(emu, question)[0].message_id


@pytest.mark.parametrize(
    ("durability", "slow_store"),
    [
        pytest.param("exit", 0.0, marks=PARENT_CHECKPOINT_RACE, id="exit"),
        pytest.param("async", 5.0, marks=PARENT_CHECKPOINT_RACE, id="async-slow-store"),
        pytest.param("sync", 1.0, id="sync-slow-store"),
    ],
)
def test_parent_durability_and_a_slow_store(
    fork_server: ForkServer,
    proxied: tuple[Any, DelayProxy],
    tmp_path: Path,
    durability: str,
    slow_store: float,
) -> None:
    emu, proxy = proxied
    emu.set_latency(total_seconds=2.0)
    question = "What are the top 12 customers by revenue?"
    extra = ("--durability", durability, "--slow-root-put", str(slow_store))
    url = f"sqlite:///{tmp_path / 'c.db'}"
    spec = TurnSpec(proxy.url, emu.token, space(emu), url, "dur", question, "q", extra)
    child = fork_server.start(spec, "run")
    assert child.wait_for(lambda c: running(emu, question) and c.step("wait", "start"), 30)
    time.sleep(0.2)
    child.kill()
    reaped(child)

    resumed = fork_server.start(dataclasses.replace(spec, extra=()), "resume").result(30)
    assert len(asked(emu, question)) == 1, f"asked again after the restart ({resumed['action']})"
    assert resumed["answer"]["message_id"] == asked(emu, question)[0].message_id


def test_restart_does_not_adopt_another_threads_question(
    fork_server: ForkServer, proxied: tuple[Any, DelayProxy], tmp_path: Path
) -> None:
    """Thread B dies before its POST lands; thread A asked the same words just before.

    A restarted submit searches Genie by text since the prepare time: with a window that
    reached back before it (a clock-skew allowance) it would take A's message for B's, and
    B would share A's Genie conversation.
    """
    emu, proxy = proxied
    emu.set_latency(total_seconds=0.3)
    question = "What was total revenue in 1995?"
    url = f"sqlite:///{tmp_path / 'c.db'}"
    a = TurnSpec(proxy.url, emu.token, space(emu), url, "thread-a", question, "a1", SYNC)
    first = fork_server.start(a, "run").result(30)

    b = dataclasses.replace(a, thread="thread-b", message_id="b1")
    proxy.drop_questions = True  # B's POST is lost on the way
    child = fork_server.start(b, "run")
    assert child.wait_for(lambda c: c.step("submit", "start"), 30)
    time.sleep(0.3)
    child.kill()
    reaped(child)
    proxy.drop_questions = False

    second = fork_server.start(b, "resume").result(30)
    assert len(asked(emu, question)) == 2  # each thread asked once
    assert second["answer"]["message_id"] != first["answer"]["message_id"]
    assert second["conversation_id"] != first["conversation_id"]


# the stress run ---------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.timeout(400)
def test_stress_random_kills_no_duplicates_no_lost_turns(
    fork_server: ForkServer, proxied: tuple[Any, DelayProxy], checkpointer_url: str
) -> None:
    emu, proxy = proxied
    latency = 1.0
    emu.set_latency(total_seconds=latency)
    proxy.response_delay = 0.15  # a slow answer to question POSTs widens the submit window
    backend = checkpointer_url.split(":", 1)[0]
    print(f"crash stress: seed={STRESS_SEED} backend={backend} (CRASH_STRESS_SEED to change)")
    spec = TurnSpec(proxy.url, emu.token, space(emu), checkpointer_url, "", "", "", SYNC)
    report = run_stress(
        fork_server.start,
        emu,
        spec,
        seed=STRESS_SEED,
        min_kills=20,
        latency=latency,
        backend=backend,
    )
    print(
        f"kills={len(report.kills)} turns={len(report.turns)} duplicates={report.duplicates} "
        f"lost={report.lost} wrong_conversation={report.wrong_conversation} "
        f"in {report.seconds} s; by phase: {report.by_phase()}"
    )
    assert len(report.kills) >= 20
    phases = report.by_phase()
    assert any(phases.get(p) for p in PHASES[:3])  # before Genie got the question
    assert phases.get(PHASES[3])  # Genie got it, the turn did not record its ids
    assert any(phases.get(p) for p in PHASES[6:8])  # while Genie works on it
    assert any(phases.get(p) for p in PHASES[7:])  # around its completion
    problems = [t for t in report.turns if t.problem]
    assert not problems, problems
    assert report.lost == 0, [t for t in report.turns if not t.answered]
    assert report.wrong_conversation == 0, [t for t in report.turns if not t.same_conversation]
    assert report.duplicates == 0, [t for t in report.turns if t.asked > 1]
