"""How a statement fails: refused on acceptance (HTTP 400) or ``FAILED`` while executing.

Databricks draws the line this way, and SDK code branches on it: a malformed request
(missing ``warehouse_id``, a bad ``wait_timeout``) is an HTTP error raised by the SDK call,
while SQL that the warehouse accepted but could not run - a syntax error, a missing
table, a write on a read-only warehouse - answers HTTP 200 with ``status.state``
``FAILED``, an error class and a SQLSTATE.
"""

from __future__ import annotations

from genie_tools.emulator.service import ApiError


class StatementFailure(Exception):
    """A statement that the warehouse accepted but could not run: it ends ``FAILED``.

    Args:
        error_class: Databricks' error class, e.g. ``TABLE_OR_VIEW_NOT_FOUND``.
        text: The human-readable explanation.
        sql_state: The SQLSTATE, e.g. ``42P01``.
        error_code: The ``status.error.error_code`` (``BAD_REQUEST`` unless the emulator
            itself broke).
    """

    def __init__(
        self, error_class: str, text: str, sql_state: str, *, error_code: str = "BAD_REQUEST"
    ) -> None:
        self.error_code = error_code
        self.sql_state = sql_state
        self.message = f"[{error_class}] {text} SQLSTATE: {sql_state}"
        super().__init__(self.message)


def invalid_parameter(message: str) -> ApiError:
    """A request refused on acceptance: 400 ``INVALID_PARAMETER_VALUE``."""
    return ApiError(400, "INVALID_PARAMETER_VALUE", message)


def read_only_failure(what: str) -> StatementFailure:
    """The failure of a statement that would change data (or the session): ``what`` it is."""
    return StatementFailure(
        "EMULATOR_READ_ONLY",
        f"The emulator's SQL warehouse is read-only: only a single query (SELECT, WITH ... "
        f"SELECT, VALUES) may run; {what} is not allowed. The data was not changed.",
        "42501",
    )


def duckdb_failure(exc: Exception) -> StatementFailure:
    """Translate a DuckDB error into the error class Databricks gives the same mistake.

    Args:
        exc: A ``duckdb.Error`` raised while executing or fetching.

    Returns:
        The failure, with DuckDB's first message line as its text.
    """
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    # Matched by class name: duckdb is an optional import and only the worker loads it.
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
