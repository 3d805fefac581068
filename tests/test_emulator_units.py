"""Pure unit tests of the emulator's building blocks (no server, no HTTP)."""

from __future__ import annotations

import datetime as dt
import decimal
import itertools
import json
import re
import zoneinfo

import duckdb
import pytest
from pydantic import ValidationError

from genie_tools.emulator.config import LatencyConfig
from genie_tools.emulator.engine import UnsafeSqlError, check_read_only, similarity
from genie_tools.emulator.faults import Fault, FaultPlan
from genie_tools.emulator.latency import QUERY_PHASES, TEXT_PHASES, LatencyModel
from genie_tools.emulator.results import databricks_type, run_query, to_wire
from genie_tools.emulator.service import RateLimiter
from genie_tools.emulator.spaces import SpaceDecl

# --------------------------------------------------------------------------- results


@pytest.mark.parametrize(
    ("duckdb_type", "expected"),
    [
        ("BIGINT", ("LONG", "BIGINT")),
        ("HUGEINT", ("DECIMAL", "DECIMAL(38,0)")),
        ("UBIGINT", ("DECIMAL", "DECIMAL(20,0)")),
        ("INTEGER", ("INT", "INT")),
        ("SMALLINT", ("SHORT", "SMALLINT")),
        ("TINYINT", ("BYTE", "TINYINT")),
        ("DECIMAL(15,2)", ("DECIMAL", "DECIMAL(15,2)")),
        ("DECIMAL(38, 4)", ("DECIMAL", "DECIMAL(38,4)")),
        ("decimal(18,3)", ("DECIMAL", "DECIMAL(18,3)")),
        ("DOUBLE", ("DOUBLE", "DOUBLE")),
        ("FLOAT", ("FLOAT", "FLOAT")),
        ("BOOLEAN", ("BOOLEAN", "BOOLEAN")),
        ("DATE", ("DATE", "DATE")),
        ("TIMESTAMP", ("TIMESTAMP", "TIMESTAMP")),
        ("TIMESTAMP WITH TIME ZONE", ("TIMESTAMP", "TIMESTAMP")),
        ("VARCHAR", ("STRING", "STRING")),
        ("BLOB", ("BINARY", "BINARY")),
        ("INTEGER[]", ("ARRAY", "ARRAY<INT>")),
        ("UUID", ("STRING", "STRING")),
    ],
)
def test_databricks_type(duckdb_type: str, expected: tuple[str, str]) -> None:
    assert databricks_type(duckdb_type) == expected


@pytest.mark.parametrize("duckdb_type", ["TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S"])
def test_databricks_type_timestamp_precisions_are_timestamps(duckdb_type: str) -> None:
    # DuckDB reads nanosecond Parquet timestamps (pandas' default) as TIMESTAMP_NS;
    # to_wire renders them as ISO timestamps, so the manifest must say TIMESTAMP too.
    assert databricks_type(duckdb_type) == ("TIMESTAMP", "TIMESTAMP")


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (None, None),
        (True, "true"),
        (False, "false"),
        (decimal.Decimal("1234.50"), "1234.50"),
        (decimal.Decimal("1E+3"), "1000"),
        (decimal.Decimal("-0.0001"), "-0.0001"),
        (dt.date(1996, 2, 29), "1996-02-29"),
        (dt.datetime(2024, 1, 2, 3, 4, 5, 678901), "2024-01-02T03:04:05.678Z"),
        (
            dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            "2024-01-02T01:04:05.000Z",
        ),
        (
            dt.datetime(2024, 7, 1, 12, 0, tzinfo=zoneinfo.ZoneInfo("America/New_York")),
            "2024-07-01T16:00:00.000Z",
        ),
        (9_223_372_036_854_775_807, "9223372036854775807"),
        (170141183460469231731687303715884105727, "170141183460469231731687303715884105727"),
        (0.1, "0.1"),
        (b"\x01\xff", "01ff"),
        ("text", "text"),
    ],
)
def test_to_wire(value: object, wire: str | None) -> None:
    assert to_wire(value) == wire


def test_run_query_types_and_values_from_duckdb() -> None:
    con = duckdb.connect(":memory:")
    try:
        result = run_query(
            con.cursor(),
            "SELECT 12345678901::BIGINT AS big, 7::HUGEINT AS huge, 12.34::DECIMAL(10,2) AS dec, "
            "DATE '1995-03-15' AS d, TIMESTAMPTZ '2024-01-01 10:00:00+02' AS tz, "
            "true AS flag, NULL::INTEGER AS nothing",
            max_rows=None,
        )
    finally:
        con.close()
    types = [(c.name, c.type_name, c.type_text) for c in result.columns]
    assert types == [
        ("big", "LONG", "BIGINT"),
        ("huge", "DECIMAL", "DECIMAL(38,0)"),
        ("dec", "DECIMAL", "DECIMAL(10,2)"),
        ("d", "DATE", "DATE"),
        ("tz", "TIMESTAMP", "TIMESTAMP"),
        ("flag", "BOOLEAN", "BOOLEAN"),
        ("nothing", "INT", "INT"),
    ]
    assert result.rows == [
        ["12345678901", "7", "12.34", "1995-03-15", "2024-01-01T08:00:00.000Z", "true", None]
    ]
    assert result.truncated is False


def test_run_query_cap_marks_truncation() -> None:
    con = duckdb.connect(":memory:")
    try:
        capped = run_query(con.cursor(), "SELECT * FROM range(25) r(i) ORDER BY i", max_rows=10)
        exact = run_query(con.cursor(), "SELECT * FROM range(10) r(i) ORDER BY i", max_rows=10)
    finally:
        con.close()
    assert capped.truncated is True
    assert capped.rows == [[str(i)] for i in range(10)]
    assert exact.truncated is False
    assert exact.row_count == 10


# --------------------------------------------------------------------------- engine


def test_similarity_ignores_case_punctuation_order_and_filler() -> None:
    assert similarity("What was total revenue by year?", "total revenue by year") == 1.0
    assert similarity("REVENUE, TOTAL - YEAR!", "What was total revenue by year?") == 1.0
    assert similarity("What was total revenue by year?", "Which suppliers are in GERMANY?") < 0.5
    assert similarity("the of a", "total revenue") == 0.0
    assert similarity("", "total revenue") == 0.0


def test_similarity_near_match_above_engine_threshold() -> None:
    close = similarity("What was the total revenue per year?", "What was total revenue by year?")
    far = similarity("What was total revenue by month?", "What was total revenue by year?")
    assert close >= 0.72
    assert far < close


ALLOWED = {"samples.tpch.orders", "samples.tpch.lineitem"}


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT o_orderkey FROM samples.tpch.orders",
        "SELECT * FROM SAMPLES.TPCH.ORDERS",
        "WITH big AS (SELECT * FROM samples.tpch.orders WHERE o_totalprice > 1000) "
        "SELECT COUNT(*) FROM big",
        "WITH a AS (SELECT 1 AS x), b AS (SELECT x FROM a) SELECT * FROM b",
        "SELECT o.o_orderkey, l.l_quantity FROM samples.tpch.orders o "
        "JOIN samples.tpch.lineitem l ON l.l_orderkey = o.o_orderkey",
        "SELECT o_orderkey FROM samples.tpch.orders UNION ALL "
        "SELECT l_orderkey FROM samples.tpch.lineitem",
    ],
)
def test_check_read_only_accepts_selects_over_the_space(sql: str) -> None:
    check_read_only(sql, ALLOWED)


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("INSERT INTO samples.tpch.orders VALUES (1)", "only SELECT"),
        ("DELETE FROM samples.tpch.orders", "only SELECT"),
        ("DROP TABLE samples.tpch.orders", "only SELECT"),
        ("UPDATE samples.tpch.orders SET o_totalprice = 0", "only SELECT"),
        ("CREATE TABLE samples.tpch.x AS SELECT 1", "only SELECT"),
        ("SELECT 1; DROP TABLE samples.tpch.orders", "exactly one statement"),
        ("SELECT 1 FROM samples.tpch.orders; SELECT 2", "exactly one statement"),
        ("SELECT * FROM samples.tpch.customer", "samples.tpch.customer"),
        ("SELECT * FROM orders", "'orders'"),
        (
            "SELECT * FROM samples.tpch.orders WHERE o_custkey IN "
            "(SELECT c_custkey FROM samples.tpch.customer)",
            "samples.tpch.customer",
        ),
        (
            "WITH c AS (SELECT * FROM samples.tpch.customer) SELECT * FROM c",
            "samples.tpch.customer",
        ),
        ("SELECT * FROM read_parquet('/tmp/x.parquet')", "is not one of the space's tables"),
        ("SELECT * FROM read_csv_auto('/etc/passwd')", "is not one of the space's tables"),
        ("SELECT read_text('/etc/passwd')", "read_text"),
        ("SELECT * FROM '/etc/passwd'", "/etc/passwd"),
    ],
)
def test_check_read_only_rejects(sql: str, reason: str) -> None:
    with pytest.raises(UnsafeSqlError, match=re.escape(reason)):
        check_read_only(sql, ALLOWED)


def test_check_read_only_rejects_sql_that_does_not_tokenize() -> None:
    # Unbalanced quote: sqlglot raises TokenError (not ParseError) for this.
    with pytest.raises(UnsafeSqlError):
        check_read_only("SELECT 'abc FROM samples.tpch.orders", ALLOWED)


# --------------------------------------------------------------------------- latency


def test_latency_deterministic_by_seed() -> None:
    cfg = LatencyConfig()
    a = LatencyModel(cfg, speed=1, seed=42)
    b = LatencyModel(cfg, speed=1, seed=42)
    c = LatencyModel(cfg, speed=1, seed=43)
    plans_a = [a.schedule(100.0, with_query=True) for _ in range(3)]
    plans_b = [b.schedule(100.0, with_query=True) for _ in range(3)]
    plans_c = [c.schedule(100.0, with_query=True) for _ in range(3)]
    assert plans_a == plans_b
    assert plans_a != plans_c
    # Successive draws differ (jitter is on by default).
    assert plans_a[0] != plans_a[1]


def test_latency_schedule_shape() -> None:
    model = LatencyModel(LatencyConfig(), speed=1, seed=1)
    steps = model.schedule(50.0, with_query=True)
    assert [s.status for s in steps] == [*QUERY_PHASES, "COMPLETED"]
    assert steps[0].at == 50.0
    assert all(x.at < y.at for x, y in itertools.pairwise(steps))
    text = model.schedule(50.0, with_query=False)
    assert [s.status for s in text] == [*TEXT_PHASES, "COMPLETED"]
    stuck = model.schedule(50.0, with_query=True, terminal=None)
    assert [s.status for s in stuck] == list(QUERY_PHASES)
    failed = model.schedule(50.0, with_query=False, terminal="FAILED")
    assert failed[-1].status == "FAILED"


def test_latency_without_jitter_uses_means_exactly() -> None:
    cfg = LatencyConfig(jitter=0)
    steps = LatencyModel(cfg, speed=1, seed=0).schedule(0.0, with_query=True)
    durations = [y.at - x.at for x, y in itertools.pairwise(steps)]
    assert durations == pytest.approx([cfg.phases[p] for p in QUERY_PHASES])


@pytest.mark.parametrize("total", [1.0, 0.25, 10.0])
@pytest.mark.parametrize("speed", [1.0, 2.0])
def test_latency_total_seconds_scales_keeping_proportions(total: float, speed: float) -> None:
    cfg = LatencyConfig(jitter=0, total_seconds=total)
    steps = LatencyModel(cfg, speed=speed, seed=0).schedule(10.0, with_query=True)
    assert steps[-1].at - steps[0].at == pytest.approx(total * speed)
    durations = [y.at - x.at for x, y in itertools.pairwise(steps)]
    means = [cfg.phases[p] for p in QUERY_PHASES]
    assert [d / durations[0] for d in durations] == pytest.approx([m / means[0] for m in means])
    # A clarification also takes total_seconds (its own phases, rescaled).
    text = LatencyModel(cfg, speed=speed, seed=0).schedule(10.0, with_query=False)
    assert text[-1].at - text[0].at == pytest.approx(total * speed)


def test_latency_total_seconds_with_jitter_is_about_total() -> None:
    cfg = LatencyConfig(total_seconds=2.0)
    model = LatencyModel(cfg, speed=1, seed=3)
    totals = [model.schedule(0.0, with_query=True)[-1].at for _ in range(400)]
    mean = sum(totals) / len(totals)
    assert 1.8 < mean < 2.2
    assert len(set(totals)) == len(totals)


def test_latency_speed_zero_is_instant_and_negative_rejected() -> None:
    model = LatencyModel(LatencyConfig(total_seconds=5), speed=0, seed=0)
    steps = model.schedule(7.5, with_query=True)
    assert {s.at for s in steps} == {7.5}
    assert steps[-1].status == "COMPLETED"
    with pytest.raises(ValueError, match="speed"):
        LatencyModel(LatencyConfig(), speed=-1, seed=0)


def test_latency_speed_multiplies_same_draws() -> None:
    cfg = LatencyConfig()
    one = LatencyModel(cfg, speed=1, seed=9).schedule(0.0, with_query=True)
    two = LatencyModel(cfg, speed=2, seed=9).schedule(0.0, with_query=True)
    assert [s.at * 2 for s in one] == pytest.approx([s.at for s in two])


def test_latency_zero_mean_phase_takes_no_time() -> None:
    phases = dict.fromkeys(QUERY_PHASES, 0.0) | {"ASKING_AI": 1.0}
    steps = LatencyModel(LatencyConfig(phases=phases), speed=1, seed=0).schedule(
        0.0, with_query=True
    )
    by_status = {s.status: s.at for s in steps}
    assert by_status["SUBMITTED"] == by_status["FETCHING_METADATA"] == 0.0
    assert by_status["FILTERING_CONTEXT"] == by_status["ASKING_AI"] == 0.0
    assert by_status["PENDING_WAREHOUSE"] > 0.0
    assert by_status["COMPLETED"] == by_status["PENDING_WAREHOUSE"]


# --------------------------------------------------------------------------- faults


def _fires(plan: FaultPlan, n: int, method: str = "GET", path: str = "/x") -> list[bool]:
    return [plan.take_request_fault(method, path, None) is not None for _ in range(n)]


def test_fault_count() -> None:
    plan = FaultPlan([Fault(kind="http_error", count=2)])
    assert _fires(plan, 4) == [True, True, False, False]
    assert plan.pending() == []
    assert plan.fired == {"http_error": 2}


def test_fault_count_none_fires_forever() -> None:
    plan = FaultPlan([Fault(kind="http_error", count=None)])
    assert all(_fires(plan, 50))
    assert len(plan.pending()) == 1
    plan.clear()
    assert _fires(plan, 1) == [False]


def test_fault_skip_then_count() -> None:
    plan = FaultPlan([Fault(kind="slow_response", skip=2, count=1)])
    assert _fires(plan, 5) == [False, False, True, False, False]


def test_fault_probability_zero_and_seeded() -> None:
    never = FaultPlan([Fault(kind="http_error", count=None, probability=0.0)])
    assert not any(_fires(never, 100))
    a = FaultPlan([Fault(kind="http_error", count=None, probability=0.3)], seed=5)
    b = FaultPlan([Fault(kind="http_error", count=None, probability=0.3)], seed=5)
    c = FaultPlan([Fault(kind="http_error", count=None, probability=0.3)], seed=6)
    fa, fb, fc = _fires(a, 1000), _fires(b, 1000), _fires(c, 1000)
    assert fa == fb
    assert fa != fc
    assert 230 < sum(fa) < 370


def test_fault_path_regex_and_method() -> None:
    plan = FaultPlan([Fault(kind="http_error", count=None, path=r"/messages/[0-9a-f]+$")])
    assert plan.take_request_fault("GET", "/api/2.0/genie/spaces", None) is None
    assert plan.take_request_fault("GET", "/x/messages/abc123", None) is not None
    assert plan.take_request_fault("GET", "/x/messages/abc123/query-result", None) is None

    post = FaultPlan([Fault(kind="connection_reset", count=None, method="post")])
    assert post.take_request_fault("GET", "/a", None) is None
    assert post.take_request_fault("POST", "/a", None) is not None


def test_fault_space_id_and_request_vs_message() -> None:
    plan = FaultPlan(
        [
            Fault(kind="stuck", space_id="s1", count=None),
            Fault(kind="http_error", count=None, space_id="s2"),
        ]
    )
    assert plan.take_message_fault("s2") is None
    stuck = plan.take_message_fault("s1")
    assert stuck is not None
    assert stuck.kind == "stuck"
    assert plan.take_request_fault("GET", "/a", "s1") is None
    hit = plan.take_request_fault("GET", "/a", "s2")
    assert hit is not None
    assert hit.kind == "http_error"


def test_fault_first_armed_wins_and_validation() -> None:
    plan = FaultPlan([Fault(kind="http_error", status=500), Fault(kind="http_error", status=502)])
    first = plan.take_request_fault("GET", "/a", None)
    second = plan.take_request_fault("GET", "/a", None)
    assert (first.status, second.status) == (500, 502)  # type: ignore[union-attr]
    assert plan.take_request_fault("GET", "/a", None) is None
    with pytest.raises(ValidationError, match="status"):
        Fault(kind="http_error", status=404)
    with pytest.raises(ValidationError, match="kind"):
        Fault(kind="explode")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="count"):
        Fault(kind="stuck", count=0)


def test_fault_bad_path_regex_is_a_validation_error() -> None:
    # A bad regex must be reported like every other bad field (the admin endpoint
    # turns ValueError into 400), not escape as re.error.
    with pytest.raises(ValidationError, match="path"):
        Fault(kind="http_error", path="([")


# --------------------------------------------------------------------------- rate limiter


def test_rate_limiter_sliding_window() -> None:
    limiter = RateLimiter(limit=3, window=10.0)
    assert limiter.acquire(0.0) is None
    assert limiter.acquire(1.0) is None
    assert limiter.acquire(2.0) is None
    assert limiter.acquire(3.0) == pytest.approx(7.0)
    assert limiter.acquire(9.5) == pytest.approx(0.5)
    # The first question leaves the window exactly at t=10.
    assert limiter.acquire(10.0) is None
    # Window now holds 1, 2 and 10: the next slot opens when 1 leaves (t=11).
    assert limiter.acquire(10.25) == pytest.approx(0.75)
    assert limiter.acquire(11.0) is None
    assert limiter.acquire(11.0) == pytest.approx(1.0)


def test_rate_limiter_rejections_cost_no_quota() -> None:
    limiter = RateLimiter(limit=1, window=60.0)
    assert limiter.acquire(0.0) is None
    for t in (1.0, 30.0, 59.0):
        assert limiter.acquire(t) == pytest.approx(60.0 - t)
    assert limiter.acquire(60.0) is None


# --------------------------------------------------------------------------- spaces


def _space(**overrides: object) -> SpaceDecl:
    data: dict[str, object] = {
        "id": "space-1",
        "title": "Shop",
        "tables": [
            {
                "name": "shop.sales.orders",
                "description": "Orders.",
                "columns": {"id": "Order id.", "amount": "Amount in dollars."},
            },
            {"name": "shop.sales.customers"},
        ],
        "joins": [{"left": "shop.sales.orders.customer_id", "right": "shop.sales.customers.id"}],
        "instructions": "Amounts are in dollars.",
        "measures": [{"name": "revenue", "sql": "SUM(amount)", "synonyms": ["sales"]}],
        "sample_questions": ["How many orders?", "Total amount?"],
        "example_sqls": [
            {"question": "How many orders?", "sql": "SELECT COUNT(*) FROM shop.sales.orders"}
        ],
    }
    data.update(overrides)
    return SpaceDecl.model_validate(data)


def test_serialized_space_layout() -> None:
    space = _space()
    doc = json.loads(space.serialized())
    assert doc["version"] == 2
    questions = doc["config"]["sample_questions"]
    assert [q["question"] for q in questions] == [["How many orders?"], ["Total amount?"]]
    assert all(len(q["id"]) == 32 for q in questions)
    assert questions[0]["id"] != questions[1]["id"]
    assert doc["data_sources"]["tables"] == [
        {
            "identifier": "shop.sales.orders",
            "description": ["Orders."],
            "column_configs": [
                {"column_name": "id", "description": ["Order id."]},
                {"column_name": "amount", "description": ["Amount in dollars."]},
            ],
        },
        {"identifier": "shop.sales.customers", "description": [], "column_configs": []},
    ]
    instructions = doc["instructions"]
    assert [t["content"] for t in instructions["text_instructions"]] == [
        ["Amounts are in dollars."]
    ]
    examples = instructions["example_question_sqls"]
    assert [(e["question"], e["sql"]) for e in examples] == [
        (["How many orders?"], ["SELECT COUNT(*) FROM shop.sales.orders"])
    ]
    assert instructions["join_specs"] == [
        {
            "left": {"identifier": "shop.sales.orders.customer_id"},
            "right": {"identifier": "shop.sales.customers.id"},
        }
    ]
    assert instructions["sql_snippets"]["measures"] == [
        {"alias": "revenue", "sql": ["SUM(amount)"], "synonyms": ["sales"]}
    ]
    # Ids are stable across calls and objects, and depend on the space id.
    assert json.loads(_space().serialized()) == doc
    other = json.loads(_space(id="space-2").serialized())
    assert other["config"]["sample_questions"][0]["id"] != questions[0]["id"]


def test_serialized_space_without_instructions() -> None:
    doc = json.loads(_space(instructions="", sample_questions=[]).serialized())
    assert doc["instructions"]["text_instructions"] == []
    assert doc["config"]["sample_questions"] == []


def test_permission_for() -> None:
    default = _space()
    assert default.permission_for("anyone@example.com") == 3  # '*': CAN_EDIT
    custom = _space(permissions={"*": "CAN_VIEW", "alice": "CAN_MANAGE", "bob": "CAN_RUN"})
    assert custom.permission_for("alice") == 4
    assert custom.permission_for("bob") == 2
    assert custom.permission_for("carol") == 1
    private = _space(permissions={"alice": "CAN_EDIT"})
    assert private.permission_for("alice") == 3
    assert private.permission_for("bob") == 0


def test_space_validation() -> None:
    with pytest.raises(ValueError, match="fully qualified"):
        _space(tables=[{"name": "orders"}])
    with pytest.raises(ValueError, match="space id"):
        _space(id="bad id!")
    with pytest.raises(ValidationError, match="permissions"):
        _space(permissions={"*": "CAN_OWN"})
    with pytest.raises(ValidationError, match="colour"):
        _space(colour="red")
