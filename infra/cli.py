"""The `paddy` command: the local stack, demo jobs and data tools."""

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Paddy: train, track and compare rice-leaf disease classifiers.",
                  no_args_is_help=True)
data_app = typer.Typer(help="Dataset tools.", no_args_is_help=True)
app.add_typer(data_app, name="data")

StateDir = Annotated[Path, typer.Option(help="where the local stack keeps its data and logs")]


@app.command()
def up(
    state_dir: StateDir = Path(".paddy"),
    trainers: Annotated[int, typer.Option(min=1, help="Celery worker processes")] = 1,
    redis_port: int = 6379,
    mongo_port: int = 27017,
    api_port: int = 8000,
    dashboard_port: int = 8501,
    flower_port: int = 5555,
    detach: Annotated[bool, typer.Option(help="start in the background and return")] = False,
) -> None:
    """Start the whole stack locally (no Docker); Ctrl-C or `paddy down` stops it."""
    from infra.local_stack import LocalStack, StackConfig, StackError

    config = StackConfig(
        state_dir=state_dir, trainers=trainers, redis_port=redis_port, mongo_port=mongo_port,
        api_port=api_port, dashboard_port=dashboard_port, flower_port=flower_port,
    )
    stack = LocalStack(config)
    try:
        stack.start()
    except StackError as error:
        typer.secho(f"paddy up: {error}", fg="red", err=True)
        raise typer.Exit(1) from None
    for name, url in stack.urls().items():
        typer.echo(f"{name:>10}  {url}")
    typer.echo(f"      logs  {config.state_dir / 'logs'}")
    if detach:
        typer.echo("running in the background; stop it with `paddy down`")
        return
    typer.echo("press Ctrl-C to stop")
    stack.wait()


@app.command()
def down(state_dir: StateDir = Path(".paddy")) -> None:
    """Stop a stack started with `paddy up --detach`."""
    from infra.local_stack import stop_recorded_stack

    stopped = stop_recorded_stack(state_dir)
    typer.echo(f"stopped {len(stopped)} process(es)" if stopped else "nothing was running")


@app.command()
def demo(
    api_url: Annotated[str, typer.Option(help="the API to queue jobs on")] = "http://127.0.0.1:8000",
    dataset: Annotated[str, typer.Option(help="dataset, relative to the data root")] = "demo-synth",
    epochs: int = 5,
) -> None:
    """Queue a few small jobs that finish in minutes on a CPU."""
    from infra.demo import queue_demo_jobs

    for run_id, spec in queue_demo_jobs(api_url, dataset, epochs):
        typer.echo(f"queued {run_id}  {spec}")


@data_app.command("synth")
def data_synth(
    out: Annotated[Path, typer.Option(help="output directory (ImageFolder layout)")],
    per_class: Annotated[int, typer.Option(min=1, help="images per class")] = 100,
    size: Annotated[int, typer.Option(min=16, max=2048, help="image side in pixels")] = 128,
    seed: Annotated[int, typer.Option(min=0)] = 0,
) -> None:
    """Draw a synthetic rice-leaf dataset: Bacterialblight, Brownspot and Leafsmut."""
    from shared.datasets.synth import synthesize_dataset

    counts = synthesize_dataset(out, per_class=per_class, size=size, seed=seed)
    for class_name, count in counts.items():
        typer.echo(f"{count:>6}  {out / class_name}")
