"""Genie's full-result downloads: a message's query re-run uncapped, served in signed chunks.

``generate_download`` starts the run and answers a download id with its signature;
``get_download`` answers ``PENDING`` until the run ends, then a ``SUCCEEDED`` statement
whose external links point at :meth:`Downloads.download_chunk`. Those links carry an
HMAC of the download id instead of a bearer token, as Databricks' pre-signed URLs do,
so the middleware leaves ``/emulator/download/`` unauthenticated.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import secrets
from typing import Any

from aiohttp import web

from genie_tools.emulator.bodies import path_int
from genie_tools.emulator.results import TableResult, manifest, pending_statement
from genie_tools.emulator.server import find_query_message
from genie_tools.emulator.service import ApiError, GenieService

DOWNLOAD_CHUNK_ROWS = 100_000


class Downloads:
    """Download handlers and their state: the signing key and every download started."""

    def __init__(self, service: GenieService) -> None:
        self.service = service
        # Per application, so a link signed by one emulator is worthless to another.
        self._download_key = secrets.token_bytes(32)
        self.downloads: dict[str, dict[str, Any]] = {}

    def _sign(self, download_id: str) -> str:
        return hmac.new(self._download_key, download_id.encode(), hashlib.sha256).hexdigest()

    async def generate_download(self, request: web.Request) -> web.Response:
        """Start a full (uncapped) run of the query; answers a download id and signature."""
        msg = find_query_message(request)
        with self.service.lock:
            if msg.status(self.service.clock()) not in ("COMPLETED", "QUERY_RESULT_EXPIRED"):
                raise ApiError(400, "INVALID_STATE", f"Message {msg.id} has not completed.")
            download_id = self.service.new_id()
        entry: dict[str, Any] = {"message_id": msg.id, "result": None, "error": None}
        self.downloads[download_id] = entry

        def run() -> None:
            try:
                entry["result"] = self.service.run_sql(
                    msg.interpretation.duckdb_sql or "", download_id, capped=False
                )
            except Exception as exc:  # surfaced as a FAILED statement
                entry["error"] = str(exc)

        asyncio.get_running_loop().run_in_executor(None, run)
        return web.json_response(
            {"download_id": download_id, "download_id_signature": self._sign(download_id)}
        )

    async def get_download(self, request: web.Request) -> web.Response:
        """Poll a download: PENDING, then SUCCEEDED with external links to the chunks."""
        msg = find_query_message(request)
        download_id = request.match_info["download_id"]
        entry = self.downloads.get(download_id)
        signature = request.query.get("download_id_signature", "")
        if entry is None or entry["message_id"] != msg.id:
            raise ApiError(
                404, "RESOURCE_DOES_NOT_EXIST", f"Download {download_id} does not exist."
            )
        if not hmac.compare_digest(
            signature.encode("utf-8", "surrogatepass"), self._sign(download_id).encode()
        ):
            raise ApiError(403, "PERMISSION_DENIED", "download_id_signature does not match.")
        if entry["error"] is not None:
            stmt: dict[str, Any] = {
                "statement_id": download_id,
                "status": {"state": "FAILED", "error": {"message": entry["error"]}},
            }
            return web.json_response({"statement_response": stmt})
        result: TableResult | None = entry["result"]
        if result is None:
            return web.json_response(
                {"statement_response": pending_statement(download_id, "PENDING")}
            )
        base = f"{request.scheme}://{request.host}/emulator/download/{download_id}"
        chunk_count = max(1, -(-result.row_count // DOWNLOAD_CHUNK_ROWS))
        links = []
        chunks = []
        expiration = (
            dt.datetime.fromtimestamp(self.service.clock() + 900, dt.UTC)
            .isoformat(timespec="seconds")
            .replace("+00:00", "Z")
        )
        for i in range(chunk_count):
            start = i * DOWNLOAD_CHUNK_ROWS
            count = min(DOWNLOAD_CHUNK_ROWS, result.row_count - start)
            chunks.append({"chunk_index": i, "row_offset": start, "row_count": count})
            links.append(
                {
                    "chunk_index": i,
                    "row_offset": start,
                    "row_count": count,
                    "external_link": f"{base}/{i}?sig={self._sign(download_id)}",
                    "expiration": expiration,
                    "next_chunk_index": i + 1 if i + 1 < chunk_count else None,
                }
            )
        man = manifest(result, chunks=chunk_count)
        man["chunks"] = chunks
        stmt = {
            "statement_id": download_id,
            "status": {"state": "SUCCEEDED"},
            "manifest": man,
            "result": {"external_links": links},
        }
        return web.json_response({"statement_response": stmt})

    async def download_chunk(self, request: web.Request) -> web.Response:
        """A pre-signed chunk URL: the rows as a JSON array of arrays (no bearer token)."""
        download_id = request.match_info["download_id"]
        entry = self.downloads.get(download_id)
        given = request.query.get("sig", "").encode("utf-8", "surrogatepass")
        # As bytes: compare_digest raises TypeError on a str with non-ASCII characters.
        if entry is None or not hmac.compare_digest(given, self._sign(download_id).encode()):
            raise ApiError(403, "PERMISSION_DENIED", "Invalid or expired link.")
        result: TableResult | None = entry["result"]
        index = path_int(request, "chunk")
        if result is None:
            raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", "The download is not ready.")
        start = index * DOWNLOAD_CHUNK_ROWS
        return web.json_response(result.rows[start : start + DOWNLOAD_CHUNK_ROWS])
