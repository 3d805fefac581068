"""What the engine knows about a space: built from its declaration and a look at the data.

Everything here comes from the space's YAML (tables, column comments, joins,
measures, dimensions) plus facts read from the data itself (column types, key
columns, the distinct values of low-cardinality text columns). Nothing is
specific to TPC-H.
"""

from __future__ import annotations

import re
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from genie_tools.emulator.catalogs import CatalogNames
from genie_tools.emulator.nl2sql.evidence import (
    MeasureEvidence,
    defined_figures,
    evidence_words,
    instruction_sentences,
)
from genie_tools.emulator.nl2sql.text import (
    ABBREVIATIONS,
    FILLER,
    expand_abbreviation,
    split_identifier,
    stem,
    stems,
    tokens,
)
from genie_tools.emulator.spaces import SpaceDecl

MAX_INDEXED_VALUES = 300
_FILLER_STEMS = frozenset(stem(w) for w in FILLER)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CODE = re.compile(r"([A-Za-z]+#)(\d+)")
_SMALL_WORDS = frozenset(
    "in on at to of by or an as is it be we us no do up so if my me he".split()
)
_NAMED_LIST = re.compile(r"([a-z][a-z ]{1,30}?)\s*\(([A-Z0-9][A-Z0-9 ,]*)\)")
_RULE_SQL = re.compile(
    r"\b([a-z]{1,3}_[a-z_]+)\s*(?:NOT\s+)?(?:IN\s*\([^)]*\)|LIKE\s*'[^']*'|[<>]=?\s*-?\d+(?:\.\d+)?"
    r"|=\s*'[^']*'|[<>]=?\s*[a-z]{1,3}_[a-z_]+|\s+matches\s+'[^']*')"
)


def _mentions(sentence: tuple[str, ...], phrase: tuple[str, ...]) -> bool:
    """Whether an instruction sentence is about a measure's phrase.

    Only phrases of two words or more count: a single word such as "returns" appears in
    every sentence about returned revenue too.
    """
    return len(phrase) >= 2 and f" {' '.join(phrase)} " in f" {' '.join(sentence)} "


def _contains_phrase(key: tuple[str, ...], phrases: set[tuple[str, ...]]) -> bool:
    return any(key[i : i + len(p)] == p for p in phrases for i in range(len(key) - len(p) + 1) if p)


_QUOTED_MEANING = re.compile(r"'([^']{1,40})'\s*(?:=|means|is)\s*([a-z][a-z \-]{2,40})", re.I)


@dataclass(eq=False)
class Column:
    """One column of one table."""

    table: str  # fully qualified table name
    name: str
    kind: str  # number | date | string | other
    comment: str = ""
    words: list[str] = field(default_factory=list)

    @property
    def qualified(self) -> str:
        """``catalog.schema.table.column``."""
        return f"{self.table}.{self.name}"


@dataclass(eq=False)
class Table:
    """One table of the space."""

    name: str
    alias: str
    columns: dict[str, Column]
    key: Column | None = None
    label: Column | None = None
    words: set[tuple[str, ...]] = field(default_factory=set)
    sql: str = ""  # the table as DuckDB names it (quoted; catalogs may be renamed)


@dataclass(eq=False)
class Measure:
    """A named metric: an aggregate SQL expression over unqualified columns."""

    name: str
    sql: str
    phrases: list[tuple[str, ...]]
    tables: set[str]
    about: str = ""  # its description, read as evidence for it
    as_percent: bool = False  # the space's example SQL shows this rate as a percentage


@dataclass(eq=False)
class Dimension:
    """Something to group or filter by: a column, maybe at a time grain."""

    name: str
    column: Column
    grain: str | None
    phrases: list[tuple[str, ...]]
    part: int | None = None  # the n-th word of a composite code ("JUMBO PKG": size, kind)


@dataclass(frozen=True)
class Rule:
    """A condition the space's instructions define, with the column's bare name in ``sql``.

    For example "high priority means o_orderpriority IN ('1-URGENT', '2-HIGH')".
    """

    column: Column
    sql: str


@dataclass(frozen=True)
class ValueRef:
    """A value found in the data (``op`` is ``=`` or ``LIKE`` for a word inside values).

    ``rank`` orders competing readings of the same words: 0 a whole value, 1 a
    meaning the column's comment gives ("'R' = returned"), 2 a word inside one value,
    3 a word inside several values.
    """

    column: Column
    value: str
    op: str = "="
    rank: int = 0
    word: str = ""  # for ranks 2 and 3: the word of the value that was matched


class SpaceSchema:
    """The space's tables, joins, measures, dimensions and indexed values."""

    def __init__(self, space: SpaceDecl, cursor: Any, *, names: CatalogNames | None = None) -> None:
        self.space = space
        names = names or CatalogNames()
        vocabulary = self._vocabulary(space)
        self.tables: dict[str, Table] = {}
        self.columns: dict[str, list[Column]] = defaultdict(list)
        used_aliases: set[str] = set()
        for decl in space.tables:
            types = _column_types(cursor, decl.name, names)
            cols: dict[str, Column] = {}
            for name, dtype in types.items():
                comment = decl.columns.get(name, "")
                col = Column(decl.name, name, _kind(dtype), comment)
                col.words = split_identifier(name, vocabulary)
                if len(col.words) == 1:
                    col.words = expand_abbreviation(col.words[0], tokens(comment)) or col.words
                cols[name] = col
                self.columns[name.lower()].append(col)
            alias = _alias(decl.short_name, list(cols), used_aliases)
            table = Table(decl.name, alias, cols, sql=names.table(decl.name))
            split = split_identifier(decl.short_name, vocabulary)
            if len(split) == 1:  # "partsupp": a known word and a known abbreviation
                word = split[0]
                split = next(
                    (
                        [word[:k], word[k:]]
                        for k in range(3, len(word) - 2)
                        if word[:k] in vocabulary and word[k:] in ABBREVIATIONS
                    ),
                    split,
                )
            table.words = {
                stems(decl.short_name),
                stems(" ".join(split)),
                # "partsupp" is "part supp": part-supplier rows ("part-supplier offers")
                stems(" ".join(ABBREVIATIONS.get(w, w) for w in split)),
            }
            self.tables[decl.name] = table
        self.edges: dict[str, list[tuple[str, Column, Column]]] = defaultdict(list)
        for join in space.joins:
            left, right = self.column_by_path(join.left), self.column_by_path(join.right)
            if left is None or right is None:
                continue
            self.edges[left.table].append((right.table, left, right))
            self.edges[right.table].append((left.table, right, left))
        for table in self.tables.values():
            table.key = _key_column(cursor, table)
            table.label = next(
                (c for c in table.columns.values() if c.kind == "string" and "name" in c.words),
                None,
            )
        self.measures = [
            self._measure(m.name, m.sql, m.synonyms, m.description) for m in space.measures
        ]
        self.dimensions = [
            Dimension(
                d.name,
                dim_column,
                d.grain,
                [stems(p) for p in [d.name, *d.synonyms]],
            )
            for d in space.dimensions
            if (dim_column := self.column_by_path(d.column)) is not None
        ]
        self.values: dict[tuple[str, ...], list[ValueRef]] = defaultdict(list)
        # code-like values of columns too large to index, by prefix: "clerk#" -> o_clerk
        self.codes: dict[str, tuple[Column, str]] = {}
        self.distinct: dict[int, list[str]] = {}  # indexed columns' values, by id(column)
        self._index_values(cursor)  # may add word-part dimensions
        self._index_meanings()
        self._index_spelled_out_values()
        for refs in self.values.values():
            refs.sort(key=lambda r: r.rank)
        self.rules: dict[tuple[str, ...], Rule] = self._read_rules(space.instructions)
        self._add_defined_figures(space.instructions)
        self._mark_percent_rates()
        self.evidence = self._measure_evidence(space.instructions)
        self.date_columns = [c for t in self.tables.values() for c in t.columns.values()
                             if c.kind == "date"]  # fmt: skip
        grain_dims = [d for d in self.dimensions if d.grain and d.column.kind == "date"]
        self.default_date = grain_dims[0].column if grain_dims else (
            self.date_columns[0] if self.date_columns else None
        )  # fmt: skip
        # relative periods ("this year", "last quarter") are read against the latest date
        self.latest: Any = None
        if self.default_date is not None:
            row = cursor.execute(
                f'SELECT MAX("{self.default_date.name}") '
                f"FROM {self.tables[self.default_date.table].sql}"
            ).fetchone()
            self.latest = row[0] if row else None

    # construction helpers -----------------------------------------------
    @staticmethod
    def _vocabulary(space: SpaceDecl) -> set[str]:
        text = " ".join(
            [space.description, space.instructions]
            + [c for t in space.tables for c in t.columns.values()]
            + [t.description for t in space.tables]
            + [m.name + " " + " ".join(m.synonyms) for m in space.measures]
            + [d.name + " " + " ".join(d.synonyms) for d in space.dimensions]
        )
        words = {w for w in tokens(text) if len(w) >= 3 and w.isalpha()}
        return words | {stem(w) for w in words if len(stem(w)) >= 3}

    def _measure(self, name: str, sql: str, synonyms: list[str], about: str = "") -> Measure:
        referenced = {w.lower() for w in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", sql)}
        tables = {c.table for word in referenced for c in self.columns.get(word, [])}
        phrases = [stems(p) for p in [name, *synonyms]]
        if not tables:
            # COUNT(*) names no column: its table is the one its words name ("line items")
            said = set(stems(" ".join([name, *synonyms, about])))
            tables = {t.name for t in self.tables.values() if any(set(w) <= said for w in t.words)}
            tables = set(sorted(tables)[:1]) if tables else set()
        return Measure(name, sql, phrases, tables, about)

    def _mark_percent_rates(self) -> None:
        """Rates the space's example SQL shows as percentages ("… AS return_rate_pct").

        Genie follows a space's examples: where "What was the return rate by ship year?"
        is answered ``100 * … AS return_rate_pct``, "the return rate" is a percentage.
        """
        shown: set[tuple[str, ...]] = set()
        for example in self.space.example_sqls:
            if "100" in example.sql:
                for alias in re.findall(r"\bAS\s+(\w+)_pct\b", example.sql, re.I):
                    shown.add(stems(alias.replace("_", " ")))
        for measure in self.measures:
            name = set(measure.phrases[0])
            if {"rate", "share"} & name and any(words and set(words) <= name for words in shown):
                measure.as_percent = True

    def _add_defined_figures(self, instructions: str) -> None:
        """Figures the instructions define in prose become measures (or name declared ones)."""
        squeeze = lambda sql: re.sub(r"\s+", "", sql).lower()  # noqa: E731
        for figure in defined_figures(instructions, set(self.columns)):
            inner = squeeze(figure.sql)
            inner = inner[4:-1] if inner.startswith("avg(") else inner
            same = next((m for m in self.measures if inner in squeeze(m.sql)), None)
            phrases = [stems(n) for n in figure.names]
            if same is not None:
                same.phrases += [p for p in phrases if p and p not in same.phrases]
            elif not any(p in m.phrases for m in self.measures for p in phrases):
                name = figure.names[0]
                if figure.sql.startswith("AVG(") and "average" not in name:
                    name = f"average {name}"
                self.measures.append(self._measure(name, figure.sql, list(figure.names)))

    def _measure_evidence(self, instructions: str) -> MeasureEvidence:
        """What the space says about each measure, as words a question may use."""
        known = set(self.columns)
        # each sentence read once: the columns it names and its stemmed words
        sentences = [
            (s, {w.lower() for w in _IDENTIFIER.findall(s)} & known, stems(s))
            for s in instruction_sentences(instructions)
        ]
        profiles: dict[int, tuple[set[str], set[str]]] = {}
        for index, m in enumerate(self.measures):
            strong = set(evidence_words(" ".join(w for p in m.phrases for w in p)))
            cols = {w.lower() for w in _IDENTIFIER.findall(m.sql)} & known
            text = [m.about]
            for sentence, named, stemmed in sentences:
                if (cols and cols == named) or any(_mentions(stemmed, p) for p in m.phrases):
                    text.append(sentence)
            text += [c.comment for name in cols for c in self.columns[name]]
            weak = set(evidence_words(" ".join(text))) - strong
            profiles[index] = (strong, weak)
        return MeasureEvidence(profiles)

    def _signed_columns(self, cursor: Any) -> None:
        """Numbers that go below zero in the data (balances): "in the red" applies to them."""
        self.signed: list[Column] = []
        for table in self.tables.values():
            lows = _per_column(cursor, table, "number", "MIN")
            self.signed += [c for c, low in lows if low is not None and low < 0]

    def _index_values(self, cursor: Any) -> None:
        self._signed_columns(cursor)
        for table in self.tables.values():
            for col, approx in _per_column(cursor, table, "string", "approx_count_distinct"):
                if _free_text(col):
                    continue
                if approx is None or approx > MAX_INDEXED_VALUES * 1.2:
                    sample = cursor.execute(
                        f'SELECT "{col.name}" FROM {table.sql} LIMIT 20'
                    ).fetchall()
                    self._code_shape(col, [str(r[0]) for r in sample])
                    continue
                rows = cursor.execute(
                    f'SELECT DISTINCT "{col.name}" FROM {table.sql} '
                    f'WHERE "{col.name}" IS NOT NULL LIMIT {MAX_INDEXED_VALUES + 1}'
                ).fetchall()
                if len(rows) > MAX_INDEXED_VALUES:
                    self._code_shape(col, [str(r[0]) for r in rows[:20]])
                    continue
                self._index_column_values(col, [str(r[0]) for r in rows])
                self._word_parts(col, [str(r[0]) for r in rows])
                self.distinct[id(col)] = [str(r[0]).upper() for r in rows]

    def _code_shape(self, col: Column, sample: list[str]) -> None:
        """Remember columns of codes like ``Clerk#000000951``: "Clerk#000000088" names a row."""
        prefixes = {m.group(1) for v in sample if (m := _CODE.fullmatch(v))}
        if len(prefixes) == 1 and len(sample) >= 5 and all(_CODE.fullmatch(v) for v in sample):
            prefix = prefixes.pop()
            self.codes.setdefault(prefix.lower(), (col, prefix))

    def _index_column_values(self, col: Column, values: list[str]) -> None:
        words: dict[str, set[str]] = defaultdict(set)
        spelled: dict[str, str] = {}  # stem -> the word as the data spells it
        for value in values:
            key = stems(value)
            if len(value) >= 2 and key:
                self.values[key].append(ValueRef(col, value))
            for word in re.findall(r"[a-z]+", value.lower()):
                # two-letter codes inside values (SM, LG) count; two-letter English does not
                short = len(word) == 2 and " " in value and word not in _SMALL_WORDS
                if len(word) >= 3 or short:
                    words[stem(word)].add(value)
                    at = value.lower().find(word)
                    spelled.setdefault(stem(word), value[at : at + len(word)])
        if len(values) <= 2:
            return
        for word, having in words.items():
            if (word,) in self.values and any(v.column is col for v in self.values[(word,)]):
                continue
            # One value containing the word: that value. Several: a pattern over them.
            if len(having) == 1:
                only = next(iter(having))
                self.values[(word,)].append(ValueRef(col, only, rank=2, word=spelled[word].lower()))
            elif len(having) < len(values):
                spelling = spelled[word]
                self.values[(word,)].append(
                    ValueRef(col, spelling, "LIKE", rank=3, word=spelling.lower())
                )

    def _index_spelled_out_values(self) -> None:
        """Values with a shortened word, as the space's own text spells them out.

        The instructions say "'REG AIR' (regular air)": "regular air" is REG AIR.
        """
        text = " ".join(
            [self.space.instructions]
            + [t.description for t in self.space.tables]
            + [c for t in self.space.tables for c in t.columns.values()]
        ).lower()
        for refs in list(self.values.values()):
            for ref in refs:
                words = ref.value.lower().split()
                if ref.rank != 0 or len(words) < 2:
                    continue
                for k, word in enumerate(words):
                    if len(word) > 3 or not word.isalpha():
                        continue
                    pattern = " ".join(
                        [*map(re.escape, words[:k]), rf"({re.escape(word)}[a-z]{{2,}})",
                         *map(re.escape, words[k + 1 :])]
                    )  # fmt: skip
                    found = set(re.findall(rf"\b{pattern}\b", text))
                    if len(found) == 1:
                        spelled = [*words[:k], found.pop(), *words[k + 1 :]]
                        key = stems(" ".join(spelled))
                        if not any(r.column is ref.column for r in self.values.get(key, [])):
                            self.values[key].append(ValueRef(ref.column, ref.value, rank=1))

    def _word_parts(self, col: Column, values: list[str]) -> None:
        """Make dimensions of the words of composite codes that a comment explains.

        "a size (SM, MED, LG) and a kind (CASE, BOX)" gives "size" and "kind" over the first
        and second word of each value.
        """
        counts = {len(v.split()) for v in values}
        if len(counts) != 1 or (k := counts.pop()) < 2:
            return
        lists = _NAMED_LIST.findall(col.comment)
        if len(lists) != k:
            return
        for i, (_, items) in enumerate(lists):
            allowed = {x.strip().upper() for x in items.split(",")}
            seen = {v.split()[i].upper() for v in values}
            if not seen <= allowed:
                return
        for i, (label, _) in enumerate(lists):
            name = label.strip().split()[-1].lower()
            phrases = [stems(" ".join([*col.words, name])), stems(name)]
            self.dimensions.insert(0, Dimension(name, col, None, phrases, part=i + 1))

    def _index_meanings(self) -> None:
        """Read "'R' = returned" style glossaries in column comments as value synonyms."""
        for table in self.tables.values():
            for col in table.columns.values():
                meanings = [
                    (code, stems(meaning.split(" and ")[0].split(",")[0].strip()))
                    for code, meaning in _QUOTED_MEANING.findall(col.comment)
                ]
                last = [words[-1:] for _, words in meanings if words]
                for code, words in meanings:
                    # the whole meaning, its last two words ("... still open") and its last
                    # word when no other code of the column ends with it ("open")
                    keys = {words, words[-2:]} if len(words) > 2 else {words}
                    if (
                        len(words) > 1
                        and len(words[-1]) >= 4
                        and words[-1] not in _FILLER_STEMS
                        and last.count(words[-1:]) == 1
                    ):
                        keys.add(words[-1:])
                    for key in keys:
                        if key and not any(v.column is col for v in self.values.get(key, [])):
                            self.values[key].append(ValueRef(col, code, rank=1))

    def _read_rules(self, instructions: str) -> dict[tuple[str, ...], Rule]:
        """Conditions the instructions spell out in SQL, keyed by the phrases that name them.

        A sentence like ``"In debt" or "negative balance" means s_acctbal < 0`` gives the
        phrases "in debt" and "negative balance"; ``High priority means o_orderpriority IN
        (...)`` gives "high priority". Only conditions on one known column are read.
        """
        rules: dict[tuple[str, ...], Rule] = {}
        measure_phrases = {p for m in self.measures for p in m.phrases}
        for sentence in re.split(r"(?<=[.;])\s+|\n", instructions):
            sentence = sentence.strip().lstrip("-* ").strip()  # bullets
            match = _RULE_SQL.search(sentence)
            if match is None:
                continue
            owners = self.columns.get(match.group(1).lower(), [])
            if len(owners) != 1:
                continue
            sql = re.sub(r"\s+matches\s+", " LIKE ", match.group(0).strip().rstrip(".,;"))
            rule = Rule(owners[0], sql)
            names = re.findall(r'"([^"]{3,40})"', sentence.split(match.group(0))[0])
            subject = re.match(r"\s*(?:an?\s+|the\s+)?([a-z][a-z \-]{2,40}?)\s+(?:means|is|are)\b",
                               sentence, re.I)  # fmt: skip
            if subject and not names:
                names = [subject.group(1)]
                words = subject.group(1).split()
                if len(words) > 2:
                    names.append(" ".join(words[-2:]))  # "suppliers with customer complaints"
            for name in names:
                key = stems(name)
                # a phrase that names a measure ("lost revenue", "air shipments") stays a measure
                if not key or len(key) > 4 or _contains_phrase(key, measure_phrases):
                    continue
                rules.setdefault(key, rule)
        return rules

    # lookups -----------------------------------------------------------
    def words_combine(self, column: Column, first: str, second: str) -> bool:
        """Whether one value of ``column`` holds both words ("LARGE" and "BRASS" do)."""
        a, b = first.upper(), second.upper()
        return any(
            a in words and b in words
            for words in (v.split() for v in self.distinct.get(id(column), []))
        )

    def column_named_in(self, sql: str, tables: set[str]) -> Column | None:
        """The first column of ``tables`` that ``sql`` names ("l_receiptdate > l_commitdate")."""
        return next(
            (
                c
                for word in _IDENTIFIER.findall(sql)
                for c in self.columns.get(word.lower(), [])
                if c.table in tables
            ),
            None,
        )

    def column_by_path(self, path: str) -> Column | None:
        """A column from ``catalog.schema.table.column``."""
        table_name, _, column = path.rpartition(".")
        table = self.tables.get(table_name)
        return table.columns.get(column) if table else None

    def join_path(self, start: str, goal: str) -> list[tuple[str, Column, Column]]:
        """The shortest chain of declared joins from ``start`` to ``goal`` (BFS)."""
        if start == goal:
            return []
        previous: dict[str, tuple[str, Column, Column] | None] = {start: None}
        queue = deque([start])
        while queue:
            here = queue.popleft()
            for there, mine, theirs in self.edges.get(here, []):
                if there in previous:
                    continue
                previous[there] = (here, mine, theirs)
                if there == goal:
                    path: list[tuple[str, Column, Column]] = []
                    node = goal
                    while (step := previous[node]) is not None:
                        path.append((node, step[1], step[2]))
                        node = step[0]
                    return list(reversed(path))
                queue.append(there)
        raise LookupError(f"no declared join between {start} and {goal}")


def _per_column(cursor: Any, table: Table, kind: str, aggregate: str) -> list[tuple[Column, Any]]:
    """One aggregate over every column of a kind, in a single scan of the table."""
    columns = [c for c in table.columns.values() if c.kind == kind]
    if not columns:
        return []
    row = cursor.execute(
        "SELECT " + ", ".join(f'{aggregate}("{c.name}")' for c in columns) + f" FROM {table.sql}"
    ).fetchone()
    return list(zip(columns, row, strict=True))


def _free_text(col: Column) -> bool:
    """Comments, addresses, phone numbers: text to read, not categories to filter on."""
    return bool({"comment", "address", "phone", "description", "note"} & set(col.words))


def _column_types(cursor: Any, qualified: str, names: CatalogNames) -> dict[str, str]:
    catalog, schema, table = qualified.split(".")
    rows = cursor.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_catalog = ? "
        "AND table_schema = ? AND table_name = ? ORDER BY ordinal_position",
        [names.internal(catalog), schema, table],
    ).fetchall()
    return {r[0]: str(r[1]) for r in rows}


def _kind(dtype: str) -> str:
    upper = dtype.upper()
    if upper.startswith(("DATE", "TIMESTAMP")):
        return "date"
    if upper.startswith(("VARCHAR", "CHAR", "TEXT", "STRING")):
        return "string"
    if upper.startswith(("DECIMAL", "NUMERIC", "DOUBLE", "FLOAT", "REAL")) or upper.endswith("INT"):
        return "number"
    if upper in ("BIGINT", "INTEGER", "SMALLINT", "TINYINT", "HUGEINT", "UBIGINT", "UINTEGER"):
        return "number"
    return "other"


def _alias(short: str, columns: list[str], used: set[str]) -> str:
    prefixes = {c.split("_", 1)[0] for c in columns if "_" in c}
    candidates = [prefixes.pop()] if len(prefixes) == 1 else []
    candidates += [short[:1], short[:2], short[:3], short]
    for candidate in candidates:
        usable = candidate.isidentifier() and candidate.upper() not in _SQL_KEYWORDS
        if candidate and usable and candidate not in used:
            used.add(candidate)
            return candidate
    used.add(short)
    return short


# An alias such as "order" (from columns order_id, order_date) breaks the SQL shown to users.
_SQL_KEYWORDS = frozenset(
    (
        "ALL AND ANY AS ASC BETWEEN BY CASE CAST CROSS DESC DISTINCT ELSE END EXCEPT FALSE FROM "
        "FULL GROUP HAVING IF IN INNER INTERSECT INTO IS JOIN LEFT LIKE LIMIT NATURAL NOT NULL "
        "ON OR ORDER OUTER RIGHT SELECT SET TABLE THEN TO TRUE UNION USER USING VALUES WHEN "
        "WHERE WINDOW WITH"
    ).split()
)


def _key_column(cursor: Any, table: Table) -> Column | None:
    first = next(iter(table.columns.values()), None)
    if first is None or first.kind not in ("number", "string"):
        return None
    distinct, total = cursor.execute(
        f'SELECT COUNT(DISTINCT "{first.name}"), COUNT(*) FROM {table.sql}'
    ).fetchone()
    return first if distinct == total else None
