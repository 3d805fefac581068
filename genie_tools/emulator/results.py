"""Query results in the SQL Statement Execution API's ``statement_response`` shape.

Values travel as strings (or null) in ``data_array``, typed by the manifest's
``type_name`` / ``type_text``, exactly as Databricks sends them inline.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
from dataclasses import dataclass, field
from typing import Any

# DuckDB type (prefix) -> (Databricks type_name, type_text)
_TYPES: list[tuple[str, str, str]] = [
    ("BIGINT", "LONG", "BIGINT"),
    ("UBIGINT", "DECIMAL", "DECIMAL(20,0)"),
    ("HUGEINT", "DECIMAL", "DECIMAL(38,0)"),
    ("INTEGER", "INT", "INT"),
    ("UINTEGER", "LONG", "BIGINT"),
    ("SMALLINT", "SHORT", "SMALLINT"),
    ("TINYINT", "BYTE", "TINYINT"),
    ("DOUBLE", "DOUBLE", "DOUBLE"),
    ("FLOAT", "FLOAT", "FLOAT"),
    ("BOOLEAN", "BOOLEAN", "BOOLEAN"),
    ("DATE", "DATE", "DATE"),
    ("TIMESTAMP", "TIMESTAMP", "TIMESTAMP"),
    ("VARCHAR", "STRING", "STRING"),
    ("BLOB", "BINARY", "BINARY"),
    ("INTERVAL", "INTERVAL", "INTERVAL"),
]
_DECIMAL = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")


def databricks_type(duckdb_type: str) -> tuple[str, str]:
    """Map a DuckDB type to Databricks' ``(type_name, type_text)``.

    Example:
        >>> databricks_type("DECIMAL(15,2)")
        ('DECIMAL', 'DECIMAL(15,2)')
    """
    upper = duckdb_type.upper()
    match = _DECIMAL.fullmatch(upper)
    if match:
        return "DECIMAL", f"DECIMAL({match.group(1)},{match.group(2)})"
    for prefix, name, text in _TYPES:
        if upper == prefix or upper.startswith((prefix + " ", prefix + "(", prefix + "_")):
            return name, text
    if upper.endswith("[]"):
        return "ARRAY", f"ARRAY<{databricks_type(upper[:-2])[1]}>"
    if upper.startswith("STRUCT"):
        return "STRUCT", "STRUCT"
    if upper.startswith("MAP"):
        return "MAP", "MAP"
    return "STRING", "STRING"


def to_wire(value: Any) -> str | None:
    """Render one value as Databricks renders it in ``JSON_ARRAY`` results."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.isoformat(timespec="milliseconds") + "Z"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


@dataclass
class Column:
    """One result column."""

    name: str
    type_name: str
    type_text: str


@dataclass
class TableResult:
    """A query's result: columns, rows rendered for the wire, and truncation."""

    columns: list[Column]
    rows: list[list[str | None]]
    truncated: bool = False
    statement_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def row_count(self) -> int:
        """Rows carried (after the cap)."""
        return len(self.rows)


def result_columns(cursor: Any) -> list[Column]:
    """The columns of the query ``cursor`` just ran, typed as Databricks types them."""
    columns = []
    for name, duck_type, *_ in cursor.description or []:
        type_name, type_text = databricks_type(str(duck_type))
        columns.append(Column(name=name, type_name=type_name, type_text=type_text))
    return columns


def run_query(cursor: Any, sql: str, *, max_rows: int | None) -> TableResult:
    """Execute ``sql`` (DuckDB dialect) and fetch at most ``max_rows`` rows.

    Args:
        cursor: A DuckDB cursor.
        sql: The query.
        max_rows: Row cap (Genie's is 5,000); ``None`` for all rows.

    Returns:
        The result, with ``truncated`` set when rows were cut.
    """
    cursor.execute(sql)
    columns = result_columns(cursor)
    if max_rows is None:
        raw = cursor.fetchall()
        truncated = False
    else:
        raw = cursor.fetchmany(max_rows + 1)
        truncated = len(raw) > max_rows
        raw = raw[:max_rows]
    rows = [[to_wire(v) for v in row] for row in raw]
    return TableResult(columns=columns, rows=rows, truncated=truncated)


def manifest(result: TableResult, *, fmt: str = "JSON_ARRAY", chunks: int = 1) -> dict[str, Any]:
    """The ``manifest`` of a statement response."""
    return {
        "format": fmt,
        "schema": {
            "column_count": len(result.columns),
            "columns": [
                {
                    "name": c.name,
                    "position": i,
                    "type_name": c.type_name,
                    "type_text": c.type_text,
                }
                for i, c in enumerate(result.columns)
            ],
        },
        "total_row_count": result.row_count,
        "total_chunk_count": chunks,
        "truncated": result.truncated,
        "chunks": [{"chunk_index": 0, "row_offset": 0, "row_count": result.row_count}],
    }


def statement_response(result: TableResult) -> dict[str, Any]:
    """A SUCCEEDED statement response carrying the rows inline."""
    return {
        "statement_id": result.statement_id,
        "status": {"state": "SUCCEEDED"},
        "manifest": manifest(result),
        "result": {
            "chunk_index": 0,
            "row_offset": 0,
            "row_count": result.row_count,
            "data_array": result.rows,
        },
    }


def pending_statement(statement_id: str, state: str = "RUNNING") -> dict[str, Any]:
    """A statement response for a query that has not finished."""
    return {"statement_id": statement_id, "status": {"state": state}}


def closed_statement(statement_id: str, message: str) -> dict[str, Any]:
    """A statement response whose result is no longer available (expired)."""
    return {
        "statement_id": statement_id,
        "status": {
            "state": "CLOSED",
            "error": {"error_code": "RESOURCE_EXPIRED", "message": message},
        },
    }
