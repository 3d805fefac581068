"""A statement's result on the wire: chunks, ``INLINE`` rows or signed external links.

Results travel as in Databricks: ``JSON_ARRAY`` rows of strings, cut into chunks of a
fixed number of rows. ``INLINE`` chunks carry their rows in the response;
``EXTERNAL_LINKS`` chunks are serialized once (``JSON_ARRAY`` or ``CSV``) when the
statement succeeds and served at pre-signed, unauthenticated, expiring URLs, like the
cloud-storage links of a real warehouse. The ``StatementResponse`` and ``ResultData``
bodies are rendered here; the manifest's common part comes from
:func:`genie_tools.emulator.results.manifest`, shared with Genie's query results.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import io
import json
import re
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from genie_tools.emulator.results import TableResult, manifest

if TYPE_CHECKING:  # the store imports this module to serialize results
    from genie_tools.emulator.statements.store import Statement

API = "/api/2.0/sql/statements"
DOWNLOAD = "/emulator/download/statements"
"""External links live under ``/emulator/download/``, which the middleware serves without a
token, like a cloud-storage URL."""
_DECIMAL = re.compile(r"decimal\((\d+),(\d+)\)", re.IGNORECASE)


def chunk_sizes(row_count: int, chunk_rows: int) -> list[int]:
    """The row count of each chunk of a result (none for an empty result).

    Example:
        >>> chunk_sizes(5, 2)
        [2, 2, 1]
    """
    return [min(chunk_rows, row_count - start) for start in range(0, row_count, chunk_rows)]


def json_row_bytes(row: list[str | None]) -> int:
    """Roughly the row's size in ``JSON_ARRAY`` form (for ``byte_limit`` and the cap)."""
    return 2 + sum(len(v) + 3 if v is not None else 5 for v in row)


def serialize_chunks(result: TableResult, chunk_rows: int, fmt: str) -> list[bytes]:
    """Each chunk of ``result`` as its external link serves it.

    Args:
        result: The rows, rendered for the wire.
        chunk_rows: Rows per chunk.
        fmt: ``CSV`` (a header row in the first chunk only; NULL as ``null``) or
            ``JSON_ARRAY``.

    Returns:
        The chunks' bytes, in order.
    """
    payloads = []
    for start in range(0, result.row_count, chunk_rows):
        rows = result.rows[start : start + chunk_rows]
        if fmt == "CSV":
            buf = io.StringIO()
            writer = csv.writer(buf, lineterminator="\n")
            if start == 0:
                writer.writerow([c.name for c in result.columns])
            writer.writerows([["null" if v is None else v for v in row] for row in rows])
            payloads.append(buf.getvalue().encode())
        else:
            payloads.append(json.dumps(rows, separators=(",", ":")).encode())
    return payloads


class LinkSigner:
    """Signs external links with a key of its own, so only links it issued download.

    The key is random per signer: links do not survive an emulator restart, and one
    emulator's links are worthless on another.
    """

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)

    def sign(self, statement_id: str, index: int, expires: int) -> str:
        """The signature of the link to chunk ``index`` that expires at ``expires``."""
        message = f"{statement_id}/{index}/{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def verify(self, statement_id: str, index: int, expires: int, signature: str) -> bool:
        """Whether ``signature`` is this signer's for the link (expiry is not checked)."""
        # As bytes: compare_digest raises TypeError on a str with non-ASCII characters.
        given = signature.encode("utf-8", "surrogatepass")
        return hmac.compare_digest(given, self.sign(statement_id, index, expires).encode())

    def link(self, base_url: str, statement_id: str, index: int, expires: int) -> dict[str, Any]:
        """The ``external_link``, ``expiration`` and ``http_headers`` of one chunk."""
        signature = self.sign(statement_id, index, expires)
        return {
            "external_link": (
                f"{base_url}{DOWNLOAD}/{statement_id}/{index}?expires={expires}&sig={signature}"
            ),
            "expiration": dt.datetime.fromtimestamp(expires, dt.UTC).strftime(
                "%Y-%m-%dT%H:%M:%S.000Z"
            ),
            "http_headers": {},
        }


def chunk_info(stmt: Statement, index: int) -> dict[str, Any]:
    """Where chunk ``index`` sits in the result (``BaseChunkInfo``)."""
    info: dict[str, Any] = {
        "chunk_index": index,
        "row_offset": sum(stmt.chunk_counts[:index]),
        "row_count": stmt.chunk_counts[index],
    }
    if stmt.payloads:
        info["byte_count"] = len(stmt.payloads[index])
    return info


def chunk_data(stmt: Statement, index: int, link: dict[str, Any] | None) -> dict[str, Any]:
    """One chunk as ``ResultData``: its rows inline, or wrapped around its external ``link``.

    Args:
        stmt: A succeeded statement.
        index: The chunk.
        link: For ``EXTERNAL_LINKS``, the chunk's link (:meth:`LinkSigner.link`); None for
            ``INLINE``.
    """
    data = chunk_info(stmt, index)
    if index + 1 < stmt.chunk_count:
        data["next_chunk_index"] = index + 1
        data["next_chunk_internal_link"] = f"{API}/{stmt.id}/result/chunks/{index + 1}"
    if link is not None:
        data.update(link)
        return {"external_links": [data]}
    assert stmt.result is not None
    start = data["row_offset"]
    data["data_array"] = stmt.result.rows[start : start + data["row_count"]]
    return data


def statement_response(stmt: Statement, chunk: Callable[[int], dict[str, Any]]) -> dict[str, Any]:
    """The ``StatementResponse`` for the statement's current state.

    Args:
        stmt: The statement (read under the store's lock).
        chunk: Renders chunk ``index`` as ``ResultData``; called for the first chunk only
            when the statement has succeeded with rows.
    """
    body: dict[str, Any] = {"statement_id": stmt.id, "status": {"state": stmt.state}}
    if stmt.state == "FAILED":
        body["status"]["error"] = stmt.error
        body["status"]["sql_state"] = stmt.sql_state
    if stmt.state != "SUCCEEDED" or stmt.result is None:
        return body
    man = manifest(stmt.result, fmt=stmt.request.format, chunks=stmt.chunk_count)
    man["total_row_count"] = sum(stmt.chunk_counts)
    man["chunks"] = [chunk_info(stmt, i) for i in range(stmt.chunk_count)]
    if not man["chunks"]:
        del man["chunks"]
    if stmt.payloads:
        man["total_byte_count"] = sum(len(p) for p in stmt.payloads)
    for column in man["schema"]["columns"]:
        decimal = _DECIMAL.fullmatch(column["type_text"])
        if decimal:
            column["type_precision"] = int(decimal.group(1))
            column["type_scale"] = int(decimal.group(2))
    body["manifest"] = man
    body["result"] = chunk(0) if stmt.chunk_count else {}
    return body
