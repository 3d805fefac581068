"""From a question (and the conversation so far) to an :class:`Intent`, or a reason to ask back.

The question is read token by token: first the patterns every analytics
question shares (years, quarters, months, dates, numbers, "top 10", "more than",
"average"), then the space's own phrases — measures, dimensions, table names,
column names and values found in the data — longest first. Each piece then
takes its role from the words around it ("how many customers" counts them, "top
10 customers" ranks them). Words that are neither understood nor filler make the
engine ask instead of guess.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from genie_tools.emulator.nl2sql.intent import Filter, Group, Intent, Metric, date_range
from genie_tools.emulator.nl2sql.schema import Column, Dimension, Measure, SpaceSchema, Table
from genie_tools.emulator.nl2sql.schema import ValueRef
from genie_tools.emulator.nl2sql.text import FILLER, MONTHS, NUMBER_WORDS, stem, tokens

UNSAFE = frozenset(
    "delete drop truncate insert update alter grant revoke merge create replace remove "
    "modify overwrite vacuum optimize attach detach copy pragma".split()
)
# Requests to act rather than to read: refused wherever they stand in the sentence.
IMPERATIVES = frozenset("set mark cancel refund change edit fix reset assign approve".split())
_AGG_WORDS = {"total": "SUM", "sum": "SUM", "average": "AVG", "avg": "AVG", "mean": "AVG",
              "maximum": "MAX", "max": "MAX", "minimum": "MIN", "min": "MIN"}  # fmt: skip
_DESC = {"top", "highest", "largest", "biggest", "most", "best", "greatest", "leading", "max"}
_ASC = {"bottom", "lowest", "smallest", "least", "worst", "fewest", "cheapest"}
_COMPARE = {
    ("more", "than"): ">", ("greater", "than"): ">", ("higher", "than"): ">", ("over",): ">",
    ("above",): ">", ("exceeding",): ">", ("at", "least"): ">=", ("less", "than"): "<",
    ("fewer", "than"): "<", ("lower", "than"): "<", ("under",): "<", ("below",): "<",
    ("at", "most"): "<=",
}  # fmt: skip
_GROUP_CUES = {"by", "per", "each", "every", "across", "over", "breakdown", "split", "trend"}
_GRAIN_WORDS = {"year": "year", "yearly": "year", "annual": "year", "annually": "year",
                "quarter": "quarter", "quarterly": "quarter", "month": "month",
                "monthly": "month"}  # fmt: skip
_ADVERB_GRAINS = {"yearly", "annual", "annually", "quarterly", "monthly"}
_ORDINALS = {"first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4,
             "4th": 4, "last": 4}  # fmt: skip
_FOLLOW_CUES = {"and", "what", "how", "now", "only", "just", "instead", "same", "also", "then",
                "break", "split", "make", "rather", "but", "sort", "show"}  # fmt: skip


class Unanswerable(Exception):  # noqa: N818 - it is a verdict, not an error to report
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


def _single_column(measure: Measure | None, schema: SpaceSchema) -> Column | None:
    """The column under ``SUM(col)`` / ``AVG(col)`` style measures, for filters on it."""
    if measure is None:
        return None
    match = re.fullmatch(r"\s*\w+\(\s*(\w+)\s*\)\s*", measure.sql)
    if match is None:
        return None
    owners = schema.columns.get(match.group(1).lower(), [])
    return owners[0] if owners else None


class QuestionParser:
    """Parses questions for one space.

    Example:
        >>> parser = QuestionParser(schema)  # doctest: +SKIP
        >>> parser.parse("top 5 nations by revenue in 1996", previous=None)  # doctest: +SKIP
    """

    def __init__(self, schema: SpaceSchema) -> None:
        self.schema = schema
        self.phrases: dict[tuple[str, ...], list[tuple[str, object]]] = {}
        for m in schema.measures:
            for p in m.phrases:
                self._add(p, "measure", m)
        for d in schema.dimensions:
            for p in d.phrases:
                self._add(p, "dimension", d)
        for t in schema.tables.values():
            for p in t.words:
                self._add(p, "entity", t)
        for cols in schema.columns.values():
            for c in cols:
                if c.kind in ("number", "date") and not {"key", "comment"} & set(c.words):
                    self._add(tuple(stem(w) for w in c.words), "column", c)
        for key, refs in schema.values.items():
            for ref in refs:
                self._add(key, "value", ref)
        self.max_len = max((len(p) for p in self.phrases), default=1)
        self.vocabulary = {stem(w) for w in schema._vocabulary(schema.space)}

    def _add(self, phrase: tuple[str, ...], kind: str, payload: object) -> None:
        if phrase:
            self.phrases.setdefault(phrase, []).append((kind, payload))

    # ------------------------------------------------------------------
    def parse(self, question: str, previous: Intent | None) -> Intent:
        """The intent of ``question``; a follow-up modifies ``previous``.

        Raises:
            Unanswerable: when the question writes, or cannot be mapped confidently.
        """
        return _Reading(self, question, previous).intent()


class _Reading:
    """One question being read (state shared by the steps below)."""

    def __init__(self, parser: QuestionParser, question: str, previous: Intent | None) -> None:
        self.p = parser
        self.schema = parser.schema
        self.raw = tokens(question)
        self.st = [stem(t) for t in self.raw]
        self.used = [False] * len(self.raw)
        self.previous = previous
        self.question = question
        self.limit: int | None = None
        self.descending: bool | None = None
        self.superlative_at: int | None = None
        self.aggs: list[tuple[int, str]] = []
        self.count_at: list[int] = []
        self.times: list[tuple[str, list[object]]] = []  # (op, values) on the date column
        self.compares: list[tuple[int, str, float]] = []
        self.grains: list[tuple[int, str]] = []
        self.pieces: list[Piece] = []

    # steps -----------------------------------------------------------
    def intent(self) -> Intent:
        if UNSAFE & set(self.raw) or IMPERATIVES & set(self.raw) or ";" in self.question:
            raise Unanswerable("I can only read data, not change it.")
        if not self.raw:
            raise Unanswerable("The question is empty.")
        self._phrases(min_size=2)  # "average order value" before "average"
        self._patterns()
        self._phrases(min_size=1)
        self._check_coverage()
        fresh = self._build()
        if self.previous is not None and self._is_follow_up(fresh):
            return self._merge(self.previous, fresh)
        if not fresh.metrics:
            raise Unanswerable("I could not tell which figure you want.")
        return fresh

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

    def _patterns(self) -> None:  # noqa: C901 - one pass over the shared patterns
        raw, n = self.raw, len(self.raw)
        for i, word in enumerate(raw):
            if self.used[i]:
                continue
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}", word):
                self._date_at(i)
            elif re.fullmatch(r"(19|20)\d\d", word):
                self._year_at(i)
            elif word in ("how", "number", "count") and self._count_cue(i):
                continue
            elif word in _AGG_WORDS:
                self.aggs.append((i, _AGG_WORDS[word]))
                self._take(i, i + 1)
            elif word in _DESC or word in _ASC:
                self.superlative_at = i
                self.descending = word in _DESC
                num = self._number(i + 1)
                if num is not None and num == int(num) and not re.fullmatch(r"(19|20)\d\d", raw[i + 1]):
                    self.limit = int(num)
                    self._take(i + 1, i + 2)
                elif (before := self._number(i - 1)) is not None and not self.used[i - 1]:
                    self.limit = int(before)
                    self._take(i - 1, i)
                self._take(i, i + 1)
            elif word in ("ascending", "asc", "increasing"):
                self.descending = False
                self._take(i, i + 1)
            elif word in ("descending", "desc", "decreasing"):
                self.descending = True
                self._take(i, i + 1)
            elif word in _GRAIN_WORDS and self._grain_context(i):
                self.grains.append((i, _GRAIN_WORDS[word]))
                self._take(i, i + 1)
            else:
                for phrase, op in _COMPARE.items():
                    if tuple(raw[i : i + len(phrase)]) == phrase:
                        num = self._number(i + len(phrase))
                        if num is not None:
                            self.compares.append((i, op, num))
                            self._take(i, i + len(phrase) + 1)
                        break
        if self.limit is None and self.superlative_at is None:
            for i in range(n - 1):
                num = self._number(i)
                if num is not None and raw[i + 1] in ("biggest", "largest") and not self.used[i]:
                    self.limit = int(num)

    def _count_cue(self, i: int) -> bool:
        pair = tuple(self.raw[i : i + 2])
        if pair in (("how", "many"), ("number", "of"), ("count", "of")):
            self.count_at.append(i + 2)
            self._take(i, i + 2)
            return True
        if self.raw[i] == "count":
            self.count_at.append(i + 1)
            self._take(i, i + 1)
            return True
        return False

    def _grain_context(self, i: int) -> bool:
        if self.raw[i] in _ADVERB_GRAINS:
            return True
        window = set(self.raw[max(0, i - 3) : i])
        return bool(window & _GROUP_CUES) or (i > 0 and self.raw[i - 1] in ("and", ","))

    def _year_at(self, i: int) -> None:
        raw, year = self.raw, int(self.raw[i])
        self._take(i, i + 1)
        prev = raw[i - 1] if i > 0 else ""
        nxt = raw[i + 1] if i + 1 < len(raw) else ""
        # quarter: "q3 1995", "1995 q3", "third quarter of 1995"
        for j in (i - 1, i + 1):
            if 0 <= j < len(raw) and re.fullmatch(r"q[1-4]", raw[j]):
                self._take(j, j + 1)
                self.times.append(("range", date_range(year, quarter=int(raw[j][1]))))
                return
        for j in range(max(0, i - 4), i):
            if raw[j] in _ORDINALS and "quarter" in raw[j : i]:
                self._take(j, i)
                self.times.append(("range", date_range(year, quarter=_ORDINALS[raw[j]])))
                return
        month_at = i - 1 if prev in MONTHS else (i - 2 if i > 1 and raw[i - 2] in MONTHS and prev == "of" else None)
        if month_at is None and nxt in MONTHS and nxt != "may":
            month_at = i + 1
        if month_at is not None:
            self._take(min(month_at, i), max(month_at, i) + 1)
            self.times.append(("range", date_range(year, month=MONTHS[raw[month_at]])))
            return
        # ranges: "between 1994 and 1996", "from 1994 to 1996", "1994-1996"
        if prev in ("between", "from") and i + 2 < len(raw) and raw[i + 1] in ("and", "to", "through"):
            if re.fullmatch(r"(19|20)\d\d", raw[i + 2]):
                end = int(raw[i + 2])
                self._take(i - 1, i + 3)
                self.times.append(("range", [dt.date(year, 1, 1), dt.date(end + 1, 1, 1)]))
                return
        if prev in ("since", "after") or (prev == "from" and nxt != "to"):
            start = dt.date(year + (prev == "after"), 1, 1)
            self.times.append((">=", [start]))
            self._take(i - 1, i)
            return
        if prev in ("before", "until", "through", "till"):
            self.times.append(("<" if prev == "before" else "<=", [dt.date(year, 1, 1) if prev == "before" else dt.date(year, 12, 31)]))
            self._take(i - 1, i)
            return
        # "in 1995 and 1996": each year
        if self.times and self.times[-1][0] == "years":
            self.times[-1][1].append(year)
        elif prev in ("and", "or", ",") and self.times and self.times[-1][0] == "range":
            first = self.times.pop()[1][0]
            assert isinstance(first, dt.date)
            self.times.append(("years", [first.year, year]))
        else:
            self.times.append(("range", date_range(year)))

    def _date_at(self, i: int) -> None:
        day = dt.date.fromisoformat(self.raw[i])
        prev = self.raw[i - 1] if i > 0 else ""
        self._take(i, i + 1)
        if prev == "between" or (prev == "from" and i + 2 < len(self.raw) and self.raw[i + 1] in ("and", "to")):
            if i + 2 < len(self.raw) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", self.raw[i + 2]):
                end = dt.date.fromisoformat(self.raw[i + 2])
                self._take(i - 1, i + 3)
                self.times.append(("between", [day, end]))
                return
        ops = {"before": "<", "after": ">", "since": ">=", "from": ">=", "until": "<=",
               "through": "<=", "to": "<=", "till": "<=", "on": "="}  # fmt: skip
        if prev in ("up",) or (prev == "to" and i > 1 and self.raw[i - 2] == "up"):
            self.times.append(("<=", [day]))
        elif prev in ops:
            self.times.append((ops[prev], [day]))
            self._take(i - 1, i)
        else:
            self.times.append(("=", [day]))

    def _phrases(self, min_size: int) -> None:
        i, n = 0, len(self.st)
        while i < n:
            if self.used[i]:
                i += 1
                continue
            for size in range(min(self.p.max_len, n - i), min_size - 1, -1):
                span = tuple(self.st[i : i + size])
                if any(self.used[i : i + size]) or span not in self.p.phrases:
                    continue
                options = [
                    (k, o)
                    for k, o in self.p.phrases[span]
                    # a whole value must be spelled as the data spells it: "shipped" is not SHIP
                    if not (k == "value" and isinstance(o, ValueRef) and o.rank == 0
                            and tuple(tokens(o.value)) != tuple(self.raw[i : i + size]))
                ]  # fmt: skip
                if not options:
                    continue
                kinds = {k for k, _ in options}
                kind = next(k for k in ("value", "measure", "dimension", "entity", "column") if k in kinds)
                if kind == "value" and size == 1 and self.raw[i] in FILLER and len(kinds) == 1:
                    continue  # "top", "all" are words, not values
                self.pieces.append(Piece(i, i + size, kind, [o for k, o in options]))
                for k, o in options:
                    if k != kind:
                        self.pieces[-1].options.append((k, o))
                self._take(i, i + size)
                i += size
                break
            else:
                i += 1

    def _check_coverage(self) -> None:
        unknown = [
            w
            for w, s, used in zip(self.raw, self.st, self.used, strict=True)
            if not used and w not in FILLER and not w.isdigit() and len(w) > 1
        ]
        outside = [w for w in unknown if stem(w) not in self.p.vocabulary and w not in self.p.vocabulary]
        if outside:
            words = ", ".join(repr(w) for w in outside[:3])
            raise Unanswerable(f"I don't know what {words} refers to in this space.")

    # roles -------------------------------------------------------------
    def _near(self, index: int, words: set[str], before: int = 3) -> bool:
        return bool(set(self.raw[max(0, index - before) : index]) & words)

    def _build(self) -> Intent:
        self.pieces.sort(key=lambda p: p.start)
        intent = Intent(limit=self.limit, descending=self.descending)
        values: dict[int, list[ValueRef]] = {}
        # A measure named outright ("revenue"), not a word that is also a table or a
        # dimension ("customers"), which only measures when nothing else does.
        named_measure = any(
            p.kind == "measure" and not _ambiguous(p) and not self._counting(p)
            for p in self.pieces
        )
        metrics: list[tuple[int, Metric]] = []
        for piece in self.pieces:
            measure, dim, table, column = _candidates(piece)
            if piece.kind == "value":
                ref = next(o for o in piece.options if isinstance(o, ValueRef))
                values.setdefault(id(ref.column), []).append(ref)
                continue
            target = column or (dim.column if dim else None) or _single_column(measure, self.schema)
            condition = self._condition_on(piece, target)
            if condition is not None:
                intent.filters.append(condition)
            elif self._counting(piece) and (measure or table):
                metrics.append((piece.start, Metric.of(measure) if measure else self._count(table)))
            elif self._wants_group(piece) and (dim or table):
                intent.groups.append(self._group(dim, table))
            elif measure is not None and not (named_measure and _ambiguous(piece)):
                metrics.append((piece.start, self._aggregated(piece, Metric.of(measure))))
            elif column is not None and column.kind == "number" and self._asks_for(piece):
                metrics.append((piece.start, self._column_metric(piece, column, intent)))
            elif dim is not None and dim.grain is None and self._near(piece.start, {"which", "what"}, 2):
                intent.groups.append(self._group(dim, None))
        intent.metrics = [m for _, m in sorted(metrics, key=lambda x: x[0])]
        if not intent.metrics and self.count_at:
            intent.metrics = [self._count_rows(values, intent.groups)]
        self._value_filters(intent, values)
        self._time(intent)
        self._ranking(intent)
        return intent

    def _asks_for(self, piece: Piece) -> bool:
        """A plain column is a figure to compute when an aggregate or ranking word names it,
        or when nothing else in the question is one."""
        if any(0 < piece.start - i <= 3 for i, _ in self.aggs):
            return True
        if self.superlative_at is not None and 0 < piece.start - self.superlative_at <= 3:
            return True
        return not any(p.kind == "measure" and not _ambiguous(p) for p in self.pieces)

    def _counting(self, piece: Piece) -> bool:
        return any(0 <= piece.start - at <= 1 for at in self.count_at)

    def _condition_on(self, piece: Piece, column: Column | None) -> Filter | None:
        """A comparison attached to a column: "balance below 0", "size 15", "negative balance"."""
        if column is None or column.kind != "number":
            return None
        for c in self.compares:
            if 0 <= c[0] - piece.end <= 1 or 0 <= piece.start - c[0] - 2 <= 1:
                self.compares.remove(c)
                return Filter(column, c[1], [c[2]])
        before = set(self.raw[max(0, piece.start - 2) : piece.start])
        if "negative" in before:
            return Filter(column, "<", [0])
        if "positive" in before:
            return Filter(column, ">", [0])
        number = self._number(piece.end)
        if number is not None and not self.used[piece.end] and piece.kind in ("column", "dimension"):
            self._take(piece.end, piece.end + 1)
            return Filter(column, "=", [int(number) if number == int(number) else number])
        return None

    def _aggregated(self, piece: Piece, metric: Metric) -> Metric:
        """An aggregate word right before a summed measure changes it: "average revenue"."""
        func = next((f for i, f in self.aggs if 0 < piece.start - i <= 2), None)
        if func and func != "SUM":
            return metric.with_aggregate(func) or metric
        return metric

    def _column_metric(self, piece: Piece, column: Column, intent: Intent) -> Metric:
        """A plain numeric column under the aggregate the question names (default: total)."""
        func = next((f for i, f in self.aggs if 0 < piece.start - i <= 3), None)
        if func is None and self.superlative_at is not None and not intent.groups:
            func = "MAX" if self.descending else "MIN"
        func = func or "SUM"
        name = {"SUM": "total", "AVG": "avg", "MIN": "min", "MAX": "max"}[func]
        return Metric(f"{name}_{'_'.join(column.words)}", f"{func}({column.name})", {column.table})

    def _value_filters(self, intent: Intent, values: dict[int, list[ValueRef]]) -> None:
        for refs in values.values():
            col = refs[0].column
            equal = list(dict.fromkeys(r.value for r in refs if r.op == "="))
            if len(equal) == 1:
                intent.filters.append(Filter(col, "=", equal))
                intent.groups = [g for g in intent.groups if g.column is not col]
            elif equal:
                # Several values of one column: compare them side by side.
                intent.filters.append(Filter(col, "IN", list(equal)))
                if not any(g.column is col for g in intent.groups):
                    intent.groups.append(self._group_for_column(col))
            for r in refs:
                if r.op == "LIKE":
                    intent.filters.append(Filter(col, "LIKE", [r.value]))

    def _ranking(self, intent: Intent) -> None:
        if self.superlative_at is None or not (intent.groups or intent.limit):
            return
        intent.rank_by_metric = True
        if intent.limit is None:
            plural = self._plural_after(self.superlative_at)
            if self.raw[self.superlative_at] in ("top", "bottom") and plural:
                intent.limit = 10
            elif not plural and intent.groups:
                intent.limit = 1

    def _wants_group(self, piece: Piece) -> bool:
        if piece.start > 0 and self.raw[piece.start - 1] in ("all", "any", "every"):
            return False
        cues = _GROUP_CUES | {"which", "top", "bottom", "list", "for"} | _DESC | _ASC
        if self._near(piece.start, cues - {"for"}, 3):
            return True
        if piece.start > 0 and self.raw[piece.start - 1] in ("and", ",", "&"):
            earlier = [p for p in self.pieces if p.end <= piece.start - 1]
            if earlier and earlier[-1].end == piece.start - 1 and self._wants_group(earlier[-1]):
                return True
        return self._near(piece.start, {"for"}, 1) and self._near(piece.start, {"each", "every"}, 2)

    def _plural_after(self, index: int) -> bool:
        for piece in self.pieces:
            if piece.start > index:
                word = self.raw[piece.end - 1]
                return word.endswith("s") and not word.endswith("ss")
        return False

    def _count_rows(self, values: dict[int, list[ValueRef]], groups: list[Group]) -> Metric:
        """ "How many were returned?": the space's row-count measure, or rows of the table asked about."""
        declared = next((m for m in self.schema.measures if m.sql.replace(" ", "").upper() == "COUNT(*)"), None)
        if declared is not None:
            return Metric.of(declared)
        tables = [refs[0].column.table for refs in values.values()] + [g.column.table for g in groups]
        if not tables:
            raise Unanswerable("I could not tell what to count.")
        return Metric(f"{tables[0].rsplit('.', 1)[1]}_count", "COUNT(*)", {tables[0]})

    def _count(self, table: Table | None) -> Metric:
        assert table is not None
        name = f"{table.name.rsplit('.', 1)[1]}_count"
        if table.key is not None:
            return Metric(name, f"COUNT(DISTINCT {table.key.name})", {table.name})
        return Metric(name, "COUNT(*)", {table.name})

    def _group(self, dim: Dimension | None, table: Table | None) -> Group:
        if dim is not None:
            return self._group_for_column(dim.column, dim.grain, dim.name)
        assert table is not None
        column = table.label or table.key
        assert column is not None
        return self._group_for_column(column, None, table.name.rsplit(".", 1)[1])

    def _group_for_column(self, col: Column, grain: str | None = None, name: str = "") -> Group:
        table = self.schema.tables[col.table]
        indexed = any(r.column is col for refs in self.schema.values.values() for r in refs)
        key = table.key if (table.key is not None and table.key is not col and not indexed and col is table.label) else None
        return Group(col, grain, name or "_".join(col.words), key)

    def _time(self, intent: Intent) -> None:
        column = self._date_column(intent)
        if column is None and (self.grains or any(g.grain for g in intent.groups)):
            raise Unanswerable("This space has no dates to follow over time.")
        for i, grain in self.grains:
            if column is not None:
                intent.groups.append(Group(column, grain, f"{'_'.join(w for w in column.words if w != 'date')}_{grain}".strip("_")))
        if column is None:
            if self.times:
                raise Unanswerable("This space has no date to filter on.")
            return
        for op, values in self.times:
            if op == "range":
                intent.filters.append(Filter(column, "RANGE", values, is_time=True))
            elif op == "between":
                intent.filters.append(Filter(column, "BETWEEN", values, is_time=True))
            elif op == "years":
                intent.filters.append(Filter(column, "YEARS", values, is_time=True))
            else:
                intent.filters.append(Filter(column, op, values, is_time=True))
        # quarter or month groups need the year beside them unless one year is chosen
        single_year = any(
            f.is_time and f.op == "RANGE" and (f.values[1] - f.values[0]).days <= 366  # type: ignore[operator]
            for f in intent.filters
        )
        fixed: list[Group] = []
        for g in intent.groups:
            if g.grain == "quarter" and not single_year and not any(x.grain == "year" for x in intent.groups):
                fixed.append(Group(g.column, "year", g.name.replace("quarter", "year")))
            if g.grain in ("month", "month_of_year"):
                # Within one year a month is its number; across years, the month itself.
                g = Group(g.column, "month_of_year" if single_year else "month", g.name, g.with_key)
            fixed.append(g)
        intent.groups = fixed

    def _date_column(self, intent: Intent) -> Column | None:
        for g in intent.groups:
            if g.grain and g.column.kind == "date":
                return g.column
        words = set(self.st)
        for col in self.schema.date_columns:
            triggers = {stem(w) for w in col.words if w != "date"}
            if triggers & words and col is not self.schema.default_date:
                return col
        return self.schema.default_date

    # follow-ups ----------------------------------------------------------
    def _is_follow_up(self, fresh: Intent) -> bool:
        if not fresh.metrics:
            return True
        return self.raw[0] in _FOLLOW_CUES and ("instead" in self.raw or len(self.raw) <= 6)

    def _merge(self, previous: Intent, new: Intent) -> Intent:
        out = previous.copy()
        if new.metrics:
            out.metrics = new.metrics if not self._near(len(self.raw), {"also", "and"}, 99) or "instead" in self.raw else out.metrics + new.metrics
        elif self.aggs:
            func = self.aggs[0][1]
            if func == "SUM" and len(self.aggs) > 1:
                func = self.aggs[-1][1]
            if "instead" in self.raw and self.aggs[0][0] > self.raw.index("instead"):
                func = self.aggs[0][1]
            out.metrics = [m.with_aggregate(func) or m for m in out.metrics]
        replace = bool({"instead", "rather"} & set(self.raw)) or self.raw[0] == "now"
        for g in new.groups:
            if replace and not new.metrics:
                out.groups = [x for x in out.groups if not x.same_slot(g)] if g.grain else [x for x in out.groups if x.grain]
            out.groups = [x for x in out.groups if not (x.column is g.column and x.grain == g.grain)]
            if g.grain:
                out.groups = [x for x in out.groups if not x.grain]
            out.groups.append(g)
        for f in new.filters:
            out.filters = [x for x in out.filters if not (x.column is f.column or (x.is_time and f.is_time))]
            out.filters.append(f)
            if not f.is_time and f.op == "=":
                out.groups = [g for g in out.groups if g.column is not f.column]
        if new.limit is not None:
            out.limit = new.limit
            out.rank_by_metric = True
        if new.descending is not None:
            out.descending = new.descending
            if out.limit is None and not out.groups:
                pass
            elif new.limit is None and not self.superlative_at:
                out.rank_by_metric = True
        return out
