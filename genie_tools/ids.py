"""One check for every Genie id, and safe URL segments built from them.

Ids reach the client from many places — call arguments, tool arguments, graph state,
checkpoints read back, the CLI — and each one ends up in a URL path sent with the
user's credentials. Every id passes :func:`check_id` where it enters, and every path
segment is percent-encoded by :func:`segment` where a URL is built, so that no value can
steer a request outside Genie's API (``../../2.0/clusters/delete?`` is refused, and
could not escape its segment even if it were not).

Example:
    >>> check_id("01ef0123abcd4567", kind="conversation")
    '01ef0123abcd4567'
    >>> check_id("../../2.0/scim/v2/Users?", kind="space")
    Traceback (most recent call last):
    ...
    genie_tools.errors.InvalidIdError: space id '../../2.0/scim/v2/Users?' is not a Genie id: ...
    >>> segment("a b/c")
    'a%20b%2Fc'
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import quote

from genie_tools.errors import InvalidIdError

__all__ = ["IdKind", "check_id", "check_optional_id", "segment"]

IdKind = Literal[
    "space", "conversation", "message", "attachment", "statement", "download", "thread"
]

# Genie's ids are hex strings (01ef…), UUIDs and, in the emulator, the same alphabet.
# Allowing only these characters keeps '/', '.', '?', '#', '%' and '&' out of any URL.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
MAX_ID_LENGTH = 128

_WHERE = {
    "space": " (copy it from the space's URL: .../genie/rooms/<space_id>)",
    "conversation": " (use the conversation_id of an earlier answer)",
    "message": " (use the message_id of an earlier answer)",
}


def check_id(value: object, *, kind: IdKind) -> str:
    """Return ``value`` if it has the shape of a Genie id, else raise.

    Args:
        value: The id as received (any type: it may come from a model or a user).
        kind: Which id it is, named in the error.

    Returns:
        The id, unchanged.

    Raises:
        InvalidIdError: ``value`` is not a string of 1–128 letters, digits, ``-`` or
            ``_`` starting with a letter or digit.

    Example:
        >>> check_id("01f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4", kind="message")
        '01f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4'
    """
    if not isinstance(value, str):
        raise InvalidIdError(
            f"{kind} id must be a string, not {type(value).__name__}{_WHERE.get(kind, '')}",
            kind=kind,
        )
    if len(value) > MAX_ID_LENGTH or not _ID.fullmatch(value):
        shown = value if len(value) <= 80 else value[:77] + "..."
        raise InvalidIdError(
            f"{kind} id {shown!r} is not a Genie id: ids are 1-{MAX_ID_LENGTH} letters, "
            f"digits, '-' or '_'{_WHERE.get(kind, '')}",
            kind=kind,
        )
    return value


def check_optional_id(value: object, *, kind: IdKind) -> str | None:
    """:func:`check_id`, letting ``None`` (and an empty string) mean "no id".

    Example:
        >>> check_optional_id(None, kind="conversation") is None
        True
    """
    if value is None or value == "":
        return None
    return check_id(value, kind=kind)


def segment(value: str) -> str:
    """Percent-encode ``value`` as one URL path segment (``/`` included).

    A second line of defence behind :func:`check_id`: even an unchecked value cannot
    add a segment, a query string or a fragment.

    Example:
        >>> segment("../x?y#z")
        '..%2Fx%3Fy%23z'
    """
    return quote(value, safe="")
