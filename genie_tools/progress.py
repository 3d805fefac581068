"""Genie progress for LangChain and LangGraph: a custom event and a stream-writer chunk.

Every status change of a question (and every limiter wait, retry and stall) becomes
``{"genie_progress": {...}}`` in ``graph.stream(..., stream_mode="custom")`` when the
code runs inside a LangGraph graph, and an ``on_custom_event`` named
``genie_progress`` for LangChain's ``astream_events`` inside a tool run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

from langchain_core.callbacks.manager import adispatch_custom_event, dispatch_custom_event

from genie_tools.models import ProgressEvent

__all__ = ["PROGRESS_EVENT", "areport", "current_writer", "progress_data", "report", "stream_to"]

PROGRESS_EVENT = "genie_progress"
"""The name of the custom event, and the key of the stream-writer chunk."""


def progress_data(event: ProgressEvent, *, space_id: str, space: str) -> dict[str, Any]:
    """The JSON-ready description of one event.

    Example:
        >>> progress_data(ProgressEvent(kind="status", status="ASKING_AI"),
        ...               space_id="01ef", space="sales")["status"]
        'ASKING_AI'
    """
    return {
        "space_id": space_id,
        "space": space,
        "kind": event.kind,
        "status": event.status,
        "elapsed_seconds": round(event.elapsed_seconds, 3),
        "wait_seconds": event.wait_seconds,
        "detail": event.detail,
        "message_id": event.ref.message_id if event.ref else None,
    }


# The stream of the graph that runs a Genie node: the node's own steps run in a
# nested graph, whose stream reaches the caller only with ``subgraphs=True``.
_OUTER_WRITER: ContextVar[Callable[[Any], None] | None] = ContextVar(
    "genie_outer_stream_writer", default=None
)


def current_writer() -> Callable[[Any], None] | None:
    """The stream writer of the running graph, if any."""
    try:
        from langgraph.config import get_stream_writer

        return get_stream_writer()
    except Exception:  # not inside a graph run
        return None


@contextlib.contextmanager
def stream_to(writer: Callable[[Any], None] | None) -> Iterator[None]:
    """Send the progress reported inside this block to ``writer`` (an outer graph's)."""
    token = _OUTER_WRITER.set(writer)
    try:
        yield
    finally:
        _OUTER_WRITER.reset(token)


def _stream(data: dict[str, Any]) -> None:
    writer = _OUTER_WRITER.get() or current_writer()
    if writer is not None:
        writer({PROGRESS_EVENT: data})


def report(data: dict[str, Any], *, custom_event: bool = True) -> None:
    """Send one event to the graph's custom stream and (in a tool run) as a custom event."""
    _stream(data)
    if custom_event:
        with contextlib.suppress(RuntimeError):  # no run with callbacks around
            dispatch_custom_event(PROGRESS_EVENT, data)  # the current run, from context


async def areport(data: dict[str, Any], *, custom_event: bool = True) -> None:
    """:func:`report` for async code."""
    _stream(data)
    if custom_event:
        with contextlib.suppress(RuntimeError):
            await adispatch_custom_event(PROGRESS_EVENT, data)
