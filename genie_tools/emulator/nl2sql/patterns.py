"""The patterns every analytics question shares.

Dates, years, quarters, months, numbers, counts, rankings ("top 10"), comparisons
("more than 50") and time grains ("monthly").
"""

from __future__ import annotations

import datetime as dt
import re

from genie_tools.emulator.nl2sql.intent import (
    Filter,
    Group,
    Intent,
    Metric,
    date_range,
    normalise_grains,
)
from genie_tools.emulator.nl2sql.reading import ReadingState, Unanswerable
from genie_tools.emulator.nl2sql.schema import Column
from genie_tools.emulator.nl2sql.text import MONTHS

_AGG_WORDS = {"total": "SUM", "sum": "SUM", "aggregate": "SUM", "combined": "SUM",
              "average": "AVG", "avg": "AVG", "mean": "AVG",
              "maximum": "MAX", "max": "MAX", "minimum": "MIN", "min": "MIN"}  # fmt: skip
_DESC = {"top", "highest", "largest", "biggest", "most", "best", "greatest", "leading",
         "longest", "latest", "expensive", "priciest", "strongest", "heaviest", "slowest",
         "busiest"}  # fmt: skip
_ASC = {"bottom", "lowest", "smallest", "least", "worst", "fewest", "cheapest", "shortest",
        "earliest", "weakest", "poorest", "quietest", "lightest", "fastest",
        "quickest"}  # fmt: skip
_COMPARE = {
    ("more", "than"): ">", ("greater", "than"): ">", ("higher", "than"): ">", ("over",): ">",
    ("above",): ">", ("exceeding",): ">", ("at", "least"): ">=", ("less", "than"): "<",
    ("fewer", "than"): "<", ("lower", "than"): "<", ("under",): "<", ("below",): "<",
    ("at", "most"): "<=", ("larger", "than"): ">", ("bigger", "than"): ">",
    ("smaller", "than"): "<",
}  # fmt: skip
_OR_MORE = {("or", w): ">=" for w in "more greater higher larger bigger above over".split()} | {
    ("or", w): "<=" for w in "less fewer lower smaller below under".split()
}
_GROUP_CUES = {"by", "per", "each", "every", "across", "over", "breakdown", "split", "trend"}
_GRAIN_WORDS = {"year": "year", "yearly": "year", "annual": "year", "annually": "year",
                "quarter": "quarter", "quarterly": "quarter", "month": "month",
                "monthly": "month"}  # fmt: skip
_ADVERB_GRAINS = {"yearly", "annual", "annually", "quarterly", "monthly"}
_ORDINALS = {"first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4,
             "4th": 4, "last": 4}  # fmt: skip


def _whole_year(values: list[object]) -> bool:
    start, end = values
    return (
        isinstance(start, dt.date)
        and isinstance(end, dt.date)
        and (start.month, start.day, end.month, end.day) == (1, 1, 1, 1)
        and end.year == start.year + 1
    )


def _plural_noun(raw: list[str], i: int) -> bool:
    """Whether the word at ``i`` reads as a plural noun ("customers", "countries")."""
    word = raw[i] if i < len(raw) else ""
    return len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is"))


def _half(year: int, half: int) -> list[object]:
    """The first or second half of a year as a [start, end) date range."""
    return [
        dt.date(year, 1 if half == 1 else 7, 1),
        dt.date(year + (half == 2), 7 if half == 1 else 1, 1),
    ]


class PatternReading(ReadingState):
    """Reads the shared patterns and the question's time frame."""

    def _day_dates(self) -> None:
        """Dates written with month names: "June 15, 1995", "1 March 1994", and ranges of them."""
        raw = self.raw
        found: list[tuple[int, int, int, int, int | None]] = []  # start, end, month, day, year
        for j, word in enumerate(raw):
            if word not in MONTHS or (word == "may" and not self._near_number(j)):
                continue
            day = None
            start, end = j, j + 1
            if j + 1 < len(raw) and raw[j + 1].isdigit() and 1 <= int(raw[j + 1]) <= 31:
                day, end = int(raw[j + 1]), j + 2
            elif j > 0 and raw[j - 1].isdigit() and 1 <= int(raw[j - 1]) <= 31:
                day, start = int(raw[j - 1]), j - 1
            if day is None:
                continue
            year = None
            if end < len(raw) and re.fullmatch(r"(19|20)\d\d", raw[end]):
                year, end = int(raw[end]), end + 1
            found.append((start, end, MONTHS[word], day, year))
        if len(found) == 2:
            (s1, e1, m1, d1, y1), (s2, e2, m2, d2, y2) = found
            year2 = y2 or y1
            year1 = y1 or year2
            if (
                year1
                and year2
                and set(raw[e1:s2]) <= {"and", "to", "through", "till", "until", "-"}
            ):
                first = s1 - 1 if s1 > 0 and raw[s1 - 1] in ("between", "from") else s1
                self._take(first, e2)
                days = [dt.date(year1, m1, d1), dt.date(year2, m2, d2)]
                self.times.append(("between", days))
                self.time_at = first
        elif len(found) == 1 and found[0][4]:
            s, e, m, d, y = found[0]
            self._take(s, e)
            self.times.append(("=", [dt.date(y, m, d)]))  # type: ignore[arg-type]
            self.time_at = s

    def _month_ranges(self) -> None:
        """Read month ranges ("from July 1995 to June 1996"), both months whole."""
        raw = self.raw
        marks = [
            (j, MONTHS[raw[j]], int(raw[j + 1]))
            for j in range(len(raw) - 1)
            if raw[j] in MONTHS and re.fullmatch(r"(19|20)\d\d", raw[j + 1]) and not self.used[j]
        ]
        if len(marks) < 2:
            self._months_of_one_year()
            return
        if len(marks) != 2 or not set(raw[marks[0][0] + 2 : marks[1][0]]) <= {
            "to", "through", "until", "till", "-", "and",
        }:  # fmt: skip
            return
        (j1, m1, y1), (j2, m2, y2) = marks
        first = j1 - 1 if j1 > 0 and raw[j1 - 1] in ("from", "between") else j1
        self._take(first, j2 + 2)
        self.times.append(("range", [date_range(y1, month=m1)[0], date_range(y2, month=m2)[1]]))
        self.time_at = first

    def _months_of_one_year(self) -> None:
        """Read "January through June 1998": two months, the year said once at the end."""
        raw = self.raw
        for j in range(len(raw) - 3):
            if (
                raw[j] in MONTHS
                and (
                    raw[j + 1] in ("to", "through", "until", "till", "-")
                    or (raw[j + 1] == "and" and raw[j - 1 : j] == ["between"])
                )
                and raw[j + 2] in MONTHS
                and re.fullmatch(r"(19|20)\d\d", raw[j + 3])
                and MONTHS[raw[j]] < MONTHS[raw[j + 2]]
            ):
                year, m1, m2 = int(raw[j + 3]), MONTHS[raw[j]], MONTHS[raw[j + 2]]
                first = j - 1 if j > 0 and raw[j - 1] in ("from", "between") else j
                self._take(first, j + 4)
                span = [date_range(year, month=m1)[0], date_range(year, month=m2)[1]]
                self.times.append(("range", span))
                self.time_at = first
                return

    def _near_number(self, j: int) -> bool:
        return any(0 <= k < len(self.raw) and self.raw[k].isdigit() for k in (j - 1, j + 1))

    def _patterns(self) -> None:
        self._day_dates()
        self._month_ranges()
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
                self.superlatives.append((i, word in _DESC))
                if self.superlative_at is None:
                    self.superlative_at = i
                    self.descending = word in _DESC
                num = self._number(i + 1)
                if (
                    num is not None
                    and num == int(num)
                    and not re.fullmatch(r"(19|20)\d\d", raw[i + 1])
                ):
                    self.limit = int(num)
                    self.limit_at = i + 1
                    self._take(i + 1, i + 2)
                elif (before := self._number(i - 1)) is not None and not self.used[i - 1]:
                    self.limit = int(before)
                    self.limit_at = i - 1
                    self._take(i - 1, i)
                self._take(i, i + 1)
            elif word in ("ascending", "asc", "increasing"):
                self.descending = False
                self._take(i, i + 1)
            elif word in ("descending", "desc", "decreasing"):
                self.descending = True
                self._take(i, i + 1)
            elif (num := self._number(i)) is not None and (
                (pair := (*raw[i + 1 : i + 3], "", "")[:2]) in _OR_MORE
            ):
                # "size 10 or smaller", "50 or more units"
                self.compares.append((i, _OR_MORE[pair], num))
                self._take(i, i + 3)
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
        if self.limit is None:
            for i in range(1, n):
                num = self._number(i)
                if (
                    num is not None
                    and num == int(num)
                    and 0 < num < 1000
                    and not self.used[i]
                    and (
                        raw[i - 1] in ("which", "top", "what")
                        or (
                            raw[i - 1] in ("the", "show", "list", "our", "me", "those", "these")
                            # "the 5 customers", "the five customers", not "the one order"
                            and (
                                raw[i].isdigit()
                                or (
                                    num > 1
                                    and (_plural_noun(raw, i + 1) or _plural_noun(raw, i + 2))
                                )
                            )
                        )
                    )
                ):
                    self.limit = int(num)
                    self.limit_at = i
                    self._take(i, i + 1)
                    break

    def _count_cue(self, i: int) -> bool:
        pair = tuple(self.raw[i : i + 2])
        if pair in (("number", "of"), ("count", "of")) and self.raw[i + 2 : i + 3] in (
            ["days"],
            ["weeks"],
            ["months"],
            ["hours"],
        ):
            return False  # "the number of days a delivery was late" is a duration
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
        if self.time_at is None:
            self.time_at = i
        # "1992 through 1995", "1992 to 1995"
        if (
            i + 2 < len(raw)
            and raw[i + 1] in ("through", "to", "-", "until")
            and re.fullmatch(r"(19|20)\d\d", raw[i + 2])
        ):
            self._take(i, i + 3)
            if i > 0 and raw[i - 1] in ("from", "between"):
                self._take(i - 1, i)
            self.times.append(("range", [dt.date(year, 1, 1), dt.date(int(raw[i + 2]) + 1, 1, 1)]))
            return
        prev = raw[i - 1] if i > 0 else ""
        nxt = raw[i + 1] if i + 1 < len(raw) else ""
        # quarter: "q3 1995", "1995 q3", "third quarter of 1995"
        for j in (i - 1, i + 1):
            if 0 <= j < len(raw) and re.fullmatch(r"q[1-4]", raw[j]):
                self._take(j, j + 1)
                self.times.append(("range", date_range(year, quarter=int(raw[j][1]))))
                return
        for j in (i - 1, i + 1):  # halves: "H2 1996", "1996 h1"
            if 0 <= j < len(raw) and raw[j] in ("h1", "h2"):
                self._take(j, j + 1)
                self.times.append(("range", _half(year, int(raw[j][1]))))
                return
        for j in range(max(0, i - 4), i):
            if raw[j] in ("first", "second") and raw[j + 1 : j + 2] == ["half"]:
                self._take(j, i)  # "the second half of 1996"
                self.times.append(("range", _half(year, 1 if raw[j] == "first" else 2)))
                return
        for j in range(max(0, i - 4), i):
            if raw[j] in _ORDINALS and "quarter" in raw[j:i]:
                self._take(j, i)
                self.times.append(("range", date_range(year, quarter=_ORDINALS[raw[j]])))
                return
        month_at = (
            i - 1
            if prev in MONTHS
            else (i - 2 if i > 1 and raw[i - 2] in MONTHS and prev == "of" else None)
        )
        if month_at is None and nxt in MONTHS and nxt != "may":
            month_at = i + 1
        if month_at is not None:
            self._take(min(month_at, i), max(month_at, i) + 1)
            self.times.append(("range", date_range(year, month=MONTHS[raw[month_at]])))
            return
        # ranges: "between 1994 and 1996", "from 1994 to 1996", "1994-1996"
        if (
            prev in ("between", "from")
            and i + 2 < len(raw)
            and raw[i + 1] in ("and", "to", "through")
            and re.fullmatch(r"(19|20)\d\d", raw[i + 2])
        ):
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
            self.times.append(
                (
                    "<" if prev == "before" else "<=",
                    [dt.date(year, 1, 1) if prev == "before" else dt.date(year, 12, 31)],
                )
            )
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
        ranged = prev == "between" or (
            prev == "from" and self.raw[i + 1 : i + 2] in (["and"], ["to"])
        )
        if ranged and i + 2 < len(self.raw) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", self.raw[i + 2]):
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

    def _time(self, intent: Intent) -> None:
        column = self._date_column(intent)
        if column is None and (self.grains or any(g.grain for g in intent.groups)):
            raise Unanswerable("This space has no dates to follow over time.")
        for _, grain in self.grains:
            if column is not None:
                intent.groups.append(
                    Group(
                        column,
                        grain,
                        f"{'_'.join(w for w in column.words if w != 'date')}_{grain}".strip("_"),
                    )
                )
        if column is None:
            if self.times:
                raise Unanswerable("This space has no date to filter on.")
            return
        years = [v[0].year for op, v in self.times if op == "range" and _whole_year(v)]
        if len(set(years)) >= 2 and len(years) == len(self.times):
            self.times = [("years", sorted(set(years)))]
        # "the return rate in 1994 compared with 1993", "compare 1995 and 1996 revenue for
        # each region": each year, side by side
        if any(op == "years" for op, _ in self.times) and not any(g.grain for g in intent.groups):
            name = "_".join(w for w in column.words if w != "date")
            intent.groups.append(Group(column, "year", f"{name}_year".strip("_")))
        for op, values in self.times:
            if op == "range":
                intent.filters.append(Filter(column, "RANGE", values, is_time=True))
            elif op == "between":
                intent.filters.append(Filter(column, "BETWEEN", values, is_time=True))
            elif op == "years":
                intent.filters.append(Filter(column, "YEARS", values, is_time=True))
            else:
                intent.filters.append(Filter(column, op, values, is_time=True))
        normalise_grains(intent)

    def _date_column(self, intent: Intent) -> Column | None:
        for g in intent.groups:
            if g.grain and g.column.kind == "date":
                return g.column
        mentions = self._date_mentions()
        if mentions and self.time_at is not None:
            # "line items shipped in December 1995, by order priority": the verb of the date
            verbs = [
                m
                for m in mentions
                if 0 < self.time_at - m[0] <= 4 and self.raw[m[0]].endswith("ed")
            ]
            if verbs:
                return max(verbs, key=lambda m: m[0])[1]
        if mentions:
            anchor = self.time_at
            nearest = min(mentions, key=lambda m: abs(m[0] - (m[0] if anchor is None else anchor)))
            return nearest[1]
        return self.schema.default_date

    def _date_gap(self) -> Metric | None:
        """Average days between two of the space's dates ("how long from order to ship")."""
        if not {"long", "time", "day", "gap", "delay", "wait", "lag"} & set(self.st):
            return None
        columns: list[Column] = []
        for _, col in self._date_mentions():
            if col not in columns:
                columns.append(col)
        if len(columns) != 2:
            return None
        start, end = columns
        func = "AVG"
        if self.superlatives:
            func = "MAX" if self.superlatives[0][1] else "MIN"
        name = "_".join(w for w in [*start.words, "to", *end.words] if w != "date")
        sql = f"{func}(datediff({end.name}, {start.name}))"
        return Metric(f"{func.lower()}_days_{name}", sql, {start.table, end.table})

    def _when(self, intent: Intent) -> list[Metric]:
        """MIN / MAX of the date for "when was the first order placed, and the latest?"."""
        column = self._date_column(intent)
        if column is None:
            return []
        first = {"first", "earliest", "oldest"} & set(self.raw)
        last = {"last", "latest", "recent", "newest", "most"} & set(self.raw)
        name = "_".join(w for w in column.words if w != "date") or "date"
        out = []
        if first or not last:
            out.append(Metric(f"first_{name}_date", f"MIN({column.name})", {column.table}))
        if last:
            out.append(Metric(f"last_{name}_date", f"MAX({column.name})", {column.table}))
        return out
