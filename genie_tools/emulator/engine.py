"""NL→SQL: turn a question into the SQL a space's declaration supports.

Real Genie leans on a space's example question → SQL pairs; so does this
engine: a question that matches an example (exactly, or nearly: same words in
another order, small wording changes) gets that example's SQL. Anything else
gets an honest clarification with questions the space can answer — never a
confident wrong answer. All SQL is checked to be one read-only SELECT over the
space's own tables before it may run.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from genie_tools._optional import require
from genie_tools.emulator.results import TableResult
from genie_tools.emulator.spaces import SpaceDecl

_WORD = re.compile(r"[a-z0-9]+")
# Words that carry no meaning for matching a question to an example.
_STOP = frozenset(
    (
        "a an the of in on for by to and or is are was were what which who how show me list "
        "give tell please do does did our we i us"
    ).split()
)


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


def _tokens(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in _STOP]


def similarity(a: str, b: str) -> float:
    """How alike two questions are, 0..1, ignoring case, punctuation, order and filler words.

    Example:
        >>> similarity("What was total revenue by year?", "total revenue by year") == 1.0
        True
    """
    ta, tb = _tokens(a), _tokens(b)
    if not ta or not tb:
        return 0.0
    sa, sb = set(ta), set(tb)
    jaccard = len(sa & sb) / len(sa | sb)
    sequence = difflib.SequenceMatcher(None, " ".join(sorted(sa)), " ".join(sorted(sb))).ratio()
    return max(jaccard, sequence)


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
    except sqlglot.errors.ParseError as exc:
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


def to_duckdb(sql: str) -> str:
    """Transpile Databricks SQL to DuckDB's dialect."""
    sqlglot = require("sqlglot", extra="emulator", purpose="The Genie emulator's SQL transpiling")
    return str(sqlglot.transpile(sql, read="databricks", write="duckdb")[0])


class ExampleEngine:
    """Answers the questions a space's examples answer; asks for clarification otherwise.

    Example:
        >>> from genie_tools.emulator.spaces import default_spaces_path, load_spaces
        >>> space = load_spaces(default_spaces_path())[0]
        >>> engine = ExampleEngine(space)
        >>> engine.interpret(space.example_sqls[0].question, []).sql is not None
        True
    """

    threshold = 0.72

    def __init__(self, space: SpaceDecl) -> None:
        self.space = space
        self.allowed_tables = {t.name.lower() for t in space.tables}

    def interpret(self, question: str, history: list[Interpretation]) -> Interpretation:
        """Map ``question`` (with the conversation's earlier interpretations) to SQL."""
        best, score = None, 0.0
        for example in self.space.example_sqls:
            s = similarity(question, example.question)
            if s > score:
                best, score = example, s
        if best is None or score < self.threshold:
            return self.clarify(question)
        try:
            check_read_only(best.sql, self.allowed_tables)
        except UnsafeSqlError:
            # A declaration that writes or leaves the space never runs: ask instead.
            return self.clarify(question)
        return Interpretation(
            question=question,
            sql=best.sql.strip(),
            duckdb_sql=to_duckdb(best.sql),
            title=best.question.rstrip("?"),
            description=f"Answers: {best.question}",
            suggested_questions=self.suggestions(exclude=best.question),
        )

    def clarify(self, question: str) -> Interpretation:
        """An honest clarification with questions this space can answer."""
        return Interpretation(
            question=question,
            clarification=(
                f"I couldn't map that to the data in {self.space.title!r} with confidence. "
                "Could you rephrase it, or pick one of the suggested questions?"
            ),
            suggested_questions=self.suggestions(),
        )

    def suggestions(self, *, exclude: str | None = None, limit: int = 3) -> list[str]:
        """Sample questions of the space, without ``exclude``."""
        pool = self.space.sample_questions or [e.question for e in self.space.example_sqls]
        return [q for q in pool if q != exclude][:limit]


def summarize(result: TableResult) -> str:
    """One or two plain sentences on a result, with the key figures."""
    if not result.rows:
        return "The query returned no rows."
    names = [c.name for c in result.columns]
    first = result.rows[0]
    if len(result.rows) == 1 and len(names) == 1:
        return f"The {names[0].replace('_', ' ')} is {first[0]}."
    lead = ", ".join(f"{n.replace('_', ' ')} {v}" for n, v in zip(names, first, strict=False))
    count = f"{result.row_count:,} rows" + (" (truncated)" if result.truncated else "")
    return f"The query returned {count}. The first row: {lead}."
