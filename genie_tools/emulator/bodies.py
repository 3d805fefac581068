"""What a request carries, read defensively: JSON bodies, forms, numbers in paths and queries.

Whatever a client sends, reading it ends in a value or in a 4xx :class:`ApiError` in
Databricks' shape: never a RecursionError from deep JSON, a LookupError from an unknown
charset, or a ValueError from a 5,000-digit number turning into a 500.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from genie_tools.emulator.service import ApiError

MAX_BODY_BYTES = 17 * 1024 * 1024
"""Request bodies above this answer 413 (room for a 16 MiB SQL statement)."""
MAX_JSON_DEPTH = 64
"""Deeper JSON answers 400: no Databricks request nests more than a few levels."""
# Bodies sent as JSON by SDKs, and by curl -d (which labels them form-urlencoded).
_JSON_CONTENT_TYPES = ("application/json", "text/plain", "application/x-www-form-urlencoded")


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object; any other body is the client's mistake (400, 413, 415).

    Raises:
        ApiError: Not JSON, not UTF-8, not an object, nested too deep, or sent as a
            content type that is not JSON (multipart, XML…).
    """
    if not request.can_read_body:
        return {}
    mime = request.content_type.lower()
    if mime not in _JSON_CONTENT_TYPES and not mime.endswith("+json"):
        raise ApiError(
            415,
            "BAD_REQUEST",
            f"Content-Type {mime} is not supported; send the body as application/json.",
        )
    raw = await request.read()
    try:
        body = json.loads(raw.decode("utf-8"))
    except RecursionError:
        body = None
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        first = str(exc).splitlines()[0][:200]
        raise ApiError(
            400, "MALFORMED_REQUEST", f"Request body is not valid JSON: {first}"
        ) from None
    if body is None or _depth_exceeds(body, MAX_JSON_DEPTH):
        raise ApiError(
            400,
            "MALFORMED_REQUEST",
            f"Request body nests deeper than {MAX_JSON_DEPTH} levels; no request needs that.",
        )
    if not isinstance(body, dict):
        raise ApiError(400, "MALFORMED_REQUEST", "Request body must be a JSON object.")
    return body


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether JSON nests deeper than ``limit`` (iteratively: no recursion to exhaust)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


async def form_body(request: web.Request) -> dict[str, str]:
    """A form body's text fields (e.g. an OAuth token request); 400 when it is not a form."""
    try:
        form = await request.post()
    except web.HTTPException:
        raise
    except Exception as exc:  # whatever the form parser trips on was sent by the client
        first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise ApiError(
            400, "invalid_request", f"The body is not a readable form: {first}"
        ) from None
    return {k: v for k, v in form.items() if isinstance(v, str)}


def path_int(request: web.Request, name: str) -> int:
    """A numeric path segment (its route allows digits only); 400 when it is absurdly long."""
    try:
        return int(request.match_info[name])
    except ValueError:
        raise ApiError(400, "INVALID_PARAMETER_VALUE", f"{name} is not a valid number.") from None


def int_param(request: web.Request, name: str) -> int | None:
    """A non-negative integer query parameter (None when absent); 400 otherwise."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError as exc:
        raise ApiError(400, "INVALID_PARAMETER_VALUE", f"{name} must be an integer.") from exc
    if value < 0:
        raise ApiError(400, "INVALID_PARAMETER_VALUE", f"{name} must not be negative.")
    return value
