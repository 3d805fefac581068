"""The ``genie-tools`` command."""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.syntax import Syntax
from rich.table import Table

app = typer.Typer(
    help="Databricks Genie for LangChain and LangGraph, with a local Genie emulator.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
_options = {"debug": False}


@app.callback()
def main(
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            envvar="GENIE_TOOLS_DEBUG",
            help="On errors, show the traceback; log what the client does.",
        ),
    ] = False,
) -> None:
    """Databricks Genie for LangChain and LangGraph, with a local Genie emulator."""
    _options["debug"] = debug
    if debug:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        logging.getLogger("genie_tools").setLevel(logging.DEBUG)
    else:
        # The SDK logs its own discovery failures as warnings; the error line says it all.
        logging.getLogger("databricks").setLevel(logging.ERROR)


def _one_line(text: str) -> str:
    from genie_tools.connection import env_secrets
    from genie_tools.errors import redact

    return " ".join(redact(text, env_secrets()).split())


def _error_fields(exc: BaseException) -> dict[str, Any]:
    """``{type, message, ...}`` of an error, safe to print (no secrets, one line)."""
    from genie_tools.errors import GenieError

    if isinstance(exc, typer.TyperException):  # click's usage errors, as typer ships them
        fields: dict[str, Any] = {"type": "UsageError", "message": exc.format_message()}
    elif isinstance(exc, GenieError):
        fields = {"type": type(exc).__name__, "message": exc.message}
        for name in ("host", "cause", "status_code", "error_code", "kind"):
            if getattr(exc, name, None) is not None:
                fields[name] = getattr(exc, name)
    else:
        fields = {"type": type(exc).__name__, "message": str(exc) or type(exc).__name__}
    fields["message"] = _one_line(str(fields["message"]))
    return fields


@contextmanager
def _reported(as_json: bool) -> Iterator[None]:
    """Turn any error into one line on stderr (or a JSON object on stdout) and an exit code.

    Tracebacks are for ``--debug``: a wrong host or token is a message, not a crash.
    """
    try:
        yield
    except (typer.Exit, typer.Abort):
        raise
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        raise typer.Exit(130) from None
    except Exception as exc:
        if _options["debug"]:
            raise
        fields = _error_fields(exc)
        usage = isinstance(exc, typer.TyperException)
        code = int(getattr(exc, "exit_code", 2)) if usage else 1
        if as_json:
            print(json.dumps({"schema": "genie-tools.error/1", "error": fields}), flush=True)
        else:
            hint = "" if usage else " (--debug shows details)"
            print(f"Error: {fields['type']}: {fields['message']}{hint}", file=sys.stderr)
        raise typer.Exit(code) from None


def _reports_errors(command: Callable[..., None]) -> Callable[..., None]:
    """Run a command inside :func:`_reported` (its ``--json`` choosing the error's form)."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> None:
        with _reported(bool(kwargs.get("as_json"))):
            command(*args, **kwargs)

    return run


emulator_app = typer.Typer(
    help="Run the local Genie-compatible server until interrupted, or a command below.",
    add_completion=False,
)
app.add_typer(emulator_app, name="emulator")


@emulator_app.callback(invoke_without_command=True)
def emulator(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port (0 picks a free one).")] = 8765,
    data_dir: Annotated[
        Path | None, typer.Option(help="Cache folder for generated TPC-H data.")
    ] = None,
    speed: Annotated[
        float, typer.Option(help="Latency multiplier: 0 instant, 1 realistic, 2 twice as slow.")
    ] = 1.0,
    qpm: Annotated[int | None, typer.Option(help="Questions per minute per workspace.")] = None,
    config: Annotated[
        Path | None, typer.Option(help="YAML file with spaces, data, limits, principals, faults.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for ids, latency and faults.")] = 0,
    token: Annotated[
        str | None, typer.Option(help="Bearer token to accept (random when not given).")
    ] = None,
) -> None:
    """Run the local Genie-compatible server until interrupted, or a command below."""
    if ctx.invoked_subcommand is not None:
        given = [
            f"--{name.replace('_', '-')}"
            for name in ctx.params
            if getattr(ctx.get_parameter_source(name), "name", "") == "COMMANDLINE"
        ]
        if given:
            raise typer.BadParameter(
                f"{', '.join(given)}: serving options, which {ctx.invoked_subcommand!r} "
                f"does not take; give it its own options after its name "
                f"(genie-tools emulator {ctx.invoked_subcommand} --help)",
                param_hint=given[0],
            )
        return
    from genie_tools.emulator import GenieEmulator
    from genie_tools.emulator.config import ConfigError

    try:
        emu = GenieEmulator(
            host=host,
            port=port,
            data_dir=data_dir,
            speed=speed,
            qpm=qpm,
            config=config,
            seed=seed,
            token=token,
        ).start()
    except ConfigError as exc:  # one message naming the file, the key and the fix
        raise typer.BadParameter(str(exc), param_hint="--config") from None
    # The banner's DATABRICKS_HOST is one the client accepts (loopback http; else a note).
    for line in emu.banner():
        print(line, flush=True)
    emu.serve_forever()


@emulator_app.command("eval")
def eval_(
    file: Annotated[
        Path, typer.Argument(help="NL→SQL eval set YAML (e.g. tests/eval/nl2sql.yaml).")
    ],
    misses: Annotated[
        bool, typer.Option("--misses", help="List every missed turn with the SQL given.")
    ] = False,
    spaces: Annotated[
        Path | None, typer.Option(help="YAML file with a top-level spaces: list to use instead.")
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="Emulator YAML config (spaces, data) to score against.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the scores and misses as JSON.")
    ] = False,
) -> None:
    """Score an NL→SQL eval set against the emulator, through the real SDK."""
    from genie_tools.emulator import EmulatorConfig, GenieEmulator, load_spaces
    from genie_tools.emulator.evaluation import duckdb_reference, load_eval_set, run_eval

    eval_set = _load_yaml(file, "FILE", load_eval_set, "an eval set like tests/eval/nl2sql.yaml")
    cfg = (
        _load_yaml(config, "--config", EmulatorConfig.from_file, "an emulator config")
        if config is not None
        else EmulatorConfig()
    )
    if spaces is not None:
        chosen = _load_yaml(spaces, "--spaces", load_spaces, "a spaces file (spaces: [...])")
        try:
            cfg = EmulatorConfig.model_validate({**cfg.model_dump(), "spaces": chosen})
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--spaces") from None
    titles = {s.title: s.id for s in cfg.spaces}
    unknown = sorted({c.space for c in eval_set.cases} - titles.keys())
    if unknown:
        raise typer.BadParameter(
            f"{file} asks spaces the emulator does not have: {unknown}; known: "
            f"{sorted(titles)} (declare them with --spaces or --config)",
            param_hint="FILE",
        )
    started = time.perf_counter()
    with console.status("Starting Genie (the local emulator generates TPC-H on first start)…"):
        try:
            emu = GenieEmulator(speed=0, qpm=1_000_000, config=cfg).start()
        except ValueError as exc:  # ConfigError: the data or the declarations do not match
            raise typer.BadParameter(str(exc), param_hint="--config") from None
    try:
        with (
            duckdb_reference(emu) as reference,
            console.status(f"Replaying {len(eval_set.cases)} cases through the SDK…"),
        ):
            report = run_eval(emu.workspace_client(), eval_set, reference, titles)
    finally:
        emu.stop()
    seconds = time.perf_counter() - started
    if as_json:
        print(json.dumps({"file": str(file), **report.summary(), "seconds": round(seconds, 2)}))
        return
    print(report.table())
    if misses:
        print(f"\n{len(report.misses)} missed turns:")
        for o in report.misses:
            scope = "in scope" if o.expected_sql is not None else "out of scope"
            print(f"\n{o.case}#{o.turn} ({scope}) {o.question!r}: {o.detail}")
            given = o.sql or "(no SQL)"
            expected = o.expected_sql or "(no SQL: a clarification)"
            for label, sql in (("given", given), ("expected", expected)):
                print(f"  {label}:")
                print(textwrap.indent(sql.strip(), "    "))
    console.print(
        f"[dim]{len(report.outcomes)} turns of {len(eval_set.cases)} cases in {seconds:.1f} s[/dim]"
    )


def _load_yaml(path: Path, hint: str, load: Any, what: str) -> Any:
    """``load(path)``, or a usage error that says what is wrong and what to give instead."""
    import yaml

    if not path.is_file():
        raise typer.BadParameter(
            f"no such file: {str(path)!r}; give the path of {what}", param_hint=hint
        )
    try:
        return load(path)
    except (yaml.YAMLError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        raise typer.BadParameter(f"{path} is not {what}: {exc}", param_hint=hint) from None


DEMO_SCRIPT = (
    "What was total revenue by year?",
    "break that down by region",
    "What was revenue by region, and inventory value by region?",
)


def _home() -> Path:
    """The CLI's data folder: ``GENIE_TOOLS_HOME``, else the user's app folder."""
    return Path(os.environ.get("GENIE_TOOLS_HOME") or typer.get_app_dir("genie-tools"))


def _threads_db(db: str | None) -> str:
    """The SQLite checkpointer URL for CLI threads (a user data folder by default)."""
    if db:
        return db if "://" in db else f"sqlite:///{Path(db).expanduser().resolve()}"
    return f"sqlite:///{(_home() / 'threads.db').resolve()}"


def _checked_thread(thread: str | None, prefix: str) -> str:
    """The thread id given (checked: it names a saved thread), or a new one."""
    from genie_tools.errors import InvalidIdError
    from genie_tools.ids import check_id

    if thread is None:
        return f"{prefix}-{uuid.uuid4().hex[:8]}"
    try:
        return check_id(thread, kind="thread")
    except InvalidIdError:
        shown = thread if len(thread) <= 80 else thread[:77] + "..."
        raise typer.BadParameter(
            f"{shown!r} is not a thread id: thread ids are 1-128 letters, digits, '-' or "
            "'_' (use the one a previous ask or chat printed, e.g. ask-1a2b3c4d)",
            param_hint="--thread",
        ) from None


@contextmanager
def _analyst(
    *, profile: str | None, speed: float, durable: bool, db: str | None = None
) -> Iterator[tuple[Any, Any]]:
    """The workspace (or emulator) and a compiled analyst graph over its spaces."""
    from langgraph.checkpoint.memory import InMemorySaver

    from genie_tools.graph import checkpointer_from_url, create_analyst_graph
    from genie_tools.session import open_workspace

    # The local emulator keeps its conversations beside the threads, so that a thread
    # continued in a new process finds its Genie conversation again.
    state_dir = (_home() / "emulator") if durable else None
    with open_workspace(profile=profile, speed=speed, state_dir=state_dir) as ws:
        builder = create_analyst_graph(ws.spaces, workspace=ws.workspace, settings=ws.settings)
        if durable:
            with checkpointer_from_url(_threads_db(db)) as saver:
                yield ws, builder.compile(checkpointer=saver)
        else:
            yield ws, builder.compile(checkpointer=InMemorySaver())


def _show_turn(turn: dict[str, Any], names: dict[str, str]) -> None:
    route = turn["route"]
    if route["spaces"]:
        chosen = ", ".join(names.get(s, s) for s in route["spaces"])
        console.print(f"[dim]routed to {chosen} ({route['reason']})[/dim]")
    for answer in turn["answers"]:
        console.rule(f"[bold]{answer['space']}[/bold]")
        if answer["error"]:
            console.print(f"[red]{answer['error']}[/red]")
            continue
        if answer["is_clarification"]:
            console.print(f"[yellow]Genie asks:[/yellow] {answer['clarification_question']}")
        elif answer["text"]:
            console.print(answer["text"])
        if answer["sql"]:
            console.print(Syntax(answer["sql"], "sql", theme="ansi_dark", word_wrap=True))
        if answer["columns"]:
            table = Table(*[c["name"] for c in answer["columns"]])
            for row in answer["rows"][:10]:
                table.add_row(*["" if v is None else str(v) for v in row])
            console.print(table)
            more = answer["row_count"] - min(10, len(answer["rows"]))
            if more > 0 or answer["truncated"]:
                note = f"{more:,} more rows" + (
                    " (Genie's 5,000-row cap reached)" if answer["truncated"] else ""
                )
                console.print(f"[dim]{note}[/dim]")
    console.print(f"[bold green]Analyst:[/bold green] {turn['answer']}")
    console.print(f"[dim]{turn['elapsed_seconds']:.1f} s[/dim]")


def _notices(event: dict[str, Any]) -> None:
    """With ``--json``, what a person should know (a conversation gone) goes to stderr."""
    if event.get("kind") == "conversation_gone":
        print(f"Note: {event.get('detail')}", file=sys.stderr, flush=True)


def _ask_with_status(
    graph: Any, question: str, thread: str, spaces: list[str] | None = None
) -> dict[str, Any]:
    from genie_tools.session import run_turn

    with console.status("Routing…") as status:

        def progress(event: dict[str, Any]) -> None:
            if event.get("kind") == "conversation_gone":
                console.print(f"[yellow]{event.get('detail')}[/yellow]")
            what = event.get("status") or event.get("kind")
            status.update(f"Genie · {event.get('space')}: {what}")

        return run_turn(graph, question, thread_id=thread, space_ids=spaces, on_progress=progress)


@app.command()
@_reports_errors
def demo(
    speed: Annotated[float, typer.Option(help="Emulator latency multiplier.")] = 0.5,
    profile: Annotated[
        str | None, typer.Option(help="Databricks profile (a real workspace).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print each turn as JSON.")] = False,
) -> None:
    """The analyst agent's short tour: a routed question, a follow-up, a cross-space question."""
    started = time.perf_counter()
    with console.status("Starting Genie (the local emulator generates TPC-H on first start)…"):
        context = _analyst(profile=profile, speed=speed, durable=False)
        ws, graph = context.__enter__()
    try:
        names = {s.id: s.name or s.id for s in ws.spaces}
        if not as_json:
            console.print(f"[bold]Genie:[/bold] {ws.description}")
            console.print("[bold]Spaces:[/bold] " + ", ".join(names.values()))
        thread = f"demo-{uuid.uuid4().hex[:8]}"
        for question in DEMO_SCRIPT:
            if as_json:
                from genie_tools.session import run_turn

                print(json.dumps(run_turn(graph, question, thread_id=thread), default=str))
                continue
            console.print()
            console.print(f"[bold cyan]You:[/bold cyan] {question}")
            _show_turn(_ask_with_status(graph, question, thread), names)
    finally:
        context.__exit__(None, None, None)
    if not as_json:
        console.print(f"\n[dim]demo done in {time.perf_counter() - started:.1f} s[/dim]")


@app.command()
@_reports_errors
def ask(
    question: Annotated[str, typer.Argument(help="The question.")],
    space: Annotated[
        list[str] | None, typer.Option("--space", help="Space id or name to ask (skips routing).")
    ] = None,
    thread: Annotated[
        str | None, typer.Option(help="Thread id: continue its conversation.")
    ] = None,
    profile: Annotated[
        str | None, typer.Option(help="Databricks profile (a real workspace).")
    ] = None,
    db: Annotated[str | None, typer.Option(help="Checkpointer: SQLite file or URL.")] = None,
    speed: Annotated[float, typer.Option(help="Emulator latency multiplier.")] = 0.5,
    as_json: Annotated[bool, typer.Option("--json", help="Print the turn as JSON.")] = False,
) -> None:
    """Ask one question (follow up with --thread; threads persist in a SQLite file)."""
    thread = _checked_thread(thread, "ask")
    with _analyst(profile=profile, speed=speed, durable=True, db=db) as (ws, graph):
        chosen = _space_ids(ws, space, hint="--space")
        if as_json:
            from genie_tools.session import run_turn

            print(
                json.dumps(
                    run_turn(
                        graph,
                        question,
                        thread_id=thread,
                        space_ids=chosen,
                        on_progress=_notices,
                    ),
                    default=str,
                )
            )
            return
        names = {s.id: s.name or s.id for s in ws.spaces}
        _show_turn(_ask_with_status(graph, question, thread, chosen), names)
        console.print(f"[dim]thread: {thread} (continue with --thread {thread})[/dim]")


@app.command()
@_reports_errors
def chat(
    thread: Annotated[str | None, typer.Option(help="Thread id to resume.")] = None,
    profile: Annotated[
        str | None, typer.Option(help="Databricks profile (a real workspace).")
    ] = None,
    db: Annotated[str | None, typer.Option(help="Checkpointer: SQLite file or URL.")] = None,
    speed: Annotated[float, typer.Option(help="Emulator latency multiplier.")] = 0.5,
) -> None:
    """Talk to the analyst agent; an empty line or 'exit' ends. Threads persist."""
    thread = _checked_thread(thread, "chat")
    with _analyst(profile=profile, speed=speed, durable=True, db=db) as (ws, graph):
        names = {s.id: s.name or s.id for s in ws.spaces}
        console.print(f"[bold]Genie:[/bold] {ws.description} · thread {thread}")
        console.print("[bold]Spaces:[/bold] " + ", ".join(names.values()))
        while True:
            try:
                question = console.input("[bold cyan]You:[/bold cyan] ").strip()
            except (EOFError, KeyboardInterrupt):
                break
            if not question or question.lower() in ("exit", "quit"):
                break
            _show_turn(_ask_with_status(graph, question, thread), names)
        console.print(f"[dim]resume with: genie-tools chat --thread {thread}[/dim]")


@app.command()
@_reports_errors
def spaces(
    space: Annotated[str | None, typer.Argument(help="A space id or name to describe.")] = None,
    profile: Annotated[
        str | None, typer.Option(help="Databricks profile (a real workspace).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the Genie spaces, or describe one."""
    from genie_tools.client import GenieClient
    from genie_tools.session import open_workspace

    with (
        open_workspace(profile=profile, speed=0) as ws,
        GenieClient(ws.workspace, settings=ws.settings) as client,
    ):
        if space is None:
            rows = [
                {"space_id": s.id, "title": s.name, "description": s.description} for s in ws.spaces
            ]
            if as_json:
                print(json.dumps(rows))
                return
            table = Table("space id", "title", "description")
            for row in rows:
                table.add_row(row["space_id"], row["title"] or "", row["description"] or "")
            console.print(table)
            return
        (space_id,) = _space_ids(ws, [space], hint="SPACE") or [space]
        info = client.get_space(space_id)
        if as_json:
            print(info.model_dump_json())
            return
        console.print(f"[bold]{info.title}[/bold] [dim]{info.space_id}[/dim]")
        console.print(info.description or "")
        for t in info.tables:
            console.print(f"[bold]{t.name}[/bold] {t.description or ''}")
            for c in t.columns:
                console.print(f"  {c.name}: [dim]{c.description or ''}[/dim]")
        for q in info.sample_questions:
            console.print(f"  [cyan]→ {q}[/cyan]")


def _space_ids(ws: Any, wanted: list[str] | None, *, hint: str) -> list[str] | None:
    """Space ids from ids or names (case-insensitive); an error naming ``hint`` if unknown."""
    if not wanted:
        return None
    out = []
    for item in wanted:
        match = next(
            (
                s.id
                for s in ws.spaces
                if item in (s.id, s.name) or item.lower() == (s.name or "").lower()
            ),
            None,
        )
        if match is None:
            known = ", ".join(repr(s.name) for s in ws.spaces)
            raise typer.BadParameter(f"unknown space {item!r}; known: {known}", param_hint=hint)
        out.append(match)
    return out


if __name__ == "__main__":
    app()
