"""The statements of one emulated workspace: their lifecycle, execution and results.

A statement is created ``PENDING``, runs on a worker thread of the store's pool with a
DuckDB connection of its own (``RUNNING``), and ends ``SUCCEEDED``, ``FAILED`` or
``CANCELED``. Cancelling interrupts DuckDB. A succeeded statement's result can be fetched
for :attr:`StatementStore.result_ttl_seconds`, after which it is ``CLOSED``; ended
statements are forgotten altogether after :attr:`StatementStore.forget_after_seconds`.
Every state change happens under :attr:`StatementStore.lock`, which the HTTP handlers
also hold while they read a statement.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from genie_tools._optional import require
from genie_tools.emulator.results import TableResult, result_columns, to_wire
from genie_tools.emulator.service import ApiError, GenieService
from genie_tools.emulator.statements.chunks import (
    LinkSigner,
    chunk_data,
    chunk_sizes,
    json_row_bytes,
    serialize_chunks,
    statement_response,
)
from genie_tools.emulator.statements.failures import StatementFailure, duckdb_failure
from genie_tools.emulator.statements.parameters import check_values
from genie_tools.emulator.statements.request import Request
from genie_tools.emulator.statements.sql import CatalogIndex, Compiled, compile_statement

_TERMINAL = frozenset(("SUCCEEDED", "FAILED", "CANCELED", "CLOSED"))


@dataclass
class Statement:
    """One submitted statement and, once it ran, its result."""

    id: str
    principal: str
    request: Request
    """What was asked: the SQL, its defaults, parameters, disposition, format and limits."""
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
    """The DuckDB connection while the statement runs (what a cancel interrupts)."""
    compiled: Compiled | None = field(default=None, repr=False)
    """The SQL as compiled when the statement was authorized (``None``: compile on run)."""

    @property
    def chunk_count(self) -> int:
        """How many chunks the result has (0 for no rows)."""
        return len(self.chunk_counts)


class StatementStore:
    """Statements of one emulated workspace, their execution and their results.

    The knobs are plain attributes, so a test can change them on a running emulator
    (``statement_store(emu.service).inline_chunk_rows = 10``).

    Args:
        service: The service whose DuckDB the statements query (and whose clock and
            statement ids they use).
        max_workers: Statements that run at once; more wait in the pool's queue.
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
    """Rows fetched from DuckDB at a time (a cancel is noticed between batches)."""

    def __init__(self, service: GenieService, *, max_workers: int = 8) -> None:
        self.service = service
        self.statements: dict[str, Statement] = {}
        self.lock = threading.Lock()
        self.executor = ThreadPoolExecutor(max_workers, thread_name_prefix="emulator-sql")
        self.links = LinkSigner()
        self._index: CatalogIndex | None = None

    # lifecycle ---------------------------------------------------------
    def create(
        self, request: Request, principal: str, compiled: Compiled | None = None
    ) -> Statement:
        """Register a statement as ``PENDING`` (run it with :meth:`run`).

        ``compiled`` is what :meth:`authorize` compiled, so the SQL is parsed once.
        """
        now = self.service.clock()
        with self.service.lock:
            statement_id = self.service.new_statement_id()
        stmt = Statement(
            id=statement_id,
            principal=principal,
            request=request,
            chunk_rows=(
                self.inline_chunk_rows
                if request.disposition == "INLINE"
                else self.external_chunk_rows
            ),
            created=now,
            compiled=compiled,
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
        """A statement of ``principal``; a succeeded one past its TTL becomes ``CLOSED``.

        Raises:
            ApiError: 404 for an unknown statement, or another principal's.
        """
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
            self._index = CatalogIndex.load(cursor, self.service.db.names)
        return self._index

    def authorize(self, request: Request, principal: str) -> Compiled | None:
        """Refuse (403) a statement reading tables outside the principal's Genie spaces.

        The emulator's warehouse serves what the principal's spaces declare: the tables
        of every space it may run (``CAN_RUN`` or more). SQL that does not compile is let
        through here; it ends ``FAILED`` when it runs, as on Databricks.

        Returns:
            The compiled statement, for :meth:`create` (``None`` if it does not compile).

        Raises:
            ApiError: 403 ``PERMISSION_DENIED`` naming the tables, or saying that the
                principal can run no space at all.
        """
        allowed = self.service.readable_tables(principal)
        if not allowed:
            raise ApiError(
                403,
                "PERMISSION_DENIED",
                f"User {principal} cannot use the SQL warehouse: it serves the tables of the "
                "Genie spaces a user can run, and this user can run none. Ask a space owner "
                "for CAN_RUN on a space.",
            )
        try:
            compiled = compile_statement(
                request.statement,
                catalog=request.catalog,
                schema=request.schema,
                parameters=request.parameters,
                index=self.index(self.service.db.cursor()),
            )
        except StatementFailure:
            return None  # compiled again when it runs, which records the failure
        denied = sorted(compiled.tables - allowed)
        if denied:
            names = ", ".join(".".join(t) for t in denied)
            raise ApiError(
                403,
                "PERMISSION_DENIED",
                f"User {principal} does not have SELECT on {names}: the SQL warehouse serves "
                "only the tables of the Genie spaces the user can run. Ask the owner of a space "
                "that declares it for CAN_RUN.",
            )
        return compiled

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
            # The warehouse's time zone is UTC, set once before its configuration was locked.
            compiled = stmt.compiled or compile_statement(
                stmt.request.statement,
                catalog=stmt.request.catalog,
                schema=stmt.request.schema,
                parameters=stmt.request.parameters,
                index=self.index(con),
            )
            check_values(con, compiled.typed)
            if stmt.state == "CANCELED":  # cancelled while compiling: do not start
                raise duckdb.InterruptException("canceled before execution")
            result = self._fetch(con, compiled, stmt)
        except StatementFailure as exc:
            failure = exc
        except duckdb.InterruptException:
            interrupted = True
        except duckdb.Error as exc:
            failure = duckdb_failure(exc)
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
        # Serialized outside the lock: a large result must not stall the other statements.
        payloads = (
            serialize_chunks(result, stmt.chunk_rows, stmt.request.format)
            if result is not None and stmt.request.disposition == "EXTERNAL_LINKS"
            else []
        )
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
                stmt.chunk_counts = chunk_sizes(result.row_count, stmt.chunk_rows)
                stmt.payloads = payloads
                if payloads:  # the rows live in the payloads; keep columns and truncation
                    result = TableResult(
                        columns=result.columns, rows=[], truncated=result.truncated
                    )
                stmt.result = result
                stmt.state = "SUCCEEDED"

    def _fetch(self, con: Any, compiled: Compiled, stmt: Statement) -> TableResult:
        """Run the query and fetch its rows in batches, applying the request's limits.

        Unlike :func:`genie_tools.emulator.results.run_query` this streams: it stops at
        ``row_limit``/``byte_limit`` or the ``INLINE`` cap, and between batches when the
        statement is cancelled.
        """
        con.execute(compiled.duckdb_sql, compiled.parameters or None)
        columns = result_columns(con)
        rows: list[list[str | None]] = []
        total = 0
        truncated = False
        inline = stmt.request.disposition == "INLINE"
        while not truncated and stmt.state == "RUNNING":
            batch = con.fetchmany(self.fetch_batch_rows)
            if not batch:
                break
            for raw in batch:
                if stmt.request.row_limit is not None and len(rows) >= stmt.request.row_limit:
                    truncated = True
                    break
                row = [to_wire(v) for v in raw]
                size = json_row_bytes(row)
                if stmt.request.byte_limit is not None and total + size > stmt.request.byte_limit:
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

    # wire ----------------------------------------------------------------
    def chunk_wire(self, stmt: Statement, index: int, base_url: str) -> dict[str, Any]:
        """One chunk as ``ResultData``: rows inline, or a freshly signed external link."""
        link = None
        if stmt.request.disposition == "EXTERNAL_LINKS":
            expires = int(self.service.clock() + self.link_ttl_seconds)
            link = self.links.link(base_url, stmt.id, index, expires)
        return chunk_data(stmt, index, link)

    def response(self, stmt: Statement, base_url: str) -> dict[str, Any]:
        """The ``StatementResponse`` for the statement's current state."""
        with self.lock:
            return statement_response(stmt, lambda i: self.chunk_wire(stmt, i, base_url))
