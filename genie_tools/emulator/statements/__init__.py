"""The SQL Statement Execution API (``/api/2.0/sql/statements``) over the emulator's DuckDB.

Code that re-runs Genie's SQL on a warehouse (``w.statement_execution.execute_statement``)
works offline against the data Genie answers from. Statements are Databricks SQL: they are
checked to be one read-only query over tables the emulator has, their unqualified table
names are qualified with the request's ``catalog``/``schema``, ``:name`` parameter markers
become DuckDB prepared parameters (values are never spliced into SQL text), and sqlglot
transpiles the result to DuckDB. What Databricks would reject while *executing* answers
HTTP 200 with ``status.state`` ``FAILED``; what it rejects while *accepting* the request
answers 400.

Results travel as in Databricks: ``JSON_ARRAY`` rows of strings, ``INLINE`` (capped at
25 MiB) in chunks of :attr:`StatementStore.inline_chunk_rows` rows, or ``EXTERNAL_LINKS``
(``JSON_ARRAY`` or ``CSV``) as pre-signed, unauthenticated URLs served by the emulator.

Wire it into an application with one call: ``add_statement_routes(app, service)``.

Modules, in the order a statement meets them:

- :mod:`.routes`: the HTTP handlers and :func:`add_statement_routes`.
- :mod:`.request`: validating the request body on acceptance (400s).
- :mod:`.parameters`: named parameters, their types and values.
- :mod:`.store`: statement records, their lifecycle and execution on a thread pool.
- :mod:`.sql`: read-only checks, name qualification and parameter binding.
- :mod:`.failures`: how a statement fails (400 or ``FAILED``), DuckDB errors translated.
- :mod:`.chunks`: the result on the wire: chunks, inline rows, signed external links.
"""

from __future__ import annotations

from genie_tools.emulator.statements.failures import StatementFailure
from genie_tools.emulator.statements.parameters import Parameter
from genie_tools.emulator.statements.routes import STATEMENTS, add_statement_routes, statement_store
from genie_tools.emulator.statements.sql import CatalogIndex, compile_statement
from genie_tools.emulator.statements.store import StatementStore

__all__ = [
    "STATEMENTS",
    "CatalogIndex",
    "Parameter",
    "StatementFailure",
    "StatementStore",
    "add_statement_routes",
    "compile_statement",
    "statement_store",
]
