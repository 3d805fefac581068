"""The client's operations, each written once as a flow (see :mod:`genie_tools._core`).

``ask`` = (cache) → :func:`~genie_tools.submission.submit` → :func:`wait_flow`; the
others are small request sequences. All sleeping and I/O is yielded to the driver.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from genie_tools._core import Context, Flow, OpStats, Sleep, call
from genie_tools.arguments import check_timeout, clean_question
from genie_tools.errors import (
    BadRequestError,
    GenieTimeoutError,
    NotFoundError,
    QueryCancelledError,
    QueryFailedError,
    ResultExpiredError,
)
from genie_tools.ids import check_id, segment
from genie_tools.models import (
    TERMINAL_STATUSES,
    GenieAnswer,
    MessageRef,
    QueryResult,
    SpaceInfo,
    Timings,
)
from genie_tools.paths import (
    API,
    STATEMENTS,
    attachment_path,
    chunk_path,
    message_path,
    space_path,
)
from genie_tools.polling import Deadline, StallDetector
from genie_tools.settings import check_host
from genie_tools.submission import submit
from genie_tools.transport import Request, Response
from genie_tools.wire import (
    MessageView,
    StatementView,
    build_answer,
    ms_to_datetime,
    parse_message,
    parse_space,
    parse_statement,
)

_PENDING = frozenset({"PENDING", "RUNNING"})
_ADVICE = {
    "SQL_EXECUTION_EXCEPTION": "The SQL Genie wrote failed on the warehouse; rephrase the "
    "question or check the warehouse and table permissions.",
    "RATE_LIMIT_EXCEEDED_GENERIC_EXCEPTION": "Genie's model is overloaded; retry in a minute.",
    "RATE_LIMIT_EXCEEDED_SPECIFIED_WAIT_EXCEPTION": "Genie's model is overloaded; retry later.",
    "WAREHOUSE_ACCESS_MISSING_EXCEPTION": "Ask for CAN USE on the space's SQL warehouse.",
    "WAREHOUSE_NOT_FOUND_EXCEPTION": "The space's SQL warehouse is gone; ask the space owner.",
}


def ask_flow(
    ctx: Context,
    question: str,
    *,
    space_id: str,
    conversation_id: str | None,
    timeout: float,
) -> Flow[GenieAnswer]:
    """Submit ``question`` once, wait for the answer, fetch its result."""
    question = clean_question(question)
    stats = OpStats()
    deadline = Deadline.after(timeout, now=stats.started)
    cache = ctx.cache if conversation_id is None else None  # never cache follow-ups
    if cache is not None:
        hit = cache.get(ctx.auth.host, space_id, question)
        if hit is not None:
            yield ctx.event("answer", stats, "answered from the cache", answer=hit, ref=hit.ref)
            return hit
    ref, first = yield from submit(
        ctx,
        question,
        space_id=space_id,
        conversation_id=conversation_id,
        stats=stats,
        deadline=deadline,
    )
    yield ctx.event("submitted", stats, "question submitted", ref=ref, status=first.status)
    answer = yield from wait_flow(
        ctx, ref, stats=stats, deadline=deadline, first=first, submitted=ctx.now()
    )
    if cache is not None and not answer.is_clarification:
        cache.put(ctx.auth.host, space_id, question, answer)
    yield ctx.event("answer", stats, "answer ready", answer=answer, ref=ref)
    return answer


def submit_flow(
    ctx: Context,
    question: str,
    *,
    space_id: str,
    conversation_id: str | None,
    timeout: float,
    not_before: dt.datetime | None = None,
) -> Flow[MessageRef]:
    """Only submit (exactly once); the caller waits later with :func:`resume_flow`."""
    stats = OpStats()
    ref, first = yield from submit(
        ctx,
        clean_question(question),
        space_id=space_id,
        conversation_id=conversation_id,
        stats=stats,
        deadline=Deadline.after(timeout, now=stats.started),
        not_before_ms=int(not_before.timestamp() * 1000) if not_before is not None else None,
    )
    yield ctx.event("submitted", stats, "question submitted", ref=ref, status=first.status)
    return ref


def resume_flow(ctx: Context, ref: MessageRef, *, timeout: float) -> Flow[GenieAnswer]:
    """Wait for an already submitted message (e.g. after a restart)."""
    stats = OpStats()
    # Time since submission, from the server's clock: polls resume at the pace they had.
    age = (ctx.wall() - ref.submitted_at).total_seconds() if ref.submitted_at else 0.0
    answer = yield from wait_flow(
        ctx,
        ref,
        stats=stats,
        deadline=Deadline.after(timeout, now=stats.started),
        submitted=stats.started - max(0.0, age),
    )
    yield ctx.event("answer", stats, "answer ready", answer=answer, ref=ref)
    return answer


def wait_flow(
    ctx: Context,
    ref: MessageRef,
    *,
    stats: OpStats,
    deadline: Deadline,
    submitted: float,
    first: MessageView | None = None,
) -> Flow[GenieAnswer]:
    """Poll the message on the adaptive schedule until it finishes, then build the answer."""
    s = ctx.settings
    stall = StallDetector(s.stall_seconds)
    view = first
    status: str | None = None
    polls = 0
    if first is not None:
        status = first.status
        stall.observe(status, now=ctx.now())
        yield ctx.event("status", stats, status, status=status, ref=ref)
    while view is None or view.status not in TERMINAL_STATUSES:
        now = ctx.now()
        if deadline.expired(now=now):
            raise GenieTimeoutError(
                f"Genie had not answered when the timeout ran out (last status: {status}). "
                "The question may still finish: call wait(ref) to keep waiting, or "
                "cancel(ref).",
                last_status=status,
                ref=ref,
            )
        delay = ctx.schedule.next_delay(status, elapsed=now - submitted, polls=polls)
        yield Sleep(min(delay, deadline.remaining(now=now)))
        response = yield from call(
            ctx, Request("GET", message_path(ref)), stats=stats, deadline=deadline, ref=ref
        )
        polls += 1
        stats.polls += 1
        view = parse_message(_dict(response.body), space_id=ref.space_id)
        if view.status != status:
            status = view.status
            yield ctx.event("status", stats, status, status=status, ref=ref)
        if view.status in TERMINAL_STATUSES:
            break
        if stall.observe(view.status, now=ctx.now()):
            unchanged = stall.unchanged_for(ctx.now())
            yield ctx.event(
                "stall", stats, f"still {status} after {unchanged:.0f} s", status=status, ref=ref
            )
            if s.cancel_on_stall:
                yield from call(ctx, Request("DELETE", message_path(ref)), stats=stats)
                raise GenieTimeoutError(
                    f"Genie stayed in {status} for {unchanged:.0f} s, so the question was "
                    "cancelled (cancel_on_stall). Ask again later or simplify the question.",
                    last_status=status,
                    stalled=True,
                    ref=ref,
                )
    assert view is not None
    return (yield from _finish(ctx, ref, view, stats=stats, deadline=deadline, submitted=submitted))


def _finish(
    ctx: Context,
    ref: MessageRef,
    view: MessageView,
    *,
    stats: OpStats,
    deadline: Deadline,
    submitted: float,
) -> Flow[GenieAnswer]:
    raise_for_failure(view, ref)
    # The answer is the ref's message: its ids are the (checked) ref's, whatever the body says.
    view = dataclasses.replace(
        view,
        space_id=ref.space_id,
        conversation_id=ref.conversation_id,
        message_id=ref.message_id,
    )
    result = None
    if view.query is not None and view.query.attachment_id:
        ref = ref.model_copy(update={"attachment_id": view.query.attachment_id})
        result = yield from result_flow(ctx, ref, view, stats=stats, deadline=deadline)
    timings = Timings(
        submitted_at=ref.submitted_at or ms_to_datetime(view.created_ms),
        completed_at=ms_to_datetime(view.updated_ms),
        returned_at=ctx.wall(),
        elapsed_seconds=round(ctx.now() - submitted, 4),
        polls=stats.polls,
        requests=stats.requests,
        retries=stats.retries,
        rate_limit_wait_seconds=round(stats.rate_limit_wait, 4),
    )
    # An expired result was re-run: the message is COMPLETED again.
    return build_answer(
        view,
        question=ref.question or view.content,
        result=result,
        timings=timings,
        status="COMPLETED",
    )


def raise_for_failure(view: MessageView, ref: MessageRef) -> None:
    """Raise the typed error of a FAILED or CANCELLED message."""
    if view.status == "FAILED":
        kind = view.error_type or "UNKNOWN"
        advice = _ADVICE.get(kind, "Rephrase the question or retry later.")
        raise QueryFailedError(
            f"Genie could not answer {view.content!r}: {kind}: {view.error_text or 'no detail'}. "
            + advice,
            error_type=view.error_type,
            ref=ref,
        )
    if view.status == "CANCELLED":
        raise QueryCancelledError(
            f"The question {view.content!r} was cancelled before Genie answered; ask again "
            "if you still need the answer.",
            error_type=view.error_type,
            ref=ref,
        )


def result_flow(
    ctx: Context, ref: MessageRef, view: MessageView, *, stats: OpStats, deadline: Deadline
) -> Flow[QueryResult]:
    """The typed result of the message's query, re-running it if it expired."""
    assert view.query is not None
    assert ref.attachment_id
    base = attachment_path(ref)
    expired = view.status == "QUERY_RESULT_EXPIRED"
    rerun = False
    pause = 0.1
    while True:
        if expired:
            if not ctx.settings.rerun_expired_results:
                raise ResultExpiredError(
                    "The query result expired. Enable rerun_expired_results (the default) or "
                    "call get_result(ref) to run the query again.",
                    ref=ref,
                )
            response = yield from call(
                ctx,
                Request("POST", f"{base}/execute-query", json={}),
                stats=stats,
                deadline=deadline,
                ref=ref,
            )
            rerun, expired = True, False
        else:
            response = yield from call(
                ctx,
                Request("GET", f"{base}/query-result"),
                stats=stats,
                deadline=deadline,
                ref=ref,
            )
        stmt = parse_statement(
            _dict(_dict(response.body).get("statement_response")), truncated=view.query.truncated
        )
        if stmt.state == "SUCCEEDED" and stmt.result is not None:
            return stmt.result.model_copy(update={"reexecuted": rerun}) if rerun else stmt.result
        if stmt.state == "CLOSED" and not rerun:
            expired = True
            continue
        if stmt.state in _PENDING and not deadline.expired(now=ctx.now()):
            yield Sleep(min(pause, deadline.remaining(now=ctx.now())))
            pause = min(pause * 1.5, ctx.settings.poll_max_interval)
            continue
        if stmt.state in _PENDING:
            raise GenieTimeoutError(
                "The query result was not ready before the timeout; call get_result(ref) later.",
                last_status=stmt.state,
                ref=ref,
            )
        raise QueryFailedError(
            f"The query result is {stmt.state}: {stmt.error_message or 'no detail'}. "
            "Ask again or re-run the query.",
            ref=ref,
        )


def get_result_flow(ctx: Context, ref: MessageRef, *, timeout: float) -> Flow[QueryResult]:
    """The result of a finished message (re-run when expired)."""
    stats = OpStats()
    deadline = Deadline.after(timeout, now=stats.started)
    response = yield from call(
        ctx, Request("GET", message_path(ref)), stats=stats, deadline=deadline, ref=ref
    )
    view = parse_message(_dict(response.body), space_id=ref.space_id)
    if view.status not in TERMINAL_STATUSES:
        raise BadRequestError(
            f"The message is still {view.status}; call wait(ref) before get_result(ref).",
            ref=ref,
        )
    raise_for_failure(view, ref)
    if view.query is None or not view.query.attachment_id:
        raise NotFoundError("Genie answered this message with text only; it has no query result.")
    ref = ref.model_copy(update={"attachment_id": view.query.attachment_id})
    return (yield from result_flow(ctx, ref, view, stats=stats, deadline=deadline))


def download_flow(ctx: Context, ref: MessageRef, *, timeout: float) -> Flow[QueryResult]:
    """Every row of the message's query, past the 5,000-row cap, via pre-signed links."""
    stats = OpStats()
    deadline = Deadline.after(timeout, now=stats.started)
    if not ref.attachment_id:
        response = yield from call(ctx, Request("GET", message_path(ref)), stats=stats, ref=ref)
        view = parse_message(_dict(response.body), space_id=ref.space_id)
        if view.query is None or not view.query.attachment_id:
            raise NotFoundError("This message has no query to download.", ref=ref)
        ref = ref.model_copy(update={"attachment_id": view.query.attachment_id})
    base = f"{attachment_path(ref)}/downloads"
    started = yield from call(
        ctx, Request("POST", base, json={}), stats=stats, deadline=deadline, ref=ref
    )
    body = _dict(started.body)
    download = f"{base}/{segment(check_id(body.get('download_id'), kind='download'))}"
    params = {"download_id_signature": body.get("download_id_signature") or ""}
    pause = 0.1
    while True:
        polled = yield from call(
            ctx, Request("GET", download, params=params), stats=stats, deadline=deadline, ref=ref
        )
        stmt = parse_statement(_dict(_dict(polled.body).get("statement_response")))
        if stmt.state == "SUCCEEDED":
            break
        if stmt.state not in _PENDING:
            raise QueryFailedError(
                f"The full-result download is {stmt.state}: {stmt.error_message or 'no detail'}.",
                ref=ref,
            )
        if deadline.expired(now=ctx.now()):
            raise GenieTimeoutError("The full-result download did not finish in time.", ref=ref)
        yield Sleep(min(pause, deadline.remaining(now=ctx.now())))
        pause = min(pause * 1.5, ctx.settings.poll_max_interval)
    rows = yield from _chunks(ctx, stmt, stats=stats, deadline=deadline, ref=ref)
    return QueryResult(
        columns=stmt.columns, rows=rows, truncated=False, statement_id=body.get("download_id")
    )


def _chunks(
    ctx: Context, stmt: StatementView, *, stats: OpStats, deadline: Deadline, ref: MessageRef
) -> Flow[list[list[Any]]]:
    rows: list[list[Any]] = []
    links = list(stmt.external_links)
    while links:
        link = links.pop(0)
        chunk = yield from call(
            ctx,
            Request("GET", _external_link(link.get("external_link")), external=True),
            stats=stats,
            deadline=deadline,
            ref=ref,
        )
        rows += _chunk_rows(chunk, stmt)
        follow = link.get("next_chunk_internal_link")
        if not links and follow:  # the statement API pages links: fetch the next ones
            path, params = _internal_link(follow)
            more = yield from call(ctx, Request("GET", path, params=params), stats=stats, ref=ref)
            links = list(_dict(more.body).get("external_links") or [])
    return rows


_CHUNK_PATH = re.compile(re.escape(STATEMENTS) + r"/([^/]+)/result/chunks/(\d+)")


def _internal_link(link: object) -> tuple[str, dict[str, str]]:
    """A statement API chunk link, only if it is one: path (id checked) and query."""
    parts = urlsplit(str(link))
    found = _CHUNK_PATH.fullmatch(parts.path)
    if parts.scheme or parts.netloc or found is None:
        raise BadRequestError(
            "Genie's download named a next chunk outside the statement API; it was not "
            "followed. Download the result again."
        )
    return chunk_path(found.group(1), int(found.group(2))), dict(parse_qsl(parts.query))


def _external_link(link: object) -> str:
    """A pre-signed link, only if it is an https URL (http on loopback, for the emulator)."""
    url = str(link) if link else ""
    try:
        check_host(url)  # scheme and host only: the URL is sent exactly as given
    except ValueError:
        # The link itself is never shown: a pre-signed URL carries its own credentials.
        raise BadRequestError(
            "Genie's download gave a chunk link that is not an https URL; it was not followed."
        ) from None
    return url


def _chunk_rows(chunk: Response, stmt: StatementView) -> list[list[Any]]:
    if isinstance(chunk.body, list):  # JSON_ARRAY
        return chunk.body
    if (stmt.row_format or "").upper() == "CSV":
        reader = list(csv.reader(io.StringIO(chunk.content.decode("utf-8"))))
        if reader and reader[0] == [c.name for c in stmt.columns]:
            reader = reader[1:]  # a header row
        return [[v if v != "" else None for v in row] for row in reader]
    raise BadRequestError(
        f"Unsupported download format {stmt.row_format!r}; expected JSON_ARRAY or CSV."
    )


def list_spaces_flow(ctx: Context) -> Flow[list[SpaceInfo]]:
    """Every space the principal can see (all pages)."""
    stats = OpStats()
    spaces: list[SpaceInfo] = []
    token: str | None = None
    for _ in range(1000):
        params: dict[str, Any] = {"page_size": 100}
        if token:
            params["page_token"] = token
        page = yield from call(ctx, Request("GET", API, params=params), stats=stats)
        body = _dict(page.body)
        spaces += [parse_space(s) for s in body.get("spaces") or [] if isinstance(s, dict)]
        token = body.get("next_page_token")
        if not token:
            break
    return spaces


def get_space_flow(ctx: Context, space_id: str) -> Flow[SpaceInfo]:
    """The space, with its tables and sample questions when the principal may read them."""
    stats = OpStats()
    path = space_path(space_id)
    detailed = yield from call(
        ctx,
        Request("GET", path, params={"include_serialized_space": "true"}),
        stats=stats,
        allow=frozenset({403}),
    )
    if detailed.status == 403:  # serialized_space needs CAN EDIT: fall back to the basics
        detailed = yield from call(ctx, Request("GET", path), stats=stats)
    return parse_space(_dict(detailed.body))


def simple_flow(
    ctx: Context,
    method: str,
    path: str,
    *,
    json: dict[str, Any] | None = None,
    ref: MessageRef | None = None,
) -> Flow[None]:
    """One idempotent request whose answer body does not matter."""
    yield from call(ctx, Request(method, path, json=json), stats=OpStats(), ref=ref)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def initial_timeout(ctx: Context, timeout: float | None) -> float:
    """``timeout`` or the configured default, validated (:func:`check_timeout`)."""
    return check_timeout(ctx.settings.timeout if timeout is None else timeout)


__all__ = [
    "ask_flow",
    "download_flow",
    "get_result_flow",
    "get_space_flow",
    "list_spaces_flow",
    "resume_flow",
    "simple_flow",
    "submit_flow",
    "wait_flow",
]
