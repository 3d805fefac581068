"""Roles: what each recognised piece of a question does.

The same words play different parts by their neighbours: "how many customers" counts
customers, "top 10 customers" ranks them, "revenue from customers in GERMANY" only
says whose revenue. This module turns the pieces into an :class:`Intent` — metrics,
groups, filters and ranking — and applies the conventions questions share: shares and
percentages, MIN and MAX for "lowest and highest", the headline figure for "top …".
"""

from __future__ import annotations

from genie_tools.emulator.nl2sql.intent import (
    Filter,
    Group,
    Intent,
    Metric,
    filtered_share,
    is_rate,
    more_is_worse,
    percent_of,
)
from genie_tools.emulator.nl2sql.patterns import _ASC, _DESC, _GROUP_CUES, PatternReading
from genie_tools.emulator.nl2sql.reading import (
    Piece,
    Unanswerable,
    _ambiguous,
    _candidates,
    _single_column,
)
from genie_tools.emulator.nl2sql.schema import Column, Dimension, Measure, Rule, Table, ValueRef


def _count_name(table: Table | None) -> str:
    return f"{table.name.rsplit('.', 1)[1]}_count" if table is not None else ""


def _plain(number: float) -> int | float:
    return int(number) if number == int(number) else number


class RoleReading(PatternReading):
    """Builds the intent from the pieces the earlier steps recognised."""

    def _build(self) -> Intent:
        self.pieces.sort(key=lambda p: p.start)
        intent = Intent(limit=self.limit, descending=self.descending)
        values: dict[int, list[ValueRef]] = {}
        # A measure named outright ("revenue"), not a word that is also a table or a
        # dimension ("customers"), which only measures when nothing else does.
        named_measure = any(
            p.kind == "measure" and not _ambiguous(p) and not self._counting(p) for p in self.pieces
        )
        metrics: list[tuple[int, Metric]] = []
        summed = self._summed_count()
        if summed is not None:
            metrics.append(summed)
        for piece in self.pieces:
            measure, dim, table, column = _candidates(piece)
            if piece.kind == "value":
                ref = next(o for o in piece.options if isinstance(o, ValueRef))
                values.setdefault(id(ref.column), []).append(ref)
                continue
            if piece.kind == "rule":
                rule = next(o for o in piece.options if isinstance(o, Rule))
                intent.filters.append(Filter(rule.column, "SQL", [rule.sql]))
                continue
            target = column or (dim.column if dim else None) or _single_column(measure, self.schema)
            condition = self._condition_on(piece, target)
            if condition is not None:
                intent.filters.append(condition)
            elif self._counting(piece) and (measure or table):
                metrics.append((piece.start, Metric.of(measure) if measure else self._count(table)))
            elif self._wants_group(piece) and (dim or table):
                group = self._group(dim, table)
                if group is not None and not self._qualifies_next(piece):
                    intent.groups.append(group)
            elif self._wants_group(piece) and column is not None and column.kind == "string":
                intent.groups.append(self._group_for_column(column, None, " ".join(column.words)))
            elif measure is not None and not (named_measure and _ambiguous(piece)):
                measure = self._better_measure(piece, measure)
                metrics.append((piece.start, self._aggregated(piece, Metric.of(measure))))
                if _ambiguous(piece):
                    self._weak.add(piece.start)
            elif column is not None and column.kind == "number" and self._asks_for(piece):
                metrics.append((piece.start, self._column_metric(piece, column, intent)))
            elif (
                dim is not None
                and dim.grain is None
                and self._near(piece.start, {"which", "what"}, 2)
            ):
                intent.groups.append(self._group_for_column(dim.column, None, dim.name))
        context = {
            i for i, _ in metrics
            if set(self.raw[max(0, i - 2) : i]) & {"for", "among", "across"} and len(metrics) > 1
        }  # fmt: skip
        metrics = [(i, m) for i, m in metrics if i not in context] or metrics
        plain = [(i, m) for i, m in metrics if i not in self._weak]
        intent.weak = bool(metrics) and not plain
        if self.raw[0] in ("only", "just", "for", "excluding") or self.raw[:2] == ["and", "for"]:
            intent.weak = True  # "just for lines shipped in 1998" narrows, it does not re-measure
        if plain:
            metrics = plain
        unique = {m.sql: (i, m) for i, m in reversed(metrics)}  # the same figure named twice
        intent.metrics = [m for _, m in sorted(unique.values(), key=lambda x: x[0])]
        if not intent.metrics:
            spare = self._measure_behind_value()
            if spare is not None:
                intent.metrics = [Metric.of(spare)]
        if not intent.metrics and (gap := self._date_gap()) is not None:
            intent.metrics = [gap]
            self.superlative_at = None if not intent.groups else self.superlative_at
        if not intent.metrics and self.count_at:
            intent.metrics = [self._count_rows(values, intent.groups)]
        if not intent.metrics and self.schema.measures and self._asks_for_the_main_figure(intent):
            # "top suppliers", "how much did MACHINERY sell": the space's headline measure
            intent.metrics = [Metric.of(self.schema.measures[0])]
        if (
            self.raw[:2] in (["when", "was"], ["when", "were"], ["when", "did"])
            and not self.count_at
        ):
            intent.metrics = self._when(intent) or intent.metrics
        self._ranked_thing(intent)
        self._duration(intent)
        self._value_filters(intent, values)
        self._negative_balance(intent)
        self._time(intent)
        self._extremes(intent)
        self._percentages(intent)
        self._ranking(intent)
        return intent

    def _ranked_thing(self, intent: Intent) -> None:
        """Group by what follows the number in "the 5 countries whose suppliers …"."""
        if self.limit_at is None or intent.groups:
            return
        for piece in self.pieces:
            if piece.start > self.limit_at and piece.kind != "value":
                _, dim, table, _ = _candidates(piece)
                group = self._group(dim, table) if (dim or table) else None
                if group is not None:
                    intent.groups.append(group)
                    intent.rank_by_metric = True
                    intent.metrics = [m for m in intent.metrics if m.name != _count_name(table)]
                return

    def _duration(self, intent: Intent) -> None:
        """Answer "how long do air shipments take?" with a duration, not a count."""
        text = " ".join(self.raw)
        if not (
            "how long" in text or "how late" in text or ("long" in self.raw and "take" in text)
        ):
            return
        durations = [m for m in self.schema.measures if "datediff" in m.sql.lower()]
        late = "late" in self.st
        chosen = [m for m in durations if ("late" in m.name) == late] or durations
        if chosen:
            intent.metrics = [Metric.of(chosen[0])]

    def _extremes(self, intent: Intent) -> None:
        """Turn superlatives without grouping into MIN / MAX ("lowest and highest cost")."""
        if intent.limit or not self.superlatives or len(intent.metrics) != 1:
            return
        if intent.groups and len({d for _, d in self.superlatives}) < 2:
            return  # one superlative with groups ranks them ("which region has the most")
        metric = intent.metrics[0]
        # the worst delay is the longest one: "worst" and "best" follow the figure's sense
        directions = list(
            dict.fromkeys(
                (self.raw[i] == "worst") == more_is_worse(metric)
                if self.raw[i] in ("worst", "best")
                else desc
                for i, desc in self.superlatives
            )
        )
        funcs = ["MAX" if d else "MIN" for d in directions]
        swapped = [metric.with_aggregate(f) for f in funcs]
        if all(m is not None for m in swapped):
            intent.metrics = [m for m in swapped if m is not None]
            self.superlative_at = None

    def _percentages(self, intent: Intent) -> None:
        said = set(self.raw) | ({"%"} if "%" in self.question else set())
        if not said & {"percent", "percentage", "%", "pct", "share", "proportion"}:
            return
        rates = [m for m in intent.metrics if is_rate(m)]
        if rates:
            intent.metrics = [
                percent_of(m, share=False) if is_rate(m) else m for m in intent.metrics
            ]
        elif intent.groups and intent.metrics:
            intent.metrics = [*intent.metrics, percent_of(intent.metrics[0], share=True)]
        elif len(intent.metrics) == 1 and (part := [f for f in intent.filters if not f.is_time]):
            share = filtered_share(intent.metrics[0], part)
            if share is not None:
                intent.metrics = [share]
                intent.filters = [f for f in intent.filters if f not in part]

    def _qualifies_next(self, piece: Piece) -> bool:
        """Whether this word only qualifies the next ("supplier countries")."""
        nxt = next((p for p in self.pieces if p.start == piece.end), None)
        if nxt is None:
            return False
        _, dim, table, _ = _candidates(nxt)
        return dim is not None or table is not None

    def _asks_for(self, piece: Piece) -> bool:
        """Whether a plain column is a figure to compute.

        It is when an aggregate or ranking word names it, or when nothing else in the
        question is a figure.
        """
        if any(
            0 < piece.start - i <= 3 and not self._piece_between(i, piece.start)
            for i, _ in self.aggs
        ):
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
        after = self.raw[piece.end : piece.end + 4]
        if len(after) == 4 and after[0] == "between" and after[2] in ("and", "to"):
            low, high = self._number(piece.end + 1), self._number(piece.end + 3)
            if low is not None and high is not None:
                self._take(piece.end, piece.end + 4)
                return Filter(column, "BETWEEN", [_plain(low), _plain(high)])
        number = self._number(piece.end)
        if (
            number is not None
            and not self.used[piece.end]
            and piece.kind in ("column", "dimension")
        ):
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
            likes = self._joined_likes(col, [r.value for r in refs if r.op == "LIKE"])
            for slot in self._slots(col, likes):
                intent.filters.append(Filter(col, "LIKE", slot))

    def _negative_balance(self, intent: Intent) -> None:
        """Read "in the red" / "in debt" as below zero on the table's signed number."""
        if not self.in_the_red or any(f.op == "<" for f in intent.filters):
            return
        tables = {t for m in intent.metrics for t in m.tables}
        tables |= {g.column.table for g in intent.groups}
        candidates = [c for c in self.schema.signed if c.table in tables] or self.schema.signed
        if len(candidates) == 1:
            intent.filters.append(Filter(candidates[0], "<", [0]))

    def _slots(self, col: Column, words: list[str]) -> list[list[str]]:
        """Group words by where they stand in the column's values.

        Words in the same place are alternatives ("SM, MED or LG containers": OR); words in
        different places narrow together ("LARGE BRASS parts": class AND material).
        """
        values = [
            r.value.upper().split()
            for refs in self.schema.values.values()
            for r in refs
            if r.column is col and r.rank == 0
        ]
        slots: list[tuple[set[int], list[str]]] = []
        for word in words:
            places = {v.index(word.upper()) for v in values if word.upper() in v}
            for taken, group in slots:
                if not places or places & taken:
                    group.append(word)
                    taken |= places
                    break
            else:
                slots.append((places, [word]))
        return [group for _, group in slots]

    def _joined_likes(self, col: Column, words: list[str]) -> list[str]:
        """Words that stand together in the question and in a value match as one phrase."""
        words = list(dict.fromkeys(words))
        if len(words) < 2:
            return words
        text = " ".join(self.raw)
        joined = " ".join(w.lower() for w in words)
        values = {
            r.value.lower() for refs in self.schema.values.values() for r in refs if r.column is col
        }
        if joined in text and any(joined in v for v in values):
            return [" ".join(words)]
        return words

    def _ranking(self, intent: Intent) -> None:
        if self.superlative_at is None or not (intent.groups or intent.limit):
            return
        word = self.raw[self.superlative_at]
        if word in ("worst", "best") and intent.metrics and more_is_worse(intent.metrics[0]):
            # the worst late rate is the highest one
            intent.descending = word == "worst"
        intent.rank_by_metric = True
        if intent.limit is None:
            plural = self._plural_after(self.superlative_at)
            if self.raw[self.superlative_at] in ("top", "bottom") and plural:
                intent.limit = 10
            elif not plural and intent.groups:
                intent.limit = 1

    def _wants_group(self, piece: Piece) -> bool:
        if set(self.raw[max(0, piece.start - 2) : piece.start]) & {"all", "any"}:
            return False
        if self._agent_by(piece.start):
            return False
        cues = _GROUP_CUES | {"which", "top", "bottom"} | _DESC | _ASC
        if self._near(piece.start, cues, 3) or (
            self.raw[0] in ("list", "show") and piece.start <= 3
        ):
            return True
        if piece.start > 0 and self.raw[piece.start - 1] in ("and", ",", "&"):
            earlier = [p for p in self.pieces if p.end <= piece.start - 1]
            if earlier and earlier[-1].end == piece.start - 1 and self._wants_group(earlier[-1]):
                return True
        return self._near(piece.start, {"for"}, 1) and self._near(piece.start, {"each", "every"}, 2)

    def _agent_by(self, index: int) -> bool:
        """Whether a "by" names who did something ("held by suppliers"), not a grouping."""
        window = self.raw[max(0, index - 3) : index]
        if "by" not in window:
            return False
        at = index - 1 - window[::-1].index("by")
        if at <= 0 or self.used[at - 1] or self.raw[at + 1] in ("each", "every"):
            return False  # "units sold by priority": the verb belongs to a measure
        before = self.raw[at - 1]
        participles = {"held", "made", "sold", "bought", "owned", "taken", "given", "run", "kept"}
        return before in participles or before.endswith("ed")

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

    def _asks_for_the_main_figure(self, intent: Intent) -> bool:
        """Whether the question asks for the headline figure ("top suppliers", "how much")."""
        ranked = self.superlative_at is not None and bool(intent.groups)
        return ranked or "how much" in " ".join(self.raw)

    def _measure_behind_value(self) -> Measure | None:
        """The measure a word read as a value may stand for ("returns by ship mode")."""
        for piece in self.pieces:
            if piece.kind == "value":
                measure, _, _, _ = _candidates(piece)
                if measure is not None:
                    return measure
        return None

    def _better_measure(self, piece: Piece, measure: Measure) -> Measure:
        """A one-word match may stand for a measure the rest of the question names better.

        "revenue we lost to returns": "returns" alone is the returned line items, but
        "return" and "revenue" together are the returned revenue.
        """
        if piece.end - piece.start != 1:
            return measure
        taken = {i for p in self.pieces if p is not piece for i in range(p.start, p.end)}
        said = {s for i, s in enumerate(self.st) if i not in taken}
        best, best_overlap = measure, 1
        for m in self.schema.measures:
            for phrase in m.phrases:
                words = set(phrase)
                if self.st[piece.start] in words and words <= said and len(words) > best_overlap:
                    best, best_overlap = m, len(words)
        return best

    def _summed_count(self) -> tuple[int, Metric] | None:
        """The summed measure "how many units ..." asks for, named by its first word."""
        for at in self.count_at:
            if at < len(self.st) and not self.used[at]:
                for m in self.schema.measures:
                    sql = m.sql.strip().upper()
                    if sql.startswith("SUM(") and any(p[0] == self.st[at] for p in m.phrases):
                        self._take(at, at + 1)
                        return at, Metric.of(m)
        return None

    def _count_rows(self, values: dict[int, list[ValueRef]], groups: list[Group]) -> Metric:
        """The figure for "how many ..." when no measure is named.

        The space's row-count measure, else rows of the table asked about; "how many
        units" names the summed measure whose name starts with "units".
        """
        for at in self.count_at:
            if at < len(self.st) and not self.used[at]:
                for m in self.schema.measures:
                    if m.sql.strip().upper().startswith("SUM(") and any(
                        p[0] == self.st[at] for p in m.phrases
                    ):
                        self._take(at, at + 1)
                        return Metric.of(m)
        declared = next(
            (m for m in self.schema.measures if m.sql.replace(" ", "").upper() == "COUNT(*)"), None
        )
        if declared is not None:
            return Metric.of(declared)
        tables = [refs[0].column.table for refs in values.values()] + [
            g.column.table for g in groups
        ]
        if not tables:
            raise Unanswerable("I could not tell what to count.")
        return Metric(f"{tables[0].rsplit('.', 1)[1]}_count", "COUNT(*)", {tables[0]})

    def _count(self, table: Table | None) -> Metric:
        assert table is not None
        name = f"{table.name.rsplit('.', 1)[1]}_count"
        if table.key is not None:
            return Metric(name, f"COUNT(DISTINCT {table.key.name})", {table.name})
        return Metric(name, "COUNT(*)", {table.name})

    def _group(self, dim: Dimension | None, table: Table | None) -> Group | None:
        if dim is not None and dim.part is not None:
            return Group(
                dim.column, None, f"{'_'.join(dim.column.words)}_{dim.name}", part=dim.part
            )
        if dim is not None:
            return self._group_for_column(dim.column, dim.grain, dim.name)
        column = (table.label or table.key) if table is not None else None
        if table is None or column is None:
            return None  # rows of a table without a key are no group
        return self._group_for_column(column, None, table.name.rsplit(".", 1)[1])
