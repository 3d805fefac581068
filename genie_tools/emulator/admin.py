"""The emulator's own admin API under ``/emulator/admin/``: faults, counters, events.

Not part of Databricks' API: the HTTP side of ``emu.inject(...)``, ``emu.stats()`` and
``emu.events()``, for a client that has only the emulator's URL (e.g. one started by the
CLI in another process). The handlers are plain functions that find the service through
the application (``request.app[SERVICE]``); they sit behind the same authenticating
middleware as Genie's routes.
"""

from __future__ import annotations

from aiohttp import web

from genie_tools.emulator.faults import Fault
from genie_tools.emulator.inspect import event_log, stats_snapshot
from genie_tools.emulator.server import SERVICE, _json_body
from genie_tools.emulator.service import ApiError


async def admin_add_fault(request: web.Request) -> web.Response:
    """Arm a fault (body: a :class:`Fault`)."""
    service = request.app[SERVICE]
    body = await _json_body(request)
    try:
        fault = Fault.model_validate(body)
    except ValueError as exc:
        raise ApiError(400, "INVALID_PARAMETER_VALUE", str(exc)) from exc
    service.add_fault(fault)
    return web.json_response({"armed": [f.model_dump() for f in service.faults.pending()]})


async def admin_clear_faults(request: web.Request) -> web.Response:
    """Disarm every fault."""
    request.app[SERVICE].faults.clear()
    return web.json_response({"armed": []})


async def admin_stats(request: web.Request) -> web.Response:
    """Counters as JSON."""
    service = request.app[SERVICE]
    with service.lock:
        return web.json_response(stats_snapshot(service))


async def admin_events(request: web.Request) -> web.Response:
    """The status-change log."""
    service = request.app[SERVICE]
    with service.lock:
        events = event_log(service)
    return web.json_response({"events": [e.as_dict() for e in events]})
