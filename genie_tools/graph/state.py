"""``GenieState``: the Genie conversations of a LangGraph thread, kept in its checkpoints.

Per space the state holds the Genie conversation to continue, the question in flight
(asked but not yet answered — enough to find it again after a crash) and the ids of
the last answer. Everything is plain JSON-ready data, so every checkpointer (memory,
SQLite, Postgres / Lakebase) stores it as is.
"""

from __future__ import annotations

from typing import Annotated, Any, TypedDict

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages

from genie_tools.errors import ConfigurationError

__all__ = ["GenieSpaceState", "GenieState", "merge_genie"]


class GenieSpaceState(TypedDict, total=False):
    """What the thread knows about one Genie space.

    Attributes:
        conversation_id: The Genie conversation follow-ups continue (``None``: start one).
        pending: The question in flight: ``question``, ``since`` (ISO time it was
            prepared), ``conversation_id`` and, once Genie accepted it, ``ref`` (the
            message's ids). ``None`` when nothing is in flight.
        last: The last answer's ids: ``message_id``, ``conversation_id``,
            ``attachment_id``, ``is_clarification``.
    """

    conversation_id: str | None
    pending: dict[str, Any] | None
    last: dict[str, Any] | None


def merge_genie(
    left: dict[str, GenieSpaceState] | None, right: dict[str, GenieSpaceState] | None
) -> dict[str, GenieSpaceState]:
    """Merge per-space updates: keys given replace, keys left out stay (``None`` clears).

    Parallel Genie nodes each update their own space, so their writes never collide.
    The state may be a deployed graph's input: anything but a mapping of mappings is
    refused here, typed; the ids inside are checked by the nodes that use them.

    Raises:
        ConfigurationError: ``right`` (or a space's entry) is not a mapping.

    Example:
        >>> merge_genie({"s1": {"conversation_id": "c1", "pending": {"question": "q"}}},
        ...             {"s1": {"pending": None}, "s2": {"conversation_id": "c2"}})
        {'s1': {'conversation_id': 'c1', 'pending': None}, 's2': {'conversation_id': 'c2'}}
    """
    if right is not None and not isinstance(right, dict):
        raise ConfigurationError(
            f"'genie' must map space ids to their state, not {type(right).__name__}."
        )
    merged = dict(left or {})
    for space, update in (right or {}).items():
        if not isinstance(update, dict):
            raise ConfigurationError(
                f"The Genie state of space {space!r} must be an object, not "
                f"{type(update).__name__}."
            )
        merged[space] = GenieSpaceState(**{**merged.get(space, {}), **update})
    return merged


class GenieState(TypedDict):
    """The state of a graph with Genie nodes; use it as a mixin in your own state.

    Example:
        >>> class MyState(GenieState):
        ...     route: str
        >>> sorted(MyState.__annotations__)
        ['genie', 'messages', 'route']
    """

    messages: Annotated[list[AnyMessage], add_messages]
    genie: Annotated[dict[str, GenieSpaceState], merge_genie]
