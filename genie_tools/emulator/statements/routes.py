"""The aiohttp handlers of the Statement Execution API, and the one call that adds them.

``add_statement_routes(app, service)`` serves ``/api/2.0/sql/statements`` (behind the
app's authenticating middleware) and the external links' downloads (which need no
token: their signature is the credential). Handlers translate HTTP to calls on the
:class:`~genie_tools.emulator.statements.store.StatementStore`; executing runs the
statement on the store's thread pool and awaits it for up to ``wait_timeout`` without
blocking the event loop.
"""

from __future__ import annotations

import asyncio
import weakref

from aiohttp import web

from genie_tools.emulator.bodies import json_body, path_int
from genie_tools.emulator.results import pending_statement
from genie_tools.emulator.server import PRINCIPAL
from genie_tools.emulator.service import ApiError, GenieService
from genie_tools.emulator.statements.chunks import API, DOWNLOAD
from genie_tools.emulator.statements.failures import invalid_parameter
from genie_tools.emulator.statements.request import parse_request
from genie_tools.emulator.statements.store import StatementStore

STATEMENTS = web.AppKey("statements", StatementStore)
"""Where :func:`add_statement_routes` puts the store in the application."""

# Weak, so that a discarded service (and its DuckDB) is not kept alive by this registry.
_STORES: weakref.WeakKeyDictionary[GenieService, StatementStore] = weakref.WeakKeyDictionary()


def statement_store(service: GenieService) -> StatementStore:
    """The statement store serving ``service`` (e.g. ``statement_store(emu.service)``).

    Raises:
        LookupError: No statement routes were added for ``service``.
    """
    store = _STORES.get(service)
    if store is None:
        raise LookupError("no statement routes were added for this service")
    return store


def _base_url(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


class StatementRoutes:
    """HTTP handlers for the Statement Execution API."""

    def __init__(self, store: StatementStore) -> None:
        self.store = store

    async def execute(self, request: web.Request) -> web.Response:
        """``POST /api/2.0/sql/statements``: run, and wait up to ``wait_timeout``."""
        spec = parse_request(await json_body(request))
        store = self.store
        loop = asyncio.get_running_loop()
        # Off the event loop (it parses the SQL), and not on the statements' own pool,
        # which long queries may fill.
        compiled = await loop.run_in_executor(None, store.authorize, spec, request[PRINCIPAL])
        stmt = store.create(spec, request[PRINCIPAL], compiled)
        if spec.wait_seconds == 0:
            # Asynchronous mode answers PENDING at once, as Databricks does.
            body = pending_statement(stmt.id, "PENDING")
            loop.run_in_executor(store.executor, store.run, stmt)
            return web.json_response(body)
        future = loop.run_in_executor(store.executor, store.run, stmt)
        done, _ = await asyncio.wait({future}, timeout=spec.wait_seconds)
        if not done and spec.on_wait_timeout == "CANCEL":
            store.cancel(stmt)
        return web.json_response(store.response(stmt, _base_url(request)))

    async def get(self, request: web.Request) -> web.Response:
        """``GET /api/2.0/sql/statements/{statement_id}``."""
        stmt = self.store.get(request.match_info["statement_id"], request[PRINCIPAL])
        return web.json_response(self.store.response(stmt, _base_url(request)))

    async def chunk(self, request: web.Request) -> web.Response:
        """``GET .../{statement_id}/result/chunks/{chunk_index}``."""
        stmt = self.store.get(request.match_info["statement_id"], request[PRINCIPAL])
        index = path_int(request, "chunk_index")
        with self.store.lock:
            if stmt.state != "SUCCEEDED":
                raise ApiError(
                    400,
                    "INVALID_STATE",
                    f"Statement {stmt.id} is {stmt.state}; result chunks are available only "
                    "when it has SUCCEEDED.",
                )
            if index >= stmt.chunk_count:
                raise invalid_parameter(
                    f"chunk_index {index} is out of range: the result has "
                    f"{stmt.chunk_count} chunk(s)."
                )
            body = self.store.chunk_wire(stmt, index, _base_url(request))
        return web.json_response(body)

    async def cancel(self, request: web.Request) -> web.Response:
        """``POST .../{statement_id}/cancel``."""
        stmt = self.store.get(request.match_info["statement_id"], request[PRINCIPAL])
        self.store.cancel(stmt)
        return web.json_response({})

    async def download(self, request: web.Request) -> web.Response:
        """An external link: the chunk's bytes, without a bearer token (pre-signed)."""
        sid = request.match_info["statement_id"]
        index = path_int(request, "chunk")
        try:
            expires = int(request.query.get("expires", ""))
        except ValueError:
            expires = -1
        valid = self.store.links.verify(sid, index, expires, request.query.get("sig", ""))
        if not valid or self.store.service.clock() > expires:
            raise ApiError(403, "PERMISSION_DENIED", "Invalid or expired link.")
        with self.store.lock:
            stmt = self.store.statements.get(sid)
            payload = (
                stmt.payloads[index]
                if stmt is not None and stmt.state == "SUCCEEDED" and index < len(stmt.payloads)
                else None
            )
            fmt = stmt.request.format if stmt is not None else "JSON_ARRAY"
        if payload is None:
            raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", "The result is no longer available.")
        content_type = "text/csv" if fmt == "CSV" else "application/json"
        return web.Response(body=payload, content_type=content_type)


def add_statement_routes(app: web.Application, service: GenieService) -> StatementStore:
    """Serve the Statement Execution API from ``app``, over ``service``'s data.

    Args:
        app: The emulator's application (its middleware authenticates the API routes).
        service: The service whose DuckDB the statements query.

    Returns:
        The store, also reachable as ``app[STATEMENTS]`` and ``statement_store(service)``.
    """
    store = StatementStore(service)
    _STORES[service] = store
    app[STATEMENTS] = store
    r = StatementRoutes(store)
    app.add_routes(
        [
            web.post(API, r.execute),
            web.get(API + "/{statement_id}", r.get),
            web.get(API + "/{statement_id}/result/chunks/{chunk_index:\\d+}", r.chunk),
            web.post(API + "/{statement_id}/cancel", r.cancel),
            web.get(DOWNLOAD + "/{statement_id}/{chunk:\\d+}", r.download),
        ]
    )

    async def _shutdown(_: web.Application) -> None:
        # Waiting for interrupted queries blocks, so off the event loop.
        await asyncio.to_thread(store.shutdown)

    app.on_shutdown.append(_shutdown)
    return store
