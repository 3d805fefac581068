"""The emulator's own admin API under ``/emulator/admin/``: faults, counters, events.

Not part of Databricks' API: the HTTP side of ``emu.inject(...)``, ``emu.stats()`` and
``emu.events()``, for a client that has only the emulator's URL (e.g. one started by the
CLI in another process). The handlers are plain functions that find the service through
the application (``request.app[SERVICE]``); they sit behind the same authenticating
middleware as Genie's routes, and answer only principals marked ``admin: true`` in the
configuration (the emulator's default user is): faults break every user's requests and
the counters and events show every user's ids.
"""

from __future__ import annotations

from aiohttp import web

from genie_tools.emulator.bodies import json_body
from genie_tools.emulator.faults import Fault
from genie_tools.emulator.inspect import event_log, stats_snapshot
from genie_tools.emulator.server import AUTH, PRINCIPAL, SERVICE
from genie_tools.emulator.service import ApiError, GenieService


def _admin_service(request: web.Request) -> GenieService:
    """The service, when the caller is an admin; 403 otherwise."""
    principal = request[PRINCIPAL]
    if not request.app[AUTH].is_admin(principal):
        raise ApiError(
            403,
            "PERMISSION_DENIED",
            f"User {principal} may not use the emulator's admin API (/emulator/admin/): it "
            "arms faults for every user and shows every user's activity. Mark the principal "
            "'admin: true' under principals in the emulator configuration.",
        )
    return request.app[SERVICE]


async def admin_add_fault(request: web.Request) -> web.Response:
    """Arm a fault (body: a :class:`Fault`)."""
    service = _admin_service(request)
    body = await json_body(request)
    try:
        fault = Fault.model_validate(body)
    except ValueError as exc:
        raise ApiError(400, "INVALID_PARAMETER_VALUE", str(exc)) from exc
    service.add_fault(fault)
    return web.json_response({"armed": [f.model_dump() for f in service.faults.pending()]})


async def admin_clear_faults(request: web.Request) -> web.Response:
    """Disarm every fault."""
    _admin_service(request).faults.clear()
    return web.json_response({"armed": []})


async def admin_stats(request: web.Request) -> web.Response:
    """Counters as JSON."""
    service = _admin_service(request)
    with service.lock:
        return web.json_response(stats_snapshot(service))


async def admin_events(request: web.Request) -> web.Response:
    """The status-change log."""
    service = _admin_service(request)
    with service.lock:
        events = event_log(service)
    return web.json_response({"events": [e.as_dict() for e in events]})
