"""Roles: what each recognised piece of a question does.

The same words play different parts by their neighbours: "how many customers" counts
customers, "top 10 customers" ranks them, "revenue from customers in GERMANY" only
says whose revenue. This module turns the pieces into an :class:`Intent` — metrics,
groups, filters and ranking — and applies the conventions questions share: shares and
percentages, MIN and MAX for "lowest and highest", the headline figure for "top …".
"""

from __future__ import annotations

import re

from genie_tools.emulator.nl2sql.compile import literal
from genie_tools.emulator.nl2sql.evidence import evidence_words
from genie_tools.emulator.nl2sql.intent import (
    Filter,
    Group,
    Intent,
    Metric,
    counted_condition,
    filtered_share,
    is_rate,
    is_row_count,
    more_is_worse,
    percent_of,
    subset_share,
)
from genie_tools.emulator.nl2sql.patterns import _ASC, _DESC, _GROUP_CUES, PatternReading
from genie_tools.emulator.nl2sql.reading import (
    Piece,
    Unanswerable,
    _ambiguous,
    _candidates,
    _single_column,
)
from genie_tools.emulator.nl2sql.schema import (
    Column,
    Dimension,
    Measure,
    Rule,
    Table,
    ValueRef,
)
from genie_tools.emulator.nl2sql.text import MONTHS, stem


def _count_name(table: Table | None) -> str:
    return f"{table.name.rsplit('.', 1)[1]}_count" if table is not None else ""


_LINKS = frozenset("is was are were of at".split())
_COMPARE_BEFORE = {
    ("larger", "than"): ">", ("bigger", "than"): ">", ("greater", "than"): ">",
    ("more", "than"): ">", ("smaller", "than"): "<", ("less", "than"): "<", ("above",): ">",
    ("below",): "<", ("over",): ">", ("under",): "<",
}  # fmt: skip
_QUESTION_WORDS = frozenset(
    "what what's which who whose how how's when where why is are was were do does did can could "
    "would will should".split()
)
_COMPARING = frozenset(
    "more than greater higher over above exceeding at least less fewer lower under below most "
    "on in their its the of for".split()
)
_EARNING = frozenset(
    "bring brought generate generated earn earned sell sold make made contribute "
    "contributed".split()
)


def _distinct_counts(metrics: list[Metric]) -> list[Metric]:
    """The counts of distinct keys among ``metrics`` ("orders": ``COUNT(DISTINCT o_orderkey)``)."""
    return [m for m in metrics if re.match(r"\s*COUNT\(\s*DISTINCT", m.sql, re.I)]


def _named_before(pieces: list[Piece], index: int) -> bool:
    """Whether a table is named before ``index`` ("of the orders …, how many …")."""
    return any(p.kind == "entity" and p.end <= index for p in pieces)


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
                ref = self._value_of(piece)
                if ref.op == "=" and set(self.raw[max(0, piece.start - 2) : piece.start]) & {
                    "not", "nothing", "none", "never", "without", "isn't", "aren't", "wasn't",
                }:  # fmt: skip
                    # "with nothing fulfilled yet", "lines not returned": the other rows
                    intent.filters.append(Filter(ref.column, "!=", [ref.value]))
                    continue
                values.setdefault(id(ref.column), []).append(ref)
                continue
            if piece.start == self.exists_at and table is not None and piece.kind != "value":
                continue  # "customers who placed at least one order": orders only join
            if piece.kind == "rule":
                rule = next(o for o in piece.options if isinstance(o, Rule))
                intent.filters.append(Filter(rule.column, "SQL", [rule.sql]))
                continue
            if piece.kind == "measure" and measure is not None:
                having = self._having(piece, Metric.of(measure))
                if having is not None:
                    intent.having.append(having)  # "more than 20 orders"
                    continue
            target = column or (dim.column if dim else None) or _single_column(measure, self.schema)
            condition = self._condition_on(piece, target)
            key_filter = self._key_named(piece, table)
            if condition is not None:
                intent.filters.append(condition)
            elif key_filter is not None:
                intent.filters.append(key_filter)  # "part 42"
            elif (distinct := self._distinct_values(piece, dim, column)) is not None:
                metrics.append((piece.start, distinct))  # "how many distinct part types"
            elif (
                (measure or table)
                and self.raw[piece.start - 1 : piece.start] in (["most"], ["fewest"])
                and (piece.kind != "measure" or _ambiguous(piece))
            ):
                # "which segments placed the most orders": a count of orders, not a group
                metrics.append((piece.start, Metric.of(measure) if measure else self._count(table)))
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
        # "among customers who placed orders": a population, whose words describe no figure
        self._context = {i for i in context if "among" in self.raw[max(0, i - 2) : i]}
        plain = [(i, m) for i, m in metrics if i not in self._weak]
        intent.weak = bool(metrics) and not plain
        if self.raw[0] in ("only", "just", "for", "excluding") or self.raw[:2] == ["and", "for"]:
            intent.weak = True  # "just for lines shipped in 1998" narrows, it does not re-measure
        if plain:
            metrics = plain
        unique = {m.sql: (i, m) for i, m in reversed(metrics)}  # the same figure named twice
        intent.metrics = [m for _, m in sorted(unique.values(), key=lambda x: x[0])]
        if (
            self.count_at
            and len(intent.metrics) == 2
            and not {"percent", "percentage", "share", "%", "proportion"} & set(self.raw)
            and subset_share(intent.metrics) is not None
        ):
            # "how many shipments were delivered late": the late ones, not all and the late
            intent.metrics = [m for m in intent.metrics if counted_condition(m) is not None]
        if intent.having:
            self._qualifying_groups(intent)
        if not intent.metrics:
            spare = self._measure_behind_value()
            if spare is not None:
                intent.metrics = [Metric.of(spare)]
                self._spare = True
        if not intent.metrics and (gap := self._date_gap()) is not None:
            intent.metrics = [gap]
            self.superlative_at = None if not intent.groups else self.superlative_at
        if not intent.metrics and self.count_at:
            intent.metrics = [self._count_rows(values, intent.groups)]
        how_much = "how much" in " ".join(self.raw)
        if (not intent.metrics or (intent.weak and how_much)) and (
            self.schema.measures and self._asks_for_the_main_figure(intent)
        ):
            # "top suppliers", "how much did MACHINERY sell": the space's headline measure,
            # unless the words describe another ("the cheapest supplier" by unit cost)
            described = self._clearly_described()
            intent.metrics = [Metric.of(described or self.schema.measures[0])]
            intent.weak = intent.weak or described is None  # a default, not a request
        self._described_measure(intent, metrics)
        if (
            self.raw[:2] in (["when", "was"], ["when", "were"], ["when", "did"])
            and not self.count_at
        ):
            intent.metrics = self._when(intent) or intent.metrics
        self._coded_values(intent)
        if self.in_the_red and not intent.metrics:
            self._negative_balance(intent)  # "which suppliers in BRAZIL are in the red"
        self._listing(intent)
        self._ranked_thing(intent)
        self._on_average(intent)
        self._duration(intent)
        self._paired_aggregates(intent)
        self._value_filters(intent, values)
        self._negative_balance(intent)
        self._time(intent)
        self._extremes(intent)
        self._rows_with_at_least_one(intent)
        self._rows_without(intent)
        self._values_inside_figures(intent)
        self._percentages(intent)
        self._ranking(intent)
        return intent

    def _having(self, piece: Piece, metric: Metric) -> tuple[Metric, str, float] | None:
        """A condition on an aggregate: "more than 20 orders", "an average price above 1,415".

        A count can only be compared per group; another measure only when the question
        names its aggregate ("average retail price above"), else the rows are compared
        ("parts with a retail price above 1,415").
        """
        is_count = metric.sql.strip().upper().startswith("COUNT(")
        words = set(self.raw[max(0, piece.start - 1) : piece.end])
        if not is_count and not words & {"average", "avg", "mean", "total", "sum", "combined"}:
            return None
        for c in self.compares:
            gap = self.raw[piece.end : c[0]]
            # "more than 20 orders", "an average price above 1,415", "... of over 1,000"
            if 0 <= piece.start - c[0] - 2 <= 1 or (len(gap) <= 1 and set(gap) <= _LINKS):
                self.compares.remove(c)
                aggregated = self._aggregated(piece, metric)
                return aggregated, c[1], _plain(c[2])
        return None

    def _qualifying_groups(self, intent: Intent) -> None:
        """Shape a question with conditions on aggregates: the groups and what they show."""
        shown = [h[0] for h in intent.having]
        measured = {t for m in shown for t in m.tables}
        if len(intent.groups) > 1:
            # "in which countries do suppliers have an average balance above …": the
            # suppliers are the rows averaged, not a group
            intent.groups = [
                g for g in intent.groups if g.with_key is None or g.column.table not in measured
            ] or intent.groups
        if intent.groups:
            # "which brands have an average retail price above 1,415": brand and that average
            grouped = {g.column.table for g in intent.groups}
            others = [
                m for m in intent.metrics if not (m.tables & grouped and "COUNT(" in m.sql.upper())
            ]
            intent.metrics = list({m.sql: m for m in [*shown, *others]}.values())
            return
        counted = next((m for m in intent.metrics if "COUNT(" in m.sql.upper()), None)
        table = self.schema.tables.get(next(iter(counted.tables))) if counted else None
        if counted is None or table is None or table.key is None:
            intent.having = []  # nothing to group by: compare the rows instead
            return
        # "how many customers have placed more than 20 orders": customers that qualify
        intent.groups = [self._group_for_column(table.key)]
        intent.metrics = [counted]
        intent.count_groups = True

    def _ranked_thing(self, intent: Intent) -> None:
        """Group by what follows the number in "the 5 countries whose suppliers …"."""
        if self.limit_at is None or intent.groups:
            return
        among = [  # "among customers in GERMANY who …, which 5 brought in the least": them
            p
            for p in self.pieces
            if p.end <= self.limit_at
            and p.start > 0
            and self.raw[p.start - 1] in ("among", "of", "the")
            and self.raw[0] in ("among", "of")
            and p.kind != "value"
        ]
        after = next(
            (
                p
                for p in self.pieces
                if p.start > self.limit_at and p.kind != "value" and not self._qualifies_next(p)
            ),
            None,
        )  # "the top 5 MACHINERY-segment customers": the customers
        for piece in [p for p in (after, *among[:1]) if p is not None]:
            measure, dim, table, column = _candidates(piece)
            if piece in among and table is None and measure is not None:
                # "among customers who placed orders in 1997": the customers, not their count
                table = next(
                    (o for k, o in self.p.phrases.get((self.st[piece.start],), [])
                     if k == "entity" and isinstance(o, Table)),
                    None,
                )  # fmt: skip
                if table is not None:
                    intent.metrics = [m for m in intent.metrics if m.sql != measure.sql]
            group = self._group(dim, table) if (dim or table) else None
            if group is None and column is not None and column.kind == "string":
                group = self._group_for_column(column, None, " ".join(column.words))
            if group is not None:
                intent.groups.append(group)
                intent.rank_by_metric = True
                intent.metrics = [m for m in intent.metrics if m.name != _count_name(table)]
                return

    def _coded_values(self, intent: Intent) -> None:
        """A code the data uses for rows of a large column: "Clerk#000000088"."""
        for i, word in enumerate(self.raw):
            match = re.fullmatch(r"([a-z]+#)(\d+)", word)
            if self.used[i] or match is None or match.group(1) not in self.schema.codes:
                continue
            column, prefix = self.schema.codes[match.group(1)]
            self._take(i, i + 1)
            intent.filters.append(Filter(column, "=", [prefix + match.group(2)]))
            intent.groups = [g for g in intent.groups if g.column is not column]

    def _listing(self, intent: Intent) -> None:
        """Rows rather than figures.

        For example "list the FURNITURE customers in PERU with a balance above 9,500" or
        "show me the ECONOMY ANODIZED TIN parts of size 10".
        """
        asks_rows = self.raw[0] in ("list", "show", "display", "give", "find", "which", "who")
        asks_rows = asks_rows or self._opens_with_rows()  # "French suppliers with …?"
        # "do any of our Canadian suppliers have customer complaints? which ones?"
        asks_rows = asks_rows or (
            self.raw[0] in ("do", "does", "are", "is") and "any" in self.raw[:3]
        )
        if not asks_rows or self.count_at or self.superlatives or self.aggs:
            return
        compared = {
            id(f.column) for f in intent.filters if f.op in (">", ">=", "<", "<=", "BETWEEN")
        }
        conditions = [  # "suppliers with a balance over 9k": a condition, not a figure
            m for m in intent.metrics if (c := _single_column(m, self.schema)) and id(c) in compared
        ]
        metrics = [m for m in intent.metrics if m not in conditions]
        if any(not m.name.endswith("_count") for m in metrics) or not intent.filters:
            return
        if metrics and not intent.weak and not conditions:
            return
        tables = [t for p in self.pieces if (t := _candidates(p)[2]) is not None]
        tables += [self.schema.tables[t] for m in conditions for t in sorted(m.tables)]
        agent = self._agent_table()
        if agent is not None:
            tables.insert(0, agent)  # "who supplies part 1234": the suppliers
        if not tables or (tables[0].label is None and tables[0].key is None):
            return
        table = tables[0]
        listed = self._group(None, table)
        if listed is None:
            return
        shown = [
            Group(f.column, None, "_".join(f.column.words))
            for f in intent.filters
            if f.column.kind == "number" and f.column.table == table.name and not f.is_time
            and f.column is not table.key
        ]  # fmt: skip
        told = self._column_described_after_and()
        if told is not None and all(g.column is not told for g in shown):
            shown.append(Group(told, None, "_".join(told.words)))  # "… and what each charges"
        intent.metrics, intent.groups, intent.listing = [], [listed, *shown], True

    def _agent_table(self) -> Table | None:
        """The table named by the doer of "who supplies …" (suppliers), if any."""
        if self.raw[0] != "who" or len(self.raw) < 2:
            return None
        verb = self.raw[1]
        for agent in {stem(verb) + "er", verb[:-1] + "r", verb[:-2] + "ier", verb + "er"}:
            for kind, o in self.p.phrases.get((stem(agent),), []):
                if kind == "entity" and isinstance(o, Table):
                    return o
        return None

    def _column_described_after_and(self) -> Column | None:
        """The number a trailing "… and what does each of them charge per unit?" asks for.

        Its words are matched against the numeric columns' comments; two shared words and
        no tie are needed.
        """
        text = " ".join(self.raw)
        match = re.search(r"\band (what|how much|how many)\b(.*)$", text)
        if match is None:
            return None
        words = set(evidence_words(match.group(2)))
        scored = []
        for cols in self.schema.columns.values():
            for col in cols:
                if col.kind != "number" or "key" in col.words:
                    continue
                said = set(evidence_words(col.comment)) | {stem(w) for w in col.words}
                scored.append((len(words & said), col.name, col))
        scored.sort(key=lambda x: (-x[0], x[1]))
        if not scored or scored[0][0] < 2 or (len(scored) > 1 and scored[1][0] == scored[0][0]):
            return None
        return scored[0][2]

    def _opens_with_rows(self) -> bool:
        """Whether the request is a bare noun phrase naming rows ("French suppliers with …")."""
        if self.raw[0] in _QUESTION_WORDS:
            return False
        first = next((p for p in self.pieces if p.kind != "value"), None)
        if first is None:
            return False
        named = {i for p in self.pieces if p.kind == "value" for i in range(p.start, p.end)}
        return all(i in named for i in range(first.start)) and any(
            k == "entity" for k, _ in self.p.phrases.get((self.st[first.start],), [])
        )

    def _paired_aggregates(self, intent: Intent) -> None:
        """Read "the minimum and maximum account balances" as both figures."""
        funcs = list(dict.fromkeys(f for _, f in self.aggs if f in ("MIN", "MAX", "AVG")))
        if len(funcs) < 2 or len(intent.metrics) != 1:
            return
        joined = any(self.raw[i + 1 : i + 2] in (["and"], ["or"], ["&"]) for i, f in self.aggs)
        swapped = [intent.metrics[0].with_aggregate(f) for f in funcs]
        if joined and all(m is not None for m in swapped):
            intent.metrics = [m for m in swapped if m is not None]

    def _on_average(self, intent: Intent) -> None:
        """Read "how many units does an AIR shipment carry on average" as the mean of the sum.

        An "average" that qualifies no figure in particular ("on average", at either end)
        averages the summed figure per row; a row count read beside it ("a shipment") only
        names the rows.
        """
        loose = [i for i, f in self.aggs if f == "AVG" and self.raw[i - 1 : i] == ["on"]]
        if not loose:
            return
        summed = [m for m in intent.metrics if re.match(r"\s*SUM\(", m.sql, re.I)]
        counts = [m for m in intent.metrics if is_row_count(m.sql)]
        if len(summed) == 1 and len(intent.metrics) == 1 + len(counts):
            averaged = summed[0].with_aggregate("AVG")
            if averaged is not None:
                intent.metrics = [averaged]

    def _duration(self, intent: Intent) -> None:
        """Answer "how long do air shipments take?" with a duration, not a count."""
        text = " ".join(self.raw)
        takes = {"take", "takes", "took", "taking", "spend", "spent"} & set(self.raw)
        if not (
            "how long" in text
            or "how late" in text
            or "how many days" in text
            or (takes and {"long", "days", "time"} & set(self.raw))
            or ("days" in self.raw and bool(self.superlatives or self.aggs))
        ):
            return
        if len(intent.metrics) == 1 and "datediff" in intent.metrics[0].sql.lower():
            return  # the question already named its duration ("processing time")
        durations = [k for k, m in enumerate(self.schema.measures) if "datediff" in m.sql.lower()]
        late = "late" in self.st
        chosen = [k for k in durations if "late" in self.schema.measures[k].name] if late else []
        chosen = chosen or durations
        if chosen:
            # "how many days does a truck shipment take to reach the customer": the
            # duration the question's words describe best (transit, not processing)
            words = self._evidence()
            best = max(chosen, key=lambda k: (self.schema.evidence.score(k, words), -k))
            metric = Metric.of(self.schema.measures[best])
            extreme = next((f for _, f in self.aggs if f in ("MIN", "MAX")), None)
            if extreme is not None:  # "the maximum number of days ... after its commit date"
                metric = metric.with_aggregate(extreme) or metric
            intent.metrics = [metric]

    def _extremes(self, intent: Intent) -> None:
        """Turn superlatives without grouping into MIN / MAX ("lowest and highest cost")."""
        if intent.limit or not self.superlatives or len(intent.metrics) != 1:
            return
        sorting = {"sort", "sorted", "rank", "ranked"} & set(self.raw) or any(
            self.raw[i + 1 : i + 2] in (["first"], ["last"]) for i, _ in self.superlatives
        )
        if sorting:
            return  # "sort that by revenue, highest first": a direction, not a MAX
        per_group = any(  # "for each manufacturer", not "what they charge per unit"
            word in ("each", "every", "per")
            and any(
                p.start in (i + 1, i + 2) and (_candidates(p)[1] or _candidates(p)[2])
                for p in self.pieces
            )
            for i, word in enumerate(self.raw)
        )
        if intent.groups and len({d for _, d in self.superlatives}) < 2 and not per_group:
            # one superlative with groups ranks them ("which region has the most"), but
            # "the lowest cost for each manufacturer" is the lowest within each group
            return
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
        # "%" asks for a percentage unless it belongs to a number ("a 10% discount")
        loose_percent = "%" in re.sub(r"\d+(?:\.\d+)?\s*%", "", self.question)
        said = set(self.raw) | ({"%"} if loose_percent else set())
        rates = [m for m in intent.metrics if is_rate(m)]
        if not said & {"percent", "percentage", "%", "pct", "share", "proportion"}:
            if not said & {"fraction", "ratio", "decimal"}:
                # "the return rate": the declared fraction, and beside it the percentage
                # the space's examples show it as ("… AS return_rate_pct")
                shown = {m.sql for m in self.schema.measures if m.as_percent}
                intent.metrics = [
                    x
                    for m in intent.metrics
                    for x in ([m, percent_of(m, share=False)] if m.sql in shown else [m])
                ]
            return
        counted = [m for m in intent.metrics if counted_condition(m) is not None]
        declared = self._rate_for(counted[0]) if len(counted) == 1 else None
        part_of_whole = subset_share(intent.metrics) or self._share_of_named_rows(intent)
        if part_of_whole is not None and not rates:
            # "what share of shipments were delivered late": the declared rate when there is
            # one (it knows the right denominator), else the part over the whole
            intent.metrics = [percent_of(declared, share=False) if declared else part_of_whole]
        elif rates:
            intent.metrics = [
                percent_of(m, share=False) if is_rate(m) else m for m in intent.metrics
            ]
        elif (
            len(intent.metrics) == 1
            and declared is not None
            and (not intent.groups or not said & {"share", "all", "total", "overall"})
        ):
            # "what percentage of shipments were late, by ship year": the rate in each group
            intent.metrics = [percent_of(declared, share=False)]
        elif intent.groups and intent.metrics:
            intent.metrics = [*intent.metrics, percent_of(intent.metrics[0], share=True)]
        elif len(intent.metrics) == 1 and (part := [f for f in intent.filters if not f.is_time]):
            share = filtered_share(intent.metrics[0], part)
            if share is not None:
                intent.metrics = [share]
                intent.filters = [f for f in intent.filters if f not in part]

    def _after_percentage_of(self, piece: Piece) -> bool:
        """Whether the piece names the whole of "what percentage of <the rows>"."""
        start = piece.start - 2
        while start > 0 and (self.raw[start] in ("the", "all", "our") or self._is_time_word(start)):
            start -= 1  # "what percentage of 1992 shipments"
        return start >= 0 and self.raw[start : start + 2] in (
            ["percentage", "of"], ["percent", "of"], ["share", "of"], ["proportion", "of"],
            ["fraction", "of"],
        )  # fmt: skip

    def _rate_for(self, count: Metric) -> Metric | None:
        """The space's declared rate of the rows a count picks (late deliveries: late rate)."""
        condition = counted_condition(count)
        if condition is None:
            return None
        squeeze = re.sub(r"\s+", "", condition).lower()
        for m in self.schema.measures:
            metric = Metric.of(m)
            if is_rate(metric) and squeeze in re.sub(r"\s+", "", m.sql).lower():
                return metric
        return None

    def _share_of_named_rows(self, intent: Intent) -> Metric | None:
        """Read "what percentage of line items on 1-URGENT orders were late" as late over all.

        The rows after "percentage of" are the whole; a count of matching rows of the same
        table is the part. Other filters narrow both.
        """
        if len(intent.metrics) != 1 or counted_condition(intent.metrics[0]) is None:
            return None
        part = intent.metrics[0]
        for i in range(len(self.raw) - 1):
            if self.raw[i] in ("percentage", "percent", "share", "proportion", "fraction") and (
                self.raw[i + 1] == "of"
            ):
                start = i + 2 + (self.raw[i + 2 : i + 3] in (["the"], ["all"], ["our"]))
                piece = next((p for p in self.pieces if p.start == start), None)
                measure, _, table, _ = _candidates(piece) if piece else (None, None, None, None)
                if table is None and measure is not None and is_row_count(measure.sql):
                    table = self.schema.tables.get(next(iter(measure.tables), ""))
                if table is not None and part.tables == {table.name}:
                    return Metric(f"{part.name}_pct", f"100 * {part.sql} / COUNT(*)", {table.name})
        return None

    def _rows_with_at_least_one(self, intent: Intent) -> None:
        """Read "how many orders had at least one late delivery" as orders with such a line.

        Counting orders (distinct keys) over their lines, with the lines' condition as a
        filter, gives the orders that have at least one matching line. The condition is a
        counted measure named ("late delivery"), filters on the lines ("shipped by MAIL"),
        or the measure the words after "at least one" describe ("item arrive late").
        """
        text = " ".join(self.raw)
        keyed = _distinct_counts(intent.metrics)
        if (
            not keyed
            and self.count_at
            and not any(p.start == self.count_at[0] for p in self.pieces)
        ):
            # "for orders placed in 1997, how many were late": the orders named before
            named = [t for p in self.pieces if p.kind == "entity" and (t := _candidates(p)[2])]
            if named and named[0].key is not None and _named_before(self.pieces, self.count_at[0]):
                keyed = [self._count(named[0])]
                intent.metrics = [keyed[0], *intent.metrics]
        late = self._rows_called(keyed[0]) if len(keyed) == 1 else None
        if late is not None:
            # "how many urgent orders ended up late?": an order is late when one of its lines is
            intent.metrics = [*intent.metrics, late]
        elif not re.search(r"\bat least (one|1|a|an)\b|\bany\b", text):
            return
        if len(keyed) != 1:
            return
        counted = keyed[0]
        conditions: list[tuple[Metric, str]] = []
        for m in intent.metrics:
            if m is counted:
                continue
            if (c := counted_condition(m)) is not None:
                conditions.append((m, c))
            elif not (is_row_count(m.sql) and not m.tables & counted.tables):
                return  # another figure asked for: not this shape
        filtered_rows = any(f.column.table not in counted.tables for f in intent.filters)
        if not conditions and self.exists_at is not None and not filtered_rows:
            words = evidence_words(" ".join(self.raw[self.exists_at :]))
            evidence = self.schema.evidence
            ranked = [
                (score, k)
                for score, k in evidence.ranked(words)
                if counted_condition(Metric.of(self.schema.measures[k])) is not None
            ]
            if (
                ranked
                and ranked[0][0] >= 2.0
                and (len(ranked) == 1 or ranked[0][0] >= 1.3 * ranked[1][0])
            ):
                described = Metric.of(self.schema.measures[ranked[0][1]])
                conditions.append((described, counted_condition(described) or ""))
        if not conditions and not filtered_rows:
            return
        for metric, condition in conditions:
            column = self.schema.column_named_in(condition, metric.tables)
            if column is None:
                return
            intent.filters.append(Filter(column, "SQL", [condition]))
        intent.metrics = [counted]

    def _rows_without(self, intent: Intent) -> None:
        """Read "customers who have never placed an order" as customers with no order rows.

        The counted table's key must not appear in the other table's column that joins to it.
        """
        if "never" not in self.raw:
            return
        at = self.raw.index("never")
        keyed = _distinct_counts(intent.metrics)
        if not keyed:
            return
        counted = self.schema.tables.get(next(iter(keyed[0].tables)))
        if counted is None or counted.key is None:
            return
        for piece in self.pieces:
            measure, _, table, _ = _candidates(piece)
            other = table or (
                self.schema.tables.get(next(iter(measure.tables))) if measure else None
            )
            if piece.start <= at or other is None or other.name == counted.name:
                continue
            link = next(
                (
                    theirs
                    for there, mine, theirs in self.schema.edges.get(counted.name, [])
                    if there == other.name and mine is counted.key
                ),
                None,
            )
            if link is None:
                continue
            condition = (
                f"{counted.key.name} NOT IN (SELECT {link.name} FROM {other.name} "
                f"WHERE {link.name} IS NOT NULL)"
            )
            intent.filters = [f for f in intent.filters if f.column.table != other.name]
            intent.filters.append(Filter(counted.key, "SQL", [condition]))
            intent.metrics = [keyed[0]]
            return

    def _values_inside_figures(self, intent: Intent) -> None:
        """Drop a value filter that a figure already counts by ("share of lines returned").

        "What share of line items get returned" names the return rate, whose own condition
        is ``l_returnflag = 'R'``; filtering the rows by it as well would make it 100 %.
        """
        sql = " ".join(m.sql for m in intent.metrics).replace(" ", "").lower()
        if "case" not in sql:
            return
        intent.filters = [
            f
            for f in intent.filters
            if not (
                f.op == "="
                and not f.is_time
                and f"{f.column.name}={literal(f.values[0])}".replace(" ", "").lower() in sql
            )
        ]

    def _rows_called(self, counted: Metric) -> Metric | None:
        """A counted measure of other rows whose first word describes the counted ones.

        "orders … late": late deliveries are lines, and the instructions call an order late
        when one of its lines is. Only a word no other reading took.
        """
        for i, word in enumerate(self.st):
            if self.used[i] or any(p.start <= i < p.end for p in self.pieces):
                continue
            for measure in self.schema.measures:
                metric = Metric.of(measure)
                if (
                    counted_condition(metric) is not None
                    and measure.phrases[0][0] == word
                    and not measure.tables & counted.tables
                ):
                    return metric
        return None

    def _qualifies_next(self, piece: Piece) -> bool:
        """Whether this word only qualifies the next.

        For example "supplier countries" or "customer account balances".
        """
        nxt = next((p for p in self.pieces if p.start == piece.end), None)
        if nxt is None:
            return False
        _, dim, table, column = _candidates(nxt)
        _, _, own, _ = _candidates(piece)
        return (
            dim is not None
            or table is not None
            or (own is not None and column is not None and column.table == own.name)
        )

    def _key_named(self, piece: Piece, table: Table | None) -> Filter | None:
        """A row named by its key: "part 42", "supplier 17"."""
        if table is None or table.key is None:
            return None
        at = piece.end
        if self.raw[at : at + 1] in (["key"], ["id"], ["number"], ["#"], ["no"]):
            at += 1  # "part key 1000", "supplier number 17"
        number = self._number(at)
        if number is None or number != int(number) or self.used[at] or not self.raw[at].isdigit():
            return None
        self._take(piece.end, at + 1)
        return Filter(table.key, "=", [int(number)])

    def _distinct_values(
        self, piece: Piece, dim: Dimension | None, column: Column | None
    ) -> Metric | None:
        """The number of different values of a column: "how many distinct part types"."""
        if piece.start == 0 or self.raw[piece.start - 1] not in ("distinct", "different", "unique"):
            return None
        col = column or (dim.column if dim is not None and dim.grain is None else None)
        if col is None or not any(0 <= piece.start - 1 - at <= 1 for at in self.count_at):
            return None
        name = f"{'_'.join(col.words)}_count"
        return Metric(name, f"COUNT(DISTINCT {col.name})", {col.table})

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
        """Whether "how many" counts this piece, maybe past qualifiers.

        For example "how many 1-URGENT priority orders" or "how many French suppliers".
        """
        for at in self.count_at:
            gap = piece.start - at
            if gap == 1 and self.raw[at] in ("per", "by", "in", "for"):
                continue  # "how many per region": the regions group what is counted
            if 0 <= gap <= 1:
                return True
            if 1 < gap <= 4 and all(self._qualifier(k) for k in range(at, piece.start)):
                return True
        return False

    def _qualifier(self, index: int) -> bool:
        """A word that only narrows the next noun: a value or a dimension's name."""
        if self.raw[index] in ("different", "distinct", "unique", "separate", "individual"):
            return True
        if self.raw[index] in ("of", "our", "the", "all", "your", "my"):
            return True  # "how many of our suppliers"
        return any(
            p.start <= index < p.end and p.kind in ("value", "rule", "dimension")
            for p in self.pieces
        )

    def _condition_on(self, piece: Piece, column: Column | None) -> Filter | None:
        """A comparison attached to a column: "balance below 0", "size 15", "negative balance"."""
        if column is None or column.kind != "number":
            return None
        at = piece.start - 1
        if (
            at >= 0
            and not self.used[at]
            and (number := self._number(at)) is not None
            and "fraction" in column.comment.lower()
            and re.search(rf"\b{re.escape(self.raw[at])}\s*%", self.question)
        ):
            # "a 10% discount" on a column stored as a fraction (0.10)
            self._take(at, at + 1)
            return Filter(column, "=", [round(number / 100, 6)])
        for c in self.compares:
            if (
                0 <= c[0] - piece.end <= 1
                or 0 <= piece.start - c[0] - 2 <= 1
                or self._compared_before(c[0], piece.start)  # "more than $9,000 on their account"
            ):
                self.compares.remove(c)
                value = c[2]
                if "fraction" in column.comment.lower() and re.search(
                    rf"\b{re.escape(format(_plain(value)))}\s*%", self.question
                ):
                    value = round(value / 100, 6)  # "a discount of 8% or more": 0.08
                return Filter(column, c[1], [_plain(value)])
        before = set(self.raw[max(0, piece.start - 2) : piece.start])
        if "negative" in before:
            return Filter(column, "<", [0])
        if "positive" in before:
            return Filter(column, ">", [0])
        if self.raw[piece.start - 1 : piece.start] == ["between"]:
            # "between size 10 and 20"
            low, high = self._number(piece.end), self._number(piece.end + 2)
            if (
                low is not None
                and high is not None
                and self.raw[piece.end + 1 : piece.end + 2] in (["and"], ["to"])
            ):
                self._take(piece.start - 1, piece.end + 3)
                return Filter(column, "BETWEEN", [_plain(low), _plain(high)])
        ahead = tuple(self.raw[max(0, piece.start - 2) : piece.start])
        number = self._number(piece.end)
        if number is not None and not self.used[piece.end]:
            for phrase, op in _COMPARE_BEFORE.items():
                if ahead[-len(phrase) :] == phrase:
                    self._take(piece.end, piece.end + 1)
                    self._take(piece.start - len(phrase), piece.start)
                    return Filter(column, op, [_plain(number)])  # "larger than size 40"
        after = self.raw[piece.end : piece.end + 4]
        if len(after) == 4 and after[0] in ("between", "from") and after[2] in ("and", "to"):
            low, high = self._number(piece.end + 1), self._number(piece.end + 3)
            if low is not None and high is not None:
                self._take(piece.end, piece.end + 4)
                return Filter(column, "BETWEEN", [_plain(low), _plain(high)])
        if len(after) >= 3 and after[1] in ("to", "through", "-", "thru"):
            low, high = self._number(piece.end), self._number(piece.end + 2)
            if low is not None and high is not None and not self.used[piece.end]:
                self._take(piece.end, piece.end + 3)  # "sizes 1 to 3"
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

    def _compared_before(self, at: int, start: int) -> bool:
        """Whether a comparison at ``at`` bears on the words at ``start`` past linking words."""
        between = self.raw[at:start]
        return 0 < len(between) <= 6 and all(
            w in _COMPARING or w.replace(".", "").isdigit() for w in between
        )

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

    def _value_of(self, piece: Piece) -> ValueRef:
        """The value a word names; among equal readings, the one of a table the question names.

        "Open" is an order status and a line status: "orders still open" filters orders,
        "line items still open" filters line items.
        """
        refs = [o for o in piece.options if isinstance(o, ValueRef)]
        named: set[str] = set()
        distance: dict[str, int] = {}  # how far from the value each table is named
        for other in self.pieces:
            measure, dim, table, column = _candidates(other)
            tables: set[str] = set()
            if other.kind == "entity" and table is not None:
                tables = {table.name}
            elif other.kind == "measure" and measure is not None:
                tables = set(measure.tables)
            elif other.kind in ("dimension", "column") and (dim or column):
                tables = {(dim.column if dim else column).table}  # type: ignore[union-attr]
            named |= tables
            gap = max(other.start - piece.end, piece.start - other.end, 0)
            for t in tables:
                distance[t] = min(distance.get(t, gap), gap)
        if not named and self.previous is not None:
            # "just the ones still open" after "how many orders ...": the orders
            named = {t for m in self.previous.metrics for t in m.tables}
        best = [r for r in refs if r.rank == refs[0].rank]
        if len({id(r.column) for r in best}) > 1:
            # "fully fulfilled orders (status F)": the status of the orders named beside it
            near = sorted(
                (r for r in best if r.column.table in named),
                key=lambda r: distance.get(r.column.table, len(self.raw)),
            )
            return near[0] if near else refs[0]
        if refs[0].rank == 1 and named and refs[0].column.table not in named:
            # "line items still open": "still open" is an order's status, "open" a line's
            shorter = [
                o
                for kind, o in self.p.phrases.get((self.st[piece.end - 1],), [])
                if kind == "value" and isinstance(o, ValueRef) and o.rank == 1
            ]
            # "orders … fully fulfilled": the orders' meaning that has the word ("all line
            # items fulfilled"), not the line status named by it alone
            word = self.st[piece.end - 1]
            shorter += [
                r
                for key, found in self.schema.values.items()
                if word in key
                for r in found
                if r.rank == 1
            ]
            return next((r for r in shorter if r.column.table in named), refs[0])
        return refs[0]

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
        prep = self.raw[piece.start - 1 : piece.start]
        if (
            prep in (["on"], ["from"]) or (prep == ["across"] and piece.kind != "dimension")
        ) and self.raw[piece.end : piece.end + 1] not in (["each"], ["every"]):
            return False  # "the least revenue on orders placed in 1993": whose, not a group
        if prep in (["that"], ["this"], ["same"]):
            return False  # "the least revenue that year": the year named before
        if set(self.raw[max(0, piece.start - 2) : piece.start]) & {"all", "any", "entire", "whole"}:
            return False
        if self.raw[piece.end : piece.end + 1] in (
            ["history"],
            ["catalogue"],
            ["catalog"],
            ["base"],
            ["portfolio"],
            ["range"],
        ):
            return False  # "over the entire order history", "across our part catalogue"
        if self.raw[max(0, piece.start - 2) : piece.start] in (
            ["across", "every"],
            ["over", "every"],
        ):
            return False  # "the value of brass parts across every supplier": all of them
        if piece.start > 0 and self.raw[piece.start - 1] in ("for", "among", "amongst"):
            return False  # "stock value by nation for suppliers in AMERICA": whose, not a group
        if self._agent_by(piece.start):
            return False
        cues = _GROUP_CUES | {"which", "top", "bottom"} | _DESC | _ASC
        if self._near(piece.start, cues, 3) or (
            self.raw[0] in ("list", "show") and piece.start <= 3
        ):
            return True
        start = piece.start
        while (qualifier := next((p for p in self.pieces if p.end == start), None)) is not None:
            if not self._qualifies_next(qualifier):
                break
            start = qualifier.start  # "and customer region": past the qualifier
        if start > 0 and self.raw[start - 1] in ("and", ",", "&"):
            earlier = [p for p in self.pieces if p.end <= start - 1]
            if earlier and earlier[-1].end == start - 1 and self._wants_group(earlier[-1]):
                return True
        return self._near(piece.start, {"for"}, 1) and self._near(piece.start, {"each", "every"}, 2)

    def _agent_by(self, index: int) -> bool:
        """Whether a "by" names who did something ("held by suppliers"), not a grouping."""
        window = self.raw[max(0, index - 3) : index]
        if "by" not in window:
            return False
        at = index - 1 - window[::-1].index("by")
        while at > 1 and self._is_time_word(at - 1):
            at -= 1  # "orders placed in December 1997 by MACHINERY customers"
        if at <= 0 or self.used[at - 1] or self.raw[at + 1] in ("each", "every"):
            return False  # "units sold by priority": the verb belongs to a measure
        before = self.raw[at - 1]
        participles = {"held", "made", "sold", "bought", "owned", "taken", "given", "run", "kept"}
        return before in participles or before.endswith("ed")

    def _is_time_word(self, i: int) -> bool:
        word = self.raw[i]
        return (
            word in MONTHS
            or bool(re.fullmatch(r"(19|20)\d\d|q[1-4]|h[12]", word))
            or word in ("in", "during", "of", "the", "first", "second", "third", "fourth")
            or word in ("quarter", "half", "year")
        )

    def _asks_for_the_main_figure(self, intent: Intent) -> bool:
        """Whether the question asks for the headline figure ("top suppliers", "how much")."""
        ranked = self.superlative_at is not None and bool(intent.groups)
        # "what did the FURNITURE segment bring in each year": what it earned
        earned = self.raw[0] == "what" and bool(set(self.raw) & _EARNING)
        return ranked or earned or "how much" in " ".join(self.raw)

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

    def _evidence(self, without: Piece | None = None) -> list[str]:
        """The question's words that may describe a figure: not values, groups or dates."""
        spoken = set(range(len(self.raw)))
        if without is not None:
            spoken -= set(range(without.start, without.end))
        for piece in self.pieces:
            if (
                piece.kind not in ("measure", "column")
                or _ambiguous(piece)
                or piece.start in getattr(self, "_context", set())
            ):
                spoken -= set(range(piece.start, piece.end))  # "among customers who …": whose
        inside = {i for p in self.pieces for i in range(p.start, p.end)}
        inside |= {i for i, _ in self.superlatives}  # "cheapest", "longest" say something
        spoken -= {i for i, used in enumerate(self.used) if used and i not in inside}
        words = evidence_words(" ".join(self.raw[i] for i in sorted(spoken)))
        if {"percent", "percentage", "share", "proportion", "fraction"} & set(self.raw):
            words.append("rate")  # "what percentage of lines arrive late": a rate
        return words

    def _described_measure(self, intent: Intent, read: list[tuple[int, Metric]]) -> None:
        """Take the declared figure the question describes better than the one it named.

        "How much revenue did we lose to returns" names "returns" (returned lines) but
        describes the returned revenue; "what percentage of lines arrived after the
        promised date" names no figure but describes the late delivery rate.
        """
        evidence = self.schema.evidence
        words = self._evidence()
        ranked = evidence.ranked(words)
        counted = [
            p
            for p in self.pieces
            if p.kind == "measure" and (self._counting(p) or self._after_percentage_of(p))
        ]
        if counted and len(intent.metrics) == 1:
            self._counted_subset(intent, counted[0])
            return
        if self.count_at and not read and len(intent.metrics) == 1:
            self._counted_subset(intent, None)  # "how many of those arrived late?"
            return
        if not ranked or ranked[0][0] < 3.0:
            return
        (best_score, best), (second_score, _) = ranked[0], ranked[1] if len(ranked) > 1 else (0, 0)
        measure = self.schema.measures[best]
        if not intent.metrics:
            intent.metrics = [Metric.of(m)] if (m := self._clearly_described()) else []
            return
        spare = getattr(self, "_spare", False)  # a value's measure ("returns"), not a name
        if len(intent.metrics) != 1 or len(read) != (0 if spare else 1):
            return
        piece = None
        if read:
            at = read[0][0]
            piece = next((p for p in self.pieces if p.start == at and p.kind == "measure"), None)
            if piece is None:
                return
        current = next(
            (k for k, m in enumerate(self.schema.measures) if m.sql == intent.metrics[0].sql), None
        )
        if current is None or current == best:
            return
        unexplained = [w for w in words if not evidence.explains(current, w)]
        if (
            best_score >= 1.5 * evidence.score(current, words)
            and best_score >= 1.2 * second_score
            and any(evidence.explains(best, w) for w in unexplained)
        ):
            metric = Metric.of(measure)
            intent.metrics = [self._aggregated(piece, metric) if piece else metric]

    def _clearly_described(self) -> Measure | None:
        """The measure the question's words describe, when they do so clearly.

        Two or more of its words, and well ahead of the next measure: one word such as
        "sell" is not enough to move away from the headline figure.
        """
        evidence = self.schema.evidence
        words = self._evidence()
        ranked = evidence.ranked(words)
        if {"percent", "percentage", "%", "pct"} & set(self.raw):
            # "what percentage of line items arrived after the promised date": a rate
            ranked = [
                (score, k)
                for score, k in ranked
                if is_rate(Metric.of(self.schema.measures[k]))
                or counted_condition(Metric.of(self.schema.measures[k])) is not None
            ]
        if not ranked or ranked[0][0] < 3.0:
            return None
        best_score, best = ranked[0]
        second = ranked[1][0] if len(ranked) > 1 else 0.0
        matched = sum(1 for w in set(words) if evidence.explains(best, w))
        # a superlative that is one of its own words ("the cheapest supplier") says a lot
        said = {self.st[i] for i, _ in self.superlatives}
        own = sum(1 for w in said if w in evidence.profiles[best][0])
        matched += own
        runner_up = ranked[1][1] if len(ranked) > 1 else None
        # ahead of the next, or the only one the superlative names ("cheapest" is the
        # minimum cost's word, not the average cost's)
        margin = (
            1.0
            if own and runner_up is not None and not said & evidence.profiles[runner_up][0]
            else 1.3
        )
        if matched < 2 or best_score < margin * second:
            return None
        return self.schema.measures[best]

    def _counted_subset(self, intent: Intent, piece: Piece | None) -> None:
        """The rows a condition picks: "how many line items shipped in June arrived late".

        The words beside the counted rows may describe a declared count of matching rows
        of the same table (late deliveries); then that is the figure.
        """
        if counted_condition(intent.metrics[0]) is not None:
            return  # "returned lines" already names a subset
        evidence = self.schema.evidence
        words = self._evidence(without=piece)
        if self.time_at is not None:
            # "deliveries customers received in December": which date, not which rows
            dating = {self.st[i] for i, _ in self._date_mentions() if 0 < self.time_at - i <= 3}
            words = [
                w for w in words if w not in dating and not any(w.startswith(d) for d in dating)
            ]
        tables = intent.metrics[0].tables
        ranked = [
            (score, k)
            for score, k in evidence.ranked(words)
            if counted_condition(Metric.of(self.schema.measures[k])) is not None
            and self.schema.measures[k].tables == tables
            and self.schema.measures[k].sql != intent.metrics[0].sql
        ]
        if not ranked or ranked[0][0] < 2.0:
            return
        if len(ranked) > 1 and ranked[0][0] < 1.3 * ranked[1][0]:
            best, runner_up = ranked[0][1], ranked[1][1]
            # close, but only the first explains some word ("promised": the commit date)
            own = [
                w
                for w in words
                if evidence.explains(best, w) and not evidence.explains(runner_up, w)
            ]
            if ranked[0][0] < 1.15 * ranked[1][0] or not own:
                return
        intent.metrics = [Metric.of(self.schema.measures[ranked[0][1]])]

    def _summed_count(self) -> tuple[int, Metric] | None:
        """The summed measure "how many units ..." asks for, named by its first word.

        "The most units" asks for it too.
        """
        most = [i + 1 for i, _ in self.superlatives if self.raw[i] in ("most", "fewest")]
        for at in [*self.count_at, *most]:
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
        those = any(
            self.raw[at : at + 2] in (["of", "those"], ["of", "them"], ["of", "these"])
            for at in self.count_at
        )
        if those and self.previous is not None and self.previous.metrics:
            return self.previous.metrics[0]  # "how many of those are urgent?"
        declared = next(
            (m for m in self.schema.measures if m.sql.replace(" ", "").upper() == "COUNT(*)"), None
        )
        if declared is not None:
            return Metric.of(declared)
        tables = [refs[0].column.table for refs in values.values()] + [
            g.column.table for g in groups
        ]
        if not tables and self.previous is not None and self.previous.metrics:
            return self.previous.metrics[0]  # "only count the ones with a negative balance"
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
