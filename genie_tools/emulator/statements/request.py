"""The execute-statement request body, validated as Databricks does when accepting it.

Everything checked here answers HTTP 400 ``INVALID_PARAMETER_VALUE`` naming the field at
fault, before a statement exists; what the SQL itself gets wrong is found later, when it
runs, and ends the statement ``FAILED`` instead (see :mod:`.failures`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from genie_tools.emulator.statements.failures import invalid_parameter
from genie_tools.emulator.statements.parameters import Parameter, parse_parameters

MAX_STATEMENT_CHARS = 16 * 1024 * 1024
_WAIT = re.compile(r"(\d+)s")


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


def parse_request(body: dict[str, Any]) -> Request:
    """Validate an execute-statement body as Databricks does when accepting it.

    Args:
        body: The request's JSON object.

    Returns:
        The request, with Databricks' defaults filled in (``wait_timeout`` 10s, ``INLINE``
        ``JSON_ARRAY`` results, ``on_wait_timeout`` ``CONTINUE``).

    Raises:
        ApiError: 400 ``INVALID_PARAMETER_VALUE`` naming the field at fault.
    """
    statement = body.get("statement")
    if not isinstance(statement, str) or not statement.strip():
        raise invalid_parameter("statement is required and must be a non-empty string.")
    if len(statement) > MAX_STATEMENT_CHARS:
        raise invalid_parameter(f"statement is {len(statement)} characters; the limit is 16 MiB.")
    warehouse_id = body.get("warehouse_id")
    if not isinstance(warehouse_id, str) or not warehouse_id.strip():
        raise invalid_parameter(
            "warehouse_id is required: the SQL warehouse to run the statement on."
        )
    wait = body.get("wait_timeout")
    wait = "10s" if wait is None else wait
    match = _WAIT.fullmatch(wait) if isinstance(wait, str) else None
    seconds = int(match.group(1)) if match else -1
    if seconds != 0 and not 5 <= seconds <= 50:
        raise invalid_parameter(
            f"wait_timeout must be 0s (do not wait) or between 5s and 50s, got {wait!r}."
        )
    disposition = _choice(body, "disposition", ("INLINE", "EXTERNAL_LINKS"))
    fmt = _choice(body, "format", ("JSON_ARRAY", "ARROW_STREAM", "CSV"))
    if disposition == "INLINE" and fmt != "JSON_ARRAY":
        raise invalid_parameter(
            f"{fmt} format is only supported with EXTERNAL_LINKS disposition; INLINE results "
            "are JSON_ARRAY."
        )
    if fmt == "ARROW_STREAM":
        raise invalid_parameter(
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


def _optional_str(body: dict[str, Any], key: str) -> str | None:
    """A string field; None when absent or empty."""
    value = body.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise invalid_parameter(f"{key} must be a string.")
    return value


def _limit(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    # bool is an int subclass, but ``true`` is no row count.
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise invalid_parameter(f"{key} must be a non-negative integer, not {value!r}.")
    return value


def _choice(body: dict[str, Any], key: str, allowed: tuple[str, ...]) -> str:
    """An enum field; absent or empty means the first of ``allowed``."""
    value = body.get(key) or allowed[0]
    if value not in allowed:
        raise invalid_parameter(f"{key} must be one of {', '.join(allowed)}; got {value!r}.")
    return str(value)
