"""One Genie turn in a process of its own, for the crash tests (test_graph_crash.py).

A graph with one durable Genie node (``create_genie_node``) over the checkpointer that
a URL names runs one turn on a thread; the crash tests SIGKILL it at chosen points and
run it again. Two ways to start it:

* ``python tests/crash_child.py turn --host ... --question ...``: a cold process (imports
  and all, ~4 s here). ``--mode run`` sends the question; ``--mode resume`` continues a
  killed turn: ``graph.invoke(None, config)`` when the thread's checkpoint has work left,
  the same input again when the killed run never checkpointed it, nothing when the turn
  had already finished.
* ``python tests/crash_child.py serve``: imports everything once, then forks a fresh
  process per turn read as a JSON line from stdin (stdout goes to the file named in the
  command). A forked turn shares nothing with the turns before it but the modules
  imported in the server, which never ran a turn itself; it saves the stress run the
  4 s start-up per process.

Every turn writes JSON lines to stdout: ``ready`` (graph built, checkpointer open),
``step`` (a step of the node started or ended, from a callback: ``submit`` starting
means ``prepare``'s checkpoint is written), then ``result`` (the answer as the thread's
state holds it) or ``error``.

The parent side (``TurnSpec``, ``ColdChild``, ``ForkServer``, ``ForkedChild``) is here too,
for the tests and ``benchmarks/graph_crash_stress.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
STEPS = ("prepare", "submit", "wait", "clarify")


# ---------------------------------------------------------------------------------------
# child side
# ---------------------------------------------------------------------------------------
def _emit(**event: Any) -> None:
    sys.stdout.write(json.dumps(event, default=str) + "\n")
    sys.stdout.flush()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    turn = sub.add_parser("turn", help="run one turn (cold process)")
    for name in ("host", "token", "space", "checkpointer", "thread", "question", "message-id"):
        turn.add_argument(f"--{name}", required=True)
    turn.add_argument("--mode", choices=["run", "resume"], default="run")
    turn.add_argument("--durability", choices=["sync", "async", "exit"], default=None)
    turn.add_argument("--poll-max", type=float, default=0.5)
    turn.add_argument(
        "--slow-root-put",
        type=float,
        default=0.0,
        help="delay the parent graph's step checkpoints by this many seconds (a slow store)",
    )
    sub.add_parser("serve", help="fork a fresh process per turn read from stdin")
    return parser


def _imports() -> None:
    """Everything a turn imports, so that the fork server pays for it once."""
    import databricks.sdk  # noqa: F401
    import langgraph.checkpoint.postgres
    import langgraph.checkpoint.sqlite  # noqa: F401
    import psycopg  # noqa: F401
    from langchain_core.callbacks import BaseCallbackHandler  # noqa: F401
    from langgraph.graph import START, StateGraph  # noqa: F401

    import genie_tools.client
    import genie_tools.graph  # noqa: F401


def run_turn(args: argparse.Namespace) -> int:
    """One turn: build the graph, run or resume it, print the answer as the state holds it."""
    from databricks.sdk import WorkspaceClient
    from langchain_core.callbacks import BaseCallbackHandler
    from langchain_core.messages import AIMessage, HumanMessage
    from langchain_core.runnables import RunnableConfig
    from langgraph.graph import START, StateGraph

    from genie_tools import GenieSettings
    from genie_tools.graph import GenieState, checkpointer_from_url, create_genie_node

    class Steps(BaseCallbackHandler):
        """Prints when the node's steps start and end (callbacks run inline)."""

        def __init__(self) -> None:
            self.names: dict[Any, str] = {}

        def on_chain_start(self, serialized: Any, inputs: Any, **kwargs: Any) -> None:
            name = kwargs.get("name") or (serialized or {}).get("name")
            if name in STEPS:
                self.names[kwargs["run_id"]] = name
                _emit(event="step", node=name, phase="start", t=time.time())

        def on_chain_end(self, outputs: Any, **kwargs: Any) -> None:
            name = self.names.pop(kwargs["run_id"], None)
            if name:
                _emit(event="step", node=name, phase="end", t=time.time())

        def on_chain_error(self, error: BaseException, **kwargs: Any) -> None:
            name = self.names.pop(kwargs["run_id"], None)
            if name:
                _emit(event="step", node=name, phase="error", error=repr(error), t=time.time())

    workspace = WorkspaceClient(host=args.host, token=args.token, auth_type="pat")
    settings = GenieSettings(qpm=100_000, poll_max_interval=args.poll_max)
    builder = StateGraph(GenieState)
    builder.add_node(
        "sales", create_genie_node(args.space, name="sales", workspace=workspace, settings=settings)
    )
    builder.add_edge(START, "sales")
    config: RunnableConfig = {
        "configurable": {"thread_id": args.thread},
        "callbacks": [Steps()],
    }
    question = HumanMessage(content=args.question, id=args.message_id)
    options: dict[str, Any] = {"durability": args.durability} if args.durability else {}
    payload: Any = {"messages": [question]}
    with checkpointer_from_url(args.checkpointer) as saver:
        if args.slow_root_put:
            _slow_root_puts(saver, args.slow_root_put)
        graph = builder.compile(checkpointer=saver)
        before = graph.get_state(config)
        seen, answered = _progress_of(before.values.get("messages", []), args.message_id)
        _emit(event="ready", pid=os.getpid(), next=list(before.next), seen=seen, t=time.time())
        if args.mode == "run":
            if seen:
                raise RuntimeError(f"run mode, but {args.message_id} is already in the thread")
            action = "run"
            graph.invoke(payload, config, **options)
        elif answered:
            action = "done"  # the killed run had finished the turn
        elif before.next:
            action = "resume"  # the killed run checkpointed work left to do
            graph.invoke(None, config, **options)
        elif seen:
            # Only the input checkpoint was written: LangGraph shows no next step for it,
            # but invoke(None) runs the graph from it.
            action = "resume-input"
            graph.invoke(None, config, **options)
        else:
            action = "resend"  # the killed run never checkpointed its input
            graph.invoke(payload, config, **options)
        after = graph.get_state(config)
    messages = after.values.get("messages", [])
    index = next((i for i, m in enumerate(messages) if m.id == args.message_id), None)
    answers = [
        m.additional_kwargs["genie"]
        for m in messages[(index + 1 if index is not None else len(messages)) :]
        if isinstance(m, AIMessage) and "genie" in m.additional_kwargs
    ]
    genie = (after.values.get("genie") or {}).get(args.space) or {}
    answer = (answers[0].get("answer") if answers else None) or {}
    _emit(
        event="result",
        action=action,
        next_before=list(before.next),
        human_in_state=index is not None,
        answers=len(answers),
        answer={k: answer.get(k) for k in ("message_id", "conversation_id", "sql", "question")}
        if answer
        else None,
        error=answers[0].get("error") if answers else None,
        conversation_id=genie.get("conversation_id"),
        pending=genie.get("pending"),
        next_after=list(after.next),
        t=time.time(),
    )
    return 0


def _slow_root_puts(saver: Any, seconds: float) -> None:
    """Make the parent graph's step checkpoints slow to land (not the node's own)."""
    put = saver.put

    def slow_put(config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
        if not config["configurable"].get("checkpoint_ns") and metadata.get("source") == "loop":
            time.sleep(seconds)
        return put(config, checkpoint, metadata, new_versions)

    saver.put = slow_put


def _progress_of(messages: list[Any], message_id: str) -> tuple[bool, bool]:
    """Whether the question is in the thread, and whether an AI message answers it."""
    index = next((i for i, m in enumerate(messages) if m.id == message_id), None)
    if index is None:
        return False, False
    return True, any(m.type == "ai" for m in messages[index + 1 :])


def _turn_safely(args: argparse.Namespace) -> int:
    try:
        return run_turn(args)
    except BaseException as exc:
        _emit(event="error", type=type(exc).__name__, message=str(exc)[:2000])
        return 1


def serve() -> int:
    """Fork a fresh process per command line on stdin; report forks and exits on stdout."""
    _imports()
    _emit(event="ready", pid=os.getpid())
    parser = _parser()
    children: set[int] = set()
    open_stdin = True
    while open_stdin or children:
        ready, _, _ = select.select([sys.stdin] if open_stdin else [], [], [], 0.01)
        if ready:
            line = sys.stdin.readline()
            if not line:
                open_stdin = False
            elif line.strip():
                command = json.loads(line)
                pid = os.fork()
                if pid == 0:  # the child: a turn with its stdout in the command's file
                    code = 1
                    try:
                        fd = os.open(command["out"], os.O_WRONLY | os.O_CREAT | os.O_APPEND)
                        os.dup2(fd, 1)
                        os.close(fd)
                        sys.stdin.close()
                        code = _turn_safely(parser.parse_args(["turn", *command["args"]]))
                    finally:
                        sys.stdout.flush()
                        os._exit(code)
                children.add(pid)
                _emit(event="forked", id=command["id"], pid=pid)
        for pid in list(children):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                children.discard(pid)
                _emit(event="exited", pid=pid, code=os.waitstatus_to_exitcode(status))
    return 0


def main(argv: list[str] | None = None) -> int:
    """``turn`` or ``serve``."""
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return serve()
    return _turn_safely(args)


# ---------------------------------------------------------------------------------------
# parent side
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TurnSpec:
    """What one turn needs: the emulator, the space, the checkpointer, the thread and question."""

    host: str
    token: str
    space: str
    checkpointer: str
    thread: str
    question: str
    message_id: str
    extra: tuple[str, ...] = ()

    def args(self, mode: str) -> list[str]:
        return [
            *self.extra,
            "--host", self.host, "--token", self.token, "--space", self.space,
            "--checkpointer", self.checkpointer, "--thread", self.thread,
            "--question", self.question, "--message-id", self.message_id, "--mode", mode,
        ]  # fmt: skip


class Child:
    """A running turn: its events so far, and how to kill it or wait for its result."""

    pid: int

    def events(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def exit_code(self) -> int | None:
        raise NotImplementedError

    def last(self, kind: str) -> dict[str, Any] | None:
        return next((e for e in reversed(self.events()) if e.get("event") == kind), None)

    def step(self, node: str, phase: str) -> dict[str, Any] | None:
        return next(
            (
                e
                for e in self.events()
                if e.get("event") == "step" and e["node"] == node and e["phase"] == phase
            ),
            None,
        )

    def finished(self) -> bool:
        return self.exit_code() is not None

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)

    def wait_for(self, predicate: Any, timeout: float) -> bool:
        """Wait until ``predicate(self)`` holds (True) or the child exits / time runs out."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate(self):
                return True
            if self.finished():
                return bool(predicate(self))
            time.sleep(0.003)
        return False

    def result(self, timeout: float) -> dict[str, Any]:
        """The ``result`` event once the child exits (raises with its output otherwise)."""
        end = time.monotonic() + timeout
        while not self.finished() and time.monotonic() < end:
            time.sleep(0.01)
        if not self.finished():
            self.kill()
            raise TimeoutError(f"turn {self.pid} did not finish in {timeout} s: {self.events()}")
        found = self.last("result")
        if found is None or self.exit_code() != 0:
            raise RuntimeError(f"turn {self.pid} failed ({self.exit_code()}): {self.events()}")
        return found


class ColdChild(Child):
    """``python tests/crash_child.py turn ...`` in a new interpreter."""

    def __init__(self, spec: TurnSpec, mode: str, *, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE), "turn", *spec.args(mode)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=HERE.parent.parent,
        )
        self.pid = self.proc.pid
        self._events: list[dict[str, Any]] = []
        self.stderr = ""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with contextlib.suppress(json.JSONDecodeError):
                self._events.append(json.loads(line))

    def events(self) -> list[dict[str, Any]]:
        return list(self._events)

    def exit_code(self) -> int | None:
        code = self.proc.poll()
        if code is not None:
            self._reader.join(timeout=5)
        return code

    def result(self, timeout: float) -> dict[str, Any]:
        try:
            return super().result(timeout)
        except (RuntimeError, TimeoutError) as exc:
            assert self.proc.stderr is not None
            raise type(exc)(f"{exc}\nstderr: {self.proc.stderr.read()[-3000:]}") from None


class ForkServer:
    """``python tests/crash_child.py serve``: forks a turn in ~10 ms instead of ~4 s."""

    def __init__(self, workdir: Path, *, env: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE), "serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=HERE.parent.parent,
        )
        self._lock = threading.Condition()
        self._forked: dict[str, int] = {}
        self.exits: dict[int, int] = {}
        self._ready = threading.Event()
        self._count = 0
        threading.Thread(target=self._read, daemon=True).start()
        if not self._ready.wait(60):
            self.close()
            raise RuntimeError("the fork server did not start")

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            event = json.loads(line)
            with self._lock:
                if event["event"] == "ready":
                    self._ready.set()
                elif event["event"] == "forked":
                    self._forked[event["id"]] = event["pid"]
                elif event["event"] == "exited":
                    self.exits[event["pid"]] = event["code"]
                self._lock.notify_all()

    def start(self, spec: TurnSpec, mode: str) -> ForkedChild:
        with self._lock:
            self._count += 1
            ident = f"turn-{self._count}"
        out = self.workdir / f"{ident}.jsonl"
        out.touch()
        assert self.proc.stdin is not None
        command = {"id": ident, "out": str(out), "args": spec.args(mode)}
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        with self._lock:
            if not self._lock.wait_for(lambda: ident in self._forked, timeout=30):
                raise RuntimeError("the fork server did not fork")
            return ForkedChild(self, self._forked[ident], out)

    def close(self) -> None:
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> ForkServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ForkedChild(Child):
    """A turn forked by the :class:`ForkServer`; its stdout is a file."""

    def __init__(self, server: ForkServer, pid: int, out: Path) -> None:
        self.server = server
        self.pid = pid
        self.out = out
        self._events: list[dict[str, Any]] = []
        self._offset = 0

    def events(self) -> list[dict[str, Any]]:
        with self.out.open("rb") as f:
            f.seek(self._offset)
            data = f.read()
        end = data.rfind(b"\n") + 1
        for line in data[:end].splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                self._events.append(json.loads(line))
        self._offset += end
        return list(self._events)

    def exit_code(self) -> int | None:
        with self.server._lock:
            return self.server.exits.get(self.pid)


class DelayProxy:
    """An HTTP proxy in front of the emulator that can hold the question POSTs.

    ``response_delay`` holds Genie's answer to a question POST (the message exists, the
    client does not know its ids yet); ``request_delay`` holds the POST before Genie
    sees it (a slow front end: the message appears that long after it was sent, even
    if the sender died meanwhile); ``drop_questions`` never passes question POSTs on (the
    request is lost on the way: the sender waits until it gives up or dies).
    """

    QUESTION = ("/start-conversation", "/messages")

    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self.request_delay = 0.0
        self.response_delay = 0.0
        self.drop_questions = False
        self.port = 0
        self._loop: Any = None
        self._stop: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> DelayProxy:
        import asyncio

        from aiohttp import ClientSession, web

        ready = threading.Event()
        session: Any = None

        async def handle(request: web.Request) -> web.Response:
            body = await request.read()
            question = request.method == "POST" and request.path.endswith(self.QUESTION)
            if question and self.drop_questions:
                await asyncio.sleep(3600)
            if question and self.request_delay:
                await asyncio.sleep(self.request_delay)
            headers = {
                k: v
                for k, v in request.headers.items()
                if k.lower() in ("authorization", "content-type", "user-agent", "accept")
            }
            async with session.request(
                request.method, self.target + request.path_qs, headers=headers, data=body
            ) as answer:
                data = await answer.read()
                status = answer.status
                kept = {
                    k: v
                    for k, v in answer.headers.items()
                    if k.lower() in ("content-type", "retry-after")
                }
            if question and self.response_delay:
                await asyncio.sleep(self.response_delay)
            return web.Response(status=status, body=data, headers=kept)

        async def main() -> None:
            nonlocal session
            session = ClientSession()
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", handle)
            runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self._stop = asyncio.Event()
            ready.set()
            await self._stop.wait()
            await runner.cleanup()
            await session.close()
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:  # questions still held (drop_questions)
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)

        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_until_complete, args=(main(),), daemon=True
        )
        self._thread.start()
        if not ready.wait(30):
            raise RuntimeError("the proxy did not start")
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)
        self._loop.close()
        self._thread = None

    def __enter__(self) -> DelayProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---------------------------------------------------------------------------------------
# the stress run: turns killed at random points, then restarted until they finish
# ---------------------------------------------------------------------------------------
FIRST_TARGETS = (
    "early", "prepare-end", "submit", "post-received", "wait", "completion", "after-wait"
)  # fmt: skip
RESUME_TARGETS = ("early", "submit", "post-received", "wait", "completion", "after-wait")


@dataclass
class Kill:
    """One SIGKILL: where it was aimed, and where the turn actually was."""

    iteration: int
    attempt: int
    target: str
    phase: str
    after_seconds: float


@dataclass
class TurnOutcome:
    """One turn of the stress run, checked against the emulator."""

    iteration: int
    question: str
    follow_up: bool
    kills: int
    restarts: int
    actions: list[str]
    asked: int  # how many times the emulator saw the question
    answered: bool  # the thread's state ends with the answer to a message of this question
    same_conversation: bool  # a follow-up went to the thread's Genie conversation
    seconds: float
    problem: str | None = None


@dataclass
class StressReport:
    seed: int
    backend: str
    latency: float
    kills: list[Kill]
    turns: list[TurnOutcome]
    seconds: float

    @property
    def duplicates(self) -> int:
        return sum(max(t.asked - 1, 0) for t in self.turns)

    @property
    def lost(self) -> int:
        return sum(not t.answered for t in self.turns)

    @property
    def wrong_conversation(self) -> int:
        return sum(not t.same_conversation for t in self.turns)

    def by_phase(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for k in self.kills:
            out[k.phase] = out.get(k.phase, 0) + 1
        return dict(sorted(out.items(), key=lambda kv: PHASES.index(kv[0])))


PHASES = (
    "start-up (nothing checkpointed)",
    "prepare (question not yet recorded)",
    "submit, before the POST reached Genie",
    "submit, POST received, ids not recorded",
    "submit, searching for an earlier POST",
    "submit done, not yet checkpointed",
    "wait, message running",
    "wait, message completed, not yet seen",
    "answer received, not yet checkpointed",
)


def _steps(child: Child) -> set[tuple[str, str]]:
    return {(e["node"], e["phase"]) for e in child.events() if e.get("event") == "step"}


def _classify(steps: set[tuple[str, str]], message: Any, started: float, killed: float) -> str:
    exists = message is not None and message.created_at <= killed
    done = exists and message.completed_at is not None and message.completed_at <= killed
    if ("wait", "end") in steps:
        return PHASES[8]
    if ("wait", "start") in steps:
        return PHASES[7] if done else PHASES[6]
    if ("submit", "end") in steps:
        return PHASES[5]
    if ("submit", "start") in steps:
        if exists and message.created_at < started:
            return PHASES[4]
        return PHASES[3] if exists else PHASES[2]
    if ("prepare", "start") in steps:
        return PHASES[1]
    return PHASES[0]


def _aim(child: Child, target: str, rng: Any, emu: Any, question: str, latency: float) -> None:
    """Sleep until the point ``target`` names (or the child finished)."""

    def message() -> Any:
        return next((m for m in emu.messages() if m.content == question), None)

    limit = 30.0
    if target == "early":  # graph built, checkpointer open: reading the thread, preparing
        child.wait_for(lambda c: c.last("ready"), limit)
        time.sleep(rng.uniform(0.0, 0.1))
    elif target == "prepare-end":
        child.wait_for(lambda c: c.step("prepare", "end"), limit)
        time.sleep(rng.uniform(0.0, 0.005))
    elif target == "submit":
        child.wait_for(lambda c: c.step("submit", "start"), limit)
        time.sleep(rng.uniform(0.0, 0.3))
    elif target == "post-received":  # Genie has the message, the turn has not its ids

        def received(c: Child) -> bool:
            return message() is not None and not c.step("submit", "end")

        child.wait_for(received, limit)
        time.sleep(rng.uniform(0.0, 0.03))
    elif target == "wait":
        child.wait_for(lambda c: c.step("wait", "start"), limit)
        time.sleep(rng.uniform(0.0, latency))
    elif target == "completion":

        def completed(_: Child) -> bool:
            m = message()
            return bool(m and m.completed_at is not None and m.completed_at <= time.time())

        child.wait_for(completed, limit)
        time.sleep(rng.uniform(0.0, 0.3))
    elif target == "after-wait":
        child.wait_for(lambda c: c.step("wait", "end"), limit)
        time.sleep(rng.uniform(0.0, 0.01))
    else:
        raise ValueError(target)


def questions(i: int) -> tuple[str, bool]:
    """The ``i``-th question of a stress run: first questions and follow-ups alternate."""
    if i % 2 == 0:
        return f"What are the top {i + 2} customers by revenue?", False
    return f"only {1992 + (i // 2) % 7}, top {i + 2}", True


def run_stress(
    start: Any,
    emu: Any,
    spec: TurnSpec,
    *,
    seed: int,
    min_kills: int = 20,
    latency: float = 1.0,
    backend: str = "",
    second_kill: float = 0.35,
    log: Any = print,
) -> StressReport:
    """Kill turns at random points until ``min_kills`` kills, restarting each until done.

    Args:
        start: ``start(spec, mode) -> Child`` (a fork server's ``start``, or ``ColdChild``).
        emu: The emulator the children talk to (directly or through a proxy).
        spec: Host, token, space and checkpointer (thread, question and id are set here).
        seed: Seeds every random choice (which point to aim at, how long after it).
        min_kills: Stop after the turn that makes this many kills.
        latency: The emulator's message duration, seconds.
        backend: A label for the report.
        second_kill: Chance that a restarted turn is killed again (at most twice more).
        log: Called with a line per turn.
    """
    import dataclasses
    import random

    rng = random.Random(seed)
    kills: list[Kill] = []
    turns: list[TurnOutcome] = []
    conversations: dict[str, str] = {}
    began = time.monotonic()
    i = 0
    deck: list[str] = []
    while len(kills) < min_kills:
        if not deck:  # every point is aimed at as often as the others
            deck = list(FIRST_TARGETS)
            rng.shuffle(deck)
        question, follow_up = questions(i)
        thread = f"stress-{seed}-{backend}-{i // 2}"
        turn = dataclasses.replace(spec, thread=thread, question=question, message_id=f"q{i}")
        t0 = time.monotonic()
        actions: list[str] = []
        child = start(turn, "run")
        attempt, my_kills = 0, 0
        problem = None
        while True:
            wanted = attempt == 0 or (my_kills < 3 and rng.random() < second_kill)
            if not wanted:
                break
            target = deck.pop() if attempt == 0 else rng.choice(RESUME_TARGETS)
            started = time.time()
            _aim(child, target, rng, emu, question, latency)
            if child.finished():
                break
            killed = time.time()
            child.kill()
            child.wait_for(lambda c: False, 10)  # until it is reaped
            message = next((m for m in emu.messages() if m.content == question), None)
            phase = _classify(_steps(child), message, started, killed)
            kills.append(Kill(i, attempt, target, phase, round(killed - started, 3)))
            my_kills += 1
            attempt += 1
            child = start(turn, "resume")
        try:
            result = child.result(60)
            actions.append(result["action"])
        except (RuntimeError, TimeoutError) as exc:
            result, problem = {}, str(exc)[:500]
        asked = [m for m in emu.messages() if m.content == question]
        answer = result.get("answer") or {}
        # answered: the thread ends with the answer to a message asking this very question
        answered = bool(
            answer.get("message_id") in {m.message_id for m in asked}
            and result.get("pending") is None
        )
        # the Genie conversation the thread went on with: its follow-ups must go there
        if follow_up:
            same = bool(asked) and all(
                m.conversation_id == conversations.get(thread) for m in asked
            )
        else:
            same = True
            conversations[thread] = answer.get("conversation_id") or ""
        outcome = TurnOutcome(
            i, question, follow_up, my_kills, attempt, actions, len(asked), answered, same,
            round(time.monotonic() - t0, 2), problem,
        )  # fmt: skip
        turns.append(outcome)
        log(
            f"[{backend} seed={seed}] turn {i}: kills={my_kills} asked={len(asked)} "
            f"answered={answered} actions={actions} phases="
            f"{[k.phase for k in kills if k.iteration == i]}"
            + (f" PROBLEM {problem}" if problem else "")
        )
        i += 1
    return StressReport(seed, backend, latency, kills, turns, round(time.monotonic() - began, 1))


if __name__ == "__main__":
    sys.exit(main())
