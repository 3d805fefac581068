"""Which declared figure a question describes, from everything the space says about each.

Phrase matching finds measures named outright ("late deliveries"). People also
describe a figure in their own words: "the revenue we lost to returns", "days past
the promised date", "how long from placing an order to shipping it". Each measure
gets a profile of the words the space uses about it — its name and synonyms, its
description, the instruction sentences about its columns and the comments of
those columns — and a question's words score every profile, rarer words counting
more (a word every measure shares tells them apart no better than "the").

Instructions may also define figures in prose, e.g. ``Time to ship ("processing
time") is datediff(l_shipdate, o_orderdate)``; :func:`defined_figures` reads those
so that a space needs no separate ``measures`` entry for them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

from genie_tools.emulator.nl2sql.text import stem, tokens

# Words that carry no evidence about which figure is meant: grammar, the aggregate
# (read elsewhere) and ranking. Content words such as "days", "late", "time" or
# "lost" are deliberately not here: they are the evidence.
_NO_EVIDENCE = frozenset(
    """a an the of in on at for by to from and or is are was were be been being what which who
    whom whose how show me list give tell please do does did our we i us you your my there their
    it its this that these those with per each every all any over into than as so much many
    number count total overall sum get find see need want like would could can should let have
    has had got make made average avg mean median maximum max minimum min most least highest
    lowest top bottom biggest largest smallest best worst greatest fewest more less only just
    also too now then instead same again about one ones some ever never typically usually on
    it's what's how's when where while if not no yes did us they them data""".split()
)
# A few irregular forms people use for the words the space uses
_NO_EVIDENCE_STEMS = frozenset(stem(w) for w in _NO_EVIDENCE)
_IRREGULAR = {"lost": "lose", "loss": "lose", "losing": "lose", "took": "take", "taken": "take",
              "paid": "pay", "sold": "sell", "bought": "buy", "spent": "spend", "held": "hold",
              "kept": "keep", "promise": "commit", "promised": "commit"}  # fmt: skip
_IDENT = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]*\b")
_DEFINITION = re.compile(
    r"^(?:an?\s+|the\s+)?(?P<subject>[A-Za-z][A-Za-z \-']{2,50}?)\s*"
    r"(?:\((?P<aside>[^)]*)\)\s*)?(?:is|are|means|=)\s+(?P<expr>[A-Za-z_]+\s*\()",
    re.I,
)
_AGGREGATES = ("sum", "avg", "count", "min", "max")


def evidence_words(text: str) -> list[str]:
    """The stemmed words of ``text`` that can say which figure is meant.

    Example:
        >>> evidence_words("How much revenue did we lose to returns?")
        ['revenu', 'lose', 'return']
    """
    out = []
    for token in tokens(text):
        if token in _NO_EVIDENCE or not token.isalpha() or len(token) < 3:
            continue
        word = _IRREGULAR.get(token, stem(token))
        if word not in _NO_EVIDENCE_STEMS:
            out.append(word)
    return out


@dataclass(frozen=True)
class Definition:
    """A figure the instructions define in prose: its names and its SQL."""

    names: tuple[str, ...]
    sql: str


def _balanced(text: str, start: int) -> str | None:
    """The call that opens at ``text[start]`` up to its matching parenthesis."""
    depth = 0
    for i in range(text.index("(", start), len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return text[start : i + 1]
    return None


def instruction_sentences(instructions: str) -> list[str]:
    r"""The sentences of a space's instructions, bullets and surrounding spaces removed.

    Example:
        >>> instruction_sentences("- Revenue is SUM(x). Cost is y.\n- Late means z.")
        ['Revenue is SUM(x).', 'Cost is y.', 'Late means z.']
    """
    parts = re.split(r"(?<=[.;])\s+|\n\s*[-*]\s*", instructions)
    return [s for p in parts if (s := p.strip().lstrip("-* ").strip())]


def defined_figures(instructions: str, columns: set[str]) -> list[Definition]:
    """Figures the instructions define as a function of the space's columns.

    A row-level expression (``datediff(...)``) becomes its average: "processing time"
    asks for a typical value, as a person would compute it.

    Example:
        >>> text = 'Time to ship ("processing time") is datediff(l_shipdate, o_orderdate).'
        >>> defined_figures(text, {"l_shipdate", "o_orderdate"})[0].sql
        'AVG(datediff(l_shipdate, o_orderdate))'
    """
    found: list[Definition] = []
    for sentence in instruction_sentences(instructions):
        for clause in re.split(r"(?<=\.)\s+", sentence):
            match = _DEFINITION.match(clause)
            if match is None:
                continue
            expr = _balanced(clause, match.start("expr"))
            if expr is None:
                continue
            named = {w.lower() for w in _IDENT.findall(expr)}
            if not named & columns:
                continue
            func = expr.split("(", 1)[0].strip().lower()
            if func in columns:
                continue  # "Segment means c_mktsegment (AUTOMOBILE, ...)": a list, not a call
            sql = expr if func in _AGGREGATES else f"AVG({expr})"
            names = [match.group("subject").strip()]
            names += re.findall(r'"([^"]{3,40})"', match.group("aside") or "")
            found.append(Definition(tuple(n.lower() for n in names), sql))
    return found


class MeasureEvidence:
    """Scores every measure against a question's words.

    Args:
        profiles: For each measure, its words: ``(strong, weak)`` where strong words come
            from its name and synonyms (they count double) and weak ones from what the
            space says about it.
    """

    def __init__(self, profiles: dict[int, tuple[set[str], set[str]]]) -> None:
        self.profiles = profiles
        n = max(len(profiles), 1)
        df: dict[str, int] = {}
        for strong, weak in profiles.values():
            for word in strong | weak:
                df[word] = df.get(word, 0) + 1
        self.idf = {w: math.log(1 + n / d) for w, d in df.items()}

    def score(self, key: int, words: Iterable[str]) -> float:
        """How well the question's ``words`` describe the measure ``key``."""
        strong, weak = self.profiles[key]
        total = 0.0
        for word in set(words):
            if word in strong:
                total += 2 * self.idf[word]
            elif word in weak:
                total += self.idf[word]
        return total

    def ranked(self, words: Iterable[str]) -> list[tuple[float, int]]:
        """Measures from best to worst described, with their scores."""
        said = list(words)
        return sorted(((self.score(k, said), k) for k in self.profiles), reverse=True)

    def explains(self, key: int, word: str) -> bool:
        """Whether the measure's profile has ``word``."""
        strong, weak = self.profiles[key]
        return word in strong or word in weak
