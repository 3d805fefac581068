"""The SQL Statement Execution API (``/api/2.0/sql/statements``) over the emulator's DuckDB.

Code that re-runs Genie's SQL on a warehouse (``w.statement_execution.execute_statement``)
works offline against the data Genie answers from. Statements are Databricks SQL: they are
checked to be one read-only query over tables the emulator has, their unqualified table
names are qualified with the request's ``catalog``/``schema``, ``:name`` parameter markers
become DuckDB prepared parameters (values are never spliced into SQL text), and sqlglot
transpiles the result to DuckDB. What Databricks would reject while *executing* answers
HTTP 200 with ``status.state`` ``FAILED``; what it rejects while *accepting* the request
answers 400.

Results travel as in Databricks: ``JSON_ARRAY`` rows of strings, ``INLINE`` (capped at
25 MiB) in chunks of :attr:`StatementStore.inline_chunk_rows` rows, or ``EXTERNAL_LINKS``
(``JSON_ARRAY`` or ``CSV``) as pre-signed, unauthenticated URLs served by the emulator.

Wire it into an application with one call: ``add_statement_routes(app, service)``.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import hashlib
import hmac
import io
import json
import re
import secrets
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from genie_tools._optional import require
from genie_tools.emulator.results import (
    Column,
    TableResult,
    databricks_type,
    manifest,
    to_wire,
)
from genie_tools.emulator.server import PRINCIPAL, _json_body
from genie_tools.emulator.service import ApiError, GenieService

API = "/api/2.0/sql/statements"
DOWNLOAD = "/emulator/download/statements"
"""External links live under ``/emulator/download/``, which the middleware serves without a
token, like a cloud-storage URL."""
DEFAULT_CATALOG = "hive_metastore"
"""The catalog of names that neither the SQL nor the request qualifies (no table lives here)."""
DEFAULT_SCHEMA = "default"
MAX_STATEMENT_CHARS = 16 * 1024 * 1024
_TERMINAL = frozenset(("SUCCEEDED", "FAILED", "CANCELED", "CLOSED"))
_WAIT = re.compile(r"(\d+)s")
_PARAMETER_TYPE = re.compile(
    r"(STRING|VARCHAR|CHAR|INT|INTEGER|BIGINT|LONG|SMALLINT|SHORT|TINYINT|BYTE|DOUBLE|FLOAT|"
    r"REAL|BOOLEAN|DATE|TIMESTAMP|TIMESTAMP_NTZ|TIMESTAMP_LTZ|BINARY|VOID|DECIMAL|DEC|NUMERIC)"
    r"(\s*\(\s*\d+\s*(,\s*\d+\s*)?\))?",
    re.IGNORECASE,
)
_STRING_TYPES = ("STRING", "VARCHAR", "CHAR")
# Statements that change something, or that Databricks SQL does not have but DuckDB does.
_WRITE_KEYWORDS = frozenset(
    (
        "ALTER ANALYZE ATTACH CACHE CALL CHECKPOINT CLEAR COMMENT COPY CREATE DEALLOCATE "
        "DELETE DETACH DROP EXECUTE EXPORT FSCK GRANT IMPORT INSERT INSTALL LOAD MERGE MSCK "
        "OPTIMIZE PRAGMA PREPARE REFRESH REPAIR REPLACE RESET RESTORE REVOKE SET TRUNCATE "
        "UNCACHE UPDATE USE VACUUM"
    ).split()
)
# Functions that reach files, the network, the environment or the engine's internals.
_FORBIDDEN_FUNCTIONS = tuple(
    (
        "read_ glob query sniff_ parquet_ iceberg_ delta_ getenv duckdb_ pragma_ sqlite_ "
        "postgres_ mysql_ json_execute load_ install_ which_secret arrow_scan seq_scan"
    ).split()
)

_STORES: weakref.WeakKeyDictionary[GenieService, StatementStore] = weakref.WeakKeyDictionary()


class StatementFailure(Exception):
    """A statement that the warehouse accepted but could not run: it ends ``FAILED``."""

    def __init__(
        self, error_class: str, text: str, sql_state: str, *, error_code: str = "BAD_REQUEST"
    ) -> None:
        self.error_code = error_code
        self.sql_state = sql_state
        self.message = f"[{error_class}] {text} SQLSTATE: {sql_state}"
        super().__init__(self.message)


@dataclass(frozen=True)
class Parameter:
    """One named parameter: ``:name`` in the SQL, its value as a string (None is NULL)."""

    name: str
    value: str | None
    type: str = "STRING"


@dataclass
class Compiled:
    """A statement ready for DuckDB."""

    duckdb_sql: str
    parameters: dict[str, str | None]
    """DuckDB named parameters (``$p0``...), values as the request gave them."""
    typed: list[tuple[Parameter, str]]
    """Parameters with a declared type, and that type in DuckDB's dialect."""


@dataclass
class CatalogIndex:
    """The tables and views the emulator's warehouse holds, lower-case."""

    tables: set[tuple[str, str, str]]
    schemas: set[tuple[str, str]]

    @property
    def catalogs(self) -> set[str]:
        """Catalog names."""
        return {c for c, _ in self.schemas}

    @classmethod
    def load(cls, cursor: Any) -> CatalogIndex:
        """Read the attached catalogs (not DuckDB's own ``memory``, ``system``, ``temp``)."""
        hidden = "('memory', 'system', 'temp')"
        rows = cursor.execute(
            "SELECT database_name, schema_name, table_name FROM duckdb_tables() "
            f"WHERE NOT internal AND database_name NOT IN {hidden} "
            "UNION ALL SELECT database_name, schema_name, view_name FROM duckdb_views() "
            f"WHERE NOT internal AND database_name NOT IN {hidden}"
        ).fetchall()
        schemas = cursor.execute(
            "SELECT database_name, schema_name FROM duckdb_schemas() "
            f"WHERE database_name NOT IN {hidden} "
            "AND schema_name NOT IN ('information_schema', 'pg_catalog')"
        ).fetchall()
        return cls(
            tables={(c.lower(), s.lower(), t.lower()) for c, s, t in rows},
            schemas={(c.lower(), s.lower()) for c, s in schemas},
        )


def _ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _sqlglot() -> Any:
    return require("sqlglot", extra="emulator", purpose="The emulator's SQL statements")


def _read_only_failure(what: str) -> StatementFailure:
    return StatementFailure(
        "EMULATOR_READ_ONLY",
        f"The emulator's SQL warehouse is read-only: only a single query (SELECT, WITH ... "
        f"SELECT, VALUES) may run; {what} is not allowed. The data was not changed.",
        "42501",
    )


def _split_statements(sql: str) -> list[list[Any]]:
    """Tokens of each statement (split on semicolons), empty statements dropped."""
    sqlglot = _sqlglot()
    try:
        tokens = sqlglot.Dialect.get_or_raise("databricks").tokenize(sql)
    except sqlglot.errors.SqlglotError as exc:
        raise StatementFailure("PARSE_SYNTAX_ERROR", f"Syntax error: {exc}.", "42601") from exc
    statements: list[list[Any]] = [[]]
    for token in tokens:
        if token.token_type == sqlglot.tokens.TokenType.SEMICOLON:
            statements.append([])
        else:
            statements[-1].append(token)
    return [s for s in statements if s]


def _function_name(node: Any) -> str:
    exp = _sqlglot().exp
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    return str(node.sql_name()).lower()


def _check_function(node: Any) -> None:
    name = _function_name(node)
    if name.startswith(_FORBIDDEN_FUNCTIONS):
        raise StatementFailure(
            "EMULATOR_FUNCTION_NOT_ALLOWED",
            f"The function {name}() reads files or engine internals, which the emulator's "
            "warehouse does not allow; query the catalogs' tables instead.",
            "42501",
        )


def compile_statement(
    sql: str,
    *,
    catalog: str | None,
    schema: str | None,
    parameters: list[Parameter],
    index: CatalogIndex,
) -> Compiled:
    """Check and translate one Databricks SQL statement for DuckDB.

    Args:
        sql: The statement, in Databricks SQL.
        catalog: Default catalog for unqualified names (like ``USE CATALOG``).
        schema: Default schema for unqualified names (like ``USE SCHEMA``).
        parameters: Values for the ``:name`` markers.
        index: The tables that exist.

    Returns:
        DuckDB SQL and its named parameters.

    Raises:
        StatementFailure: The statement is not one read-only query over existing tables,
            does not parse, or has an unbound parameter.
    """
    sqlglot = _sqlglot()
    exp = sqlglot.exp
    if catalog and catalog.lower() not in index.catalogs:
        raise StatementFailure(
            "NO_SUCH_CATALOG_EXCEPTION",
            f"Catalog '{catalog}' was not found. Please verify the catalog name and then retry "
            f"the query or command again. Catalogs: {', '.join(sorted(index.catalogs))}.",
            "42704",
        )
    default_catalog = (catalog or DEFAULT_CATALOG).lower()
    default_schema = (schema or DEFAULT_SCHEMA).lower()
    if schema and (default_catalog, default_schema) not in index.schemas:
        raise StatementFailure(
            "SCHEMA_NOT_FOUND",
            f"The schema {_ident(default_catalog)}.{_ident(schema)} cannot be found. Verify "
            "the spelling and correctness of the schema and catalog"
            + ("." if catalog else f" (no catalog was given: the default is {DEFAULT_CATALOG})."),
            "42704",
        )
    statements = _split_statements(sql)
    if not statements:
        raise StatementFailure(
            "PARSE_EMPTY_STATEMENT", "Syntax error, unexpected empty statement.", "42617"
        )
    if len(statements) > 1:
        raise StatementFailure(
            "EMULATOR_MULTIPLE_STATEMENTS",
            f"Only one statement may run per request; found {len(statements)}. Nothing ran.",
            "42601",
        )
    first = statements[0][0].text.upper()
    if first in _WRITE_KEYWORDS:
        raise _read_only_failure(first)
    try:
        tree = sqlglot.parse_one(sql, read="databricks")
    except sqlglot.errors.SqlglotError as exc:
        raise StatementFailure(
            "PARSE_SYNTAX_ERROR", f"Syntax error: {str(exc).splitlines()[0]}", "42601"
        ) from exc
    if not isinstance(tree, exp.Query | exp.Values):
        kind = tree.this if isinstance(tree, exp.Command) else tree.key
        raise _read_only_failure(str(kind).upper())
    writes = (
        exp.Insert,
        exp.Update,
        exp.Delete,
        exp.Drop,
        exp.Create,
        exp.Alter,
        exp.Merge,
        exp.Copy,
        exp.TruncateTable,
        exp.Into,
        exp.Command,
        exp.Set,
        exp.Pragma,
        exp.Use,
    )
    write = tree.find(*writes)
    if write is not None:
        raise _read_only_failure(f"{write.key.upper()} inside a query")
    for func in tree.find_all(exp.Func):
        _check_function(func)
    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    for table in list(tree.find_all(exp.Table)):
        if not isinstance(table.this, exp.Identifier):
            if isinstance(table.this, exp.Func):
                _check_function(table.this)
                name = _function_name(table.this)
            else:
                name = table.this.sql(dialect="databricks")
            raise StatementFailure(
                "EMULATOR_UNSUPPORTED_FEATURE",
                f"The table-valued function {name}() is not supported by the emulator's "
                "warehouse; query the catalogs' tables instead.",
                "0A000",
            )
        written = ".".join(_ident(p) for p in (table.catalog, table.db, table.name) if p)
        if not table.db and not table.catalog and table.name.lower() in ctes:
            continue
        qualified = (
            (table.catalog or default_catalog).lower(),
            (table.db or default_schema).lower(),
            table.name.lower(),
        )
        if qualified not in index.tables:
            raise StatementFailure(
                "TABLE_OR_VIEW_NOT_FOUND",
                f"The table or view {written} cannot be found. Verify the spelling and "
                "correctness of the schema and catalog. If you did not qualify the name with a "
                "schema, verify the catalog and schema of the request, or qualify the name "
                "with the correct schema and catalog.",
                "42P01",
            )
        table.set("catalog", exp.to_identifier(qualified[0]))
        table.set("db", exp.to_identifier(qualified[1]))
    by_name = {p.name: p for p in parameters}
    bound: dict[str, str | None] = {}
    typed: list[tuple[Parameter, str]] = []
    names: dict[str, str] = {}
    for marker in list(tree.find_all(exp.Placeholder)):
        name = marker.name
        if not name or name == "?":
            raise StatementFailure(
                "UNSUPPORTED_FEATURE.POSITIONAL_PARAMETERS",
                "Positional parameter markers (?) are not supported by the Statement "
                "Execution API; use named markers (:name).",
                "0A000",
            )
        param = by_name.get(name)
        if param is None:
            raise StatementFailure(
                "UNBOUND_SQL_PARAMETER",
                f"Found the unbound parameter: {name}. Please, fix `parameters` and provide a "
                "value for it.",
                "42P02",
            )
        if name not in names:
            names[name] = f"p{len(names)}"
            bound[names[name]] = param.value
        replacement = exp.Placeholder(this=names[name])
        if not _PARAMETER_TYPE.fullmatch(param.type):
            raise StatementFailure(
                "INVALID_PARAMETER_MARKER_VALUE.UNSUPPORTED_TYPE",
                f"Parameter '{name}' has the unsupported type {param.type!r}.",
                "22023",
            )
        if param.type.upper() not in _STRING_TYPES:
            dtype = exp.DataType.build(param.type, dialect="databricks")
            if all(p is not param for p, _ in typed):
                typed.append((param, dtype.sql(dialect="duckdb")))
            replacement = exp.Cast(this=replacement, to=dtype)
        marker.replace(replacement)
    return Compiled(duckdb_sql=tree.sql(dialect="duckdb"), parameters=bound, typed=typed)


def _duckdb_failure(exc: Exception) -> StatementFailure:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    kind = type(exc).__name__
    if kind == "BinderException" and "column" in text.lower():
        return StatementFailure("UNRESOLVED_COLUMN", text, "42703")
    if kind == "CatalogException" and "function" in text.lower():
        return StatementFailure("UNRESOLVED_ROUTINE", text, "42883")
    if kind in ("ConversionException", "InvalidInputException"):
        return StatementFailure("CAST_INVALID_INPUT", text, "22018")
    if kind == "OutOfRangeException":
        return StatementFailure("ARITHMETIC_OVERFLOW", text, "22003")
    if kind == "ParserException":
        return StatementFailure("PARSE_SYNTAX_ERROR", text, "42601")
    return StatementFailure("EMULATOR_EXECUTION_ERROR", text, "XX000")


def _row_bytes(row: list[str | None]) -> int:
    """Roughly the row's size in ``JSON_ARRAY`` form."""
    return 2 + sum(len(v) + 3 if v is not None else 5 for v in row)


@dataclass
class Statement:
    """One submitted statement and, once it ran, its result."""

    id: str
    principal: str
    sql: str
    catalog: str | None
    schema: str | None
    parameters: list[Parameter]
    disposition: str
    format: str
    row_limit: int | None
    byte_limit: int | None
    chunk_rows: int
    created: float
    state: str = "PENDING"
    error: dict[str, str] | None = None
    sql_state: str | None = None
    result: TableResult | None = None
    payloads: list[bytes] = field(default_factory=list)
    """``EXTERNAL_LINKS``: each chunk as served at its link."""
    chunk_counts: list[int] = field(default_factory=list)
    finished: float | None = None
    connection: Any = field(default=None, repr=False)

    @property
    def chunk_count(self) -> int:
        """How many chunks the result has (0 for no rows)."""
        return len(self.chunk_counts)


@dataclass(frozen=True)
class Request:
    """A validated ``POST /api/2.0/sql/statements`` body."""

    statement: str
    warehouse_id: str
    catalog: str | None
    schema: str | None
    parameters: list[Parameter]
    disposition: str
    format: str
    row_limit: int | None
    byte_limit: int | None
    wait_seconds: int
    on_wait_timeout: str


def _bad(message: str) -> ApiError:
    return ApiError(400, "INVALID_PARAMETER_VALUE", message)


def _optional_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _bad(f"{key} must be a string.")
    return value


def _limit(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _bad(f"{key} must be a non-negative integer, not {value!r}.")
    return value


def _choice(body: dict[str, Any], key: str, allowed: tuple[str, ...]) -> str:
    value = body.get(key) or allowed[0]
    if value not in allowed:
        raise _bad(f"{key} must be one of {', '.join(allowed)}; got {value!r}.")
    return str(value)


def parse_parameters(raw: Any) -> list[Parameter]:
    """Validate the request's ``parameters`` list.

    Raises:
        ApiError: 400 for a malformed list, a missing name, a duplicate, a non-string value
            or a type that is not a Databricks scalar type.
    """
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise _bad("parameters must be a list of {name, value, type} objects.")
    params: list[Parameter] = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
            raise _bad("Each parameter needs a non-empty string name.")
        name = item["name"]
        if any(p.name == name for p in params):
            raise _bad(f"Parameter {name!r} is given more than once.")
        value = item.get("value")
        if value is not None and not isinstance(value, str):
            raise _bad(f"The value of parameter {name!r} must be a string (or null for NULL).")
        ptype = item.get("type") or "STRING"
        if not isinstance(ptype, str) or not _PARAMETER_TYPE.fullmatch(ptype.strip()):
            raise _bad(
                f"Parameter {name!r} has type {ptype!r}; supported types are the scalar types "
                "STRING, INT, BIGINT, SMALLINT, TINYINT, DOUBLE, FLOAT, BOOLEAN, DATE, "
                "TIMESTAMP, TIMESTAMP_NTZ, BINARY, VOID and DECIMAL(p,s)."
            )
        params.append(Parameter(name=name, value=value, type=ptype.strip().upper()))
    return params


def parse_request(body: dict[str, Any]) -> Request:
    """Validate an execute-statement body as Databricks does when accepting it.

    Raises:
        ApiError: 400 ``INVALID_PARAMETER_VALUE`` naming the field at fault.
    """
    statement = body.get("statement")
    if not isinstance(statement, str) or not statement.strip():
        raise _bad("statement is required and must be a non-empty string.")
    if len(statement) > MAX_STATEMENT_CHARS:
        raise _bad(f"statement is {len(statement)} characters; the limit is 16 MiB.")
    warehouse_id = body.get("warehouse_id")
    if not isinstance(warehouse_id, str) or not warehouse_id.strip():
        raise _bad("warehouse_id is required: the SQL warehouse to run the statement on.")
    wait = body.get("wait_timeout")
    wait = "10s" if wait is None else wait
    match = _WAIT.fullmatch(wait) if isinstance(wait, str) else None
    seconds = int(match.group(1)) if match else -1
    if seconds != 0 and not 5 <= seconds <= 50:
        raise _bad(f"wait_timeout must be 0s (do not wait) or between 5s and 50s, got {wait!r}.")
    disposition = _choice(body, "disposition", ("INLINE", "EXTERNAL_LINKS"))
    fmt = _choice(body, "format", ("JSON_ARRAY", "ARROW_STREAM", "CSV"))
    if disposition == "INLINE" and fmt != "JSON_ARRAY":
        raise _bad(
            f"{fmt} format is only supported with EXTERNAL_LINKS disposition; INLINE results "
            "are JSON_ARRAY."
        )
    if fmt == "ARROW_STREAM":
        raise _bad(
            "The emulator does not produce ARROW_STREAM results; use JSON_ARRAY or CSV with "
            "EXTERNAL_LINKS."
        )
    return Request(
        statement=statement,
        warehouse_id=warehouse_id,
        catalog=_optional_str(body, "catalog"),
        schema=_optional_str(body, "schema"),
        parameters=parse_parameters(body.get("parameters")),
        disposition=disposition,
        format=fmt,
        row_limit=_limit(body, "row_limit"),
        byte_limit=_limit(body, "byte_limit"),
        wait_seconds=seconds,
        on_wait_timeout=_choice(body, "on_wait_timeout", ("CONTINUE", "CANCEL")),
    )


class StatementStore:
    """Statements of one emulated workspace, their execution and their results.

    The knobs are plain attributes, so a test can change them on a running emulator
    (``statement_store(emu.service).inline_chunk_rows = 10``).
    """

    inline_chunk_rows = 5_000
    """Rows per ``INLINE`` chunk."""
    external_chunk_rows = 100_000
    """Rows per ``EXTERNAL_LINKS`` chunk."""
    inline_byte_limit = 25 * 1024 * 1024
    """``INLINE`` results above this size (approximately, as JSON) fail, as on Databricks."""
    result_ttl_seconds = 3600.0
    """Results stay fetchable this long after success, then the statement is ``CLOSED``."""
    link_ttl_seconds = 900.0
    """External links expire after this long."""
    forget_after_seconds = 12 * 3600.0
    """Terminal statements are forgotten (404) this long after they ended."""
    fetch_batch_rows = 10_000

    def __init__(self, service: GenieService, *, max_workers: int = 8) -> None:
        self.service = service
        self.statements: dict[str, Statement] = {}
        self.lock = threading.Lock()
        self.executor = ThreadPoolExecutor(max_workers, thread_name_prefix="emulator-sql")
        self._index: CatalogIndex | None = None
        self._link_key = secrets.token_bytes(32)

    # lifecycle ---------------------------------------------------------
    def create(self, request: Request, principal: str) -> Statement:
        """Register a statement as ``PENDING`` (run it with :meth:`run`)."""
        now = self.service.clock()
        with self.service.lock:
            statement_id = self.service.new_statement_id()
        stmt = Statement(
            id=statement_id,
            principal=principal,
            sql=request.statement,
            catalog=request.catalog,
            schema=request.schema,
            parameters=request.parameters,
            disposition=request.disposition,
            format=request.format,
            row_limit=request.row_limit,
            byte_limit=request.byte_limit,
            chunk_rows=(
                self.inline_chunk_rows
                if request.disposition == "INLINE"
                else self.external_chunk_rows
            ),
            created=now,
        )
        with self.lock:
            self._forget_old(now)
            self.statements[stmt.id] = stmt
        return stmt

    def _forget_old(self, now: float) -> None:
        for sid in [
            s.id
            for s in self.statements.values()
            if s.finished is not None and now - s.finished > self.forget_after_seconds
        ]:
            del self.statements[sid]

    def get(self, statement_id: str, principal: str) -> Statement:
        """A statement of ``principal``; a succeeded one past its TTL becomes ``CLOSED``."""
        with self.lock:
            stmt = self.statements.get(statement_id)
            if stmt is None or stmt.principal != principal:
                raise ApiError(
                    404, "RESOURCE_DOES_NOT_EXIST", f"Statement {statement_id} does not exist."
                )
            now = self.service.clock()
            if (
                stmt.state == "SUCCEEDED"
                and stmt.finished is not None
                and now - stmt.finished >= self.result_ttl_seconds
            ):
                stmt.state = "CLOSED"
                stmt.result = None
                stmt.payloads = []
            return stmt

    def cancel(self, stmt: Statement) -> None:
        """Cancel a pending or running statement (interrupting DuckDB); no-op when done."""
        with self.lock:
            if stmt.state in _TERMINAL:
                return
            stmt.state = "CANCELED"
            stmt.finished = self.service.clock()
            running = stmt.connection is not None
        if running:
            # An interrupt that lands before DuckDB starts the query is lost, so keep
            # interrupting until the worker lets go of the connection.
            threading.Thread(
                target=self._interrupt_until_stopped,
                args=(stmt,),
                name="emulator-sql-cancel",
                daemon=True,
            ).start()

    def _interrupt_until_stopped(self, stmt: Statement, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if stmt.connection is None:
                    return
                stmt.connection.interrupt()
            time.sleep(0.02)

    def shutdown(self, timeout: float = 10.0) -> None:
        """Cancel everything in flight and wait (a bounded time) for the queries to stop."""
        with self.lock:
            statements = list(self.statements.values())
        for stmt in statements:
            self.cancel(stmt)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(s.connection is not None for s in statements):
            time.sleep(0.02)
        self.executor.shutdown(wait=False, cancel_futures=True)

    # execution (worker thread) -----------------------------------------
    def index(self, cursor: Any) -> CatalogIndex:
        """The tables that exist (read once: the warehouse is read-only)."""
        if self._index is None:
            self._index = CatalogIndex.load(cursor)
        return self._index

    def run(self, stmt: Statement) -> None:
        """Execute ``stmt`` on its own DuckDB connection and record the outcome."""
        duckdb = require("duckdb", extra="emulator", purpose="The emulator's SQL statements")
        with self.lock:
            if stmt.state != "PENDING":
                return
            stmt.state = "RUNNING"
            con = self.service.db.cursor().cursor()
            stmt.connection = con
        failure: StatementFailure | None = None
        result: TableResult | None = None
        interrupted = False
        try:
            con.execute("SET TimeZone = 'UTC'")
            compiled = compile_statement(
                stmt.sql,
                catalog=stmt.catalog,
                schema=stmt.schema,
                parameters=stmt.parameters,
                index=self.index(con),
            )
            self._check_values(con, compiled)
            if stmt.state == "CANCELED":  # cancelled while compiling: do not start
                raise duckdb.InterruptException("canceled before execution")
            result = self._fetch(con, compiled, stmt)
        except StatementFailure as exc:
            failure = exc
        except duckdb.InterruptException:
            interrupted = True
        except duckdb.Error as exc:
            failure = _duckdb_failure(exc)
        except Exception as exc:  # an emulator bug still ends the statement, visibly
            failure = StatementFailure(
                "INTERNAL_ERROR",
                f"{type(exc).__name__}: {exc}",
                "XX000",
                error_code="INTERNAL_ERROR",
            )
        finally:
            with self.lock:  # not while the canceller interrupts it
                con.close()
                stmt.connection = None
        payloads = self._payloads(stmt, result) if result is not None else []
        with self.lock:
            if stmt.state == "CANCELED":
                return
            stmt.finished = self.service.clock()
            if interrupted:
                stmt.state = "CANCELED"
            elif failure is not None:
                stmt.state = "FAILED"
                stmt.error = {"error_code": failure.error_code, "message": failure.message}
                stmt.sql_state = failure.sql_state
            elif result is not None:
                n = stmt.chunk_rows
                stmt.chunk_counts = [
                    min(n, result.row_count - start) for start in range(0, result.row_count, n)
                ]
                stmt.payloads = payloads
                if payloads:  # the rows live in the payloads; keep columns and truncation
                    result = TableResult(
                        columns=result.columns, rows=[], truncated=result.truncated
                    )
                stmt.result = result
                stmt.state = "SUCCEEDED"

    def _check_values(self, con: Any, compiled: Compiled) -> None:
        """Each typed parameter's value must cast to its type (as Databricks checks)."""
        for param, duck_type in compiled.typed:
            try:
                con.execute(f"SELECT CAST($v AS {duck_type})", {"v": param.value}).fetchall()
            except Exception as exc:
                raise StatementFailure(
                    "INVALID_PARAMETER_MARKER_VALUE.INVALID_VALUE_FOR_DATA_TYPE",
                    f"An invalid parameter mapping was provided: the value '{param.value}' for "
                    f"parameter '{param.name}' cannot be cast to {param.type} because it is "
                    "malformed.",
                    "22023",
                ) from exc

    def _fetch(self, con: Any, compiled: Compiled, stmt: Statement) -> TableResult:
        con.execute(compiled.duckdb_sql, compiled.parameters or None)
        columns = []
        for name, duck_type, *_ in con.description or []:
            type_name, type_text = databricks_type(str(duck_type))
            columns.append(Column(name=name, type_name=type_name, type_text=type_text))
        rows: list[list[str | None]] = []
        total = 0
        truncated = False
        inline = stmt.disposition == "INLINE"
        while not truncated and stmt.state == "RUNNING":
            batch = con.fetchmany(self.fetch_batch_rows)
            if not batch:
                break
            for raw in batch:
                if stmt.row_limit is not None and len(rows) >= stmt.row_limit:
                    truncated = True
                    break
                row = [to_wire(v) for v in raw]
                size = _row_bytes(row)
                if stmt.byte_limit is not None and total + size > stmt.byte_limit:
                    truncated = True
                    break
                if inline and total + size > self.inline_byte_limit:
                    raise StatementFailure(
                        "EMULATOR_INLINE_RESULT_TOO_LARGE",
                        f"The result exceeds the {self.inline_byte_limit:,}-byte limit of "
                        "INLINE disposition. Use disposition EXTERNAL_LINKS, or reduce the "
                        "result with row_limit, byte_limit or a narrower query.",
                        "54000",
                    )
                rows.append(row)
                total += size
        return TableResult(columns=columns, rows=rows, truncated=truncated, statement_id=stmt.id)

    def _payloads(self, stmt: Statement, result: TableResult) -> list[bytes]:
        """``EXTERNAL_LINKS``: serialize each chunk as its link will serve it."""
        if stmt.disposition != "EXTERNAL_LINKS":
            return []
        n = stmt.chunk_rows
        payloads = []
        for start in range(0, result.row_count, n):
            rows = result.rows[start : start + n]
            if stmt.format == "CSV":
                buf = io.StringIO()
                writer = csv.writer(buf, lineterminator="\n")
                if start == 0:
                    writer.writerow([c.name for c in result.columns])
                writer.writerows([["null" if v is None else v for v in row] for row in rows])
                payloads.append(buf.getvalue().encode())
            else:
                payloads.append(json.dumps(rows, separators=(",", ":")).encode())
        return payloads

    # wire ----------------------------------------------------------------
    def _row_offset(self, stmt: Statement, index: int) -> int:
        return sum(stmt.chunk_counts[:index])

    def _chunk_info(self, stmt: Statement, index: int) -> dict[str, Any]:
        info: dict[str, Any] = {
            "chunk_index": index,
            "row_offset": self._row_offset(stmt, index),
            "row_count": stmt.chunk_counts[index],
        }
        if stmt.payloads:
            info["byte_count"] = len(stmt.payloads[index])
        return info

    def sign(self, statement_id: str, index: int, expires: int) -> str:
        """The signature of an external link."""
        message = f"{statement_id}/{index}/{expires}".encode()
        return hmac.new(self._link_key, message, hashlib.sha256).hexdigest()

    def chunk_wire(self, stmt: Statement, index: int, base_url: str) -> dict[str, Any]:
        """One chunk as ``ResultData``: rows inline, or an external link."""
        data = self._chunk_info(stmt, index)
        if index + 1 < stmt.chunk_count:
            data["next_chunk_index"] = index + 1
            data["next_chunk_internal_link"] = f"{API}/{stmt.id}/result/chunks/{index + 1}"
        if stmt.disposition == "EXTERNAL_LINKS":
            expires = int(self.service.clock() + self.link_ttl_seconds)
            data["external_link"] = (
                f"{base_url}{DOWNLOAD}/{stmt.id}/{index}"
                f"?expires={expires}&sig={self.sign(stmt.id, index, expires)}"
            )
            data["expiration"] = dt.datetime.fromtimestamp(expires, dt.UTC).strftime(
                "%Y-%m-%dT%H:%M:%S.000Z"
            )
            data["http_headers"] = {}
            return {"external_links": [data]}
        assert stmt.result is not None
        start = data["row_offset"]
        data["data_array"] = stmt.result.rows[start : start + data["row_count"]]
        return data

    def response(self, stmt: Statement, base_url: str) -> dict[str, Any]:
        """The ``StatementResponse`` for the statement's current state."""
        with self.lock:
            body: dict[str, Any] = {"statement_id": stmt.id, "status": {"state": stmt.state}}
            if stmt.state == "FAILED":
                body["status"]["error"] = stmt.error
                body["status"]["sql_state"] = stmt.sql_state
            if stmt.state != "SUCCEEDED" or stmt.result is None:
                return body
            result = stmt.result
            man = manifest(result, fmt=stmt.format, chunks=stmt.chunk_count)
            man["total_row_count"] = sum(stmt.chunk_counts)
            man["chunks"] = [self._chunk_info(stmt, i) for i in range(stmt.chunk_count)]
            if not man["chunks"]:
                del man["chunks"]
            if stmt.payloads:
                man["total_byte_count"] = sum(len(p) for p in stmt.payloads)
            for column in man["schema"]["columns"]:
                decimal = re.fullmatch(r"decimal\((\d+),(\d+)\)", column["type_text"], re.I)
                if decimal:
                    column["type_precision"] = int(decimal.group(1))
                    column["type_scale"] = int(decimal.group(2))
            body["manifest"] = man
            body["result"] = self.chunk_wire(stmt, 0, base_url) if stmt.chunk_count else {}
            return body


def statement_store(service: GenieService) -> StatementStore:
    """The statement store serving ``service`` (e.g. ``statement_store(emu.service)``)."""
    store = _STORES.get(service)
    if store is None:
        raise LookupError("no statement routes were added for this service")
    return store


STATEMENTS = web.AppKey("statements", StatementStore)


def _base_url(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


class StatementRoutes:
    """HTTP handlers for the Statement Execution API."""

    def __init__(self, store: StatementStore) -> None:
        self.store = store

    async def execute(self, request: web.Request) -> web.Response:
        """``POST /api/2.0/sql/statements``: run, and wait up to ``wait_timeout``."""
        spec = parse_request(await _json_body(request))
        store = self.store
        stmt = store.create(spec, request[PRINCIPAL])
        loop = asyncio.get_running_loop()
        if spec.wait_seconds == 0:
            # Asynchronous mode answers PENDING at once, as Databricks does.
            body = {"statement_id": stmt.id, "status": {"state": "PENDING"}}
            loop.run_in_executor(store.executor, store.run, stmt)
            return web.json_response(body)
        future = loop.run_in_executor(store.executor, store.run, stmt)
        done, _ = await asyncio.wait({future}, timeout=spec.wait_seconds)
        if not done and spec.on_wait_timeout == "CANCEL":
            store.cancel(stmt)
        return web.json_response(store.response(stmt, _base_url(request)))

    async def get(self, request: web.Request) -> web.Response:
        """``GET /api/2.0/sql/statements/{statement_id}``."""
        stmt = self.store.get(request.match_info["statement_id"], request[PRINCIPAL])
        return web.json_response(self.store.response(stmt, _base_url(request)))

    async def chunk(self, request: web.Request) -> web.Response:
        """``GET .../{statement_id}/result/chunks/{chunk_index}``."""
        stmt = self.store.get(request.match_info["statement_id"], request[PRINCIPAL])
        index = int(request.match_info["chunk_index"])
        with self.store.lock:
            if stmt.state != "SUCCEEDED":
                raise ApiError(
                    400,
                    "INVALID_STATE",
                    f"Statement {stmt.id} is {stmt.state}; result chunks are available only "
                    "when it has SUCCEEDED.",
                )
            if index >= stmt.chunk_count:
                raise _bad(
                    f"chunk_index {index} is out of range: the result has "
                    f"{stmt.chunk_count} chunk(s)."
                )
            body = self.store.chunk_wire(stmt, index, _base_url(request))
        return web.json_response(body)

    async def cancel(self, request: web.Request) -> web.Response:
        """``POST .../{statement_id}/cancel``."""
        stmt = self.store.get(request.match_info["statement_id"], request[PRINCIPAL])
        self.store.cancel(stmt)
        return web.json_response({})

    async def download(self, request: web.Request) -> web.Response:
        """An external link: the chunk's bytes, without a bearer token (pre-signed)."""
        sid = request.match_info["statement_id"]
        index = int(request.match_info["chunk"])
        try:
            expires = int(request.query.get("expires", ""))
        except ValueError:
            expires = -1
        valid = hmac.compare_digest(
            request.query.get("sig", ""), self.store.sign(sid, index, expires)
        )
        if not valid or self.store.service.clock() > expires:
            raise ApiError(403, "PERMISSION_DENIED", "Invalid or expired link.")
        with self.store.lock:
            stmt = self.store.statements.get(sid)
            payload = (
                stmt.payloads[index]
                if stmt is not None and stmt.state == "SUCCEEDED" and index < len(stmt.payloads)
                else None
            )
            fmt = stmt.format if stmt is not None else "JSON_ARRAY"
        if payload is None:
            raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", "The result is no longer available.")
        content_type = "text/csv" if fmt == "CSV" else "application/json"
        return web.Response(body=payload, content_type=content_type)


def add_statement_routes(app: web.Application, service: GenieService) -> StatementStore:
    """Serve the Statement Execution API from ``app``, over ``service``'s data.

    Args:
        app: The emulator's application (its middleware authenticates the API routes).
        service: The service whose DuckDB the statements query.

    Returns:
        The store, also reachable as ``app[STATEMENTS]`` and ``statement_store(service)``.
    """
    store = StatementStore(service)
    _STORES[service] = store
    app[STATEMENTS] = store
    r = StatementRoutes(store)
    app.add_routes(
        [
            web.post(API, r.execute),
            web.get(API + "/{statement_id}", r.get),
            web.get(API + "/{statement_id}/result/chunks/{chunk_index:\\d+}", r.chunk),
            web.post(API + "/{statement_id}/cancel", r.cancel),
            web.get(DOWNLOAD + "/{statement_id}/{chunk:\\d+}", r.download),
        ]
    )

    async def _shutdown(_: web.Application) -> None:
        await asyncio.to_thread(store.shutdown)

    app.on_shutdown.append(_shutdown)
    return store
