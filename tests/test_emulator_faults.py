"""Fault injection through the real Databricks SDK: what a client sees, and the emulator's counters.

Every test starts its own emulator (``make_emulator``); the session ``emu`` never gets faults.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from conftest import assert_same_rows, space_id
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import InternalError, OperationFailed
from databricks.sdk.service.dashboards import MessageErrorType, MessageStatus

from genie_tools.emulator import EmulatorConfig, Fault, GenieEmulator

QUESTION = "What was total revenue by year?"
OTHER_QUESTION = "How many orders were placed in 1996?"
GET_MESSAGE_ROUTE = (
    "/api/2.0/genie/spaces/{space_id}/conversations/{conversation_id}/messages/{message_id}"
)
SPACES_PATH = "/api/2.0/genie/spaces"

MakeEmulator = Callable[..., GenieEmulator]


def _raw(emu: GenieEmulator, token: str | None = None) -> httpx.Client:
    return httpx.Client(
        base_url=emu.url,
        headers={"Authorization": f"Bearer {token or emu.token}"},
        timeout=10,
    )


def _message_path(space_id: str, conversation_id: str, message_id: str) -> str:
    return f"{SPACES_PATH}/{space_id}/conversations/{conversation_id}/messages/{message_id}"


def _wait_status(
    w: WorkspaceClient, space_id: str, conv_id: str, msg_id: str, wanted: MessageStatus
) -> Any:
    deadline = time.monotonic() + 10
    while True:
        msg = w.genie.get_message(space_id, conv_id, msg_id)
        if msg.status == wanted or time.monotonic() > deadline:
            return msg
        time.sleep(0.05)


# --------------------------------------------------------------------------- client helper


def test_workspace_client_accepts_sdk_config_options(make_emulator: MakeEmulator) -> None:
    """``emu.workspace_client(**config)`` is documented to take SDK Config options."""
    emu = make_emulator(seed=1)
    w = emu.workspace_client(retry_timeout_seconds=5, http_timeout_seconds=2)
    assert w.config.retry_timeout_seconds == 5
    assert w.config.http_timeout_seconds == 2
    assert len(w.genie.list_spaces().spaces or []) == 3


# --------------------------------------------------------------------------- request faults


def test_http_503_burst_is_retried_by_the_sdk(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(seed=1)
    w = emu.workspace_client()
    space = space_id(emu)
    started = w.genie.start_conversation(space, QUESTION).response
    conv, mid = started.conversation_id, started.message_id
    emu.inject(kind="http_error", status=503, count=2, path=f"/messages/{mid}$")

    t0 = time.monotonic()
    msg = w.genie.get_message(space, conv, mid)
    elapsed = time.monotonic() - t0

    assert msg.message_id == mid
    assert msg.content == QUESTION
    stats = emu.stats()
    assert stats["faults_fired"] == {"http_error": 2}
    assert stats["requests"][GET_MESSAGE_ROUTE] == 3  # two 503s, then the answer
    assert stats["polls_by_message"][mid] == 1  # only the last one reached the handler
    assert elapsed >= 2.0  # no Retry-After header: the SDK waits ~1 s (+jitter) per retry
    assert emu.service.faults.pending() == []


def test_http_500_raises_internal_error_without_retry(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(seed=1)
    w = emu.workspace_client()
    space = space_id(emu)
    emu.inject(kind="http_error", status=500, count=3, path=f"/spaces/{space}$")

    with pytest.raises(InternalError) as err:
        w.genie.get_space(space)

    assert "Injected HTTP 500" in str(err.value)
    stats = emu.stats()
    assert stats["faults_fired"] == {"http_error": 1}  # one request only: 500 is not retried
    assert stats["requests"]["/api/2.0/genie/spaces/{space_id}"] == 1
    assert len(emu.service.faults.pending()) == 1  # two of the three still armed


def test_connection_reset_before_get(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(seed=1)
    w = emu.workspace_client()
    space = space_id(emu)
    started = w.genie.start_conversation(space, QUESTION).response
    conv, mid = started.conversation_id, started.message_id

    emu.inject(kind="connection_reset", when="before", path=f"/messages/{mid}$", method="GET")
    msg = w.genie.get_message(space, conv, mid)
    assert msg.message_id == mid
    assert emu.stats()["faults_fired"] == {"connection_reset": 1}
    assert emu.stats()["polls_by_message"][mid] == 1

    emu.inject(kind="connection_reset", when="before", path=f"/messages/{mid}$", method="GET")
    with _raw(emu) as client, pytest.raises(httpx.TransportError):
        client.get(_message_path(space, conv, mid))
    assert emu.stats()["faults_fired"] == {"connection_reset": 2}
    assert emu.stats()["polls_by_message"][mid] == 1  # the dropped request was never handled


def test_connection_reset_after_post_duplicates_the_question(make_emulator: MakeEmulator) -> None:
    """The hazard: the SDK re-sends a POST whose answer was lost, so Genie gets it twice."""
    emu = make_emulator(seed=1)
    w = emu.workspace_client()
    space = space_id(emu)
    emu.inject(kind="connection_reset", when="after", path="/start-conversation$", method="POST")

    waiter = w.genie.start_conversation(space, QUESTION)

    stats = emu.stats()
    assert stats["faults_fired"] == {"connection_reset": 1}
    assert stats["questions"] == 2
    assert stats["conversations"] == 2
    assert sorted(stats["questions_by_conversation"].values()) == [1, 1]
    assert [m.content for m in emu.messages()] == [QUESTION, QUESTION]
    # The SDK only knows the second one; both get answered (and cost a question each).
    assert waiter.response.message_id == emu.messages()[1].message_id
    for info in emu.messages():
        done = _wait_status(
            w, space, info.conversation_id, info.message_id, MessageStatus.COMPLETED
        )
        assert done.status == MessageStatus.COMPLETED


def test_stop_with_a_query_in_flight(make_emulator: MakeEmulator) -> None:
    """Stopping right after a question (its SQL still running on a worker) must not raise."""
    emu = make_emulator(seed=1)
    space = space_id(emu)
    with _raw(emu) as client:
        posted = client.post(
            f"{SPACES_PATH}/{space}/start-conversation", json={"content": QUESTION}
        )
    assert posted.status_code == 200
    emu.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{emu.url}{SPACES_PATH}", timeout=2)


def test_slow_response_delays_the_answer(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(seed=1)
    w = emu.workspace_client()
    emu.inject(kind="slow_response", delay_seconds=1.0, path=f"{SPACES_PATH}$")

    t0 = time.monotonic()
    spaces = w.genie.list_spaces().spaces or []
    elapsed = time.monotonic() - t0

    assert len(spaces) == 3
    assert elapsed >= 1.0
    assert emu.stats()["faults_fired"] == {"slow_response": 1}


def test_slow_response_beyond_http_timeout_times_out(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(seed=1)
    w = emu.workspace_client(http_timeout_seconds=0.3, retry_timeout_seconds=1)
    emu.inject(kind="slow_response", delay_seconds=1.0, count=None, path=f"{SPACES_PATH}$")

    t0 = time.monotonic()
    with pytest.raises(TimeoutError) as err:
        w.genie.list_spaces()
    elapsed = time.monotonic() - t0

    # The SDK retries read timeouts until retry_timeout_seconds, then raises the
    # builtin TimeoutError chained to requests' ReadTimeout.
    import requests

    assert isinstance(err.value.__cause__, requests.exceptions.ReadTimeout)
    assert 1.0 <= elapsed < 5.0
    assert emu.stats()["faults_fired"]["slow_response"] >= 1


# --------------------------------------------------------------------------- message faults


def test_stuck_message_times_out_and_can_be_cancelled(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(seed=1)
    w = emu.workspace_client()
    space = space_id(emu)
    emu.inject(kind="stuck")

    started = w.genie.start_conversation(space, QUESTION).response
    conv, mid = started.conversation_id, started.message_id
    seen = []
    for _ in range(5):
        seen.append(w.genie.get_message(space, conv, mid).status)
        time.sleep(0.12)
    assert seen == [MessageStatus.EXECUTING_QUERY] * 5
    assert emu.stats()["faults_fired"] == {"stuck": 1}

    emu.inject(kind="stuck")
    with pytest.raises(TimeoutError):
        w.genie.start_conversation_and_wait(space, QUESTION, timeout=dt.timedelta(seconds=2))
    assert emu.stats()["faults_fired"] == {"stuck": 2}

    w.genie.delete_conversation_message(space, conv, mid)
    assert w.genie.get_message(space, conv, mid).status == MessageStatus.CANCELLED
    info = next(m for m in emu.messages() if m.message_id == mid)
    assert info.fault == "stuck"
    assert info.status == "CANCELLED"
    assert info.completed_at is not None


def test_failed_message_raises_operation_failed(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(seed=1)
    w = emu.workspace_client()
    space = space_id(emu)
    emu.inject(
        kind="failed",
        error_type="RATE_LIMIT_EXCEEDED_GENERIC_EXCEPTION",
        error_message="Too many requests to the model.",
    )

    with pytest.raises(OperationFailed) as err:
        w.genie.start_conversation_and_wait(space, QUESTION, timeout=dt.timedelta(seconds=10))
    assert "FAILED" in str(err.value)

    info = emu.messages()[-1]
    msg = w.genie.get_message(space, info.conversation_id, info.message_id)
    assert msg.status == MessageStatus.FAILED
    assert msg.error is not None
    assert msg.error.type == MessageErrorType.RATE_LIMIT_EXCEEDED_GENERIC_EXCEPTION
    assert msg.error.error == "Too many requests to the model."
    assert not msg.attachments
    assert emu.stats()["faults_fired"] == {"failed": 1}


def test_cancelled_message(make_emulator: MakeEmulator) -> None:
    """The SDK's waiter only treats FAILED as a failure: on CANCELLED it polls until timeout."""
    emu = make_emulator(seed=1)
    w = emu.workspace_client()
    space = space_id(emu)
    emu.inject(kind="cancelled")

    # databricks-sdk's wait_get_message_genie_completed has failure_states = (FAILED,) only,
    # so a CANCELLED message is not an OperationFailed: the waiter runs into its timeout.
    with pytest.raises(TimeoutError) as err:
        w.genie.start_conversation_and_wait(space, QUESTION, timeout=dt.timedelta(seconds=1))
    assert "CANCELLED" in str(err.value)

    info = emu.messages()[-1]
    assert info.fault == "cancelled"
    msg = w.genie.get_message(space, info.conversation_id, info.message_id)
    assert msg.status == MessageStatus.CANCELLED
    assert emu.stats()["faults_fired"] == {"cancelled": 1}


def test_expired_result_can_be_re_executed(
    make_emulator: MakeEmulator, duckdb_reference: Callable[[str], list[tuple[Any, ...]]]
) -> None:
    emu = make_emulator(seed=1)
    w = emu.workspace_client()
    space = space_id(emu)
    emu.inject(kind="expired_result")

    started = w.genie.start_conversation(space, QUESTION).response
    conv, mid = started.conversation_id, started.message_id
    msg = _wait_status(w, space, conv, mid, MessageStatus.QUERY_RESULT_EXPIRED)
    assert msg.status == MessageStatus.QUERY_RESULT_EXPIRED
    query = next(a for a in msg.attachments or [] if a.query is not None)
    old_statement = query.query.statement_id

    expired = w.genie.get_message_attachment_query_result(space, conv, mid, query.attachment_id)
    assert expired.statement_response.status.state.value == "CLOSED"

    rerun = w.genie.execute_message_attachment_query(space, conv, mid, query.attachment_id)
    assert rerun.statement_response.status.state.value == "SUCCEEDED"
    assert rerun.statement_response.statement_id != old_statement
    assert_same_rows(rerun.statement_response, duckdb_reference(query.query.query))

    assert w.genie.get_message(space, conv, mid).status == MessageStatus.COMPLETED
    again = w.genie.get_message_attachment_query_result(space, conv, mid, query.attachment_id)
    assert again.statement_response.status.state.value == "SUCCEEDED"
    assert_same_rows(again.statement_response, duckdb_reference(query.query.query))
    assert emu.stats()["faults_fired"] == {"expired_result": 1}


# --------------------------------------------------------------------------- arming faults


def test_faults_from_config(make_emulator: MakeEmulator) -> None:
    config = EmulatorConfig(
        faults=[
            Fault(kind="http_error", status=500, path=f"{SPACES_PATH}$"),
            Fault(kind="failed", error_type="SQL_EXECUTION_EXCEPTION"),
        ]
    )
    emu = make_emulator(seed=1, config=config)
    space = space_id(emu)
    with _raw(emu) as client:
        first = client.get(SPACES_PATH)
        assert first.status_code == 500
        assert first.json()["error_code"] == "INTERNAL_ERROR"
        assert client.get(SPACES_PATH).status_code == 200

    w = emu.workspace_client()
    with pytest.raises(OperationFailed):
        w.genie.start_conversation_and_wait(space, QUESTION, timeout=dt.timedelta(seconds=10))
    done = w.genie.start_conversation_and_wait(space, QUESTION, timeout=dt.timedelta(seconds=10))
    assert done.status == MessageStatus.COMPLETED
    assert emu.stats()["faults_fired"] == {"http_error": 1, "failed": 1}


def test_faults_from_a_config_dict(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(
        seed=1,
        config={"faults": [{"kind": "http_error", "status": 502, "count": 2, "path": "/spaces$"}]},
    )
    with _raw(emu) as client:
        codes = [client.get(SPACES_PATH).status_code for _ in range(3)]
    assert codes == [502, 502, 200]
    assert emu.stats()["faults_fired"] == {"http_error": 2}


def test_faults_from_the_admin_endpoint(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(seed=1)
    fault = {"kind": "http_error", "status": 503, "count": None, "path": f"{SPACES_PATH}$"}
    with httpx.Client(base_url=emu.url, timeout=10) as anonymous:
        assert anonymous.post("/emulator/admin/faults", json=fault).status_code == 401
        assert anonymous.delete("/emulator/admin/faults").status_code == 401

    with _raw(emu) as client:
        armed = client.post("/emulator/admin/faults", json=fault)
        assert armed.status_code == 200
        assert [f["kind"] for f in armed.json()["armed"]] == ["http_error"]

        bad = client.post("/emulator/admin/faults", json={"kind": "meteor_strike"})
        assert bad.status_code == 400
        assert bad.json()["error_code"] == "INVALID_PARAMETER_VALUE"

        for _ in range(3):
            resp = client.get(SPACES_PATH)
            assert resp.status_code == 503
            assert resp.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"

        stats = client.get("/emulator/admin/stats").json()
        assert stats["faults_fired"] == {"http_error": 3}

        cleared = client.delete("/emulator/admin/faults")
        assert cleared.status_code == 200
        assert cleared.json() == {"armed": []}
        assert client.get(SPACES_PATH).status_code == 200
    assert emu.service.faults.pending() == []
    assert emu.stats()["faults_fired"] == {"http_error": 3}


def _fault_pattern(emu: GenieEmulator, n: int = 20) -> list[int]:
    emu.inject(kind="http_error", status=503, probability=0.5, count=None, path=f"{SPACES_PATH}$")
    with _raw(emu) as client:
        return [i for i in range(n) if client.get(SPACES_PATH).status_code == 503]


def test_probability_is_deterministic_by_seed(make_emulator: MakeEmulator) -> None:
    first = make_emulator(seed=11)
    second = make_emulator(seed=11)
    other = make_emulator(seed=12)
    a, b, c = _fault_pattern(first), _fault_pattern(second), _fault_pattern(other)

    assert a == b
    assert 0 < len(a) < 20
    assert first.stats()["faults_fired"] == {"http_error": len(a)}
    assert second.stats()["faults_fired"] == {"http_error": len(b)}
    assert c != a  # a different seed draws differently


# --------------------------------------------------------------------------- filters


def test_space_id_filter(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(seed=1)
    sales, supply = space_id(emu), space_id(emu, "Supply chain")
    emu.inject(kind="http_error", status=500, count=None, space_id=sales)
    emu.inject(kind="failed", count=None, space_id=supply)

    with _raw(emu) as client:
        assert client.get(SPACES_PATH).status_code == 200  # no space in the path
        assert client.get(f"{SPACES_PATH}/{supply}").status_code == 200
        assert client.get(f"{SPACES_PATH}/{sales}").status_code == 500
        assert client.get(f"{SPACES_PATH}/{sales}").status_code == 500

    w = emu.workspace_client()
    with pytest.raises(OperationFailed):
        w.genie.start_conversation_and_wait(
            supply, "Which suppliers supply the most parts?", timeout=dt.timedelta(seconds=10)
        )
    emu.clear_faults()
    done = w.genie.start_conversation_and_wait(sales, QUESTION, timeout=dt.timedelta(seconds=10))
    assert done.status == MessageStatus.COMPLETED
    assert emu.stats()["faults_fired"] == {"http_error": 2, "failed": 1}
    assert [m.fault for m in emu.messages()] == ["failed", None]


def test_skip_and_count(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(seed=1)
    emu.inject(kind="http_error", status=500, skip=2, count=3, path=f"{SPACES_PATH}$")
    with _raw(emu) as client:
        codes = [client.get(SPACES_PATH).status_code for _ in range(7)]
    assert codes == [200, 200, 500, 500, 500, 200, 200]
    assert emu.stats()["faults_fired"] == {"http_error": 3}
    assert emu.service.faults.pending() == []


def test_method_filter(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(seed=1)
    space = space_id(emu)
    emu.inject(kind="http_error", status=500, count=None, method="POST", path="/genie/spaces")
    with _raw(emu) as client:
        assert client.get(SPACES_PATH).status_code == 200
        assert client.get(f"{SPACES_PATH}/{space}").status_code == 200
        posted = client.post(
            f"{SPACES_PATH}/{space}/start-conversation", json={"content": QUESTION}
        )
        assert posted.status_code == 500
    assert emu.stats()["questions"] == 0
    assert emu.stats()["faults_fired"] == {"http_error": 1}


def test_message_fault_skip_lets_the_first_question_through(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(seed=1)
    w = emu.workspace_client()
    space = space_id(emu)
    emu.inject(kind="failed", skip=1, count=1)

    first = w.genie.start_conversation_and_wait(space, QUESTION, timeout=dt.timedelta(seconds=10))
    assert first.status == MessageStatus.COMPLETED
    with pytest.raises(OperationFailed):
        w.genie.create_message_and_wait(
            space, first.conversation_id, OTHER_QUESTION, timeout=dt.timedelta(seconds=10)
        )
    third = w.genie.create_message_and_wait(
        space, first.conversation_id, OTHER_QUESTION, timeout=dt.timedelta(seconds=10)
    )
    assert third.status == MessageStatus.COMPLETED
    assert [m.fault for m in emu.messages()] == [None, "failed", None]
    assert emu.stats()["faults_fired"] == {"failed": 1}
