"""The workspace question rate limit (qpm) as raw HTTP and as the real Databricks SDK sees it."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from conftest import assert_same_rows, space_id
from databricks.sdk.errors import ResourceExhausted, TooManyRequests
from databricks.sdk.service.dashboards import MessageStatus

from genie_tools.emulator import GenieEmulator

QUESTION = "What was total revenue by year?"
OTHER_QUESTION = "How many orders were placed in 1996?"
SPACES_PATH = "/api/2.0/genie/spaces"

MakeEmulator = Callable[..., GenieEmulator]


def _raw(emu: GenieEmulator) -> httpx.Client:
    return httpx.Client(
        base_url=emu.url, headers={"Authorization": f"Bearer {emu.token}"}, timeout=10
    )


def test_qpm_limits_questions_only(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(qpm=2, seed=3)
    space, supply = space_id(emu), space_id(emu, "Supply chain")
    start = f"{SPACES_PATH}/{space}/start-conversation"
    with _raw(emu) as client:
        first = client.post(start, json={"content": QUESTION})
        assert first.status_code == 200

        bad = client.post(start, json={"content": "   "})
        assert bad.status_code == 400
        assert bad.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        missing = client.post(start, json={})
        assert missing.status_code == 400

        second = client.post(start, json={"content": OTHER_QUESTION})
        assert second.status_code == 200  # the bad requests cost no quota

        third = client.post(start, json={"content": QUESTION})
        assert third.status_code == 429
        assert third.json()["error_code"] == "RESOURCE_EXHAUSTED"
        retry_after = third.headers["Retry-After"]
        assert retry_after.isdigit()
        assert 1 <= int(retry_after) <= 60

        stats = emu.stats()
        assert stats["rate_limited"] == 1
        assert stats["rate_limited_by_space"] == {space: 1}
        assert stats["questions"] == 2
        assert stats["conversations"] == 2  # the throttled question created nothing

        # The limit is per workspace: another space and follow-ups share it.
        other = client.post(
            f"{SPACES_PATH}/{supply}/start-conversation", json={"content": QUESTION}
        )
        assert other.status_code == 429
        conv = first.json()["conversation_id"]
        follow_up = client.post(
            f"{SPACES_PATH}/{space}/conversations/{conv}/messages", json={"content": QUESTION}
        )
        assert follow_up.status_code == 429
        assert emu.stats()["rate_limited"] == 3

    # Reads are never limited.
    w = emu.workspace_client()
    for _ in range(5):
        assert len(w.genie.list_spaces().spaces or []) == 3
        msg = w.genie.get_message(space, conv, first.json()["message_id"])
        assert msg.content == QUESTION
    assert emu.stats()["rate_limited"] == 3
    assert emu.stats()["questions"] == 2


def test_sdk_waits_retry_after_and_succeeds(
    make_emulator: MakeEmulator, duckdb_reference: Callable[[str], list[tuple[Any, ...]]]
) -> None:
    emu = make_emulator(config={"limits": {"qpm": 1, "rate_window_seconds": 1.0}}, seed=3)
    space = space_id(emu)
    w = emu.workspace_client()
    w.genie.start_conversation(space, OTHER_QUESTION)

    t0 = time.monotonic()
    waiter = w.genie.start_conversation(space, QUESTION)
    elapsed = time.monotonic() - t0

    assert elapsed >= 0.9
    stats = emu.stats()
    assert stats["rate_limited"] == 1
    assert stats["questions"] == 2
    assert stats["requests"]["/api/2.0/genie/spaces/{space_id}/start-conversation"] == 3

    msg = waiter.result(timeout=dt.timedelta(seconds=10))
    assert msg.status == MessageStatus.COMPLETED
    query = next(a for a in msg.attachments or [] if a.query is not None)
    result = w.genie.get_message_attachment_query_result(
        space, msg.conversation_id, msg.message_id, query.attachment_id
    )
    assert_same_rows(result.statement_response, duckdb_reference(query.query.query))


def test_sdk_gives_up_after_retry_timeout(make_emulator: MakeEmulator) -> None:
    """With retry_timeout_seconds=1 the SDK still sleeps the full Retry-After, then raises
    the builtin TimeoutError chained to ResourceExhausted (a TooManyRequests).

    A 3 s window keeps the test short: with a 60 s window the SDK would sleep ~60 s first.
    """
    emu = make_emulator(config={"limits": {"qpm": 1, "rate_window_seconds": 3.0}}, seed=3)
    space = space_id(emu)
    w = emu.workspace_client(retry_timeout_seconds=1)
    w.genie.start_conversation(space, QUESTION)

    t0 = time.monotonic()
    with pytest.raises(TimeoutError) as err:
        w.genie.start_conversation(space, OTHER_QUESTION)
    elapsed = time.monotonic() - t0

    cause = err.value.__cause__
    assert isinstance(cause, ResourceExhausted)
    assert isinstance(cause, TooManyRequests)
    assert cause.retry_after_secs == 3
    assert elapsed >= 2.9  # slept Retry-After before noticing the deadline
    stats = emu.stats()
    assert stats["rate_limited"] == 1
    assert stats["questions"] == 1
