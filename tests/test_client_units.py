"""The client's pure core: schedule, limiter, breaker, parsing, models, settings, errors."""

from __future__ import annotations

import datetime as dt
import decimal
import random
import statistics
import sys
import threading
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from genie_tools import GenieAnswer, GenieSettings, QueryResult
from genie_tools._core import backoff_delay
from genie_tools._optional import MissingExtraError
from genie_tools.cache import AnswerCache
from genie_tools.emulator.config import LatencyConfig
from genie_tools.emulator.latency import TERMINAL, LatencyModel
from genie_tools.errors import (
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ServiceUnavailableError,
    error_for_status,
    redact,
)
from genie_tools.limits import CircuitBreaker, RateLimiter, limits_for, reset_limits
from genie_tools.models import ResultColumn
from genie_tools.polling import PollSchedule, StallDetector
from genie_tools.submission import ClaimRegistry, find_submitted
from genie_tools.transport import Request, _failure
from genie_tools.values import parse_value
from genie_tools.wire import (
    MessageView,
    parse_message,
    parse_retry_after,
    parse_space,
    parse_statement,
)


# --------------------------------------------------------------------------- poll schedule
def _simulate(schedule: PollSchedule, duration: float, n: int = 200) -> tuple[float, float]:
    """Median detection lag and mean polls over ``n`` messages of the emulator's latency model."""
    model = LatencyModel(LatencyConfig(total_seconds=duration), speed=1, seed=11)
    rtt = 0.004  # one loopback request
    lags, polls = [], []
    for _ in range(n):
        steps = model.schedule(0.0, with_query=True)
        done = steps[-1].at
        t, count, status = rtt, 0, "SUBMITTED"
        while status not in TERMINAL:
            t += schedule.next_delay(status, elapsed=t, polls=count) + rtt
            count += 1
            status = [s.status for s in steps if s.at <= t][-1]
        lags.append(t + rtt - done)  # + fetching the result
        polls.append(count)
    return statistics.median(lags), statistics.mean(polls)


@pytest.mark.parametrize("duration", [1, 5, 30, 120])
def test_schedule_meets_the_benchmark_targets_on_the_emulators_latency_model(
    duration: float,
) -> None:
    lag, polls = _simulate(PollSchedule(), duration)
    assert lag <= max(0.15, 0.05 * duration)
    official = _simulate(PollSchedule(0.5, 0.5, 0.5, {}), duration)[1]  # every 0.5 s
    if duration >= 30:
        assert polls <= official / 4


def test_schedule_is_status_aware_and_never_fixed() -> None:
    s = PollSchedule()
    assert s.next_delay(None, elapsed=0, polls=0) == 0.15
    early = [s.next_delay("FETCHING_METADATA", elapsed=t, polls=1) for t in (0.3, 1, 3)]
    assert early == sorted(early)
    assert len(set(early)) == 3  # grows with the wait
    assert s.next_delay("EXECUTING_QUERY", elapsed=10, polls=5) < s.next_delay(
        "ASKING_AI", elapsed=10, polls=5
    )
    assert s.next_delay("EXECUTING_QUERY", elapsed=0.5, polls=3) == 0.1  # floor
    assert s.next_delay("ASKING_AI", elapsed=3600, polls=99) == 5.0  # cap
    assert s.next_delay("SOMETHING_NEW", elapsed=4, polls=2) == pytest.approx(1.4)


def test_stall_detector_reports_once_per_stretch() -> None:
    d = StallDetector(5)
    assert [d.observe("ASKING_AI", now=t) for t in (0, 4, 5, 9)] == [False, False, True, False]
    assert d.observe("EXECUTING_QUERY", now=10) is False
    assert d.observe("EXECUTING_QUERY", now=15) is True
    assert StallDetector(None).observe("X", now=1e9) is False


# --------------------------------------------------------------------------- limiter, breaker
def test_limiter_sliding_window_and_burst() -> None:
    lim = RateLimiter(3, window=60, margin=0.0)
    assert [lim.try_acquire(t) for t in (0, 1, 2)] == [0, 0, 0]
    assert lim.try_acquire(3) == 57
    assert lim.try_acquire(60) == 0
    assert lim.try_acquire(60.5) == 0.5  # the one at t=1 leaves at 61

    smooth = RateLimiter(6, window=60, burst=1, margin=0.0)  # one every 10 s
    assert smooth.try_acquire(0) == 0
    assert smooth.try_acquire(4) == 6
    assert smooth.try_acquire(10) == 0

    edge = RateLimiter(1, window=60)  # the default margin keeps off the window's edge
    assert edge.try_acquire(0) == 0
    assert edge.try_acquire(60) == pytest.approx(0.02)


def test_limiter_adapts_to_429_and_recovers() -> None:
    lim = RateLimiter(8, window=10, margin=0.0)
    lim.penalize(0, retry_after=3)
    assert lim.try_acquire(1) == 2  # held for Retry-After
    assert lim.effective_limit(3) == 4  # halved
    lim.penalize(2.5, retry_after=1)  # same burst of 429s: not halved again
    assert lim.effective_limit(3) == 4
    lim.penalize(5, retry_after=1)  # a separate 429 within the window: not halved again
    assert lim.effective_limit(5) == 4
    assert lim.effective_limit(13) == 8  # doubles back per quiet window
    assert lim.snapshot(now=50)["penalties"] == 1
    lim.penalize(60, retry_after=1)  # a new 429 a window later: halved again
    assert lim.effective_limit(60) == 4

    spaced = RateLimiter(8, window=8, burst=1, margin=0.0)  # one a second
    spaced.penalize(0, retry_after=1)  # budget 4 per 8 s: one every 2 s
    assert spaced.try_acquire(1) == 0
    assert spaced.try_acquire(2) == 1


def test_limiter_is_thread_safe() -> None:
    lim = RateLimiter(50, window=60)
    got: list[float] = []

    def worker() -> None:
        for _ in range(100):
            got.append(lim.try_acquire(1.0))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got.count(0.0) == 50


def test_breaker_states() -> None:
    b = CircuitBreaker(3, cooldown=5)
    for t in range(2):
        b.record_failure(t)
    b.record_success()  # resets the count
    for t in range(3):
        assert b.before_call(t) == 0
        b.record_failure(t)
    assert b.state == "open"
    assert b.before_call(3) == 4
    assert b.before_call(7) == 0  # half-open: one trial
    assert b.before_call(7.1) == 0.5  # others wait for it
    b.record_failure(7.2)
    assert b.state == "open"
    assert b.opened == 2


def test_limits_are_per_host_and_shared() -> None:
    reset_limits()
    a = limits_for("https://a.cloud.databricks.com", GenieSettings())
    assert a is limits_for("https://A.cloud.databricks.com/", GenieSettings())
    assert a is not limits_for("https://b.cloud.databricks.com", GenieSettings())
    limits_for("https://a.cloud.databricks.com", GenieSettings(qpm=9))
    assert a.limiter.qpm == 9
    reset_limits()


def test_backoff_grows_with_jitter_and_a_cap() -> None:
    rng = random.Random(1)
    delays = [backoff_delay(a, base=0.5, cap=4, rng=rng) for a in range(6)]
    assert 0.25 <= delays[0] <= 0.5
    assert all(2 <= d <= 4 for d in delays[3:])
    assert len(set(delays)) == 6


# --------------------------------------------------------------------------- wire
def test_values_are_typed_from_the_manifest() -> None:
    assert parse_value("42", "LONG") == 42
    assert parse_value("7", "BYTE") == 7
    assert parse_value("1.10", "DECIMAL") == decimal.Decimal("1.10")
    assert parse_value("2.5", "DOUBLE") == 2.5
    assert parse_value("NaN", "FLOAT") != parse_value("NaN", "FLOAT")
    assert parse_value("false", "BOOLEAN") is False
    assert parse_value("1995-03-04", "DATE") == dt.date(1995, 3, 4)
    stamp = parse_value("1995-03-04T05:06:07.123Z", "TIMESTAMP")
    assert stamp == dt.datetime(1995, 3, 4, 5, 6, 7, 123000, tzinfo=dt.UTC)
    assert parse_value("1995-03-04 05:06:07", "TIMESTAMP_NTZ") == dt.datetime(1995, 3, 4, 5, 6, 7)
    assert parse_value("[1, 2]", "ARRAY") == [1, 2]
    assert parse_value("x", "STRING") == "x"
    assert parse_value(None, "DECIMAL") is None
    for value, kind in [
        (stamp, "TIMESTAMP"),
        (decimal.Decimal("1.1"), "DECIMAL"),
        (True, "BOOLEAN"),
    ]:
        assert parse_value(value, kind) == value  # idempotent


def test_parse_message_last_query_wins_and_clarifications() -> None:
    body: dict[str, Any] = {
        "message_id": "m",
        "conversation_id": "c",
        "content": "q",
        "status": "COMPLETED",
        "created_timestamp": 1_700_000_000_000,
        "attachments": [
            {"attachment_id": "a1", "query": {"query": "SELECT 1"}},
            {
                "attachment_id": "a2",
                "query": {
                    "query": "SELECT 2",
                    "query_result_metadata": {"row_count": "5000", "is_truncated": True},
                },
            },
            {
                "attachment_id": "t",
                "text": {"content": "Which year?", "purpose": "FOLLOW_UP_QUESTION"},
            },
            {"attachment_id": "s", "suggested_questions": {"questions": ["A?", 3, "B?"]}},
            "junk",
        ],
    }
    view = parse_message(body, space_id="s1")
    assert view.space_id == "s1"
    assert view.query is not None
    assert (view.query.attachment_id, view.query.sql, view.query.row_count) == (
        "a2",
        "SELECT 2",
        5000,
    )
    assert view.query.truncated is True
    assert view.clarification == "Which year?"
    assert view.texts == []
    assert view.suggested_questions == ["A?", "B?"]
    failed = parse_message({"status": "FAILED", "error": {"type": "X_EXCEPTION", "error": "boom"}})
    assert (failed.error_type, failed.error_text) == ("X_EXCEPTION", "boom")


def test_parse_statement_orders_columns_by_position() -> None:
    stmt = {
        "statement_id": "st",
        "status": {"state": "SUCCEEDED"},
        "manifest": {
            "schema": {
                "columns": [
                    {"name": "b", "type_name": "STRING", "position": 1},
                    {"name": "a", "type_name": "INT", "position": 0},
                ]
            }
        },
        "result": {"data_array": [["1", "x"], [None, None]]},
    }
    view = parse_statement(stmt)
    assert view.result is not None
    assert view.result.column_names == ["a", "b"]
    assert view.result.rows == [[1, "x"], [None, None]]
    assert (
        parse_statement({"status": {"state": "CLOSED", "error": {"message": "gone"}}}).error_message
        == "gone"
    )


def test_parse_space_reads_serialized_space() -> None:
    serialized = (
        '{"config": {"sample_questions": [{"question": ["Revenue ", "by year?"]}]},'
        ' "data_sources": {"tables": [{"identifier": "c.s.t", "description": ["Orders"],'
        ' "column_configs": [{"column_name": "k", "description": ["Key"]}]}]},'
        ' "instructions": {"text_instructions": [{"content": ["Be precise."]}]}}'
    )
    info = parse_space({"space_id": "s", "title": "T", "serialized_space": serialized})
    assert info.detailed is True
    assert info.sample_questions == ["Revenue by year?"]
    assert info.tables[0].name == "c.s.t"
    assert info.tables[0].columns[0].description == "Key"
    assert info.instructions == "Be precise."
    assert (
        parse_space({"space_id": "s", "title": "T", "serialized_space": "{not json"}).detailed
        is False
    )


def test_retry_after_forms() -> None:
    now = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    assert parse_retry_after("Mon, 01 Jan 2024 00:00:30 GMT", now=now) == 30
    assert parse_retry_after("-5") == 0
    assert parse_retry_after("") is None


def test_transport_failures_say_whether_the_request_was_sent() -> None:
    req = Request("POST", "/x")
    assert _failure(httpx.ConnectError("refused"), req).sent is False
    assert _failure(httpx.ConnectTimeout("slow"), req).sent is False
    assert _failure(httpx.ReadError("reset"), req).sent is True
    assert _failure(httpx.ReadTimeout("slow"), req).sent is True
    assert _failure(httpx.RemoteProtocolError("closed"), req).sent is True
    link = Request("GET", "https://bucket/x?X-Amz-Signature=secret", external=True)
    assert "secret" not in str(_failure(httpx.ReadError("x"), link))


def test_find_submitted_skips_claimed_old_and_different_messages() -> None:
    def view(mid: str, content: str, at: int) -> MessageView:
        return MessageView(
            space_id="s",
            conversation_id="c",
            message_id=mid,
            content=content,
            status="SUBMITTED",
            created_ms=at,
        )

    reg = ClaimRegistry()
    reg.claim("h", "m2")
    msgs = [
        view("m1", "Q", 500),
        view("m2", "Q", 2000),
        view("m3", "other", 2100),
        view("m4", "Q", 2200),
    ]
    found = find_submitted(msgs, question="Q", since_ms=1000, taken=lambda m: reg.taken("h", m))
    assert found is not None
    assert found.message_id == "m4"


# --------------------------------------------------------------------------- models
def _result(rows: list[list[Any]], truncated: bool = False) -> QueryResult:
    return QueryResult(
        columns=[
            ResultColumn(name="name|x", type_name="STRING"),
            ResultColumn(name="n", type_name="LONG"),
        ],
        rows=rows,
        truncated=truncated,
    )


def test_markdown_says_what_was_left_out() -> None:
    r = _result([[f"a{i}", str(i)] for i in range(30)], truncated=True)
    table = r.to_markdown(max_rows=5)
    assert table.splitlines()[0] == "| name\\|x | n |"
    assert len([line for line in table.splitlines() if line.startswith("| a")]) == 5
    assert "showing 5 of 30 rows" in table
    assert "truncated" in table
    short = r.to_markdown(max_rows=None, max_chars=80)
    assert len(short.split("\n\n_Note")[0]) <= 80
    assert "showing 4 of 30 rows" in short
    assert "_Note" not in _result([["x\ny", "1"]]).to_markdown()
    assert "| x y | 1 |" in _result([["x\ny", "1"]]).to_markdown()


def test_records_and_pandas(monkeypatch: pytest.MonkeyPatch) -> None:
    r = _result([["a", "1"], [None, None]])
    assert r.to_records() == [{"name|x": "a", "n": 1}, {"name|x": None, "n": None}]
    frame = r.to_pandas()
    assert list(frame.columns) == ["name|x", "n"]
    assert frame.shape == (2, 2)
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(MissingExtraError, match=r"genie-tools\[pandas\]"):
        r.to_pandas()


def test_answer_json_round_trip_keeps_types() -> None:
    result = QueryResult(
        columns=[
            ResultColumn(name="d", type_name="DATE"),
            ResultColumn(name="t", type_name="TIMESTAMP"),
            ResultColumn(name="m", type_name="DECIMAL"),
            ResultColumn(name="f", type_name="DOUBLE"),
        ],
        rows=[["1996-01-02", "1996-01-02T03:04:05Z", "12.345", "NaN"]],
    )
    answer = GenieAnswer(
        question="q", space_id="s", conversation_id="c", message_id="m", result=result
    )
    back = GenieAnswer.model_validate_json(answer.model_dump_json())
    assert back.result is not None
    row = back.result.rows[0]
    assert row[:3] == result.rows[0][:3]
    assert isinstance(row[2], decimal.Decimal)
    assert row[3] != row[3]  # NaN survives


def test_answer_cache_expires_and_evicts() -> None:
    now = [0.0]
    cache = AnswerCache(ttl=10, max_entries=2, clock=lambda: now[0])
    a = GenieAnswer(question="q", space_id="s", conversation_id="c", message_id="m")
    cache.put("h", "s", "Q 1", a)
    assert cache.get("h", "s", "q   1") is not None
    assert cache.get("h", "other", "Q 1") is None
    cache.put("h", "s", "Q 2", a)
    cache.put("h", "s", "Q 3", a)
    assert cache.get("h", "s", "Q 1") is None  # evicted, least recently used
    now[0] = 11
    assert cache.get("h", "s", "Q 3") is None  # expired
    assert (cache.hits, cache.misses) == (1, 3)


# --------------------------------------------------------------------------- settings, errors
def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENIE_SPACE_IDS", "abc123, def-456 ,")
    monkeypatch.setenv("GENIE_QPM", "12")
    monkeypatch.setenv("GENIE_TIMEOUT", "90")
    s = GenieSettings()
    assert s.space_ids == ["abc123", "def-456"]
    assert s.default_space_id == "abc123"
    assert (s.qpm, s.timeout) == (12, 90.0)
    assert GenieSettings(qpm=3).qpm == 3  # arguments win
    monkeypatch.setenv("GENIE_QPM", "lots")
    with pytest.raises(ValidationError, match="qpm"):
        GenieSettings()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"host": "http://example.com"}, "must use https"),
        ({"host": "ftp://x"}, "not a workspace URL"),
        ({"poll_min_interval": 3, "poll_max_interval": 1}, "must not exceed"),
        ({"space_id": "has spaces"}, "letters, digits"),
        ({"space_ids": ["ok", "no/slash"]}, "letters, digits"),
        ({"qpm": 0}, "greater than or equal to 1"),
        ({"rate_burst": 9, "qpm": 5}, "rate_burst"),
        ({"host": "https://x.cloud.databricks.com", "profile": "p"}, "not both"),
        ({"timeot": 5}, "Extra inputs"),
    ],
)
def test_settings_validation_messages(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        GenieSettings(**options)


def test_loopback_http_is_allowed() -> None:
    for host in ("http://127.0.0.1:8765", "http://localhost:1", "http://[::1]:80"):
        assert GenieSettings(host=host + "/").host == host


def test_errors_map_statuses_and_say_what_to_do() -> None:
    cases = {
        400: BadRequestError,
        401: AuthenticationError,
        403: PermissionDeniedError,
        404: NotFoundError,
        409: BadRequestError,
        429: RateLimitedError,
        503: ServiceUnavailableError,
    }
    for status, cls in cases.items():
        err = error_for_status(status, "CODE", "server said so", what="GET /x", retry_after=3)
        assert type(err) is cls
        assert "server said so" in str(err)
        assert "HTTP" in str(err)
        assert len(str(err)) > len("Genie answered HTTP 400 to GET /x (CODE: server said so).")
    assert error_for_status(429, None, None, what="x", retry_after=7).retry_after == 7  # type: ignore[attr-defined]
    assert redact("a secret-value b", ["secret-value", "", None, "ab"]) == "a *** b"
