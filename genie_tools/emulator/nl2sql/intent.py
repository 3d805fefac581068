"""The meaning of a question: what to measure, how to group, what to keep, how to rank."""

from __future__ import annotations

import copy
import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from genie_tools.emulator.nl2sql.schema import Column, Measure

_AGG = re.compile(r"^\s*(SUM|AVG|MIN|MAX|COUNT)\s*\((.*)\)\s*$", re.I | re.S)


@dataclass
class Metric:
    """An aggregate to compute, e.g. revenue = ``SUM(l_extendedprice * (1 - l_discount))``."""

    name: str
    sql: str
    tables: set[str]

    @classmethod
    def of(cls, measure: Measure) -> Metric:
        """The metric for a declared measure."""
        return cls(_alias(measure.name), measure.sql, set(measure.tables))

    def with_aggregate(self, func: str) -> Metric | None:
        """The same expression under another aggregate (total → average), when it has one."""
        match = _AGG.match(self.sql)
        if match is None or match.group(1).upper() == "COUNT" or "(" in _outer_rest(self.sql):
            return None
        if match.group(1).upper() == func:
            return self
        prefix = {"AVG": "avg", "SUM": "total", "MIN": "min", "MAX": "max"}[func]
        base = re.sub(r"^(total|avg|average|sum|min|max)_", "", self.name)
        return Metric(f"{prefix}_{base}", f"{func}({match.group(2)})", set(self.tables))


def _outer_rest(sql: str) -> str:
    """Text after the outer aggregate's closing parenthesis (non-empty for ratios)."""
    depth = 0
    for i, ch in enumerate(sql):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return sql[i + 1 :].strip()
    return ""


@dataclass
class Group:
    """A grouping column, at a time grain for dates."""

    column: Column
    grain: str | None = None
    name: str = ""
    with_key: Column | None = None
    part: int | None = None  # group on the n-th word of the value

    def same_slot(self, other: Group) -> bool:
        """Whether two groups compete for the same role (both time, or the same column)."""
        if self.grain and other.grain:
            return True
        return self.column is other.column and self.grain == other.grain


@dataclass
class Filter:
    """A condition on one column: ``=``, ``IN``, ``LIKE``, comparisons or a date range."""

    column: Column
    op: str
    values: list[Any]
    is_time: bool = False


@dataclass
class Intent:
    """Everything needed to write the SQL."""

    metrics: list[Metric] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)
    filters: list[Filter] = field(default_factory=list)
    limit: int | None = None
    descending: bool | None = None
    rank_by_metric: bool = False
    weak: bool = False
    """The metrics were read from words that also name tables ("suppliers"): in a
    follow-up they describe the filter rather than replace the figure."""
    listing: bool = False
    """Rows, not figures: "list the FURNITURE customers in PERU" (groups are the columns)."""
    having: list[tuple[Metric, str, float]] = field(default_factory=list)
    """Conditions on a group's figure: "brands with an average retail price above 1,415"."""
    count_groups: bool = False
    """Count the groups that qualify ("how many customers placed more than 20 orders")."""

    def copy(self) -> Intent:
        """A copy safe to modify (columns and tables are shared, not copied)."""
        return Intent(
            metrics=list(self.metrics),
            groups=list(self.groups),
            filters=[copy.copy(f) for f in self.filters],
            limit=self.limit,
            descending=self.descending,
            rank_by_metric=self.rank_by_metric,
            listing=self.listing,
            having=list(self.having),
            count_groups=self.count_groups,
        )


def date_range(year: int, quarter: int | None = None, month: int | None = None) -> list[object]:
    """``[start, end)`` for a year, a quarter of it or a month of it."""
    if month is not None:
        start = dt.date(year, month, 1)
        end = dt.date(year + (month == 12), month % 12 + 1, 1)
    elif quarter is not None:
        start = dt.date(year, 3 * quarter - 2, 1)
        end = dt.date(year + (quarter == 4), (3 * quarter) % 12 + 1, 1)
    else:
        start, end = dt.date(year, 1, 1), dt.date(year + 1, 1, 1)
    return [start, end]


def _alias(name: str) -> str:
    """A snake_case SQL alias for a name."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "value"


def normalise_grains(intent: Intent) -> None:
    """Give quarters their year unless one year is chosen; months are calendar months.

    A month is the month's first day (``date_trunc('MONTH', d)``, as Genie and the
    spaces' examples write it), unless the question also groups by year ("by year and
    month"), where it is the month's number beside the year.
    """
    single_year = any(
        f.is_time and f.op == "RANGE" and (f.values[1] - f.values[0]).days <= 366
        for f in intent.filters
    )
    has_year = any(g.grain == "year" for g in intent.groups)
    fixed: list[Group] = []
    for g in intent.groups:
        if g.grain == "quarter" and not single_year and not has_year:
            fixed.append(Group(g.column, "year", g.name.replace("quarter", "year")))
        if g.grain in ("month", "month_of_year"):
            g = Group(g.column, "month_of_year" if has_year else "month", g.name, g.with_key)
        if not any(f.column is g.column and f.grain == g.grain and f.part == g.part for f in fixed):
            fixed.append(g)  # "each month of 1994, by ship month" is one grouping
    intent.groups = fixed


def percent_of(metric: Metric, share: bool) -> Metric:
    """A rate as a percentage, or a figure as its percentage share of the total."""
    if share:
        return Metric(
            f"{metric.name}_share_pct",
            f"100 * {metric.sql} / SUM({metric.sql}) OVER ()",
            set(metric.tables),
        )
    return Metric(f"{metric.name}_pct", f"100 * ({metric.sql})", set(metric.tables))


def filtered_share(metric: Metric, filters: list[Filter]) -> Metric | None:
    """100 * SUM(x where the filters hold) / SUM(x): the share of a total a subset makes up."""
    from genie_tools.emulator.nl2sql.compile import condition_sql

    if is_row_count(metric.sql):
        inner = "1"  # a share of rows: "what percentage of items were returned"
    else:
        match = re.fullmatch(r"\s*SUM\((.*)\)\s*", metric.sql, re.I | re.S)
        if match is None:
            return None
        inner = match.group(1)
    cond = " AND ".join(condition_sql(f, f.column.name) for f in filters)
    tables = set(metric.tables) | {f.column.table for f in filters}
    return Metric(
        f"{metric.name}_share_pct",
        f"100 * SUM(CASE WHEN {cond} THEN {inner} ELSE 0 END) / SUM({inner})",
        tables,
    )


def more_is_worse(metric: Metric) -> bool:
    """Figures where more is worse (late, returns, cost…): "worst" ranks them highest."""
    bad = ("late", "delay", "return", "lost", "loss", "cost", "debt", "complaint", "defect",
           "churn", "error", "fail", "cancel")  # fmt: skip
    return any(w in metric.name for w in bad)


def is_rate(metric: Metric) -> bool:
    """Whether a metric is a rate or share (shown x100 when a percentage is asked for)."""
    name = metric.name
    return any(w in name for w in ("rate", "ratio", "share", "fraction", "pct", "percent"))


_ROW_COUNT = re.compile(r"\s*COUNT\(\s*\*\s*\)\s*", re.I)
_CONDITIONAL_SUM = re.compile(
    r"^\s*SUM\(\s*CASE\s+WHEN\s+(?P<cond>.+?)\s+THEN\s+(?P<value>.+?)\s+ELSE\s+0\s+END\s*\)\s*$",
    re.I | re.S,
)


def is_row_count(sql: str) -> bool:
    """Whether an aggregate counts rows: ``COUNT(*)``."""
    return _ROW_COUNT.fullmatch(sql) is not None


def conditional_sum(metric: Metric) -> tuple[str, str] | None:
    """``SUM(CASE WHEN c THEN x ELSE 0 END)`` → (c, x): a sum over the rows where c holds."""
    match = _CONDITIONAL_SUM.match(metric.sql)
    return (match.group("cond"), match.group("value").strip()) if match else None


def counted_condition(metric: Metric) -> str | None:
    """The condition of a count of matching rows: ``SUM(CASE WHEN c THEN 1 ELSE 0 END)`` → c."""
    found = conditional_sum(metric)
    return found[0] if found is not None and found[1] == "1" else None


def subset_share(metrics: list[Metric]) -> Metric | None:
    """The percentage a counted subset makes of a row count read beside it.

    "What share of shipments were delivered late?" reads two figures, all shipments
    (``COUNT(*)``) and late ones; the answer is the second as a percentage of the first.
    """
    if len(metrics) != 2:
        return None
    whole = [m for m in metrics if is_row_count(m.sql)]
    part = [m for m in metrics if counted_condition(m) is not None]
    if len(whole) != 1 or len(part) != 1 or not part[0].tables <= whole[0].tables:
        return None
    return Metric(
        f"{part[0].name}_pct", f"100 * {part[0].sql} / {whole[0].sql}", set(whole[0].tables)
    )
