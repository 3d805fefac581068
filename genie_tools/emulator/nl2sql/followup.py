"""Follow-ups: questions that modify the previous one.

For example "only 1996", "top 5 instead", "break that down by region" or "what
about the average instead of the total".
"""

from __future__ import annotations

import re

from genie_tools.emulator.nl2sql.intent import (
    Filter,
    Intent,
    Metric,
    counted_condition,
    is_rate,
    is_row_count,
    more_is_worse,
    percent_of,
)
from genie_tools.emulator.nl2sql.reading import Piece, ReadingState, _candidates

_FOLLOW_CUES = {"and", "what", "how", "now", "only", "just", "instead", "same", "also", "then",
                "break", "split", "make", "rather", "but", "sort", "show", "add", "include",
                "plus", "with", "for", "give", "switch", "keep", "use", "restrict", "limit",
                "narrow", "drop", "exclude", "swap"}  # fmt: skip


class FollowUpReading(ReadingState):
    """Decides whether a question follows up, and applies it to the previous intent."""

    def _is_follow_up(self, fresh: Intent) -> bool:
        if fresh.listing:  # "list the suppliers in PERU": new rows, unless "those" are meant
            return bool(set(self.raw) & {"those", "them", "these", "ones"})
        if not fresh.metrics or fresh.weak:
            return True
        if set(self.raw[:4]) & {"that", "those", "them", "their", "it", "these", "its"}:
            return True
        text = " ".join(self.raw)
        if re.search(
            r"\b(that|the same) (year|quarter|month|period)\b|\b(those|them|there|they)\b", text
        ):
            return True  # "and what was the late rate for MAIL that year?"
        if self._adds_beside():
            return True  # "put net revenue next to it"
        if {"instead", "rather"} & set(self.raw) and len(self.raw) <= 6:
            return True  # "revenue instead"
        if self.raw[0] == "now" or "ones" in self.raw:
            return True  # "now count only the ones that are in debt"
        if self.raw[0] in ("add", "include", "plus", "also") and set(self.raw) & {
            "that",
            "those",
            "them",
            "it",
            "these",
        }:
            return True  # "add the late delivery rate as a percentage next to it"
        return self.raw[0] in _FOLLOW_CUES and (
            bool({"instead", "rather"} & set(self.raw)) or len(self.raw) <= 8
        )

    def _narrowed_count(self, metric: Metric) -> Metric:
        """A row count narrowed by the word of a counted measure: "only the late ones".

        After "how many shipments …", "only the late ones" counts late deliveries (the
        declared count of matching rows whose name starts with "late").
        """
        if not is_row_count(metric.sql) or len(self.raw) > 6:
            return metric
        for measure in self.schema.measures:
            counted = Metric.of(measure)
            if (
                counted_condition(counted) is not None
                and measure.tables == metric.tables
                and measure.phrases[0][0] in self.st
            ):
                return counted
        return metric

    def _asks_for_one(self, superlative_at: int) -> bool:
        """Whether "which … the most" asks for one ("which of those years was the worst")."""
        verbs = set(self.raw[:superlative_at])
        if verbs & {"was", "is", "has"}:
            return True
        if verbs & {"were", "are", "have"}:
            return False
        return not self._plural_after(superlative_at)

    def _adds_beside(self) -> bool:
        """Whether the question puts a figure beside the previous one ("next to it")."""
        text = " ".join(self.raw)
        return any(
            cue in text
            for cue in ("next to it", "next to that", "alongside", "beside it", "as well")
        )

    def _restated(self, metric: Metric) -> Metric:
        """Restate a count of matching rows as their share ("show that as a rate")."""
        words = set(self.raw)
        condition = counted_condition(metric)
        if condition is None or not words & {"rate", "percentage", "percent", "share", "%"}:
            return metric
        rate = Metric(
            metric.name.removesuffix("s") + "_rate",
            f"AVG(CASE WHEN {condition} THEN 1.0 ELSE 0.0 END)",
            set(metric.tables),
        )
        return rate if "rate" in words else percent_of(rate, share=False)

    def _after_instead(self) -> list[Piece]:
        """What is named after "instead of" / "rather than": figures and groups to drop."""
        word = next((w for w in ("instead", "rather") if w in self.raw), None)
        if word is None:
            return []
        at = self.raw.index(word)
        return [p for p in self.pieces if p.start > at]

    def _merge(self, previous: Intent, new: Intent) -> Intent:
        """Apply a follow-up ("only 1996", "top 5 instead", "break it down by region")."""
        out = previous.copy()
        words = set(self.raw)
        adding = (
            bool(words & {"add", "also", "plus", "include", "too"}) or self._adds_beside()
        ) and "instead" not in words
        # "show that as a percentage of all shipments": the whole named, the part restated
        of_the_whole = bool(words & {"percentage", "percent", "share", "%"}) and all(
            "COUNT(*)" in m.sql.upper().replace(" ", "") and "CASE" not in m.sql.upper()
            for m in new.metrics
        )
        if of_the_whole and any(counted_condition(m) for m in out.metrics):
            new.metrics = []
        if not new.metrics or new.weak:
            out.metrics = [self._narrowed_count(m) for m in out.metrics]
        if new.metrics and not new.weak:
            out.metrics = out.metrics + new.metrics if adding else new.metrics
            replaced = {
                measure.sql
                for p in self._after_instead()
                if p.kind == "measure" and (measure := _candidates(p)[0]) is not None
            }
            remaining = [m for m in out.metrics if m.sql not in replaced]
            out.metrics = remaining or out.metrics  # "average cost instead of inventory value"
        elif self.aggs:
            func = self.aggs[0][1]
            if "instead" in self.raw:
                # "average instead of total": the word before "instead" wins
                before = [f for i, f in self.aggs if i < self.raw.index("instead")]
                func = before[-1] if before else func
            out.metrics = [m.with_aggregate(func) or m for m in out.metrics]
        replace = bool(words & {"instead", "rather"}) or self.raw[0] == "now"
        dropped = [
            dim.column if dim is not None else column
            for p in self._after_instead()
            for _, dim, _, column in [_candidates(p)]
            if dim is not None or column is not None
        ]
        out.groups = [g for g in out.groups if g.column not in dropped]
        for g in new.groups:
            if replace and not g.grain:
                out.groups = [x for x in out.groups if x.grain]
            if g.grain:
                out.groups = [x for x in out.groups if not x.grain]
            out.groups = [
                x for x in out.groups if not (x.column is g.column and x.grain == g.grain)
            ]
            out.groups.append(g)
            if not g.grain and not any(f.column is g.column for f in new.filters):
                # "break that down by container": one value filtered before now splits into
                # groups; a pattern ("WRAP containers") stays and is split within
                every = bool(words & {"every", "each", "all"})  # "for every priority level"
                out.filters = [
                    f
                    for f in out.filters
                    if f.column is not g.column or (f.op in ("LIKE", "SQL") and not every)
                ]
        union = bool(words & {"compare", "with", "also", "add", "plus", "versus", "vs"})
        for f in new.filters:
            dated = next((x for x in out.filters if x.is_time), None)
            named = [i for i, _ in self._date_mentions() if self.raw[i].endswith(("ed", "date"))]
            if f.is_time and dated is not None and not named:
                # "lines received in 1996" then "and for 1997?": still the receipt date
                f = Filter(dated.column, f.op, f.values, True)
            same = [x for x in out.filters if x.column is f.column or (x.is_time and f.is_time)]
            kept = [x for x in out.filters if x not in same]
            if union and same and f.op in ("=", "IN") and all(x.op in ("=", "IN") for x in same):
                values = list(dict.fromkeys([v for x in same for v in x.values] + f.values))
                kept.append(Filter(f.column, "IN", values, f.is_time))
                if not any(g.column is f.column for g in out.groups):
                    out.groups.append(self._group_for_column(f.column))
            else:
                kept.append(f)
                # "brass parts" then "only the large ones": both words of one type value
                kept += [
                    x
                    for x in same
                    if x.op == f.op == "LIKE"
                    and not words & {"instead", "rather"}
                    and all(
                        self.schema.words_combine(f.column, str(a), str(b))
                        for a in x.values
                        for b in f.values
                    )
                ]
                # "just for MAIL" after "by ship mode" keeps the mode column beside its figure
            out.filters = [x for n, x in enumerate(kept) if x not in kept[:n]]
        if not (new.metrics and not new.weak):
            out.metrics = [self._restated(m) for m in out.metrics]
            if (
                words & {"share", "percentage", "percent", "%"}
                and out.groups
                and len(out.metrics) == 1
                and not is_rate(out.metrics[0])
            ):
                # "as a share of the total instead": each group's share of the whole
                out.metrics = [out.metrics[0], percent_of(out.metrics[0], share=True)]
        if new.limit is not None:
            out.limit = new.limit
            out.rank_by_metric = True
        elif (
            self.superlative_at is not None
            and out.groups
            and (self.raw[0] in ("which", "what", "who") or len(self.raw) <= 3)
            and self._asks_for_one(self.superlative_at)
        ):
            # "which mode is the slowest?", "which of those years was the worst?": the one
            out.limit, out.rank_by_metric = 1, True
        if self.superlative_at is not None and out.metrics:
            word = self.raw[self.superlative_at]
            if word in ("worst", "best"):
                # "which 3 months were the worst": the most returns, the highest late rate
                new.descending = (word == "worst") == more_is_worse(out.metrics[0])
        if new.descending is not None:
            out.descending = new.descending
            if out.groups and new.limit is None:
                out.rank_by_metric = out.rank_by_metric or not any(g.grain for g in out.groups)
        return out
