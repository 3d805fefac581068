"""The analyst graph: route a question to the right Genie space(s), ask them, answer.

``route`` picks the spaces (offline from their metadata by default, or with an LLM),
sends the question to one durable Genie node per space — in parallel when it spans
spaces — and ``answer`` writes the reply: a short grounded answer from an LLM when one
is given, otherwise one composed from Genie's own words. Follow-ups go to the spaces of
the previous turn and continue their Genie conversations.

Example:
    >>> from langgraph.checkpoint.memory import InMemorySaver
    >>> from genie_tools.graph import create_analyst_graph
    >>> builder = create_analyst_graph(["01efsales", "01efsupply"])
    >>> graph = builder.compile(checkpointer=InMemorySaver())
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.runnables import RunnableConfig, RunnableLambda
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

from genie_tools.arguments import check_timeout
from genie_tools.client_pair import ClientPair
from genie_tools.errors import GenieError
from genie_tools.formatting import DEFAULT_TOKEN_BUDGET
from genie_tools.graph.node import create_genie_node
from genie_tools.graph.router import LLMRouter, OfflineRouter, Route, Router
from genie_tools.graph.state import GenieState
from genie_tools.ids import check_id
from genie_tools.models import SpaceInfo
from genie_tools.settings import GenieSettings
from genie_tools.tools import GenieSpace

__all__ = ["AnalystState", "create_analyst_graph"]

ANSWER_PROMPT = (
    "You are a data analyst. Answer the user's question in two or three sentences using only "
    "the Genie answers below. Quote numbers exactly as Genie gives them and name the space "
    "each comes from; never invent or recompute a number. If Genie asked for clarification, "
    "pass its question on."
)


class AnalystState(GenieState, total=False):
    """The analyst graph's state: Genie's state plus the routing of the turn.

    Attributes:
        route: The last routing decision (``spaces``, ``reason``, ``scores``, ``ask``).
        targets: The spaces of the last answered turn (where follow-ups go).
        route_to: Space ids to ask this turn, bypassing the router (e.g. ``--space``).
        question: The question a Genie node asks (set per node when fanning out).
    """

    route: dict[str, Any]
    targets: list[str]
    route_to: list[str]
    question: str


def create_analyst_graph(
    spaces: Sequence[str | GenieSpace],
    *,
    llm: Any = None,
    router: Router | None = None,
    workspace: Any = None,
    settings: GenieSettings | None = None,
    client: Any = None,
    async_client: Any = None,
    on_clarification: Literal["answer", "interrupt"] = "answer",
    token_budget: int = DEFAULT_TOKEN_BUDGET,
    timeout: float | None = None,
) -> StateGraph[AnalystState, Any, AnalystState, AnalystState]:
    """The analyst graph, uncompiled: you choose the checkpointer.

    Args:
        spaces: The Genie spaces (ids, or :class:`GenieSpace` with the names shown).
        llm: A LangChain chat model for routing and for the final answer (optional).
        router: A custom router (default: the LLM router with ``llm``, else offline).
        workspace: Where to authenticate (see :class:`~genie_tools.GenieClient`).
        settings: Client options.
        client: A ready :class:`~genie_tools.GenieClient` (``invoke``/``stream``).
        async_client: A ready :class:`~genie_tools.AsyncGenieClient` (``ainvoke``).
        on_clarification: Passed to each Genie node.
        token_budget: About how many tokens each Genie answer may take.
        timeout: Seconds to wait for each Genie answer.

    Nothing touches the network here; the first question fetches the spaces' metadata.
    """
    targets = [
        GenieSpace(id=check_id(s, kind="space")) if isinstance(s, str) else s for s in spaces
    ]
    if not targets:
        raise ValueError("create_analyst_graph needs at least one Genie space")
    if timeout is not None:
        check_timeout(timeout)
    clients = ClientPair(
        workspace=workspace, settings=settings, client=client, async_client=async_client
    )
    routing = _Routing(targets, clients, llm=llm, router=router)
    builder = StateGraph(AnalystState)
    builder.add_node("route", RunnableLambda(routing.route, name="route"))
    nodes = {}
    for space in targets:
        node = f"genie_{space.id}"
        nodes[space.id] = node
        builder.add_node(
            node,
            create_genie_node(
                space.id,
                name=space.name or space.id,
                client=clients.sync,  # one pair of clients for every node (no network yet)
                async_client=clients.aio,
                on_clarification=on_clarification,
                token_budget=token_budget,
                timeout=timeout,
            ),
        )
        builder.add_edge(node, "answer")
    builder.add_node("answer", RunnableLambda(routing.answer, afunc=routing.aanswer, name="answer"))
    builder.add_edge(START, "route")

    def fan_out(state: AnalystState) -> list[Send] | str:
        decision = state.get("route") or {}
        chosen = [s for s in decision.get("spaces", []) if s in nodes]
        if not chosen:
            return END
        question = _last_question(state)
        parts = decision.get("questions") or {}
        base = {"messages": state.get("messages", []), "genie": state.get("genie") or {}}
        return [Send(nodes[s], {**base, "question": parts.get(s) or question}) for s in chosen]

    builder.add_conditional_edges("route", fan_out, [*nodes.values(), END])
    builder.add_edge("answer", END)
    return builder


class _Routing:
    """The graph's own steps: routing and answering."""

    def __init__(
        self, spaces: list[GenieSpace], clients: ClientPair, *, llm: Any, router: Router | None
    ) -> None:
        self.spaces = spaces
        self.clients = clients
        self.llm = llm
        self._router = router
        self._lock = threading.Lock()
        self._infos: list[SpaceInfo] | None = None
        # What answers call each space: the name given, else the space's title once
        # fetched (a 32-hex id means nothing to a reader).
        self.names = {s.id: s.name or s.id for s in spaces}

    def infos(self) -> list[SpaceInfo]:
        """The spaces' metadata, fetched once (titles replaced by the names given)."""
        with self._lock:
            if self._infos is None:
                self._infos = [self._info(s) for s in self.spaces]
                self.names.update({i.space_id: i.title or i.space_id for i in self._infos})
            return self._infos

    def router(self) -> Router:
        infos = self.infos()
        with self._lock:
            if self._router is None:
                offline = OfflineRouter(infos)
                self._router = LLMRouter(self.llm, infos, fallback=offline) if self.llm else offline
            return self._router

    def _known(self, value: object) -> list[str]:
        """The graph's own space ids among ``value`` (state read from input or checkpoints)."""
        if not isinstance(value, list | tuple):
            return []
        return [s for s in value if isinstance(s, str) and s in self.names]

    def _titles(self) -> None:
        """Fetch the titles for the answer when routing did not need them."""
        if all(s.name for s in self.spaces):
            return
        # On failure the answer names the spaces by id; each Genie node reports the error.
        with contextlib.suppress(GenieError):
            self.infos()

    def _info(self, space: GenieSpace) -> SpaceInfo:
        info = self.clients.sync.get_space(space.id)
        if space.name:  # the name the caller chose is the one users see and say
            info = info.model_copy(update={"title": space.name})
        return info

    def route(self, state: AnalystState, config: RunnableConfig) -> dict[str, Any]:
        question = _last_question(state)
        # Graph input may be crafted: only the graph's own spaces are ever routed to.
        forced = self._known(state.get("route_to"))
        if forced:
            decision = Route(forced, reason="chosen")
        else:
            decision = self.router().route(question, self._known(state.get("targets")))
        self._titles()
        update: dict[str, Any] = {
            "route": {
                "spaces": decision.spaces,
                "reason": decision.reason,
                "ask": decision.ask,
                "scores": [[s, round(v, 3)] for s, v in decision.scores],
                "questions": dict(decision.questions),
            },
            "route_to": [],
        }
        if not decision.spaces:
            update["messages"] = [AIMessage(content=decision.ask or "Which space?", name="analyst")]
        return update

    # answering ---------------------------------------------------------------------------
    def _turn(self, state: AnalystState) -> list[AIMessage]:
        """The Genie answers of this turn (after the last human message)."""
        out: list[AIMessage] = []
        for message in reversed(state.get("messages", [])):
            if isinstance(message, HumanMessage):
                break
            if isinstance(message, AIMessage) and "genie" in message.additional_kwargs:
                out.append(message)
        return list(reversed(out))

    def _targets(self, state: AnalystState) -> dict[str, Any]:
        return {"targets": list((state.get("route") or {}).get("spaces", []))}

    def answer(self, state: AnalystState) -> dict[str, Any]:
        answers = self._turn(state)
        if self.llm is not None:
            try:
                reply = self.llm.invoke(self._llm_messages(state, answers))
                return {
                    "messages": [AIMessage(content=reply.content, name="analyst")],
                    **self._targets(state),
                }
            except Exception:  # the deterministic answer still answers
                pass
        return {"messages": [compose_answer(answers, names=self.names)], **self._targets(state)}

    async def aanswer(self, state: AnalystState) -> dict[str, Any]:
        answers = self._turn(state)
        if self.llm is not None:
            try:
                reply = await self.llm.ainvoke(self._llm_messages(state, answers))
                return {
                    "messages": [AIMessage(content=reply.content, name="analyst")],
                    **self._targets(state),
                }
            except Exception:
                pass
        return {"messages": [compose_answer(answers, names=self.names)], **self._targets(state)}

    def _llm_messages(self, state: AnalystState, answers: list[AIMessage]) -> list[BaseMessage]:
        context = "\n\n".join(f"[{_label(m, self.names)}]\n{m.content}" for m in answers)
        return [
            HumanMessage(
                content=f"{ANSWER_PROMPT}\n\nQuestion: {_last_question(state)}\n\n{context}"
            )
        ]


def compose_answer(
    answers: Sequence[AIMessage], *, names: Mapping[str, str] | None = None
) -> AIMessage:
    """An answer from Genie's own words, without a model.

    Args:
        answers: The Genie nodes' messages of this turn.
        names: What to call each space (by id); default: the messages' names.

    Example:
        >>> a = AIMessage(content="x", name="Sales", additional_kwargs={"genie": {
        ...     "answer": {"text": "Revenue was 1.2 M.", "sql": "SELECT 1"}}})
        >>> compose_answer([a]).content
        'Sales: Revenue was 1.2 M.'
        >>> b = AIMessage(content="x", name="01ef", additional_kwargs={"genie": {
        ...     "space_id": "01ef", "answer": {"text": "42 orders."}}})
        >>> compose_answer([b], names={"01ef": "Orders"}).content
        'Orders: 42 orders.'
    """
    lines = []
    for message in answers:
        genie = message.additional_kwargs.get("genie") or {}
        answer = genie.get("answer") or {}
        if answer.get("is_clarification"):
            asked = answer.get("clarification_question") or answer.get("text")
            text = f"needs clarification — {asked}"
        elif answer:
            text = answer.get("text") or "answered (see the table)."
        else:
            text = str(message.content)  # an error, already explained
        lines.append(f"{_label(message, names)}: {text}")
    content = "\n".join(lines) if lines else "Genie gave no answer."
    return AIMessage(content=content, name="analyst")


def _label(message: AIMessage, names: Mapping[str, str] | None) -> str:
    space = (message.additional_kwargs.get("genie") or {}).get("space_id")
    return (names or {}).get(str(space)) or message.name or "Genie"


def _last_question(state: AnalystState) -> str:
    for message in reversed(state.get("messages", [])):
        if isinstance(message, HumanMessage):
            content = message.content
            return content if isinstance(content, str) else str(message.text)
    return ""
