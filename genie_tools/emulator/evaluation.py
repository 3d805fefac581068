"""Evaluate Genie answers against an eval set, by result equivalence, through the wire.

An eval set is YAML: cases of one or more turns, each a question and the SQL
whose result is the right answer (``null`` when the right answer is a
clarification). Each case runs as one Genie conversation through the real
Databricks SDK, so follow-ups are judged exactly as a client sees them.

Results are equivalent when they have the same rows and values: order is
ignored unless the case says ``ordered: true``; numbers agree to 1e-6
relative, or one is the other rounded to the decimals it shows (presentation
rounding, which spaces' instructions often ask for); the answer may carry
extra columns (a key beside a name), but every expected column must be there.
"""

from __future__ import annotations

import datetime as dt
import decimal
import itertools
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from genie_tools.emulator.runner import GenieEmulator

TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "QUERY_RESULT_EXPIRED"}


class Turn(BaseModel):
    """One question of a case and the SQL of its right answer (None: must clarify)."""

    model_config = ConfigDict(extra="forbid")
    question: str
    sql: str | None = None
    ordered: bool = False


class Case(BaseModel):
    """A conversation to replay."""

    model_config = ConfigDict(extra="forbid")
    id: str
    space: str
    shape: str
    turns: list[Turn] = Field(min_length=1)

    @property
    def out_of_scope(self) -> bool:
        """Every turn should be answered with a clarification."""
        return all(t.sql is None for t in self.turns)


class EvalSet(BaseModel):
    """The file."""

    model_config = ConfigDict(extra="forbid")
    version: int = 1
    cases: list[Case]


def load_eval_set(path: str | Path) -> EvalSet:
    """Load and validate an eval set YAML file."""
    return EvalSet.model_validate(yaml.safe_load(Path(path).read_text(encoding="utf-8")))


# -- equivalence -------------------------------------------------------------
def _value(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float, decimal.Decimal)):
        return float(v)
    if isinstance(v, dt.datetime):
        return v.replace(tzinfo=None).isoformat(timespec="seconds")
    if isinstance(v, dt.date):
        return dt.datetime(v.year, v.month, v.day).isoformat(timespec="seconds")
    text = str(v)
    for parse in (float, _wire_time):
        try:
            return parse(text)
        except ValueError:
            continue
    return text


def _wire_time(text: str) -> str:
    if len(text) >= 10 and text[4] == "-" and text[7] == "-":
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00")[:26].rstrip("+"))
        return parsed.replace(tzinfo=None).isoformat(timespec="seconds")
    raise ValueError(text)


def _decimals(x: float) -> int:
    text = repr(x)
    return len(text.split(".")[1]) if "." in text and "e" not in text else 0


def values_equal(a: Any, b: Any) -> bool:
    """Equal as answers: numbers to 1e-6 relative, or one shown rounded (<= 4 decimals)."""
    if isinstance(a, float) and isinstance(b, float):
        if math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9):
            return True
        for x, y in ((a, b), (b, a)):
            places = _decimals(x)
            # half a unit of the last shown place: SQL's ROUND(63.125, 2) is 63.13, but
            # Python's round() of the binary float gives 63.12
            if places <= 4 and abs(y - x) <= 0.5 * 10.0**-places + 1e-9 * max(1.0, abs(x)):
                return True
        return False
    return bool(a == b)


def _rows_equal(got: list[tuple[Any, ...]], want: list[tuple[Any, ...]], ordered: bool) -> bool:
    if len(got) != len(want):
        return False
    if not ordered:
        got = sorted(got, key=_sort_key)
        want = sorted(want, key=_sort_key)
    return all(
        all(values_equal(a, b) for a, b in zip(g, w, strict=True))
        for g, w in zip(got, want, strict=True)
    )


def _sort_key(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(
        (0, round(v, 4)) if isinstance(v, float) else (1, str(v)) if v is not None else (2, "")
        for v in row
    )


def results_equivalent(
    got: list[tuple[Any, ...]], want: list[tuple[Any, ...]], *, ordered: bool
) -> bool:
    """Whether an answer's rows match the expected rows (see the module docstring).

    Example:
        >>> results_equivalent([(1, "a", 2.0)], [("a", 2.0)], ordered=False)
        True
    """
    got = [tuple(_value(v) for v in row) for row in got]
    want = [tuple(_value(v) for v in row) for row in want]
    if len(got) != len(want):
        return False
    width = len(want[0]) if want else 0
    have = len(got[0]) if got else 0
    if not want:
        return not got
    if have < width:
        return False
    if have > 8:  # keep the search small; wide results must line up as they are
        return _rows_equal([r[:width] for r in got], want, ordered)
    for columns in itertools.permutations(range(have), width):
        if _rows_equal([tuple(r[i] for i in columns) for r in got], want, ordered):
            return True
    return False


# -- running ------------------------------------------------------------------
@dataclass
class TurnOutcome:
    """How one turn went."""

    case: str
    turn: int
    question: str
    expected_sql: str | None
    sql: str | None
    clarified: bool
    correct: bool
    seconds: float
    detail: str = ""


@dataclass
class Report:
    """Accuracy by space and by shape, and every turn's outcome."""

    outcomes: list[TurnOutcome] = field(default_factory=list)
    case_space: dict[str, str] = field(default_factory=dict)
    case_shape: dict[str, str] = field(default_factory=dict)

    def _score(self, in_scope: bool, key: str | None = None, by: str = "") -> tuple[int, int]:
        ok = total = 0
        for o in self.outcomes:
            if (o.expected_sql is not None) != in_scope:
                continue
            group = self.case_space[o.case] if by == "space" else self.case_shape[o.case]
            if key is not None and group != key:
                continue
            total += 1
            ok += o.correct
        return ok, total

    @property
    def in_scope_accuracy(self) -> float:
        """Correct in-scope turns / in-scope turns."""
        ok, total = self._score(True)
        return ok / total if total else 0.0

    @property
    def clarification_rate(self) -> float:
        """Out-of-scope turns answered with a clarification (no SQL) / out-of-scope turns."""
        ok, total = self._score(False)
        return ok / total if total else 0.0

    def _groups(self) -> Iterator[tuple[str, str, tuple[int, int], tuple[int, int]]]:
        """(by, key, in-scope (correct, total), out-of-scope (clarified, total)) per group."""
        for by in ("space", "shape"):
            keys = sorted(set((self.case_space if by == "space" else self.case_shape).values()))
            for key in keys:
                yield by, key, self._score(True, key, by), self._score(False, key, by)

    @property
    def misses(self) -> list[TurnOutcome]:
        """The turns judged wrong, in the order they ran."""
        return [o for o in self.outcomes if not o.correct]

    def table(self) -> str:
        """A markdown table per space and per shape."""
        lines = ["| group | in-scope correct | out-of-scope clarified |", "|---|---|---|"]
        for by, key, (a, n), (c, m) in self._groups():
            cells = [
                f"{a}/{n} ({a / n:.0%})" if n else "-",
                f"{c}/{m} ({c / m:.0%})" if m else "-",
            ]
            lines.append(f"| {by}: {key} | {cells[0]} | {cells[1]} |")
        a, n = self._score(True)
        c, m = self._score(False)
        lines.append(
            f"| **all** | **{a}/{n} ({a / max(n, 1):.1%})** | **{c}/{m} ({c / max(m, 1):.1%})** |"
        )
        return "\n".join(lines)

    def summary(self) -> dict[str, Any]:
        """The scores and the misses as plain data (``genie-tools emulator eval --json``)."""
        a, n = self._score(True)
        c, m = self._score(False)
        groups: dict[str, dict[str, Any]] = {"space": {}, "shape": {}}
        for by, key, (ga, gn), (gc, gm) in self._groups():
            groups[by][key] = {
                "in_scope": {"correct": ga, "total": gn},
                "out_of_scope": {"clarified": gc, "total": gm},
            }
        return {
            "cases": len(self.case_space),
            "turns": len(self.outcomes),
            "in_scope": {"correct": a, "total": n, "accuracy": self.in_scope_accuracy},
            "out_of_scope": {"clarified": c, "total": m, "rate": self.clarification_rate},
            "by_space": groups["space"],
            "by_shape": groups["shape"],
            "misses": [asdict(o) for o in self.misses],
        }


@contextmanager
def duckdb_reference(emulator: GenieEmulator) -> Iterator[Callable[[str], list[tuple[Any, ...]]]]:
    """The referee: ``run(databricks_sql) -> rows`` over the emulator's data, in DuckDB.

    The SQL is transpiled as the emulator transpiles it, but runs on a connection of
    its own (the same files, attached read-only), so the referee never shares state
    with the server it judges.

    Example:
        >>> with GenieEmulator(speed=0) as emu, duckdb_reference(emu) as run:  # doctest: +SKIP
        ...     run("SELECT COUNT(*) FROM samples.tpch.orders")
        [(150000,)]
    """
    from genie_tools.emulator.data import Database
    from genie_tools.emulator.engine import to_duckdb

    db = Database(emulator.config.data, emulator.data_dir)

    def run(databricks_sql: str) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = (
            db.cursor().execute(to_duckdb(databricks_sql, db.names)).fetchall()
        )
        return rows

    try:
        yield run
    finally:
        db.close()


def ask(w: Any, space_id: str, question: str, conversation_id: str | None) -> Any:
    """Ask through the SDK and poll briskly (the SDK's own waiter sleeps a second)."""
    genie = w.genie
    if conversation_id is None:
        msg = genie.start_conversation(space_id, question).response
    else:
        msg = genie.create_message(space_id, conversation_id, question).response
    deadline = time.monotonic() + 60
    while True:
        msg = genie.get_message(space_id, msg.conversation_id, msg.message_id)
        if msg.status is not None and msg.status.value in TERMINAL:
            return msg
        if time.monotonic() > deadline:
            raise TimeoutError(f"no answer to {question!r} within 60 s")
        time.sleep(0.005)


def query_of(w: Any, message: Any) -> tuple[str, Any] | None:
    """The SQL of an answer and its ``StatementResponse`` (None for a clarification)."""
    query = next((a for a in message.attachments or [] if a.query is not None), None)
    if query is None or query.query is None:
        return None
    statement = w.genie.get_message_attachment_query_result(
        message.space_id, message.conversation_id, message.message_id, query.attachment_id
    ).statement_response
    return query.query.query or "", statement


def rows_of(statement: Any) -> list[tuple[Any, ...]]:
    """Rows of a ``StatementResponse`` (strings and nulls, as on the wire)."""
    data = statement.result.data_array if statement.result else None
    return [tuple(r) for r in data or []]


def run_eval(w: Any, eval_set: EvalSet, reference: Any, spaces: dict[str, str]) -> Report:
    """Replay every case through ``w`` (a WorkspaceClient) and judge each turn.

    Args:
        w: SDK client for the Genie workspace (e.g. the emulator's).
        eval_set: The cases.
        reference: ``callable(databricks_sql) -> rows``: the referee for expected SQL.
        spaces: Space title → space id.
    """
    report = Report()
    for case in eval_set.cases:
        report.case_space[case.id] = case.space
        report.case_shape[case.id] = case.shape
        conversation: str | None = None
        for n, turn in enumerate(case.turns):
            began = time.perf_counter()
            msg = ask(w, spaces[case.space], turn.question, conversation)
            seconds = time.perf_counter() - began
            conversation = msg.conversation_id
            found = query_of(w, msg)
            text = next((a.text for a in msg.attachments or [] if a.text is not None), None)
            clarified = found is None and text is not None and text.purpose is not None
            sql = found[0] if found else None
            outcome = TurnOutcome(
                case.id, n, turn.question, turn.sql, sql, clarified, False, seconds
            )
            if turn.sql is None:
                outcome.correct = clarified and sql is None
                outcome.detail = "" if outcome.correct else "answered instead of asking"
            elif found is None or msg.status is None or msg.status.value != "COMPLETED":
                outcome.detail = f"no SQL ({msg.status.value if msg.status else '?'})"
            else:
                outcome.correct = results_equivalent(
                    rows_of(found[1]), reference(turn.sql), ordered=turn.ordered
                )
                outcome.detail = "" if outcome.correct else "different result"
            report.outcomes.append(outcome)
    return report
