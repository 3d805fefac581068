"""The ``genie-tools`` command."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.service.dashboards import GenieMessage

app = typer.Typer(
    help="Databricks Genie for LangChain and LangGraph, with a local Genie emulator.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()


@app.command()
def emulator(
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
    """Run the local Genie-compatible server until interrupted."""
    from genie_tools.emulator import GenieEmulator

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
    print(f"Genie emulator listening on {emu.url}", flush=True)
    print(f"  token: {emu.token}", flush=True)
    print(f"  export DATABRICKS_HOST={emu.url} DATABRICKS_TOKEN={emu.token}", flush=True)
    for space in emu.config.spaces:
        print(f"  space {space.id}  {space.title}", flush=True)
    emu.serve_forever()


@app.command()
def demo(
    question: Annotated[str, typer.Argument(help="What to ask.")] = (
        "What was total revenue by year?"
    ),
    speed: Annotated[float, typer.Option(help="Emulator latency multiplier.")] = 0.5,
) -> None:
    """Ask the local emulator one question through the Databricks SDK and show the answer."""
    from genie_tools.emulator import GenieEmulator

    started = time.perf_counter()
    with console.status("Starting the Genie emulator (first start generates TPC-H)…"):
        emu = GenieEmulator(speed=speed).start()
    try:
        w = emu.workspace_client()
        spaces = w.genie.list_spaces().spaces or []
        space = spaces[0]
        console.print(f"[bold]Space:[/bold] {space.title}  [dim]({space.space_id})[/dim]")
        console.print(f"[bold]Question:[/bold] {question}")
        start = w.genie.start_conversation(space.space_id, question).response
        assert start is not None  # the SDK's Wait always carries the first response
        last = None
        with console.status("Genie is working…") as status:
            while True:
                msg = w.genie.get_message(space.space_id, start.conversation_id, start.message_id)
                state = msg.status.value if msg.status else "UNKNOWN"
                if state != last:
                    status.update(f"Genie: {state}")
                    console.print(f"  [dim]{state}[/dim]")
                    last = state
                if state in ("COMPLETED", "FAILED", "CANCELLED", "QUERY_RESULT_EXPIRED"):
                    break
                time.sleep(0.25)
        _show_answer(w, msg)
    finally:
        emu.stop()
    console.print(f"[dim]done in {time.perf_counter() - started:.1f} s[/dim]")


def _show_answer(w: WorkspaceClient, msg: GenieMessage) -> None:
    if msg.error is not None:
        console.print(f"[red]Genie failed:[/red] {msg.error.error}")
        return
    for att in msg.attachments or []:
        if att.text is not None:
            console.print(f"[bold]Genie:[/bold] {att.text.content}")
        if att.query is not None:
            console.print(f"[bold]SQL:[/bold]\n{att.query.query}")
            res = w.genie.get_message_attachment_query_result(
                msg.space_id, msg.conversation_id, msg.message_id, att.attachment_id or ""
            ).statement_response
            if res and res.manifest and res.manifest.schema and res.result:
                table = Table(*[c.name or "" for c in res.manifest.schema.columns or []])
                for row in (res.result.data_array or [])[:20]:
                    table.add_row(*[("" if v is None else str(v)) for v in row])
                console.print(table)
        if att.suggested_questions is not None:
            for q in att.suggested_questions.questions or []:
                console.print(f"  [cyan]→ {q}[/cyan]")


if __name__ == "__main__":
    app()
