"""The state of one question being read, and the helpers every reading step shares."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from genie_tools.emulator.nl2sql.intent import Group, Intent, Metric
from genie_tools.emulator.nl2sql.schema import Column, Dimension, Measure, SpaceSchema, Table
from genie_tools.emulator.nl2sql.text import MONTHS, NUMBER_WORDS, stem, tokens


class Unanswerable(Exception):
    """The question cannot be mapped with confidence; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Piece:
    """A span of the question that was recognised."""

    start: int
    end: int
    kind: str  # measure | dimension | entity | column | value
    options: list[object] = field(default_factory=list)


def _candidates(
    piece: Piece,
) -> tuple[Measure | None, Dimension | None, Table | None, Column | None]:
    """The readings a recognised span allows, one per kind."""
    flat = [o[1] if isinstance(o, tuple) else o for o in piece.options]
    return (
        next((o for o in flat if isinstance(o, Measure)), None),
        next((o for o in flat if isinstance(o, Dimension)), None),
        next((o for o in flat if isinstance(o, Table)), None),
        next((o for o in flat if isinstance(o, Column)), None),
    )


def _ambiguous(piece: Piece) -> bool:
    """A span that reads as a measure and also as a table or a dimension."""
    _, dim, table, _ = _candidates(piece)
    return dim is not None or table is not None


def _single_column(figure: Measure | Metric | None, schema: SpaceSchema) -> Column | None:
    """The column under ``SUM(col)`` / ``AVG(col)`` style figures, for filters on it."""
    if figure is None:
        return None
    match = re.fullmatch(r"\s*\w+\(\s*(\w+)\s*\)\s*", figure.sql)
    if match is None:
        return None
    owners = schema.columns.get(match.group(1).lower(), [])
    return next((c for c in owners if c.table in figure.tables), owners[0] if owners else None)


def _without_lead_in(question: str) -> str:
    """Drop a short lead-in before a colon: "Finance here: what was ..." -> "what was ..."."""
    head, colon, rest = question.partition(":")
    if colon and rest.strip() and len(head.split()) <= 3 and not any(c.isdigit() for c in head):
        return rest
    return question


# each month's full name: the first name MONTHS gives it
_MONTH_NAMES = [next(name for name, n in MONTHS.items() if n == m) for m in range(1, 13)]


def _year_of_previous(words: list[str], previous: Intent | None) -> list[str]:
    """Give a follow-up's bare quarter or month the year the previous question was about."""
    if previous is None or any(re.fullmatch(r"(19|20)\d\d", w) for w in words):
        return words
    years: set[int] = set()
    for f in previous.filters:
        if f.is_time:
            dates = [v for v in f.values if isinstance(v, dt.date)]
            end = f.values[1] if len(f.values) > 1 else None
            if isinstance(end, dt.date) and (end.month, end.day) == (1, 1):
                dates.remove(end)  # an exclusive end: 1996-01-01 up to 1997-01-01 is 1996
            years |= {d.year for d in dates}
    if len(years) != 1:
        return words
    year = str(years.pop())
    out: list[str] = []
    for w in words:
        out.append(w)
        if re.fullmatch(r"q[1-4]|h[12]", w) or w in MONTHS:
            out.append(year)
    return out


def _relative_periods(words: list[str], latest: Any) -> list[str]:
    """Name the periods said relative to the data's latest date.

    The spaces' instructions say to read "last year" or "this quarter" against the latest
    date in the data, not today's: with data up to 1998-08-02, "this year" is 1998.
    """
    year, quarter, month = latest.year, (latest.month - 1) // 3 + 1, latest.month
    previous_quarter = (year, quarter - 1) if quarter > 1 else (year - 1, 4)
    previous_month = (year, month - 1) if month > 1 else (year - 1, 12)
    periods = {
        ("this", "year"): [str(year)],
        ("current", "year"): [str(year)],
        ("last", "year"): [str(year - 1)],
        ("previous", "year"): [str(year - 1)],
        ("prior", "year"): [str(year - 1)],
        ("this", "quarter"): [f"q{quarter}", str(year)],
        ("current", "quarter"): [f"q{quarter}", str(year)],
        ("last", "quarter"): [f"q{previous_quarter[1]}", str(previous_quarter[0])],
        ("previous", "quarter"): [f"q{previous_quarter[1]}", str(previous_quarter[0])],
        ("this", "month"): [_MONTH_NAMES[month - 1], str(year)],
        ("last", "month"): [_MONTH_NAMES[previous_month[1] - 1], str(previous_month[0])],
        ("year", "to", "date"): [str(year)],
        ("ytd",): [str(year)],
    }
    out: list[str] = []
    i = 0
    while i < len(words):
        for phrase, said in periods.items():
            after = words[i + len(phrase) : i + len(phrase) + 1]
            named_year = bool(after and re.fullmatch(r"(19|20)\d\d", after[0]))
            if (
                tuple(words[i : i + len(phrase)]) == phrase
                and after not in (["of"], ["in"])
                and not named_year  # "the last quarter of 1997" is no relative period
            ):
                out += ["in", *said] if out[-1:] not in (["in"], ["for"], ["during"]) else said
                i += len(phrase)
                break
        else:
            if words[i : i + 2] == ["so", "far"]:
                i += 2  # "this year so far"
                continue
            out.append(words[i])
            i += 1
    return out


_INTERJECTIONS = frozenset(
    "ok okay great thanks cool hmm hmmm alright nice perfect got well so right interesting".split()
)


def _four_digit_years(words: list[str]) -> list[str]:
    """Read two-digit years after "in", "for", … or at the end as 19xx ("rev by region 96")."""
    out = list(words)
    cues = {"in", "for", "during", "of", "since", "before", "after", "from", "to", "through", "and"}
    for i, word in enumerate(out):
        if re.fullmatch(r"[9][0-9]|0[0-9]", word) and (i == len(out) - 1 or out[i - 1] in cues):
            out[i] = ("19" if word[0] == "9" else "20") + word
    return out


class ReadingState:
    """What is known so far about one question (filled in by the reading steps)."""

    def __init__(self, parser: Any, question: str, previous: Intent | None) -> None:
        self.p = parser
        self.schema = parser.schema
        self.raw = _four_digit_years(tokens(_without_lead_in(question)))
        while len(self.raw) > 2 and self.raw[0] in _INTERJECTIONS:
            self.raw = self.raw[1:]  # "ok, show the average instead"
        for i in range(len(self.raw) - 2):
            if self.raw[i + 1] == "by" and self.raw[i] == self.raw[i + 2]:
                self.raw[i : i + 3] = ["by", self.raw[i], ""]  # "quarter by quarter"
        self.raw = [w for w in self.raw if w]
        if parser.schema.latest is not None:
            self.raw = _relative_periods(self.raw, parser.schema.latest)
        self.raw = _year_of_previous(self.raw, previous)  # "and in Q2?" after "in Q1 1996"
        self.st = [stem(t) for t in self.raw]
        self.used = [False] * len(self.raw)
        self.previous = previous
        self.question = question
        self.exists_at: int | None = None  # the noun after "at least one"
        # words typed in capitals, as the data stores values ("SHIP", "AIR", "FRANCE")
        typed = re.findall(r"\b[A-Z][A-Z0-9#\-]+\b", question)
        # "SHIP-mode shipments": SHIP is typed as the data spells it
        self.capitals = {w.lower().strip("-") for w in typed} | {
            part.lower() for w in typed for part in w.split("-") if part.isupper() and len(part) > 1
        }
        self.limit: int | None = None
        self.descending: bool | None = None
        self.superlative_at: int | None = None
        self.superlatives: list[tuple[int, bool]] = []
        self._weak: set[int] = set()  # metrics read from words that are also tables
        self.time_at: int | None = None  # where the first date expression stands
        self.in_the_red = False  # "in the red", "in debt": a balance below zero
        self.limit_at: int | None = None  # where "top 5" / "the 5" stands
        self.aggs: list[tuple[int, str]] = []
        self.count_at: list[int] = []
        self.times: list[tuple[str, list[Any]]] = []  # (op, values) on the date column
        self.compares: list[tuple[int, str, float]] = []
        self.grains: list[tuple[int, str]] = []
        self.pieces: list[Piece] = []

    def _take(self, start: int, end: int) -> None:
        for i in range(start, end):
            self.used[i] = True

    def _number(self, i: int) -> float | None:
        if i < 0 or i >= len(self.raw):
            return None
        word = self.raw[i]
        if word in NUMBER_WORDS:
            return float(NUMBER_WORDS[word])
        try:
            return float(word.replace(",", ""))
        except ValueError:
            return None

    def _near(self, index: int, words: set[str], before: int = 3) -> bool:
        return bool(set(self.raw[max(0, index - before) : index]) & words)

    def _piece_between(self, start: int, end: int) -> bool:
        return any(start < p.start < end for p in self.pieces)

    def _plural_after(self, index: int) -> bool:
        """Whether the thing ranked is plural.

        "which nations" asks for all of them ranked, "which country" for the one; the
        ranked thing is the first dimension or table named after the superlative.
        """
        ranked = [p for p in self.pieces if _candidates(p)[1] or _candidates(p)[2]]
        after = [p for p in ranked if p.start > index] or ranked
        if not after:
            return False
        word = self.raw[after[0].end - 1]
        return word.endswith("s") and not word.endswith("ss")

    def _date_mentions(self) -> list[tuple[int, Column]]:
        """Where the question names a date column ("shipped", "received", "order date")."""
        # words inside a measure name ("late deliveries") name no date, unless a verb stands
        # right before the date itself ("line items shipped in 1995")
        near = {
            i
            for i in (range(self.time_at - 5, self.time_at) if self.time_at is not None else [])
            if i >= 0 and self.raw[i].endswith("ed")
        }  # "shipped in 1995", "shipped by AIR in 1995"
        near |= {i - 1 for i in near if i > 0}  # "orders placed in 1997": the order date
        if self.time_at is not None and self.raw[self.time_at].isdigit():
            near.add(self.time_at + 1)  # "1992 shipments": the year of the shipments
        in_measures = {
            i for p in self.pieces if p.kind == "measure" for i in range(p.start, p.end)
        } - near
        # "delivered late in 1996": the words of a conditional figure say what is counted
        in_measures |= {
            i
            for p in self.pieces
            if p.kind == "measure"
            and any("CASE" in getattr(o, "sql", "").upper() for o in p.options)
            for i in range(p.start, p.end)
        }
        # a value's words name no date: "DELIVER IN PERSON" is an instruction, not receipt
        in_measures |= {i for p in self.pieces if p.kind == "value" for i in range(p.start, p.end)}
        generic = {"year", "quarter", "month", "date", "day", "week"}
        found: list[tuple[int, Column]] = []
        for col in self.schema.date_columns:
            triggers = {stem(w) for w in col.words} - generic
            # "Date the order was placed": "placed in 1996" names the order date
            told = {stem(w) for w in tokens(col.comment) if w.endswith("ed") and len(w) > 4}
            for dim in self.schema.dimensions:
                if dim.column is col:
                    triggers |= {w for p in dim.phrases for w in p} - generic
            found += [
                (i, col)
                for i, s in enumerate(self.st)
                if i not in in_measures
                and (
                    s in triggers
                    or any(len(t) >= 4 and s.startswith(t) for t in triggers)
                    or (s in told and self.raw[i].endswith("ed"))
                )
            ]
        return sorted(found, key=lambda x: x[0])

    def _group_for_column(self, col: Column, grain: str | None = None, name: str = "") -> Group:
        table = self.schema.tables[col.table]
        indexed = any(r.column is col for refs in self.schema.values.values() for r in refs)
        key = (
            table.key
            if (
                table.key is not None
                and table.key is not col
                and not indexed
                and col is table.label
            )
            else None
        )
        return Group(col, grain, name or "_".join(col.words), key)
