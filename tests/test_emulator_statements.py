"""The SQL Statement Execution API of the emulator, through the real SDK, checked against DuckDB.

Code that re-runs Genie's SQL on a warehouse (``w.statement_execution``) must work offline:
the same rows as an independent DuckDB, Databricks' wait/poll/cancel and chunking semantics,
and a read-only warehouse whose refusals end the statement ``FAILED`` like Databricks does.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from conftest import assert_same_rows
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import BadRequest, NotFound, Unauthenticated
from databricks.sdk.service.sql import (
    Disposition,
    ExecuteStatementRequestOnWaitTimeout,
    Format,
    ServiceErrorCode,
    StatementParameterListItem,
    StatementResponse,
    StatementState,
    StatementStatus,
)

from genie_tools.emulator import GenieEmulator
from genie_tools.emulator.statements import (
    CatalogIndex,
    Parameter,
    StatementFailure,
    compile_statement,
    statement_store,
)

MakeEmulator = Callable[..., GenieEmulator]
Reference = Callable[[str], list[tuple[Any, ...]]]

WAREHOUSE = "emulator-warehouse"
TERMINAL = {
    StatementState.SUCCEEDED,
    StatementState.FAILED,
    StatementState.CANCELED,
    StatementState.CLOSED,
}
# Runs for hours on TPC-H SF 0.1 (a 600k x 600k non-equi join): only cancellation ends it.
SLOW_SQL = (
    "SELECT count(*) FROM samples.tpch.lineitem a, samples.tpch.lineitem b "
    "WHERE a.l_comment < b.l_comment"
)
COUNT_ORDERS = "SELECT count(*) AS n FROM samples.tpch.orders"

QUERIES = {
    "aggregates": """
        SELECT o_orderpriority, count(*) AS orders, sum(o_totalprice) AS revenue,
               avg(o_totalprice) AS avg_price, min(o_orderdate) AS first_day,
               max(o_orderdate) AS last_day
        FROM samples.tpch.orders
        GROUP BY o_orderpriority
        ORDER BY o_orderpriority
    """,
    "joins": """
        SELECT n.n_name, r.r_name, count(DISTINCT c.c_custkey) AS customers,
               sum(o.o_totalprice) AS revenue
        FROM samples.tpch.customer c
        JOIN samples.tpch.nation n ON c.c_nationkey = n.n_nationkey
        JOIN samples.tpch.region r ON n.n_regionkey = r.r_regionkey
        JOIN samples.tpch.orders o ON o.o_custkey = c.c_custkey
        GROUP BY n.n_name, r.r_name
        ORDER BY revenue DESC, n.n_name
        LIMIT 10
    """,
    "dates": """
        SELECT year(o_orderdate) AS yr, quarter(o_orderdate) AS qtr,
               date_add(min(o_orderdate), 30) AS month_after_first,
               max(datediff(l.l_receiptdate, l.l_shipdate)) AS longest_transit,
               count(*) AS lines
        FROM samples.tpch.orders o
        JOIN samples.tpch.lineitem l ON l.l_orderkey = o.o_orderkey
        WHERE o.o_orderdate BETWEEN DATE'1995-01-01' AND DATE'1996-12-31'
        GROUP BY ALL
        ORDER BY yr, qtr
    """,
    "decimals (TPC-H Q1)": """
        SELECT l_returnflag, l_linestatus, sum(l_quantity) AS sum_qty,
               sum(l_extendedprice * (1 - l_discount)) AS sum_disc_price,
               sum(l_extendedprice * (1 - l_discount) * (1 + l_tax)) AS sum_charge,
               avg(l_discount) AS avg_disc, CAST(avg(l_quantity) AS DECIMAL(10, 3)) AS avg_qty
        FROM samples.tpch.lineitem
        WHERE l_shipdate <= DATE'1998-12-01' - INTERVAL 90 DAYS
        GROUP BY l_returnflag, l_linestatus
        ORDER BY l_returnflag, l_linestatus
    """,
    "NULLs": """
        SELECT c.c_custkey, o.o_orderkey, NULLIF(c.c_mktsegment, 'BUILDING') AS segment,
               CAST(NULL AS INT) AS nothing, coalesce(o.o_orderstatus, '?') AS status
        FROM samples.tpch.customer c
        LEFT JOIN samples.tpch.orders o ON o.o_custkey = c.c_custkey
        WHERE c.c_custkey <= 12
        ORDER BY c.c_custkey, o.o_orderkey NULLS FIRST
    """,
    "CTE and window": """
        WITH totals AS (
            SELECT o_custkey, sum(o_totalprice) AS total
            FROM samples.tpch.orders
            GROUP BY o_custkey
        )
        SELECT o_custkey, total, rank() OVER (ORDER BY total DESC) AS rnk
        FROM totals
        QUALIFY rnk <= 5
        ORDER BY rnk, o_custkey
    """,
    "VALUES and booleans": """
        SELECT id, label, id > 1 AS big, upper(label) AS shout
        FROM VALUES (1, 'a'), (2, NULL), (3, 'c') AS t(id, label)
        ORDER BY id
    """,
    "strings": """
        SELECT p_brand, count(*) AS n, max(p_retailprice) > 2000 AS pricey,
               concat_ws('|', min(p_type), max(p_container)) AS span
        FROM samples.tpch.part
        WHERE p_name LIKE '%green%'
        GROUP BY p_brand
        ORDER BY p_brand
    """,
}


# helpers ---------------------------------------------------------------------
def run(w: WorkspaceClient, sql: str, **kwargs: Any) -> StatementResponse:
    """Execute a statement on the emulator's warehouse, waiting up to 50 s by default."""
    kwargs.setdefault("wait_timeout", "50s")
    return w.statement_execution.execute_statement(statement=sql, warehouse_id=WAREHOUSE, **kwargs)


def succeeded(w: WorkspaceClient, sql: str, **kwargs: Any) -> StatementResponse:
    resp = run(w, sql, **kwargs)
    assert resp.status is not None
    assert resp.status.state == StatementState.SUCCEEDED, resp.status
    return resp


def failed(w: WorkspaceClient, sql: str, **kwargs: Any) -> str:
    """Run a statement that must FAIL with BAD_REQUEST; return its error message."""
    resp = run(w, sql, **kwargs)
    assert resp.status is not None
    assert resp.status.state == StatementState.FAILED, resp.status
    assert resp.status.error is not None
    assert resp.status.error.error_code == ServiceErrorCode.BAD_REQUEST
    assert resp.result is None
    assert resp.manifest is None
    return resp.status.error.message or ""


def poll(w: WorkspaceClient, statement_id: str, *, timeout: float = 15) -> StatementResponse:
    """get_statement until a terminal state (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        resp = w.statement_execution.get_statement(statement_id)
        assert resp.status is not None
        if resp.status.state in TERMINAL:
            return resp
        assert time.monotonic() < deadline, f"statement stuck in {resp.status.state}"
        time.sleep(0.02)


def all_rows(w: WorkspaceClient, resp: StatementResponse) -> list[list[str | None]]:
    """Every row of an INLINE result, fetching chunk 1.. with get_statement_result_chunk_n."""
    assert resp.manifest is not None
    assert resp.result is not None
    rows = list(resp.result.data_array or [])
    for index in range(1, resp.manifest.total_chunk_count or 0):
        chunk = w.statement_execution.get_statement_result_chunk_n(resp.statement_id, index)
        rows.extend(chunk.data_array or [])
    return rows


def as_statement(resp: StatementResponse, rows: list[list[str | None]]) -> Any:
    """A stand-in carrying ``resp``'s manifest with ``rows``, for ``assert_same_rows``."""
    return SimpleNamespace(manifest=resp.manifest, result=SimpleNamespace(data_array=rows))


def count_orders(w: WorkspaceClient) -> int:
    resp = succeeded(w, COUNT_ORDERS)
    assert resp.result is not None
    assert resp.result.data_array is not None
    return int(resp.result.data_array[0][0])


def wait_until(condition: Callable[[], bool], *, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


# results equal DuckDB's --------------------------------------------------------
@pytest.mark.parametrize("sql", list(QUERIES.values()), ids=list(QUERIES))
def test_rows_match_duckdb(w: WorkspaceClient, duckdb_reference: Reference, sql: str) -> None:
    resp = succeeded(w, sql)
    expected = duckdb_reference(sql)
    assert expected, "the reference query returned no rows; the test would prove little"
    assert resp.manifest is not None
    assert resp.manifest.total_row_count == len(expected)
    assert resp.manifest.truncated is False
    assert_same_rows(resp, expected)


def test_manifest_schema_and_wire_values(w: WorkspaceClient, duckdb_reference: Reference) -> None:
    sql = (
        "SELECT o_orderkey, o_totalprice, o_orderdate, o_comment, o_shippriority, "
        "o_totalprice > 100000 AS big, CAST(NULL AS STRING) AS nothing "
        "FROM samples.tpch.orders WHERE o_orderkey = 1"
    )
    resp = succeeded(w, sql)
    [(key, price, day, comment, priority, big, nothing)] = duckdb_reference(sql)
    assert nothing is None
    assert resp.manifest is not None
    assert resp.manifest.schema is not None
    columns = resp.manifest.schema.columns or []
    assert [(c.name, c.position, c.type_name.value if c.type_name else None) for c in columns] == [
        ("o_orderkey", 0, "LONG"),
        ("o_totalprice", 1, "DECIMAL"),
        ("o_orderdate", 2, "DATE"),
        ("o_comment", 3, "STRING"),
        ("o_shippriority", 4, "INT"),
        ("big", 5, "BOOLEAN"),
        ("nothing", 6, "STRING"),
    ]
    decimal_column = columns[1]
    assert (
        str(decimal_column.type_text).lower(),
        decimal_column.type_precision,
        decimal_column.type_scale,
    ) == (
        "decimal(15,2)",
        15,
        2,
    )
    assert resp.manifest.schema.column_count == 7
    assert resp.manifest.format == Format.JSON_ARRAY
    assert resp.manifest.total_chunk_count == 1
    assert resp.result is not None
    assert (resp.result.chunk_index, resp.result.row_offset, resp.result.row_count) == (0, 0, 1)
    assert resp.result.next_chunk_index is None
    # Values travel as strings: decimals with their scale, ISO dates, lower-case booleans.
    assert resp.result.data_array == [
        [
            str(key),
            f"{price:.2f}",
            day.isoformat(),
            comment,
            str(priority),
            "true" if big else "false",
            None,
        ]
    ]


def test_empty_result(w: WorkspaceClient) -> None:
    resp = succeeded(w, "SELECT o_orderkey FROM samples.tpch.orders WHERE o_orderkey < 0")
    assert resp.manifest is not None
    assert resp.manifest.total_row_count == 0
    assert resp.manifest.total_chunk_count == 0
    assert resp.result is not None
    assert not resp.result.data_array
    with pytest.raises(BadRequest, match="out of range"):
        w.statement_execution.get_statement_result_chunk_n(resp.statement_id, 0)


def test_genie_sql_reruns_on_the_warehouse(
    w: WorkspaceClient, sales_space: str, duckdb_reference: Reference
) -> None:
    """The use case: take the SQL of a Genie answer and run it through statement_execution."""
    space = w.genie.get_space(sales_space)
    assert space.warehouse_id == WAREHOUSE
    sample = "What was total revenue by year?"
    msg = w.genie.start_conversation_and_wait(sales_space, sample)
    sql = next(a.query.query for a in msg.attachments or [] if a.query is not None)
    resp = succeeded(w, sql)
    assert_same_rows(resp, duckdb_reference(sql))


# catalog and schema defaults -------------------------------------------------
def test_catalog_and_schema_qualify_unqualified_names(
    w: WorkspaceClient, duckdb_reference: Reference
) -> None:
    expected = duckdb_reference(COUNT_ORDERS)
    one_part = succeeded(w, "SELECT count(*) AS n FROM orders", catalog="samples", schema="tpch")
    assert_same_rows(one_part, expected)
    two_part = succeeded(w, "SELECT count(*) AS n FROM tpch.orders", catalog="samples")
    assert_same_rows(two_part, expected)
    # A fully qualified name ignores the defaults.
    three_part = succeeded(w, COUNT_ORDERS, catalog="samples", schema="tpch")
    assert_same_rows(three_part, expected)
    join_sql = (
        "SELECT n_name, count(*) AS customers FROM customer JOIN nation "
        "ON c_nationkey = n_nationkey GROUP BY n_name ORDER BY n_name"
    )
    joined = succeeded(w, join_sql, catalog="samples", schema="tpch")
    assert_same_rows(
        joined,
        duckdb_reference(
            "SELECT n_name, count(*) AS customers FROM samples.tpch.customer "
            "JOIN samples.tpch.nation ON c_nationkey = n_nationkey GROUP BY n_name ORDER BY n_name"
        ),
    )


def test_unqualified_names_without_defaults_are_not_found(w: WorkspaceClient) -> None:
    message = failed(w, "SELECT count(*) FROM orders")
    assert message.startswith("[TABLE_OR_VIEW_NOT_FOUND]")
    assert "`orders`" in message
    assert "SQLSTATE: 42P01" in message
    message = failed(w, "SELECT * FROM samples.tpch.no_such_table")
    assert "[TABLE_OR_VIEW_NOT_FOUND]" in message
    assert "no_such_table" in message


def test_unknown_catalog_or_schema_fails(w: WorkspaceClient) -> None:
    message = failed(w, "SELECT 1 AS x", catalog="no_such_catalog")
    assert message.startswith("[NO_SUCH_CATALOG_EXCEPTION]")
    assert "samples" in message  # names the catalogs there are
    message = failed(w, "SELECT 1 AS x", catalog="samples", schema="no_such_schema")
    assert message.startswith("[SCHEMA_NOT_FOUND]")


def test_cte_names_are_not_qualified(w: WorkspaceClient) -> None:
    resp = succeeded(
        w,
        "WITH orders AS (SELECT 42 AS answer) SELECT answer FROM orders",
        catalog="samples",
        schema="tpch",
    )
    assert resp.result is not None
    assert resp.result.data_array == [["42"]]


# parameters -------------------------------------------------------------------
def test_typed_parameters(w: WorkspaceClient, duckdb_reference: Reference) -> None:
    sql = (
        "SELECT o_orderkey, o_orderdate, o_totalprice FROM samples.tpch.orders "
        "WHERE o_orderdate >= :since AND o_totalprice > :min_price AND o_custkey < :max_cust "
        "AND o_orderpriority = :priority ORDER BY o_orderkey"
    )
    params = [
        StatementParameterListItem(name="since", value="1998-07-01", type="DATE"),
        StatementParameterListItem(name="min_price", value="250000.50", type="DECIMAL(10,2)"),
        StatementParameterListItem(name="max_cust", value="5000", type="INT"),
        StatementParameterListItem(name="priority", value="1-URGENT"),  # STRING by default
    ]
    resp = succeeded(w, sql, parameters=params)
    expected = duckdb_reference(
        "SELECT o_orderkey, o_orderdate, o_totalprice FROM samples.tpch.orders "
        "WHERE o_orderdate >= DATE'1998-07-01' AND o_totalprice > 250000.50 "
        "AND o_custkey < 5000 AND o_orderpriority = '1-URGENT' ORDER BY o_orderkey"
    )
    assert expected
    assert_same_rows(resp, expected)


def test_parameter_values_are_bound_not_spliced(w: WorkspaceClient) -> None:
    injection = "1-URGENT' OR '1'='1"
    resp = succeeded(
        w,
        "SELECT count(*) AS n FROM samples.tpch.orders WHERE o_orderpriority = :p",
        parameters=[StatementParameterListItem(name="p", value=injection)],
    )
    assert resp.result is not None
    assert resp.result.data_array == [["0"]]
    echo = succeeded(
        w,
        "SELECT :p AS p, :p || '!' AS twice, :n AS n, :missing_value AS nothing",
        parameters=[
            StatementParameterListItem(name="p", value="it's; DROP TABLE x --"),
            StatementParameterListItem(name="n", value="7", type="BIGINT"),
            StatementParameterListItem(name="missing_value", type="DATE"),
        ],
    )
    assert echo.result is not None
    assert echo.result.data_array == [
        ["it's; DROP TABLE x --", "it's; DROP TABLE x --!", "7", None]
    ]
    assert echo.manifest is not None
    assert echo.manifest.schema is not None
    types = [c.type_name.value for c in echo.manifest.schema.columns or [] if c.type_name]
    assert types == ["STRING", "STRING", "LONG", "DATE"]


def test_parameter_errors(w: WorkspaceClient) -> None:
    message = failed(w, "SELECT :nope AS x")
    assert message.startswith("[UNBOUND_SQL_PARAMETER]")
    assert "nope" in message
    message = failed(
        w,
        "SELECT :n + 1 AS x",
        parameters=[StatementParameterListItem(name="n", value="twelve", type="INT")],
    )
    assert "INVALID_PARAMETER_MARKER_VALUE" in message
    assert "'twelve'" in message
    message = failed(w, "SELECT * FROM samples.tpch.nation WHERE n_nationkey = ?", parameters=[])
    assert "Positional parameter markers" in message
    with pytest.raises(BadRequest, match="type"):
        run(
            w,
            "SELECT :n AS x",
            parameters=[StatementParameterListItem(name="n", value="1", type="INT); DROP")],
        )
    with pytest.raises(BadRequest, match="more than once"):
        run(
            w,
            "SELECT :n AS x",
            parameters=[
                StatementParameterListItem(name="n", value="1"),
                StatementParameterListItem(name="n", value="2"),
            ],
        )


# asynchronous execution, chunks and limits -------------------------------------
def test_wait_timeout_zero_then_poll(w: WorkspaceClient, duckdb_reference: Reference) -> None:
    sql = QUERIES["joins"]
    started = run(w, sql, wait_timeout="0s")
    assert started.status is not None
    assert started.status.state == StatementState.PENDING
    assert started.statement_id
    assert started.result is None
    assert started.manifest is None
    done = poll(w, started.statement_id)
    assert done.status is not None
    assert done.status.state == StatementState.SUCCEEDED
    assert done.statement_id == started.statement_id
    assert_same_rows(done, duckdb_reference(sql))
    # Results can be fetched again while they live.
    again = w.statement_execution.get_statement(started.statement_id)
    assert again.result is not None
    assert again.result.data_array == done.result.data_array


def test_result_chunks(w: WorkspaceClient, duckdb_reference: Reference) -> None:
    sql = "SELECT * FROM samples.tpch.orders ORDER BY o_orderkey LIMIT 12000"
    resp = succeeded(w, sql)
    assert resp.manifest is not None
    assert resp.result is not None
    assert resp.manifest.total_row_count == 12000
    assert resp.manifest.total_chunk_count == 3
    chunks = [(c.chunk_index, c.row_offset, c.row_count) for c in resp.manifest.chunks or []]
    assert chunks == [(0, 0, 5000), (1, 5000, 5000), (2, 10000, 2000)]
    first = resp.result
    assert (first.chunk_index, first.row_offset, first.row_count) == (0, 0, 5000)
    assert len(first.data_array or []) == 5000
    assert first.next_chunk_index == 1
    assert first.next_chunk_internal_link == (
        f"/api/2.0/sql/statements/{resp.statement_id}/result/chunks/1"
    )
    # Follow the internal link as a client would (a path on the workspace host).
    second = w.api_client.do("GET", first.next_chunk_internal_link)
    assert isinstance(second, dict)
    assert (second["chunk_index"], second["row_offset"], second["row_count"]) == (1, 5000, 5000)
    assert second["next_chunk_index"] == 2
    last = w.statement_execution.get_statement_result_chunk_n(resp.statement_id, 2)
    assert (last.chunk_index, last.row_offset, last.row_count) == (2, 10000, 2000)
    assert last.next_chunk_index is None
    assert last.next_chunk_internal_link is None
    rows = all_rows(w, resp)
    assert len(rows) == 12000
    assert rows[5000:10000] == second["data_array"]
    assert_same_rows(as_statement(resp, rows), duckdb_reference(sql))
    with pytest.raises(BadRequest, match="out of range"):
        w.statement_execution.get_statement_result_chunk_n(resp.statement_id, 3)


def test_row_limit_truncates(w: WorkspaceClient, duckdb_reference: Reference) -> None:
    sql = "SELECT o_orderkey, o_totalprice FROM samples.tpch.orders ORDER BY o_orderkey"
    resp = succeeded(w, sql, row_limit=7)
    assert resp.manifest is not None
    assert resp.manifest.truncated is True
    assert resp.manifest.total_row_count == 7
    assert_same_rows(resp, duckdb_reference(sql + " LIMIT 7"))
    exact = succeeded(w, "SELECT * FROM samples.tpch.region", row_limit=5)
    assert exact.manifest is not None
    assert exact.manifest.truncated is False
    assert exact.manifest.total_row_count == 5
    big = succeeded(w, "SELECT * FROM samples.tpch.region", row_limit=1000)
    assert big.manifest is not None
    assert big.manifest.truncated is False


def test_byte_limit_truncates(w: WorkspaceClient, duckdb_reference: Reference) -> None:
    sql = "SELECT o_orderkey, o_comment FROM samples.tpch.orders ORDER BY o_orderkey"
    resp = succeeded(w, sql, byte_limit=2_000)
    assert resp.manifest is not None
    assert resp.result is not None
    assert resp.manifest.truncated is True
    rows = resp.result.data_array or []
    assert 10 < len(rows) < 50
    assert sum(len(str(v)) for row in rows for v in row) <= 2_000
    assert resp.manifest.total_row_count == len(rows)
    assert_same_rows(resp, duckdb_reference(f"{sql} LIMIT {len(rows)}"))


# a read-only warehouse ----------------------------------------------------------
WRITES = {
    "delete": "DELETE FROM samples.tpch.orders",
    "drop": "DROP TABLE samples.tpch.orders",
    "insert": "INSERT INTO samples.tpch.orders SELECT * FROM samples.tpch.orders LIMIT 1",
    "update": "UPDATE samples.tpch.orders SET o_totalprice = 0",
    "create": "CREATE TABLE samples.tpch.stolen AS SELECT * FROM samples.tpch.orders",
    "alter": "ALTER TABLE samples.tpch.orders RENAME TO samples.tpch.gone",
    "merge": (
        "MERGE INTO samples.tpch.orders t USING samples.tpch.orders s "
        "ON t.o_orderkey = s.o_orderkey WHEN MATCHED THEN DELETE"
    ),
    "truncate": "TRUNCATE TABLE samples.tpch.orders",
    "copy": "COPY INTO samples.tpch.orders FROM '/tmp/orders.parquet'",
    "attach": "ATTACH '/tmp/other.duckdb' AS other",
    "pragma": "PRAGMA database_list",
    "set": "SET TimeZone = 'America/New_York'",
    "multiple statements": "SELECT 1; DELETE FROM samples.tpch.orders",
    "select then drop": "SELECT * FROM samples.tpch.nation; DROP TABLE samples.tpch.orders",
}


@pytest.mark.parametrize("sql", list(WRITES.values()), ids=list(WRITES))
def test_writes_fail_and_change_nothing(
    w: WorkspaceClient, duckdb_reference: Reference, sql: str
) -> None:
    before = count_orders(w)
    assert before == duckdb_reference(COUNT_ORDERS)[0][0] == 150_000
    message = failed(w, sql)
    if "; " in sql:
        assert message.startswith("[EMULATOR_MULTIPLE_STATEMENTS]")
        assert "found 2" in message
    else:
        assert message.startswith("[EMULATOR_READ_ONLY]")
        assert sql.split()[0].upper() in message
        assert "read-only" in message
    assert count_orders(w) == before


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_parquet('/etc/hosts')",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT count(*) FROM read_files('/etc')",
        "SELECT (SELECT count(*) FROM read_csv_auto('/etc/passwd')) AS n",
        "SELECT read_text('/etc/passwd') AS t",
        "SELECT * FROM glob('/etc/*')",
        "SELECT * FROM duckdb_settings()",
        "SELECT * FROM `/etc/hosts`",
        "SELECT * FROM parquet.`/tmp/x.parquet`",
    ],
)
def test_file_access_fails(w: WorkspaceClient, sql: str) -> None:
    message = failed(w, sql)
    assert message.startswith(
        (
            "[EMULATOR_FUNCTION_NOT_ALLOWED]",
            "[EMULATOR_UNSUPPORTED_FEATURE]",
            "[TABLE_OR_VIEW_NOT_FOUND]",
            "[PARSE_SYNTAX_ERROR]",
        )
    ), message


def test_writable_catalog_stays_untouched(make_emulator: MakeEmulator, tmp_path: Path) -> None:
    """Catalogs from ``data.tables``: refused by the read-only guard (and by DuckDB itself)."""
    items = tmp_path / "items.csv"
    items.write_text("id,name,price\n1,apple,1.50\n2,pear,2.25\n3,fig,\n")
    # Statements read the tables of the principal's spaces: one declares the file's table.
    space = {"id": "shop", "title": "Shop", "tables": [{"name": "shop.sales.items"}]}
    emu = make_emulator(
        config={"data": {"tables": {"shop.sales.items": str(items)}}, "spaces": [space]}
    )
    w = emu.workspace_client()

    def snapshot() -> tuple[list[Any], list[Any]]:
        cur = emu.service.db.cursor()
        objects = cur.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = 'shop' "
            "UNION ALL SELECT schema_name, view_name FROM duckdb_views() "
            "WHERE database_name = 'shop' AND NOT internal ORDER BY 1, 2"
        ).fetchall()
        rows = cur.execute("SELECT * FROM shop.sales.items ORDER BY id").fetchall()
        return objects, rows

    before = snapshot()
    assert before[0] == [("sales", "items")]
    assert len(before[1]) == 3
    for sql in (
        "DROP VIEW shop.sales.items",
        "DROP VIEW items",
        "CREATE TABLE shop.sales.extra AS SELECT 1 AS x",
        "CREATE VIEW shop.sales.v AS SELECT 1 AS x",
        "ALTER VIEW shop.sales.items RENAME TO shop.sales.gone",
        "INSERT INTO shop.sales.items VALUES (4, 'kiwi', 3.0)",
        "SELECT 1 AS x; DROP VIEW shop.sales.items",
        "WITH x AS (SELECT 1) SELECT * FROM x; CREATE TABLE shop.sales.t (a INT)",
    ):
        message = failed(w, sql, catalog="shop", schema="sales")
        assert "EMULATOR_READ_ONLY" in message or "EMULATOR_MULTIPLE_STATEMENTS" in message
    assert snapshot() == before
    resp = succeeded(
        w, "SELECT name, price FROM items WHERE price IS NULL", catalog="shop", schema="sales"
    )
    assert resp.result is not None
    assert resp.result.data_array == [["fig", None]]


def test_unknown_column_fails(w: WorkspaceClient) -> None:
    message = failed(w, "SELECT no_such_column FROM samples.tpch.orders")
    assert "no_such_column" in message
    message = failed(w, "SELEC 1")
    assert message.startswith(("[PARSE_SYNTAX_ERROR]", "[EMULATOR_READ_ONLY]"))


# request validation and auth ----------------------------------------------------
@pytest.mark.parametrize("wait", ["1s", "4s", "51s", "10", "ten", "-5s", "5 s", "10m"])
def test_bad_wait_timeout_is_400(w: WorkspaceClient, wait: str) -> None:
    with pytest.raises(BadRequest, match="wait_timeout"):
        run(w, "SELECT 1 AS x", wait_timeout=wait)


@pytest.mark.parametrize("wait", ["0s", "5s", "50s"])
def test_boundary_wait_timeouts_are_accepted(w: WorkspaceClient, wait: str) -> None:
    resp = run(w, "SELECT 1 AS x", wait_timeout=wait)
    assert resp.statement_id
    done = poll(w, resp.statement_id)
    assert done.result is not None
    assert done.result.data_array == [["1"]]


def test_missing_warehouse_id_is_400(emu: GenieEmulator, w: WorkspaceClient) -> None:
    with pytest.raises(BadRequest, match="warehouse_id"):
        w.statement_execution.execute_statement(statement="SELECT 1", warehouse_id="")
    raw = httpx.post(
        f"{emu.url}/api/2.0/sql/statements",
        json={"statement": "SELECT 1"},
        headers={"Authorization": f"Bearer {emu.token}"},
    )
    assert raw.status_code == 400
    assert raw.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "warehouse_id" in raw.json()["message"]


def test_other_request_errors_are_400(emu: GenieEmulator, w: WorkspaceClient) -> None:
    with pytest.raises(BadRequest, match="statement"):
        w.statement_execution.execute_statement(statement="  ", warehouse_id=WAREHOUSE)
    with pytest.raises(BadRequest, match="EXTERNAL_LINKS"):
        run(w, "SELECT 1", format=Format.CSV)  # INLINE is JSON_ARRAY only
    with pytest.raises(BadRequest, match="ARROW_STREAM"):
        run(w, "SELECT 1", format=Format.ARROW_STREAM, disposition=Disposition.EXTERNAL_LINKS)
    with pytest.raises(BadRequest, match="row_limit"):
        run(w, "SELECT 1", row_limit=-1)
    headers = {"Authorization": f"Bearer {emu.token}"}
    base = {"statement": "SELECT 1", "warehouse_id": WAREHOUSE}
    for extra in ({"on_wait_timeout": "LATER"}, {"disposition": "EMAIL"}, {"parameters": "x"}):
        raw = httpx.post(f"{emu.url}/api/2.0/sql/statements", json=base | extra, headers=headers)
        assert raw.status_code == 400, extra
        assert raw.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_unauthenticated_is_401(emu: GenieEmulator) -> None:
    url = f"{emu.url}/api/2.0/sql/statements"
    raw = httpx.post(url, json={"statement": "SELECT 1", "warehouse_id": WAREHOUSE})
    assert raw.status_code == 401
    assert raw.json()["error_code"] == "UNAUTHENTICATED"
    assert httpx.get(f"{url}/some-id").status_code == 401
    assert httpx.post(f"{url}/some-id/cancel").status_code == 401
    assert httpx.get(f"{url}/some-id/result/chunks/0").status_code == 401
    stranger = WorkspaceClient(host=emu.url, token="dapi-not-a-token", auth_type="pat")
    with pytest.raises(Unauthenticated):
        stranger.statement_execution.execute_statement(statement="SELECT 1", warehouse_id=WAREHOUSE)


def test_unknown_statement_is_404(w: WorkspaceClient) -> None:
    with pytest.raises(NotFound):
        w.statement_execution.get_statement("01ef0000-0000-0000-0000-000000000000")
    with pytest.raises(NotFound):
        w.statement_execution.cancel_execution("01ef0000-0000-0000-0000-000000000000")


def test_statements_are_private_to_their_principal(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(config={"principals": {"bob@example.com": {"token": "bob-pat-0002"}}})
    alice = emu.workspace_client()
    bob = WorkspaceClient(host=emu.url, token="bob-pat-0002", auth_type="pat")
    resp = succeeded(alice, "SELECT 1 AS x")
    with pytest.raises(NotFound):
        bob.statement_execution.get_statement(resp.statement_id)
    assert succeeded(bob, "SELECT 2 AS x").result is not None


# cancellation and wait timeouts --------------------------------------------------
def test_cancel_a_running_statement(make_emulator: MakeEmulator) -> None:
    emu = make_emulator()
    w = emu.workspace_client()
    store = statement_store(emu.service)
    started = run(w, SLOW_SQL, wait_timeout="0s")
    sid = started.statement_id
    assert sid is not None
    try:
        wait_until(lambda: store.statements[sid].connection is not None)  # DuckDB is busy
        running = w.statement_execution.get_statement(sid)
        assert running.status is not None
        assert running.status.state == StatementState.RUNNING
        assert running.result is None
    finally:
        w.statement_execution.cancel_execution(sid)
    done = poll(w, sid)
    assert done.status is not None
    assert done.status.state == StatementState.CANCELED
    assert done.result is None
    # The query was interrupted, not left burning the warehouse.
    wait_until(lambda: store.statements[sid].connection is None, timeout=5)
    assert count_orders(w) == 150_000
    # Cancelling a finished statement changes nothing.
    ok = succeeded(w, "SELECT 1 AS x")
    w.statement_execution.cancel_execution(ok.statement_id)
    again = w.statement_execution.get_statement(ok.statement_id)
    assert again.status is not None
    assert again.status.state == StatementState.SUCCEEDED
    with pytest.raises(BadRequest, match="CANCELED"):
        w.statement_execution.get_statement_result_chunk_n(sid, 0)


def test_wait_timeout_with_cancel(make_emulator: MakeEmulator) -> None:
    emu = make_emulator()
    w = emu.workspace_client()
    started = time.monotonic()
    resp = run(
        w,
        SLOW_SQL,
        wait_timeout="5s",
        on_wait_timeout=ExecuteStatementRequestOnWaitTimeout.CANCEL,
    )
    elapsed = time.monotonic() - started
    assert resp.status is not None
    assert resp.status.state == StatementState.CANCELED
    assert 4.9 <= elapsed < 9, elapsed
    store = statement_store(emu.service)
    assert resp.statement_id is not None
    wait_until(lambda: store.statements[resp.statement_id].connection is None, timeout=5)


def test_wait_timeout_with_continue(make_emulator: MakeEmulator) -> None:
    emu = make_emulator()
    w = emu.workspace_client()
    started = time.monotonic()
    resp = run(w, SLOW_SQL, wait_timeout="5s")  # on_wait_timeout defaults to CONTINUE
    elapsed = time.monotonic() - started
    sid = resp.statement_id
    assert sid is not None
    try:
        assert resp.status is not None
        assert resp.status.state == StatementState.RUNNING
        assert 4.9 <= elapsed < 9, elapsed
        still = w.statement_execution.get_statement(sid)
        assert still.status is not None
        assert still.status.state == StatementState.RUNNING
    finally:
        w.statement_execution.cancel_execution(sid)
    assert poll(w, sid).status == StatementStatus(state=StatementState.CANCELED)


def test_statements_queue_while_others_run(make_emulator: MakeEmulator) -> None:
    """A fast statement is not stuck behind a slow one (the warehouse runs several at once)."""
    emu = make_emulator()
    w = emu.workspace_client()
    slow = run(w, SLOW_SQL, wait_timeout="0s")
    assert slow.statement_id is not None
    try:
        started = time.monotonic()
        fast = succeeded(w, "SELECT count(*) AS n FROM samples.tpch.nation", wait_timeout="10s")
        assert time.monotonic() - started < 5
        assert fast.result is not None
        assert fast.result.data_array == [["25"]]
    finally:
        w.statement_execution.cancel_execution(slow.statement_id)
    assert poll(w, slow.statement_id).status == StatementStatus(state=StatementState.CANCELED)


# result lifetime and size --------------------------------------------------------
def test_results_expire_to_closed(make_emulator: MakeEmulator) -> None:
    emu = make_emulator()
    w = emu.workspace_client()
    statement_store(emu.service).result_ttl_seconds = 0.0
    resp = run(w, "SELECT 1 AS x", wait_timeout="0s")
    assert resp.statement_id is not None
    done = poll(w, resp.statement_id)
    assert done.status is not None
    assert done.status.state == StatementState.CLOSED
    assert done.result is None
    assert done.manifest is None
    with pytest.raises(BadRequest, match="CLOSED"):
        w.statement_execution.get_statement_result_chunk_n(resp.statement_id, 0)


def test_inline_results_over_the_limit_fail(make_emulator: MakeEmulator) -> None:
    emu = make_emulator()
    w = emu.workspace_client()
    statement_store(emu.service).inline_byte_limit = 10_000
    message = failed(w, "SELECT * FROM samples.tpch.orders")
    assert message.startswith("[EMULATOR_INLINE_RESULT_TOO_LARGE]")
    assert "EXTERNAL_LINKS" in message
    small = succeeded(w, "SELECT * FROM samples.tpch.region")
    assert small.manifest is not None
    assert small.manifest.total_row_count == 5


# EXTERNAL_LINKS -------------------------------------------------------------------
def test_external_links_json(make_emulator: MakeEmulator, duckdb_reference: Reference) -> None:
    emu = make_emulator()
    w = emu.workspace_client()
    statement_store(emu.service).external_chunk_rows = 1_000
    sql = "SELECT o_orderkey, o_orderdate, o_totalprice FROM samples.tpch.orders ORDER BY 1"
    resp = succeeded(
        w, sql, row_limit=2_500, disposition=Disposition.EXTERNAL_LINKS, format=Format.JSON_ARRAY
    )
    assert resp.manifest is not None
    assert resp.result is not None
    assert resp.manifest.truncated is True
    assert resp.manifest.total_chunk_count == 3
    chunk_bytes = [c.byte_count or 0 for c in resp.manifest.chunks or []]
    assert resp.manifest.total_byte_count == sum(chunk_bytes)
    assert resp.result.data_array is None
    links = list(resp.result.external_links or [])
    assert len(links) == 1
    assert links[0].next_chunk_index == 1
    for index in (1, 2):
        links += (
            w.statement_execution.get_statement_result_chunk_n(
                resp.statement_id, index
            ).external_links
            or []
        )
    rows: list[list[str | None]] = []
    for index, link in enumerate(links):
        assert link.chunk_index == index
        assert link.expiration
        assert link.external_link is not None
        got = httpx.get(link.external_link)  # no Authorization header, like cloud storage
        assert got.status_code == 200
        assert len(got.content) == link.byte_count
        assert len(got.json()) == link.row_count
        rows.extend(got.json())
    assert [link.row_count for link in links] == [1000, 1000, 500]
    assert_same_rows(as_statement(resp, rows), duckdb_reference(sql + " LIMIT 2500"))
    tampered = str(links[0].external_link).replace("sig=", "sig=00")
    assert httpx.get(tampered).status_code == 403


def test_external_links_csv(make_emulator: MakeEmulator, duckdb_reference: Reference) -> None:
    emu = make_emulator()
    w = emu.workspace_client()
    sql = (
        "SELECT c.c_custkey, o.o_orderkey FROM samples.tpch.customer c "
        "LEFT JOIN samples.tpch.orders o ON o.o_custkey = c.c_custkey "
        "WHERE c.c_custkey <= 6 ORDER BY 1, 2"
    )
    resp = succeeded(w, sql, disposition=Disposition.EXTERNAL_LINKS, format=Format.CSV)
    assert resp.manifest is not None
    assert resp.manifest.format == Format.CSV
    assert resp.result is not None
    assert resp.result.external_links
    link = resp.result.external_links[0].external_link
    assert link is not None
    body = httpx.get(link).text
    table = list(csv.reader(io.StringIO(body)))
    assert table[0] == ["c_custkey", "o_orderkey"]
    expected = duckdb_reference(sql)
    assert [tuple(None if v == "null" else int(v) for v in row) for row in table[1:]] == expected
    assert any(o is None for _, o in expected)  # customer 3 and 6 have no orders


# the compiler, without a server ----------------------------------------------------
INDEX = CatalogIndex(
    tables={("samples", "tpch", "orders"), ("samples", "tpch", "nation")},
    schemas={("samples", "tpch")},
)


def test_compile_qualifies_and_binds() -> None:
    compiled = compile_statement(
        "SELECT o_orderkey FROM orders WHERE o_orderpriority = :p AND o_orderdate > :d",
        catalog="samples",
        schema="tpch",
        parameters=[Parameter("p", "x' OR 1=1 --"), Parameter("d", "1995-01-01", "DATE")],
        index=INDEX,
    )
    assert "samples.tpch.orders" in compiled.duckdb_sql
    assert "$p0" in compiled.duckdb_sql
    assert "CAST($p1 AS DATE)" in compiled.duckdb_sql
    assert "OR 1=1" not in compiled.duckdb_sql
    assert compiled.parameters == {"p0": "x' OR 1=1 --", "p1": "1995-01-01"}


@pytest.mark.parametrize(
    ("sql", "error_class"),
    [
        ("DELETE FROM samples.tpch.orders", "EMULATOR_READ_ONLY"),
        ("SELECT * INTO x FROM samples.tpch.orders", "EMULATOR_READ_ONLY"),
        ("SELECT 1; SELECT 2", "EMULATOR_MULTIPLE_STATEMENTS"),
        (";", "PARSE_EMPTY_STATEMENT"),
        ("SELECT * FROM samples.tpch.lineitem", "TABLE_OR_VIEW_NOT_FOUND"),
        ("SELECT * FROM read_parquet('x')", "EMULATOR_FUNCTION_NOT_ALLOWED"),
        ("SELECT getenv('HOME')", "EMULATOR_FUNCTION_NOT_ALLOWED"),
        ("SELECT * FROM range(3)", "EMULATOR_UNSUPPORTED_FEATURE"),
        ("SELECT :x", "UNBOUND_SQL_PARAMETER"),
    ],
)
def test_compile_rejects(sql: str, error_class: str) -> None:
    with pytest.raises(StatementFailure) as info:
        compile_statement(sql, catalog=None, schema=None, parameters=[], index=INDEX)
    assert info.value.message.startswith(f"[{error_class}]")
