"""Typing result values from a statement manifest, and rendering them back as text.

Genie (like the SQL Statement Execution API's ``JSON_ARRAY`` format) sends every value
as a string or null; the manifest's ``type_name`` says what it is. :func:`parse_value`
turns the wire string into the Python value and is idempotent (an already-typed value
passes through), so models validated from JSON or from a checkpoint re-type their rows.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
from typing import Any

__all__ = ["format_value", "parse_value"]

_INTS = frozenset({"INT", "LONG", "SHORT", "BYTE", "INTEGER", "BIGINT", "SMALLINT", "TINYINT"})
_FLOATS = frozenset({"DOUBLE", "FLOAT", "REAL"})
_NESTED = frozenset({"ARRAY", "MAP", "STRUCT", "VARIANT"})


def parse_value(value: Any, type_name: str | None) -> Any:
    """Turn one wire value into its Python type by the manifest's ``type_name``.

    INT/LONG/SHORT/BYTE → ``int``, DECIMAL → ``decimal.Decimal``, DOUBLE/FLOAT →
    ``float``, DATE → ``datetime.date``, TIMESTAMP → ``datetime.datetime`` (aware, UTC,
    when the text carries a zone), BOOLEAN → ``bool``, ARRAY/MAP/STRUCT → parsed JSON,
    STRING and anything else → ``str``; null → ``None``.

    Example:
        >>> parse_value("12.50", "DECIMAL"), parse_value("1996-03-01", "DATE")
        (Decimal('12.50'), datetime.date(1996, 3, 1))
        >>> parse_value(None, "LONG") is None, parse_value("true", "BOOLEAN")
        (True, True)
    """
    if value is None:
        return None
    kind = (type_name or "STRING").upper()
    if kind in _INTS:
        return value if isinstance(value, int) and not isinstance(value, bool) else int(value)
    if kind == "DECIMAL":
        return value if isinstance(value, decimal.Decimal) else decimal.Decimal(str(value))
    if kind in _FLOATS:
        return float(value)
    if kind == "BOOLEAN":
        return value if isinstance(value, bool) else str(value).strip().lower() == "true"
    if kind == "DATE":
        if isinstance(value, dt.datetime):
            return value.date()
        return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])
    if kind in ("TIMESTAMP", "TIMESTAMP_NTZ"):
        return value if isinstance(value, dt.datetime) else _timestamp(str(value), kind)
    if kind in _NESTED and isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _timestamp(text: str, kind: str) -> dt.datetime:
    text = text.strip().replace(" ", "T", 1)
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    parsed = dt.datetime.fromisoformat(text)
    if kind == "TIMESTAMP_NTZ":
        return parsed.replace(tzinfo=None)
    return parsed.astimezone(dt.UTC) if parsed.tzinfo is not None else parsed


def format_value(value: Any) -> str:
    """Render a typed value for a markdown cell (lossless for numbers, ISO for dates).

    Example:
        >>> format_value(None), format_value(True), format_value(1234567.5)
        ('null', 'true', '1234567.5')
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
            return f"{value:.1f}"
        return repr(value)
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    return str(value)
