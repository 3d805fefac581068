"""Choosing the Genie space(s) for a question: offline from the spaces' own metadata, or by an LLM.

The offline router needs no network and no model: each space is a document made of what
the space says about itself — title and description, table and column names and
comments, sample questions and instructions — and a question is scored against each with
BM25. Words that only one space uses decide; words every space uses (``orders``) do not.
A question whose words point at two spaces goes to both; one whose two best spaces score
too close is not guessed: the router asks which was meant.

The LLM router asks any LangChain chat model for a structured choice and falls back to the
offline router when the model fails or chooses nothing valid.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel, Field

from genie_tools.models import SpaceInfo

__all__ = ["LLMRouter", "OfflineRouter", "Route", "Router"]

logger = logging.getLogger(__name__)

_STOP = frozenset(
    """a an the of in on at for by to from and or is are was were be been being what which who
    whom whose how show me list give tell please do does did our we i us you your my there their
    it its this that these those with per each every all any over into than as so much many
    number count total sum get find see need want like would could can should let have has had
    most least top bottom highest lowest best worst more less only just also vs versus between
    year years month months quarter quarters day days date time by per much many what's how's
    about compare comparison across against break down split each data numbers figures""".split()
)
_FOLLOW_UP_CUES = frozenset(
    "only just instead same that those them it these their also and what about break split "
    "sort now again then too".split()
)


# Everyday words for the things analytics data is about, mapped to the words data
# teams put in titles, comments and instructions (not specific to any dataset).
_SYNONYMS = {
    "client": "customer", "clients": "customer", "buyer": "customer", "buyers": "customer",
    "vendor": "supplier", "vendors": "supplier", "country": "nation", "countries": "nation",
    "dispatch": "ship", "dispatched": "ship", "sent": "ship", "send": "ship",
    "delivered": "deliver", "stock": "inventory", "stocked": "inventory", "sales": "revenue",
    "sold": "revenue", "sell": "revenue", "spend": "revenue", "spent": "revenue",
    "bill": "total", "billed": "total", "came": "return", "back": "return",
    "product": "part", "products": "part", "item": "part", "sku": "part", "skus": "part",
    "carrier": "mode", "transport": "mode", "late": "late", "delay": "late",
    "delays": "late", "overdue": "late", "warehouse": "inventory",
}  # fmt: skip


def _stem(word: str) -> str:
    """A small, predictable stem: plurals and common endings off."""
    for suffix in ("ations", "ation", "ings", "ing", "ies", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def terms(text: str) -> list[str]:
    """The question's or the metadata's content words, stemmed.

    Example:
        >>> terms("Which suppliers have the most stock?")
        ['supplier', 'inventory']
    """
    words = re.findall(r"[a-z0-9]+", text.lower().replace("_", " "))
    return [
        _stem(_SYNONYMS.get(w, w))
        for w in words
        if w not in _STOP and len(w) > 1 and not w.isdigit()
    ]


@dataclass(frozen=True)
class Route:
    """Where a question goes.

    Attributes:
        spaces: The space ids to ask (empty when the router asks the user).
        scores: Each space's score, best first.
        ask: A question back to the user when the router will not guess.
        reason: Why (``"match"``, ``"several"``, ``"follow-up"``, ``"ambiguous"``,
            ``"no match"``, ``"llm"``, ``"named"``).
    """

    spaces: list[str]
    scores: list[tuple[str, float]] = field(default_factory=list)
    ask: str | None = None
    reason: str = "match"
    questions: dict[str, str] = field(default_factory=dict)
    """Per space, the part of the question it should answer (when it spans spaces)."""


class Router(Protocol):
    """Anything that routes: ``route(question, previous)``."""

    def route(self, question: str, previous: Sequence[str] = ()) -> Route:
        """Where ``question`` goes; ``previous`` are the last turn's spaces."""
        ...


class OfflineRouter:
    """BM25 over the spaces' own metadata; no network, no model.

    Args:
        spaces: The spaces (``SpaceInfo``, ideally with tables and sample questions).
        ambiguity: Ask which space is meant when the runner-up is at least this likely.
        ownership: A word belongs to a space when that space has at least this share of
            its (length-normalised) use; a question with words of several spaces goes to each.
        topic_weight: How much a space must use a word (title and description words count
            most) for the word to make the space a topic of the question.

    Example:
        >>> sales = SpaceInfo(space_id="s1", title="Sales", description="Revenue and orders.")
        >>> stock = SpaceInfo(space_id="s2", title="Supply", description="Suppliers and stock.")
        >>> OfflineRouter([sales, stock]).route("revenue by year").spaces
        ['s1']
    """

    def __init__(
        self,
        spaces: Sequence[SpaceInfo],
        *,
        ambiguity: float = 0.3,
        ownership: float = 0.9,
        topic_weight: int = 5,
    ) -> None:
        if not spaces:
            raise ValueError("OfflineRouter needs at least one space")
        self.spaces = list(spaces)
        self.ambiguity = ambiguity
        self.ownership = ownership
        self.topic_weight = topic_weight
        self.docs = [self._document(s) for s in self.spaces]
        self.lengths = [sum(d.values()) for d in self.docs]
        self.avg = sum(self.lengths) / len(self.lengths) or 1.0
        n = len(self.docs)
        df = Counter(t for d in self.docs for t in d)
        self.idf = {t: math.log(1 + (n - c + 0.5) / (c + 0.5)) for t, c in df.items()}
        self.names = {s.space_id: s.title for s in self.spaces}

    @staticmethod
    def _document(space: SpaceInfo) -> Counter[str]:
        doc: Counter[str] = Counter()

        def add(text: str | None, weight: int) -> None:
            for t in terms(text or ""):
                doc[t] += weight

        # What a space is about (title, description, sample questions) weighs most; its
        # columns and instructions mention neighbouring topics too, so they weigh less.
        add(space.title, 8)
        add(space.description, 6)
        for q in space.sample_questions:
            add(q, 3)
        for table in space.tables:
            add(table.name.rsplit(".", 1)[-1], 2)
            add(table.description, 2)
            for column in table.columns:
                add(re.sub(r"^[a-z]{1,2}_", "", column.name), 1)
                add(column.description, 1)
        add(space.instructions, 1)
        return doc

    def _likelihoods(self, question: str) -> dict[str, float]:
        """Per space, log P(question's words | space) under a smoothed word model."""
        alpha = 0.5
        vocabulary = len(self.idf) or 1
        said = [t for t in terms(question) if t in self.idf]
        out = {}
        for space, doc, length in zip(self.spaces, self.docs, self.lengths, strict=True):
            denominator = length + alpha * vocabulary
            out[space.space_id] = sum(math.log((doc.get(t, 0) + alpha) / denominator) for t in said)
        return out

    def scores(self, question: str) -> list[tuple[str, float]]:
        """Each space's probability of being the one meant, best first (0 when no word is known).

        Example:
            >>> a = SpaceInfo(space_id="a", title="Sales", description="Revenue.")
            >>> b = SpaceInfo(space_id="b", title="Supply", description="Stock.")
            >>> [s for s, _ in OfflineRouter([a, b]).scores("revenue")]
            ['a', 'b']
        """
        if not any(t in self.idf for t in terms(question)):
            return [(s.space_id, 0.0) for s in self.spaces]
        logs = self._likelihoods(question)
        top = max(logs.values())
        weights = {s: math.exp(v - top) for s, v in logs.items()}
        total = sum(weights.values())
        return sorted(((s, w / total) for s, w in weights.items()), key=lambda x: -x[1])

    def _owner(self, term: str) -> str | None:
        """The space a word belongs to (see ``ownership``), if any."""
        weights = [
            (d.get(term, 0) / (n or 1), i)
            for i, (d, n) in enumerate(zip(self.docs, self.lengths, strict=True))
        ]
        total = sum(w for w, _ in weights)
        if total <= 0:
            return None
        share, index = max(weights)
        if share / total >= self.ownership and self.docs[index][term] >= self.topic_weight:
            return self.spaces[index].space_id
        return None

    def _focus(self, question: str, space_id: str, chosen: Sequence[str]) -> str:
        """The question without the words that belong to the other chosen spaces.

        "Compare revenue by nation with supplier inventory value by nation" asks the sales
        space "Compare revenue by nation with by nation" and the supply space "Compare by
        nation with supplier inventory value by nation": each answers its own part.
        """
        others = {s for s in chosen if s != space_id}
        words = question.split()
        dropped = [any(self._owner(t) in others for t in terms(w)) for w in words]
        for i in range(1, len(words)):
            # the rest of a phrase whose head was dropped ("inventory *value*")
            if dropped[i - 1] and not dropped[i] and (rest := terms(words[i])):
                dropped[i] = self._owner(rest[0]) != space_id
        return " ".join(w for w, d in zip(words, dropped, strict=True) if not d)

    def _claims(self, question: str) -> dict[str, int]:
        """Per space, how many of the question's words clearly belong to it.

        "Compare revenue with supplier costs": "revenue" belongs to the sales space,
        "supplier" and "cost" to the supply space; "nation", which both have, to neither.
        """
        claimed = {s.space_id: 0 for s in self.spaces}
        for t in set(terms(question)):
            owner = self._owner(t)
            if owner is not None:
                claimed[owner] += 1
        return claimed

    def route(self, question: str, previous: Sequence[str] = ()) -> Route:
        """Where ``question`` goes (see the class docstring)."""
        named = [s.space_id for s in self.spaces if s.title.lower() in question.lower()]
        if named:
            return Route(named, reason="named")
        ranked = self.scores(question)
        best_id, best = ranked[0]
        if previous and _looks_like_follow_up(question, self._known_words(question)):
            return Route(list(previous), ranked, reason="follow-up")
        if best <= 0:
            return Route([], ranked, ask=self._ask(question, ranked), reason="no match")
        claims = self._claims(question)
        owners = [s for s, _ in ranked if claims[s] > 0]
        if len(owners) > 1:
            parts = {s: self._focus(question, s, owners) for s in owners}
            return Route(owners, ranked, reason="several", questions=parts)
        if len(ranked) > 1 and ranked[1][1] >= self.ambiguity:
            return Route([], ranked, ask=self._ask(question, ranked[:2]), reason="ambiguous")
        return Route([best_id], ranked, reason="match")

    def _known_words(self, question: str) -> int:
        return sum(1 for t in terms(question) if t in self.idf)

    def _ask(self, question: str, ranked: Sequence[tuple[str, float]]) -> str:
        options = " or ".join(f"'{self.names[s]}'" for s, _ in ranked[:3])
        return f"Which data should I use for this question: {options}? You can name the space."


def _looks_like_follow_up(question: str, known: int) -> bool:
    """Short or pronoun-led questions with few words of any space continue the last turn.

    Example:
        >>> _looks_like_follow_up("break that down by region", known=1)
        True
        >>> _looks_like_follow_up("What was revenue by region and inventory by nation?", known=4)
        False
    """
    words = re.findall(r"[a-z0-9'-]+", question.lower())
    if not words:
        return False
    opening = " ".join(words[:2]) in ("what about", "how about") or (
        words[0] in _FOLLOW_UP_CUES and words[0] != "what"
    )
    cue = opening or bool({"that", "those", "them", "it", "instead"} & set(words))
    return (cue and known <= 3) or (len(words) <= 4 and known <= 1)


class _Choice(BaseModel):
    """Which Genie spaces to ask."""

    spaces: list[str] = Field(description="Titles of the spaces that can answer; empty if none.")
    clarification: str | None = Field(
        default=None, description="A question back to the user if the request is ambiguous."
    )


class LLMRouter:
    """Routes with any LangChain chat model (structured output); offline router as fallback.

    Example:
        >>> router = LLMRouter(chat_model, spaces)  # doctest: +SKIP
        >>> router.route("compare revenue with supplier costs by nation").spaces  # doctest: +SKIP
    """

    def __init__(
        self, model: Any, spaces: Sequence[SpaceInfo], *, fallback: Router | None = None
    ) -> None:
        self.model = model
        self.spaces = list(spaces)
        self.fallback = fallback or OfflineRouter(spaces)
        self.by_title = {s.title.lower(): s.space_id for s in self.spaces}

    def _prompt(self, question: str, previous: Sequence[str]) -> str:
        lines = ["Choose the Genie spaces (by title) that can answer the user's question."]
        for s in self.spaces:
            lines.append(f"- {s.title}: {s.description or ''}")
            if s.sample_questions:
                lines.append("  e.g. " + "; ".join(s.sample_questions[:3]))
        if previous:
            names = ", ".join(s.title for s in self.spaces if s.space_id in previous)
            lines.append(f"The previous question went to: {names}. Follow-ups go there too.")
        lines.append(f"Question: {question}")
        return "\n".join(lines)

    def route(self, question: str, previous: Sequence[str] = ()) -> Route:  # noqa: D102
        try:
            choice = self.model.with_structured_output(_Choice).invoke(
                self._prompt(question, previous)
            )
            if isinstance(choice, dict):
                choice = _Choice.model_validate(choice)
            ids = [self.by_title[t.lower()] for t in choice.spaces if t.lower() in self.by_title]
            if ids:
                return Route(list(dict.fromkeys(ids)), reason="llm")
            if choice.clarification:
                return Route([], ask=choice.clarification, reason="llm")
        except Exception as exc:  # any model failure: the offline router still answers
            logger.warning("LLM router failed (%s); routing offline", type(exc).__name__)
        return self.fallback.route(question, previous)
