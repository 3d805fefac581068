"""NL→SQL: turn a question into the SQL a space's declaration supports.

Real Genie trusts a space's curated example question → SQL pairs first; so does
this engine. Other questions go to the planner (``nl2sql``), which reads them
against the space's declaration and data. When neither is confident the answer
is an honest clarification with questions the space can answer — never a
confident wrong answer. All SQL is checked to be one read-only SELECT over the
space's own tables before it may run.
"""

from __future__ import annotations

import contextlib
import difflib
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from genie_tools._optional import require
from genie_tools.emulator.catalogs import CatalogNames
from genie_tools.emulator.nl2sql.compile import SqlWriter
from genie_tools.emulator.nl2sql.intent import Filter, Intent
from genie_tools.emulator.nl2sql.llm import LlmSqlWriter
from genie_tools.emulator.nl2sql.parse import QuestionParser, Unanswerable
from genie_tools.emulator.nl2sql.schema import SpaceSchema
from genie_tools.emulator.results import TableResult
from genie_tools.emulator.spaces import ExampleSql, SpaceDecl

logger = logging.getLogger(__name__)
_WORD = re.compile(r"[a-z0-9]+")
# Words that carry no meaning for matching a question to an example.
_STOP = frozenset(
    (
        "a an the of in on for by to and or is are was were what which who how show me list "
        "give tell please do does did our we i us"
    ).split()
)


_NO_RENAMES = CatalogNames()


class UnsafeSqlError(ValueError):
    """SQL that is not a single read-only SELECT over the space's tables."""


@dataclass
class Interpretation:
    """What the engine made of a question."""

    question: str
    sql: str | None = None
    """Databricks SQL, as shown to the user in the query attachment."""
    duckdb_sql: str | None = None
    """The same query in DuckDB's dialect: what actually runs."""
    title: str = ""
    description: str = ""
    clarification: str | None = None
    suggested_questions: list[str] = field(default_factory=list)
    intent: Intent | None = None
    """The planner's reading, kept so that follow-ups can modify it."""


def _tokens(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in _STOP]


def similarity(a: str, b: str) -> float:
    """How alike two questions are, 0..1, ignoring case, punctuation, order and filler words.

    Questions that mention different numbers (years, top N) are never alike: the
    answer to "orders in 1994" is not the answer to "orders in 1996".

    Example:
        >>> similarity("What was total revenue by year?", "total revenue by year") == 1.0
        True
    """
    ta, tb = _tokens(a), _tokens(b)
    if not ta or not tb:
        return 0.0
    if {t for t in ta if t.isdigit()} != {t for t in tb if t.isdigit()}:
        return 0.0
    sa, sb = set(ta), set(tb)
    jaccard = len(sa & sb) / len(sa | sb)
    sequence = difflib.SequenceMatcher(None, " ".join(ta), " ".join(tb)).ratio()
    return min(jaccard, sequence) if jaccard < 1 else 1.0


def check_read_only(sql: str, allowed_tables: set[str]) -> None:
    """Raise :class:`UnsafeSqlError` unless ``sql`` is one SELECT over ``allowed_tables``.

    Args:
        sql: Databricks SQL.
        allowed_tables: Fully qualified, lower-case table names.
    """
    sqlglot = require("sqlglot", extra="emulator", purpose="The Genie emulator's SQL checks")
    exp = sqlglot.exp
    try:
        statements = [s for s in sqlglot.parse(sql, read="databricks") if s is not None]
    except sqlglot.errors.SqlglotError as exc:  # parse and tokenize errors alike
        raise UnsafeSqlError(f"SQL does not parse: {exc}") from exc
    if len(statements) != 1:
        raise UnsafeSqlError("exactly one statement is allowed")
    tree = statements[0]
    if not isinstance(tree, exp.Query):
        raise UnsafeSqlError(f"only SELECT queries may run, not {tree.key.upper()}")
    writes = (exp.Insert, exp.Update, exp.Delete, exp.Drop, exp.Create, exp.Alter, exp.Merge)
    if any(tree.find_all(*writes)):
        raise UnsafeSqlError("the query contains a write")
    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    for table in tree.find_all(exp.Table):
        parts = [p for p in (table.catalog, table.db, table.name) if p]
        name = ".".join(parts).lower()
        if name in ctes:
            continue
        if name not in allowed_tables:
            raise UnsafeSqlError(f"table {name!r} is not one of the space's tables")
    for func in tree.find_all(exp.Anonymous):
        if func.name.lower().startswith(("read_", "glob", "query_table")):
            raise UnsafeSqlError(f"function {func.name!r} may not be used")


def to_duckdb(sql: str, names: CatalogNames | None = None) -> str:
    """Transpile Databricks SQL to DuckDB's dialect.

    Args:
        sql: Databricks SQL.
        names: Where catalogs DuckDB reserves (``main``…) live; see :class:`CatalogNames`.

    Example:
        >>> to_duckdb("SELECT 1 FROM main.s.t", CatalogNames(["main"]))
        'SELECT 1 FROM uc_main.s.t'
    """
    return (names or _NO_RENAMES).to_duckdb(sql)


class SpaceEngine:
    """Answers questions over one space: curated examples first, then the NL→SQL planner.

    Args:
        space: The space declaration.
        cursor: Returns a DuckDB cursor, used once to read types, keys and
            values from the data. Without it only the examples are answered.
        llm: Optional LangChain chat model that writes the SQL first.
        names: Where the data's catalogs live in DuckDB (when ``main``… are renamed).

    Example:
        >>> from genie_tools.emulator.spaces import default_spaces_path, load_spaces
        >>> space = load_spaces(default_spaces_path())[0]
        >>> engine = SpaceEngine(space)
        >>> engine.interpret(space.example_sqls[0].question, []).sql is not None
        True
    """

    example_threshold = 0.9
    fallback_threshold = 0.72

    def __init__(
        self,
        space: SpaceDecl,
        cursor: Callable[[], Any] | None = None,
        *,
        llm: Any = None,
        names: CatalogNames | None = None,
    ) -> None:
        self.space = space
        self.names = names or _NO_RENAMES
        self.llm = LlmSqlWriter(llm, space) if llm is not None else None
        self.allowed_tables = {t.name.lower() for t in space.tables}
        self._cursor = cursor
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self._parser: QuestionParser | None = None
        self._writer: SqlWriter | None = None
        self.error: Exception | None = None

    def prepare(self) -> None:
        """Read the data this space needs (types, keys, values); idempotent, thread-safe."""
        with self._lock:
            if self._ready.is_set() or self._cursor is None:
                self._ready.set()
                return
            try:
                schema = SpaceSchema(self.space, self._cursor(), names=self.names)
                self._parser, self._writer = QuestionParser(schema), SqlWriter(schema)
            except Exception as exc:  # a broken declaration leaves the examples working
                self.error = exc
            finally:
                self._ready.set()

    def interpret(self, question: str, history: list[Interpretation]) -> Interpretation:
        """Map ``question`` (with the conversation's earlier interpretations) to SQL."""
        self.prepare()
        if self.llm is not None:
            answer = self._from_llm(question, history)
            if answer is not None:
                return answer
        return self._built_in(question, history)

    def restore(self, interpretation: Interpretation, history: list[Interpretation]) -> None:
        """Re-derive a stored answer's reading (what a follow-up edits) after a restart.

        The planner is deterministic, so replaying the question after the same history
        reads it as it was read; when the replay's SQL differs (the engine or the space
        changed since), the answer keeps no reading and a follow-up starts afresh.
        """
        if interpretation.sql is None or interpretation.intent is not None:
            return
        self.prepare()
        replay = self._built_in(interpretation.question, history)
        if replay.sql == interpretation.sql:
            interpretation.intent = replay.intent

    def _built_in(self, question: str, history: list[Interpretation]) -> Interpretation:
        """The curated examples, then the planner, then a clarification."""
        previous = next((h for h in reversed(history) if h.sql is not None), None)
        example, score = self._closest_example(question)
        if example is not None and score >= self.example_threshold:
            return self._from_example(question, example)
        reason = "I couldn't map that to this space's data with confidence."
        if self._parser is not None and self._writer is not None:
            try:
                intent = self._parser.parse(question, self._intent_of(previous))
                sql = self._writer.write(intent)
                check_read_only(sql, self.allowed_tables)
                return Interpretation(
                    question=question,
                    sql=sql,
                    duckdb_sql=to_duckdb(sql, self.names),
                    title=describe(intent),
                    description=f"{describe(intent)}, computed from {self._sources(intent)}.",
                    suggested_questions=self.suggestions(),
                    intent=intent,
                )
            except Unanswerable as exc:
                reason = exc.reason
            except Exception:  # a reading the planner cannot complete is no answer
                logger.debug("planner failed on %r", question, exc_info=True)
        if example is not None and score >= self.fallback_threshold and previous is None:
            return self._from_example(question, example)
        return self.clarify(question, reason)

    def _from_llm(self, question: str, history: list[Interpretation]) -> Interpretation | None:
        """The model's SQL when it is read-only, stays in the space and compiles; else None."""
        assert self.llm is not None
        sql = self.llm.write(question, [(h.question, h.sql) for h in history])
        if sql is None:
            return None
        try:
            check_read_only(sql, self.allowed_tables)
            duckdb_sql = to_duckdb(sql, self.names)
            if self._cursor is not None:
                self._cursor().execute(f"EXPLAIN {duckdb_sql}")  # compiles against the data
        except Exception:  # unsafe or broken SQL from the model: the built-in engine answers
            logger.info("LLM SQL rejected for %r", question, exc_info=True)
            return None
        return Interpretation(
            question=question,
            sql=sql,
            duckdb_sql=duckdb_sql,
            title=question.rstrip("?"),
            description=f"Written by the LLM backend for: {question}",
            suggested_questions=self.suggestions(),
        )

    def _closest_example(self, question: str) -> tuple[ExampleSql | None, float]:
        best, score = None, 0.0
        for example in self.space.example_sqls:
            s = similarity(question, example.question)
            if s > score:
                best, score = example, s
        return best, score

    def _from_example(self, question: str, example: ExampleSql) -> Interpretation:
        try:
            check_read_only(example.sql, self.allowed_tables)
        except UnsafeSqlError:
            # A declaration that writes or leaves the space never runs: ask instead.
            return self.clarify(question, "That example is not a read-only query of this space.")
        intent = None
        if self._parser is not None:
            with contextlib.suppress(Unanswerable, LookupError):
                intent = self._parser.parse(example.question, None)
        return Interpretation(
            question=question,
            sql=example.sql.strip(),
            duckdb_sql=to_duckdb(example.sql, self.names),
            title=example.question.rstrip("?"),
            description=f"Answers: {example.question}",
            suggested_questions=self.suggestions(exclude=example.question),
            intent=intent,
        )

    def _intent_of(self, previous: Interpretation | None) -> Intent | None:
        return previous.intent if previous is not None else None

    def _sources(self, intent: Intent) -> str:
        tables = {m_t for m in intent.metrics for m_t in m.tables}
        tables |= {g.column.table for g in intent.groups} | {f.column.table for f in intent.filters}
        return ", ".join(sorted(tables))

    def clarify(self, question: str, reason: str = "") -> Interpretation:
        """An honest clarification with questions this space can answer."""
        lead = reason or "I couldn't map that to this space's data with confidence."
        return Interpretation(
            question=question,
            clarification=(
                f"{lead} In {self.space.title!r} I can answer questions about "
                f"{self._topics()}. Could you rephrase, or pick one of the suggested questions?"
            ),
            suggested_questions=self.suggestions(),
        )

    def _topics(self) -> str:
        names = [m.name for m in self.space.measures[:4]]
        return ", ".join(names) if names else "its tables"

    def suggestions(self, *, exclude: str | None = None, limit: int = 3) -> list[str]:
        """Sample questions of the space, without ``exclude``."""
        pool = self.space.sample_questions or [e.question for e in self.space.example_sqls]
        return [q for q in pool if q != exclude][:limit]


def describe(intent: Intent) -> str:
    """A short title for an intent, e.g. "Revenue by region in 1996"."""
    what = " and ".join(m.name.replace("_", " ") for m in intent.metrics) or "rows"
    text = what[:1].upper() + what[1:]
    groups = [g.name.replace("_", " ") for g in intent.groups]
    if groups:
        text += " by " + " and ".join(groups)
    filters = [_describe_filter(f) for f in intent.filters]
    if filters:
        text += " (" + "; ".join(filters) + ")"
    if intent.limit:
        text = (
            f"Top {intent.limit}: {text}"
            if intent.descending is not False
            else f"Bottom {intent.limit}: {text}"
        )
    return text


def _describe_filter(f: Filter) -> str:
    name = " ".join(f.column.words) or f.column.name
    if f.op == "RANGE":
        return f"{name} from {f.values[0]} to before {f.values[1]}"
    if f.op in ("IN", "YEARS"):
        return f"{name} in {', '.join(str(v) for v in f.values)}"
    if f.op == "LIKE":
        return f"{name} contains {f.values[0]}"
    return f"{name} {f.op} {f.values[0]}"


def summarize(result: TableResult) -> str:
    """One or two plain sentences on a result, with the key figures.

    Example:
        >>> from genie_tools.emulator.results import Column
        >>> summarize(TableResult([Column("order_count", "LONG", "BIGINT")], [["22909"]]))
        'The order count is 22,909.'
    """
    if not result.rows:
        return "The query returned no rows."
    names = [c.name for c in result.columns]
    # years, months and keys are labels, not figures: 1992, not 1,992
    numeric = [
        c.type_name in _NUMERIC and not c.name.lower().endswith(_LABEL_ENDINGS)
        for c in result.columns
    ]
    first = result.rows[0]
    shown = [_figure(v, n, is_num) for v, n, is_num in zip(first, names, numeric, strict=True)]
    if len(result.rows) == 1:
        parts = [f"the {_words(n)} is {v}" for n, v in zip(names, shown, strict=True)]
        return _sentence(" and ".join(parts)) + "."
    count = f"{result.row_count:,} rows" + (" (the first 5,000 shown)" if result.truncated else "")
    labels = [v for v, is_num in zip(shown, numeric, strict=True) if not is_num]
    figures = [(n, v) for n, v, is_num in zip(names, shown, numeric, strict=True) if is_num]
    if labels and figures:
        name, value = figures[-1] if len(figures) == 1 else figures[0]
        return (
            f"The query returned {count}. First: {' / '.join(labels)} with {_words(name)} {value}."
        )
    lead = ", ".join(f"{_words(n)} {v}" for n, v in zip(names, shown, strict=True))
    return f"The query returned {count}. The first row: {lead}."


_NUMERIC = {"INT", "LONG", "SHORT", "BYTE", "DECIMAL", "DOUBLE", "FLOAT"}
_LABEL_ENDINGS = ("year", "quarter", "month", "day", "key", "id", "number", "size")


def _words(name: str) -> str:
    return name.replace("_", " ")


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _figure(value: str | None, name: str, numeric: bool) -> str:
    """A value as a person reads it: 22,909 / 3,144,243,655.72 / 49.94%."""
    if value is None:
        return "null"
    if not numeric:
        return value
    try:
        number = float(value)
    except ValueError:
        return value
    if name.endswith("pct") or "percent" in name:
        return f"{number:,.2f}%"
    if number == int(number) and "." not in value:
        return f"{int(number):,}"
    return f"{number:,.2f}" if abs(number) >= 1 else f"{number:.4g}"
