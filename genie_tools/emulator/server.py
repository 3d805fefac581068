"""The emulator's HTTP surface: Genie's REST API as the Databricks SDK speaks it.

Routes translate between HTTP and :class:`GenieService`; the middleware does
what cuts across them: authentication, request faults, counting, and turning
every failure into Databricks' ``{"error_code", "message"}`` body.

:func:`create_app` holds the whole route table. Handlers with their own concern live
beside this module: full-result downloads in :mod:`.downloads`, the emulator's admin
API in :mod:`.admin`, and the Statement Execution API in :mod:`.statements`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from genie_tools.emulator.auth import Authenticator
from genie_tools.emulator.bodies import MAX_BODY_BYTES, form_body, int_param, json_body
from genie_tools.emulator.engine import Interpretation
from genie_tools.emulator.faults import Fault
from genie_tools.emulator.records import Message
from genie_tools.emulator.results import (
    TableResult,
    closed_statement,
    pending_statement,
    statement_response,
)
from genie_tools.emulator.service import ApiError, GenieService

PRINCIPAL = web.RequestKey("principal", str)
SERVICE = web.AppKey("service", GenieService)
AUTH = web.AppKey("auth", Authenticator)
_PUBLIC = ("/.well-known/", "/oidc/", "/emulator/download/")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_HTTP_CODES = {
    400: "BAD_REQUEST",
    404: "ENDPOINT_NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "REQUEST_LIMIT_EXCEEDED",
}
logger = logging.getLogger(__name__)


def error_response(err: ApiError) -> web.Response:
    """Databricks' error body, with the status and any headers (Retry-After)."""
    return web.json_response(
        {"error_code": err.error_code, "message": err.message},
        status=err.status,
        headers=err.headers,
    )


@web.middleware
async def _middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    service = request.app[SERVICE]
    route = request.match_info.route.resource
    service.stats.requests[route.canonical if route is not None else "unmatched"] += 1
    fault = service.faults.take_request_fault(
        request.method, request.path, request.match_info.get("space_id")
    )
    if fault is not None:
        early = await _apply_fault_before(request, fault)
        if early is not None:
            return early
    try:
        if not request.path.startswith(_PUBLIC):
            request[PRINCIPAL] = request.app[AUTH].principal_for(
                request.headers.get("Authorization")
            )
        response = await handler(request)
    except ApiError as err:
        if err.status == 401:
            service.stats.auth_failures += 1
        response = error_response(err)
    except web.HTTPException as exc:
        code = _HTTP_CODES.get(exc.status, "BAD_REQUEST")
        response = error_response(ApiError(exc.status, code, exc.reason))
    except Exception:  # an emulator bug: said in Databricks' shape, logged with its traceback
        logger.exception("emulator error on %s %s", request.method, request.path)
        response = error_response(
            ApiError(500, "INTERNAL_ERROR", "The emulator failed on this request (a bug).")
        )
    if fault is not None and fault.kind == "connection_reset" and fault.when == "after":
        _reset(request)
        raise ConnectionResetError("injected connection reset after handling")
    return response


async def _apply_fault_before(request: web.Request, fault: Fault) -> web.StreamResponse | None:
    if fault.kind == "slow_response":
        await asyncio.sleep(fault.delay_seconds)
        return None
    if fault.kind == "http_error":
        code = {503: "TEMPORARILY_UNAVAILABLE", 429: "RESOURCE_EXHAUSTED"}.get(
            fault.status, "INTERNAL_ERROR"
        )
        return error_response(ApiError(fault.status, code, f"Injected HTTP {fault.status}."))
    if fault.kind == "connection_reset" and fault.when == "before":
        _reset(request)
        raise ConnectionResetError("injected connection reset")
    return None


def _reset(request: web.Request) -> None:
    """Drop the TCP connection without an answer (the client sees a reset)."""
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            import socket
            import struct

            # SO_LINGER 0: close with RST instead of FIN, as a crashed peer would.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()


def find_message(request: web.Request) -> Message:
    """The message the request's path names, if the principal may see it.

    Raises:
        ApiError: No such space, conversation or message for this principal.
    """
    m = request.match_info
    service = request.app[SERVICE]
    with service.lock:
        return service.message(
            m["space_id"], m["conversation_id"], m["message_id"], request[PRINCIPAL]
        )


def find_query_message(request: web.Request) -> Message:
    """The path's message, which must have a query attachment (the path's, if it names one).

    Raises:
        ApiError: As :func:`find_message`, or 404 when there is no such query attachment.
    """
    msg = find_message(request)
    wanted = request.match_info.get("attachment_id")
    if not msg.has_query or (wanted is not None and wanted != msg.query_attachment_id):
        raise ApiError(
            404,
            "RESOURCE_DOES_NOT_EXIST",
            f"Message {msg.id} has no query attachment {wanted or ''}".strip() + ".",
        )
    return msg


class Routes:
    """Request handlers, bound to one service."""

    def __init__(self, service: GenieService, auth: Authenticator, workspace_id: str) -> None:
        self.service = service
        self.auth = auth
        self.workspace_id = workspace_id

    # helpers -----------------------------------------------------------
    async def _run(self, fn: Callable[[], Any]) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, fn)

    def _start_execution(self, msg: Message) -> None:
        if self.service.needs_execution(msg):
            asyncio.get_running_loop().run_in_executor(None, self.service.execute, msg)

    # discovery and auth ----------------------------------------------
    async def databricks_config(self, request: web.Request) -> web.Response:
        """``/.well-known/databricks-config``: where the OIDC endpoints are."""
        base = f"{request.scheme}://{request.host}"
        return web.json_response(
            {"oidc_endpoint": f"{base}/oidc", "workspace_id": self.workspace_id}
        )

    async def oidc_discovery(self, request: web.Request) -> web.Response:
        """The OAuth authorization-server metadata document."""
        base = f"{request.scheme}://{request.host}/oidc"
        return web.json_response(
            {
                "issuer": base,
                "authorization_endpoint": f"{base}/v1/authorize",
                "token_endpoint": f"{base}/v1/token",
                "grant_types_supported": ["client_credentials"],
            }
        )

    async def token(self, request: web.Request) -> web.Response:
        """OAuth client-credentials token endpoint."""
        self.service.stats.token_requests += 1
        try:
            form = await form_body(request)
            body = self.auth.issue(request.headers.get("Authorization"), form)
        except ApiError as err:
            return web.json_response(
                {"error": err.error_code, "error_description": err.message}, status=err.status
            )
        return web.json_response(body)

    # spaces --------------------------------------------------------------
    async def list_spaces(self, request: web.Request) -> web.Response:
        """``GET /api/2.0/genie/spaces``."""
        with self.service.lock:
            body = self.service.list_spaces(
                request[PRINCIPAL],
                int_param(request, "page_size"),
                request.query.get("page_token"),
            )
        return web.json_response(body)

    async def get_space(self, request: web.Request) -> web.Response:
        """``GET /api/2.0/genie/spaces/{space_id}``."""
        serialized = request.query.get("include_serialized_space", "").lower() == "true"
        with self.service.lock:
            space = self.service.space(
                request.match_info["space_id"],
                request[PRINCIPAL],
                need="CAN_EDIT" if serialized else "CAN_VIEW",
            )
            return web.json_response(self.service.space_wire(space, serialized=serialized))

    # conversations and messages ---------------------------------------
    async def _engine_ready(self, space_id: str) -> None:
        """Wait, off the event loop, until the space's NL→SQL engine has read its data.

        A message's schedule then starts when the question is taken, not before.
        """
        engine = self.service.engines.get(space_id)
        if engine is not None:
            await asyncio.get_running_loop().run_in_executor(None, engine.prepare)

    async def _interpret_off_loop(
        self, space_id: str, conversation_id: str | None, content: Any, principal: str
    ) -> Interpretation | None:
        """With an LLM backend, interpret in a worker thread (a model call takes seconds)."""
        engine = self.service.engines.get(space_id)
        if engine is None or engine.llm is None:
            return None  # the built-in engine is quick enough to run in place
        with self.service.lock:
            history = self.service.history(space_id, conversation_id, content, principal)
        return await asyncio.get_running_loop().run_in_executor(
            None, engine.interpret, str(content).strip(), history
        )

    async def start_conversation(self, request: web.Request) -> web.Response:
        """``POST .../start-conversation``: a new conversation with its first message."""
        body = await json_body(request)
        space_id = request.match_info["space_id"]
        await self._engine_ready(space_id)
        pre = await self._interpret_off_loop(
            space_id, None, body.get("content"), request[PRINCIPAL]
        )
        with self.service.lock:
            msg, conv = self.service.ask(
                space_id, None, body.get("content"), request[PRINCIPAL], pre
            )
            now = self.service.clock()
            payload = {
                "conversation_id": conv.id,
                "message_id": msg.id,
                "conversation": conv.to_wire(),
                "message": msg.to_wire(now),
            }
        self._start_execution(msg)
        return web.json_response(payload)

    async def create_message(self, request: web.Request) -> web.Response:
        """``POST .../conversations/{id}/messages``: a follow-up question."""
        body = await json_body(request)
        m = request.match_info
        await self._engine_ready(m["space_id"])
        pre = await self._interpret_off_loop(
            m["space_id"], m["conversation_id"], body.get("content"), request[PRINCIPAL]
        )
        with self.service.lock:
            msg, _ = self.service.ask(
                m["space_id"], m["conversation_id"], body.get("content"), request[PRINCIPAL], pre
            )
            payload = msg.to_wire(self.service.clock())
        self._start_execution(msg)
        return web.json_response(payload)

    async def list_conversations(self, request: web.Request) -> web.Response:
        """``GET .../conversations``."""
        with self.service.lock:
            body = self.service.list_conversations(
                request.match_info["space_id"],
                request[PRINCIPAL],
                request.query.get("include_all", "").lower() == "true",
                int_param(request, "page_size"),
                request.query.get("page_token"),
            )
        return web.json_response(body)

    async def delete_conversation(self, request: web.Request) -> web.Response:
        """``DELETE .../conversations/{id}``."""
        m = request.match_info
        with self.service.lock:
            self.service.delete_conversation(
                m["space_id"], m["conversation_id"], request[PRINCIPAL]
            )
        return web.json_response({})

    async def list_messages(self, request: web.Request) -> web.Response:
        """``GET .../conversations/{id}/messages``."""
        m = request.match_info
        with self.service.lock:
            body = self.service.list_messages(
                m["space_id"],
                m["conversation_id"],
                request[PRINCIPAL],
                int_param(request, "page_size"),
                request.query.get("page_token"),
            )
        return web.json_response(body)

    async def get_message(self, request: web.Request) -> web.Response:
        """``GET .../messages/{id}``: the poll every client makes."""
        msg = find_message(request)
        with self.service.lock:
            self.service.stats.polls += 1
            self.service.stats.polls_by_message[msg.id] += 1
            return web.json_response(msg.to_wire(self.service.clock()))

    async def delete_message(self, request: web.Request) -> web.Response:
        """``DELETE .../messages/{id}``: an in-flight message ends CANCELLED."""
        msg = find_message(request)
        with self.service.lock:
            now = self.service.clock()
            if msg.status(now) not in ("COMPLETED", "FAILED", "CANCELLED", "QUERY_RESULT_EXPIRED"):
                msg.cancelled_at = now
                self.service.save(msg)
        return web.json_response({})

    async def feedback(self, request: web.Request) -> web.Response:
        """``POST .../messages/{id}/feedback``."""
        body = await json_body(request)
        rating = body.get("rating")
        if rating not in ("POSITIVE", "NEGATIVE", "NONE"):
            raise ApiError(
                400, "INVALID_PARAMETER_VALUE", "rating must be POSITIVE, NEGATIVE or NONE."
            )
        msg = find_message(request)
        with self.service.lock:
            msg.feedback = {"rating": rating}
            if body.get("comment"):
                msg.feedback["comment"] = str(body["comment"])
            self.service.save(msg)
        return web.json_response({})

    # results -------------------------------------------------------------
    async def query_result(self, request: web.Request) -> web.Response:
        """The query result of a message's query attachment (current and deprecated paths)."""
        msg = find_query_message(request)
        with self.service.lock:
            self.service.stats.result_fetches += 1
            status = msg.status(self.service.clock())
        if status == "QUERY_RESULT_EXPIRED":
            stmt = closed_statement(
                msg.statement_id,
                "The query result expired. Re-run it with execute-query "
                "(POST .../attachments/{attachment_id}/execute-query).",
            )
        elif status == "COMPLETED" and msg.result is not None:
            stmt = statement_response(msg.result)
        elif status in ("FAILED", "CANCELLED"):
            stmt = {
                "statement_id": msg.statement_id,
                "status": {"state": "FAILED" if status == "FAILED" else "CANCELED"},
            }
        elif status == "EXECUTING_QUERY":
            stmt = pending_statement(msg.statement_id)
        else:
            raise ApiError(
                400,
                "INVALID_STATE",
                f"Message {msg.id} is {status}; its query result is available from "
                "EXECUTING_QUERY on.",
            )
        return web.json_response({"statement_response": stmt})

    async def execute_query(self, request: web.Request) -> web.Response:
        """Re-run a message's query (e.g. after its result expired)."""
        msg = find_query_message(request)
        with self.service.lock:
            status = msg.status(self.service.clock())
            if status not in ("COMPLETED", "QUERY_RESULT_EXPIRED"):
                raise ApiError(
                    400, "INVALID_STATE", f"Message {msg.id} is {status}; wait until it completes."
                )
            statement_id = self.service.new_statement_id()
        result: TableResult = await self._run(
            lambda: self.service.run_sql(msg.interpretation.duckdb_sql or "", statement_id)
        )
        with self.service.lock:
            msg.result = result
            msg.statement_id = statement_id
            msg.expires_at = self.service.clock() + msg.result_ttl
            self.service.save(msg)
        return web.json_response({"statement_response": statement_response(result)})


def create_app(service: GenieService, auth: Authenticator, workspace_id: str) -> web.Application:
    """Build the aiohttp application for one emulated workspace."""
    app = web.Application(middlewares=[_middleware], client_max_size=MAX_BODY_BYTES)
    app[SERVICE] = service
    app[AUTH] = auth
    # Imported here: these modules import this one (for the app keys and helpers).
    from genie_tools.emulator import admin
    from genie_tools.emulator.downloads import Downloads
    from genie_tools.emulator.statements import add_statement_routes

    r = Routes(service, auth, workspace_id)
    d = Downloads(service)
    g = "/api/2.0/genie/spaces"
    conv = g + "/{space_id}/conversations/{conversation_id}"
    msg = conv + "/messages/{message_id}"
    att = msg + "/attachments/{attachment_id}"
    app.add_routes(
        [
            web.get("/.well-known/databricks-config", r.databricks_config),
            web.get("/oidc/.well-known/oauth-authorization-server", r.oidc_discovery),
            web.post("/oidc/v1/token", r.token),
            web.get(g, r.list_spaces),
            web.get(g + "/{space_id}", r.get_space),
            web.post(g + "/{space_id}/start-conversation", r.start_conversation),
            web.get(g + "/{space_id}/conversations", r.list_conversations),
            web.delete(conv, r.delete_conversation),
            web.get(conv + "/messages", r.list_messages),
            web.post(conv + "/messages", r.create_message),
            web.get(msg, r.get_message),
            web.delete(msg, r.delete_message),
            web.post(msg + "/feedback", r.feedback),
            web.get(msg + "/query-result", r.query_result),
            web.get(msg + "/query-result/{attachment_id}", r.query_result),
            web.post(msg + "/execute-query", r.execute_query),
            web.get(att + "/query-result", r.query_result),
            web.post(att + "/execute-query", r.execute_query),
            web.post(att + "/downloads", d.generate_download),
            web.get(att + "/downloads/{download_id}", d.get_download),
            web.get("/emulator/download/{download_id}/{chunk:\\d+}", d.download_chunk),
            web.post("/emulator/admin/faults", admin.admin_add_fault),
            web.delete("/emulator/admin/faults", admin.admin_clear_faults),
            web.get("/emulator/admin/stats", admin.admin_stats),
            web.get("/emulator/admin/events", admin.admin_events),
        ]
    )
    add_statement_routes(app, service)
    return app
