"""Named statement parameters: what the request may declare, and whether a value fits.

A request's ``parameters`` give each ``:name`` marker a string value (``null`` for NULL)
and a Databricks scalar type. The list is validated when the request is accepted (400 on
a malformed one); whether each value casts to its type is checked when the statement runs
(``FAILED``), as Databricks does. Binding markers into the SQL is :mod:`.sql`'s job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from genie_tools.emulator.statements.failures import StatementFailure, invalid_parameter

PARAMETER_TYPE = re.compile(
    r"(STRING|VARCHAR|CHAR|INT|INTEGER|BIGINT|LONG|SMALLINT|SHORT|TINYINT|BYTE|DOUBLE|FLOAT|"
    r"REAL|BOOLEAN|DATE|TIMESTAMP|TIMESTAMP_NTZ|TIMESTAMP_LTZ|BINARY|VOID|DECIMAL|DEC|NUMERIC)"
    r"(\s*\(\s*\d+\s*(,\s*\d+\s*)?\))?",
    re.IGNORECASE,
)
"""The scalar types a parameter may declare, with an optional ``(p)`` or ``(p,s)``."""
STRING_TYPES = ("STRING", "VARCHAR", "CHAR")
"""Types whose values bind as they are, without a cast."""


@dataclass(frozen=True)
class Parameter:
    """One named parameter: ``:name`` in the SQL, its value as a string (None is NULL)."""

    name: str
    value: str | None
    type: str = "STRING"


def parse_parameters(raw: Any) -> list[Parameter]:
    """Validate the request's ``parameters`` list.

    Args:
        raw: The ``parameters`` field of the request body (None when absent).

    Returns:
        The parameters, their types stripped and upper-cased (``STRING`` when omitted).

    Raises:
        ApiError: 400 for a malformed list, a missing name, a duplicate, a non-string value
            or a type that is not a Databricks scalar type.
    """
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise invalid_parameter("parameters must be a list of {name, value, type} objects.")
    params: list[Parameter] = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
            raise invalid_parameter("Each parameter needs a non-empty string name.")
        name = item["name"]
        if any(p.name == name for p in params):
            raise invalid_parameter(f"Parameter {name!r} is given more than once.")
        value = item.get("value")
        if value is not None and not isinstance(value, str):
            raise invalid_parameter(
                f"The value of parameter {name!r} must be a string (or null for NULL)."
            )
        ptype = item.get("type") or "STRING"
        if not isinstance(ptype, str) or not PARAMETER_TYPE.fullmatch(ptype.strip()):
            raise invalid_parameter(
                f"Parameter {name!r} has type {ptype!r}; supported types are the scalar types "
                "STRING, INT, BIGINT, SMALLINT, TINYINT, DOUBLE, FLOAT, BOOLEAN, DATE, "
                "TIMESTAMP, TIMESTAMP_NTZ, BINARY, VOID and DECIMAL(p,s)."
            )
        params.append(Parameter(name=name, value=value, type=ptype.strip().upper()))
    return params


def check_values(cursor: Any, typed: list[tuple[Parameter, str]]) -> None:
    """Each typed parameter's value must cast to its type (as Databricks checks).

    Checked before the query runs so that a malformed value fails with Databricks' error
    class, naming the parameter, rather than as a cast error somewhere inside the query.

    Args:
        cursor: The statement's DuckDB cursor.
        typed: Parameters with a declared type, and that type in DuckDB's dialect.

    Raises:
        StatementFailure: ``INVALID_PARAMETER_MARKER_VALUE.INVALID_VALUE_FOR_DATA_TYPE``.
    """
    for param, duck_type in typed:
        try:
            cursor.execute(f"SELECT CAST($v AS {duck_type})", {"v": param.value}).fetchall()
        except Exception as exc:
            raise StatementFailure(
                "INVALID_PARAMETER_MARKER_VALUE.INVALID_VALUE_FOR_DATA_TYPE",
                f"An invalid parameter mapping was provided: the value '{param.value}' for "
                f"parameter '{param.name}' cannot be cast to {param.type} because it is "
                "malformed.",
                "22023",
            ) from exc
