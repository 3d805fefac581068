"""Genie's REST paths, built only from checked ids, each encoded as one segment.

Every URL the client sends to the workspace starts from one of these builders, so no id —
from a caller, a model, graph state or a checkpoint — can steer a request outside
Genie's API: each id passes :func:`~genie_tools.ids.check_id` and is percent-encoded.

Example:
    >>> conversation_path("s1", "c1")
    '/api/2.0/genie/spaces/s1/conversations/c1'
"""

from __future__ import annotations

from genie_tools.ids import check_id, segment
from genie_tools.models import MessageRef

__all__ = [
    "API",
    "STATEMENTS",
    "attachment_path",
    "chunk_path",
    "conversation_path",
    "message_path",
    "space_path",
]

API = "/api/2.0/genie/spaces"
STATEMENTS = "/api/2.0/sql/statements"
"""The SQL Statement Execution API, whose result chunks a full download pages through."""


def space_path(space_id: str) -> str:
    """The REST path of a space: the id checked, then encoded as one path segment.

    Every Genie URL is built from this one, so no id can steer a request elsewhere.

    Raises:
        InvalidIdError: ``space_id`` is not a Genie id.

    Example:
        >>> space_path("01ef0123")
        '/api/2.0/genie/spaces/01ef0123'
    """
    return f"{API}/{segment(check_id(space_id, kind='space'))}"


def conversation_path(space_id: str, conversation_id: str) -> str:
    """The REST path of a conversation (both ids checked and encoded).

    Example:
        >>> conversation_path("s1", "c1")
        '/api/2.0/genie/spaces/s1/conversations/c1'
    """
    conversation = segment(check_id(conversation_id, kind="conversation"))
    return f"{space_path(space_id)}/conversations/{conversation}"


def message_path(ref: MessageRef) -> str:
    """The REST path of a message, every id checked and encoded as one segment.

    A ref can be built without validation (``model_construct``, ``model_copy``), so the
    ids are checked here, where they become a URL.

    Example:
        >>> message_path(MessageRef(space_id="s", conversation_id="c", message_id="m"))
        '/api/2.0/genie/spaces/s/conversations/c/messages/m'
    """
    message = segment(check_id(ref.message_id, kind="message"))
    return f"{conversation_path(ref.space_id, ref.conversation_id)}/messages/{message}"


def attachment_path(ref: MessageRef) -> str:
    """The REST path of the ref's query attachment (ids checked and encoded)."""
    attachment = segment(check_id(ref.attachment_id, kind="attachment"))
    return f"{message_path(ref)}/attachments/{attachment}"


def chunk_path(statement_id: str, chunk_index: int) -> str:
    """The REST path of a statement's result chunk (the id checked and encoded).

    Example:
        >>> chunk_path("01ef-0a1b", 2)
        '/api/2.0/sql/statements/01ef-0a1b/result/chunks/2'
    """
    statement = segment(check_id(statement_id, kind="statement"))
    return f"{STATEMENTS}/{statement}/result/chunks/{int(chunk_index)}"
