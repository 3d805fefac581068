"""The durable Genie node: a question reaches Genie once per turn, whatever happens.

A turn is three checkpointed steps, so a crash or a restart resumes where it stopped:

1. ``prepare`` records the question in flight (and when) in the thread's state;
2. ``submit`` asks Genie and records the message's ids;
3. ``wait`` polls that message and answers with an ``AIMessage``.

Resumed at ``wait``, the node polls the same message again. Resumed at ``submit`` (the
process died while sending), it first searches Genie for the question asked since the
recorded time and adopts the message found, so the question is never asked twice.
When Genie asks back, the node either answers with Genie's question or, with
``on_clarification="interrupt"``, pauses for a human whose reply
(``Command(resume=...)``) goes to Genie as a follow-up in the same conversation.

Example:
    >>> from langgraph.graph import START, StateGraph
    >>> from genie_tools.graph import GenieState, create_genie_node
    >>> builder = StateGraph(GenieState)
    >>> _ = builder.add_node("sales", create_genie_node("01efsales", name="sales"))
    >>> _ = builder.add_edge(START, "sales")
    >>> graph = builder.compile()  # add a checkpointer to make it durable
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import OrderedDict
from typing import Any, Literal

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langchain_core.runnables import RunnableConfig, RunnableLambda
from langgraph._internal._constants import CONFIG_KEY_CHECKPOINTER
from langgraph.graph import END, START, StateGraph
from langgraph.types import Durability, interrupt
from pydantic import ValidationError

from genie_tools.arguments import (
    check_timeout,
    clean_question,
    clean_text,
    validation_problems,
)
from genie_tools.client_pair import ClientPair
from genie_tools.errors import ConfigurationError, GenieError, InvalidIdError, NotFoundError
from genie_tools.formatting import DEFAULT_TOKEN_BUDGET, answer_content
from genie_tools.graph.state import GenieSpaceState, GenieState
from genie_tools.ids import check_id, check_optional_id
from genie_tools.models import GenieAnswer, MessageRef, ProgressEvent
from genie_tools.progress import areport, current_writer, progress_data, report, stream_to
from genie_tools.settings import GenieSettings, check_space_id
from genie_tools.tools import explain

logger = logging.getLogger("genie_tools.graph")

__all__ = ["GenieNodeState", "create_genie_node", "create_genie_subgraph"]

Clarification = Literal["answer", "interrupt"]
OnError = Literal["message", "raise"]


class GenieNodeState(GenieState, total=False):
    """The node's state: :class:`GenieState` and, optionally, the question to ask.

    Without ``question`` the node asks the content of the last human message.
    """

    question: str


class _Prepared:
    """Questions this process recorded and has not submitted yet.

    Only such a question is sent without looking first: any other pending question was
    recorded by another process (one that may have died after sending it), or was sent
    already, so Genie is searched for it before asking.
    """

    def __init__(self, size: int = 10_000) -> None:
        self._keys: OrderedDict[tuple[str, str, str], None] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def add(self, key: tuple[str, str, str]) -> None:
        with self._lock:
            self._keys[key] = None
            while len(self._keys) > self._size:
                self._keys.popitem(last=False)

    def take(self, key: tuple[str, str, str]) -> bool:
        """True once, for a question recorded here and not yet submitted."""
        with self._lock:
            return self._keys.pop(key, False) is None


_PREPARED = _Prepared()


def create_genie_subgraph(
    space_id: str,
    *,
    name: str | None = None,
    workspace: Any = None,
    settings: GenieSettings | None = None,
    client: Any = None,
    async_client: Any = None,
    on_clarification: Clarification = "answer",
    on_error: OnError = "message",
    token_budget: int = DEFAULT_TOKEN_BUDGET,
    timeout: float | None = None,
) -> StateGraph[GenieNodeState, Any, GenieNodeState, GenieNodeState]:
    """The Genie turn as an uncompiled graph: ``prepare → submit → wait (→ clarify)``.

    Args:
        space_id: The Genie space.
        name: Names the answers (``AIMessage.name``) and the space in progress events;
            default ``genie_<space_id>``.
        workspace: Where to authenticate (``WorkspaceClient``, ``Config``, profile, or
            ``None`` for the SDK's default chain); ignored when clients are given.
        settings: Client options (``GENIE_*`` environment variables by default).
        client: A :class:`~genie_tools.GenieClient` for ``invoke`` / ``stream``.
        async_client: An :class:`~genie_tools.AsyncGenieClient` for ``ainvoke``.
        on_clarification: ``"answer"`` with Genie's question, or ``"interrupt"`` for a
            human (resume with ``Command(resume="the reply")``).
        on_error: ``"message"`` answers with what went wrong and what to do;
            ``"raise"`` raises the typed :class:`~genie_tools.GenieError`.
        token_budget: About how many tokens the answer's markdown may take.
        timeout: Seconds to wait for Genie's answer (default: the client's).

    Returns:
        A ``StateGraph`` over :class:`GenieNodeState`; compile it, or add it as a node.
    """
    check_space_id(space_id)
    if timeout is not None:
        check_timeout(timeout)
    steps = _Steps(
        space_id=space_id,
        name=name or f"genie_{space_id}",
        clients=ClientPair(
            workspace=workspace, settings=settings, client=client, async_client=async_client
        ),
        on_clarification=on_clarification,
        on_error=on_error,
        token_budget=token_budget,
        timeout=timeout,
    )
    builder = StateGraph(GenieNodeState)
    builder.add_node("prepare", RunnableLambda(steps.prepare, name="prepare"))
    builder.add_node("submit", RunnableLambda(steps.submit, afunc=steps.asubmit, name="submit"))
    builder.add_node("wait", RunnableLambda(steps.wait, afunc=steps.await_, name="wait"))
    builder.add_node("clarify", RunnableLambda(steps.clarify, name="clarify"))
    builder.add_edge(START, "prepare")
    builder.add_conditional_edges("prepare", steps.after_prepare, ["submit", END])
    builder.add_conditional_edges("submit", steps.in_flight, ["wait", END])
    builder.add_conditional_edges("wait", steps.after_wait, ["clarify", END])
    builder.add_edge("clarify", "submit")
    return builder


def create_genie_node(
    space_id: str, *, durability: Durability = "sync", **options: Any
) -> RunnableLambda[GenieNodeState, dict[str, Any]]:
    """The Genie turn as one node of a graph over :class:`GenieState`.

    It runs the steps of :func:`create_genie_subgraph` (and takes its options) as a
    nested graph whose checkpoints go to the parent graph's checkpointer, under the
    node's namespace, and whose progress reaches the parent's
    ``stream_mode="custom"``.

    Args:
        space_id: The Genie space.
        durability: How the steps' checkpoints are written. ``"sync"`` (the default)
            writes each before the next step starts, which is what makes a question
            reach Genie exactly once even if the process dies between two steps.
        **options: As for :func:`create_genie_subgraph`.

    Example:
        >>> node = create_genie_node("01efsales", name="sales")
        >>> node.name
        'sales'
    """
    name = options.get("name") or f"genie_{space_id}"
    steps = create_genie_subgraph(space_id, **options).compile(name=name)

    def update(state: GenieNodeState, result: dict[str, Any]) -> dict[str, Any]:
        # Only what the turn added: new messages and this space's Genie state.
        seen = {m.id for m in state.get("messages", [])}
        out: dict[str, Any] = {
            "messages": [m for m in result.get("messages", []) if m.id not in seen]
        }
        mine = (result.get("genie") or {}).get(space_id)
        if mine is not None:
            out["genie"] = {space_id: mine}
        return out

    def run(state: GenieNodeState, config: RunnableConfig) -> dict[str, Any]:
        with stream_to(current_writer()):
            result = steps.invoke(_input(state), config, durability=_durability(config, durability))
        return update(state, result)

    async def arun(state: GenieNodeState, config: RunnableConfig) -> dict[str, Any]:
        with stream_to(current_writer()):
            result = await steps.ainvoke(
                _input(state), config, durability=_durability(config, durability)
            )
        return update(state, result)

    return RunnableLambda(run, afunc=arun, name=name)


def _durability(config: RunnableConfig, wanted: Durability) -> Durability | None:
    """The steps' durability: ``wanted`` when the graph has a checkpointer.

    Without one there is nothing to write, and LangGraph fails on a durability it cannot
    honour.
    """
    has_checkpointer = (config.get("configurable") or {}).get(CONFIG_KEY_CHECKPOINTER)
    return wanted if has_checkpointer else None


def _input(state: GenieNodeState) -> GenieNodeState:
    data = GenieNodeState(messages=state.get("messages", []), genie=state.get("genie") or {})
    if state.get("question"):
        data["question"] = state["question"]
    return data


class _Steps:
    """The node's steps for one space (sync and async over the same helpers)."""

    def __init__(
        self,
        *,
        space_id: str,
        name: str,
        clients: ClientPair,
        on_clarification: Clarification,
        on_error: OnError,
        token_budget: int,
        timeout: float | None,
    ) -> None:
        self.space_id = space_id
        self.name = name
        self.clients = clients
        self.on_clarification = on_clarification
        self.on_error = on_error
        self.token_budget = token_budget
        self.timeout = timeout

    # state helpers ---------------------------------------------------------------
    def _mine(self, state: GenieNodeState) -> GenieSpaceState:
        genie = state.get("genie")
        mine = genie.get(self.space_id) if isinstance(genie, dict) else None
        return mine if isinstance(mine, dict) else {}

    def _raw_pending(self, state: GenieNodeState) -> dict[str, Any]:
        pending = self._mine(state).get("pending")
        return pending if isinstance(pending, dict) else {}

    def _in_flight(self, state: GenieNodeState) -> tuple[dict[str, Any], MessageRef | None]:
        """The question in flight, checked (:func:`_checked_pending`); empty if none."""
        pending = self._mine(state).get("pending")
        return _checked_pending(pending, self.space_id) if pending else ({}, None)

    def _update(self, **fields: Any) -> dict[str, Any]:
        return {"genie": {self.space_id: fields}}

    def _pending(self, question: str, conversation_id: str | None) -> dict[str, Any]:
        since = dt.datetime.now(dt.UTC).isoformat()
        _PREPARED.add((self.space_id, since, question))
        return {
            "question": question,
            "since": since,
            "conversation_id": conversation_id,
            "ref": None,
        }

    # prepare -----------------------------------------------------------------------
    def prepare(self, state: GenieNodeState) -> dict[str, Any]:
        """Record the question in flight (checkpointed before anything is sent).

        The state may come from a deployed graph's input: the conversation id is
        checked and the question cleaned here, before anything is recorded or sent.
        """
        try:
            conversation = check_optional_id(
                self._mine(state).get("conversation_id"), kind="conversation"
            )
            asked = state.get("question") or _last_human(state.get("messages", []))
            question = clean_text(asked, what="question")
        except GenieError as exc:
            return self._failed(exc)
        if not question:
            return {"messages": [self._message("There is no question to ask Genie.")]}
        return self._update(pending=self._pending(question, conversation))

    def after_prepare(self, state: GenieNodeState) -> str:
        return "submit" if self._mine(state).get("pending") else END

    def in_flight(self, state: GenieNodeState) -> str:
        return "wait" if self._raw_pending(state).get("ref") else END

    # submit --------------------------------------------------------------------------
    def _submit_args(self, pending: dict[str, Any]) -> dict[str, Any]:
        key = (self.space_id, pending["since"], pending["question"])
        # Recorded here and not sent yet: nothing to look for. Otherwise an earlier
        # process (or attempt) may have sent it before dying: search Genie before asking.
        fresh = _PREPARED.take(key)
        not_before = None if fresh else dt.datetime.fromisoformat(pending["since"])
        return {
            "space_id": self.space_id,
            "conversation_id": pending.get("conversation_id"),
            "timeout": self.timeout,
            "not_before": not_before,
        }

    def _submitted(self, pending: dict[str, Any], ref: MessageRef) -> dict[str, Any]:
        return self._update(
            conversation_id=ref.conversation_id,
            pending={**pending, "ref": ref.model_dump(mode="json")},
        )

    def submit(self, state: GenieNodeState) -> dict[str, Any]:
        """Ask Genie once; record the message's ids."""
        try:
            pending, ref = self._in_flight(state)
            if not pending or ref is not None:
                return {}
            args = self._submit_args(pending)  # decided once: search for it or not
            try:
                ref = self._submit_sync(pending, args)
            except NotFoundError:
                if not pending.get("conversation_id"):
                    raise
                pending, args, gone = self._conversation_gone(pending, args)
                report(self._progress(gone), custom_event=False)
                ref = self._submit_sync(pending, args)
        except GenieError as exc:
            return self._failed(exc)
        return self._submitted(pending, ref)

    def _conversation_gone(
        self, pending: dict[str, Any], args: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any], ProgressEvent]:
        """The stored conversation is gone (deleted, expired): ask in a new one at once.

        Genie's 404 proves this attempt created nothing, so the new conversation is
        started without a search; only a question an earlier process may have sent is
        still looked for (``not_before`` as first decided). Said once: a log line and a
        ``conversation_gone`` progress event.
        """
        gone = pending["conversation_id"]
        detail = (
            f"The Genie conversation {gone} of space {self.name} is gone (deleted or "
            "expired); asking in a new conversation."
        )
        logger.info("%s", detail)
        event = ProgressEvent(kind="conversation_gone", detail=detail)
        return {**pending, "conversation_id": None}, {**args, "conversation_id": None}, event

    def _submit_sync(self, pending: dict[str, Any], args: dict[str, Any]) -> MessageRef:
        ref = None
        for event in self.clients.sync.iter_submit(pending["question"], **args):
            report(self._progress(event), custom_event=False)
            if event.kind in ("submitted", "recovered") and event.ref is not None:
                ref = event.ref
        assert ref is not None
        return ref

    async def asubmit(self, state: GenieNodeState) -> dict[str, Any]:
        """:meth:`submit` on the event loop."""
        try:
            pending, ref = self._in_flight(state)
            if not pending or ref is not None:
                return {}
            args = self._submit_args(pending)
            try:
                ref = await self._submit_async(pending, args)
            except NotFoundError:
                if not pending.get("conversation_id"):
                    raise
                pending, args, gone = self._conversation_gone(pending, args)
                await areport(self._progress(gone), custom_event=False)
                ref = await self._submit_async(pending, args)
        except GenieError as exc:
            return self._failed(exc)
        return self._submitted(pending, ref)

    async def _submit_async(self, pending: dict[str, Any], args: dict[str, Any]) -> MessageRef:
        ref = None
        async for event in self.clients.aio.iter_submit(pending["question"], **args):
            await areport(self._progress(event), custom_event=False)
            if event.kind in ("submitted", "recovered") and event.ref is not None:
                ref = event.ref
        assert ref is not None
        return ref

    # wait ------------------------------------------------------------------------------
    def wait(self, state: GenieNodeState) -> dict[str, Any]:
        """Poll the message in flight (again, after a restart) and answer."""
        try:
            ref = self._ref_in_flight(state)
            answer = None
            for event in self.clients.sync.iter_wait(ref, timeout=self.timeout):
                if event.kind == "answer":
                    answer = event.answer
                else:
                    report(self._progress(event), custom_event=False)
        except GenieError as exc:
            return self._failed(exc)
        assert answer is not None
        return self._answered(answer)

    async def await_(self, state: GenieNodeState) -> dict[str, Any]:
        """:meth:`wait` on the event loop."""
        try:
            ref = self._ref_in_flight(state)
            answer = None
            async for event in self.clients.aio.iter_wait(ref, timeout=self.timeout):
                if event.kind == "answer":
                    answer = event.answer
                else:
                    await areport(self._progress(event), custom_event=False)
        except GenieError as exc:
            return self._failed(exc)
        assert answer is not None
        return self._answered(answer)

    def _ref_in_flight(self, state: GenieNodeState) -> MessageRef:
        _, ref = self._in_flight(state)
        if ref is None:
            raise ConfigurationError(
                "The Genie state has no message in flight to wait for; ask the question again."
            )
        return ref

    def _last(self, state: GenieNodeState) -> dict[str, Any]:
        last = self._mine(state).get("last")
        return last if isinstance(last, dict) else {}

    def after_wait(self, state: GenieNodeState) -> str:
        last = self._last(state)
        if self.on_clarification == "interrupt" and last.get("is_clarification"):
            return "clarify"
        return END

    # clarify -----------------------------------------------------------------------------
    def clarify(self, state: GenieNodeState) -> dict[str, Any]:
        """Pause for a human; their reply is the follow-up (checkpointed, then submitted)."""
        mine = self._mine(state)
        last = self._last(state)
        reply = interrupt(
            {
                "space_id": self.space_id,
                "space": self.name,
                "question": last.get("clarification_question"),
                "suggested_questions": last.get("suggested_questions") or [],
            }
        )
        try:
            text = clean_text(reply if isinstance(reply, str) else str(reply), what="reply")
        except GenieError as exc:
            return self._failed(exc)
        if not text:
            return {"messages": [self._message("No reply was given; Genie was not asked again.")]}
        return {
            "messages": [HumanMessage(content=text)],
            **self._update(pending=self._pending(text, mine.get("conversation_id"))),
        }

    # outcomes --------------------------------------------------------------------------------
    def _answered(self, answer: GenieAnswer) -> dict[str, Any]:
        content = answer_content(answer, space_name=self.name, token_budget=self.token_budget)
        message = self._message(
            content,
            genie={"space_id": self.space_id, "answer": answer.model_dump(mode="json")},
        )
        return {
            "messages": [message],
            **self._update(
                conversation_id=answer.conversation_id,
                pending=None,
                last={
                    "message_id": answer.message_id,
                    "conversation_id": answer.conversation_id,
                    "attachment_id": answer.attachment_id,
                    "is_clarification": answer.is_clarification,
                    "clarification_question": answer.clarification_question,
                    "suggested_questions": list(answer.suggested_questions),
                },
            ),
        }

    def _failed(self, exc: GenieError) -> dict[str, Any]:
        if self.on_error == "raise":
            raise exc
        cleared: dict[str, Any] = {"pending": None}
        if isinstance(exc, InvalidIdError) and exc.kind == "conversation":
            cleared["conversation_id"] = None  # never sent; the next turn starts afresh
        return {
            "messages": [
                self._message(
                    explain(exc), genie={"space_id": self.space_id, "error": type(exc).__name__}
                )
            ],
            **self._update(**cleared),
        }

    def _message(self, content: str, **extra: Any) -> AIMessage:
        return AIMessage(content=content, name=self.name, additional_kwargs=extra)

    def _progress(self, event: ProgressEvent) -> dict[str, Any]:
        return progress_data(event, space_id=self.space_id, space=self.name)


def _checked_pending(pending: object, space_id: str) -> tuple[dict[str, Any], MessageRef | None]:
    """The question in flight as read from the state, checked before anything is sent.

    The state comes from the graph's input (the end users of a deployed graph) or from
    a checkpoint store, and its ids go into URLs sent with the server's credentials:
    each is checked, and a message in flight must belong to the node's own space.

    Raises:
        InvalidIdError: An id is malformed, or the message is another space's.
        ConfigurationError: The record is malformed.
        BadRequestError: The question is not clean text.
    """
    if not isinstance(pending, dict):
        raise ConfigurationError(
            f"The Genie state of space {space_id} holds a malformed question in flight "
            f"({type(pending).__name__}, not an object); ask the question again."
        )
    question = clean_question(pending.get("question"))
    try:
        dt.datetime.fromisoformat(str(pending.get("since")))
    except ValueError:
        raise ConfigurationError(
            "The Genie state's question in flight has no valid 'since' time (ISO 8601); "
            "ask the question again."
        ) from None
    conversation = check_optional_id(pending.get("conversation_id"), kind="conversation")
    checked = {**pending, "question": question, "conversation_id": conversation}
    raw = pending.get("ref")
    return checked, (_checked_ref(raw, space_id) if raw else None)


def _checked_ref(raw: object, space_id: str) -> MessageRef:
    if isinstance(raw, MessageRef):
        raw = raw.model_dump()
    if not isinstance(raw, dict):
        raise ConfigurationError(
            "The Genie state's message in flight is malformed (not an object); ask again."
        )
    for kind in ("space", "conversation", "message"):
        check_id(raw.get(f"{kind}_id"), kind=kind)
    if raw["space_id"] != space_id:
        raise InvalidIdError(
            f"The message in flight belongs to space {raw['space_id']!r}, not to this "
            f"node's space {space_id!r}; it was not polled.",
            kind="space",
        )
    try:
        return MessageRef.model_validate(raw)
    except ValidationError as exc:
        raise ConfigurationError(
            "The Genie state's message in flight is malformed "
            f"({validation_problems(exc, whole='ref')}); ask again."
        ) from None


def _last_human(messages: list[AnyMessage]) -> str:
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            content = message.content
            if isinstance(content, str):
                return content
            return " ".join(
                str(part.get("text", "")) if isinstance(part, dict) else str(part)
                for part in content
            )
    return ""
