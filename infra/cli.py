"""The `paddy` command: the local stack, demo jobs and data tools."""

from pathlib import Path
from typing import Annotated, NamedTuple, NoReturn

import typer

from infra.demo import DEMO_DATA, DEMO_EPOCHS
from shared.models import MODELS, TRANSFER_MODELS
from shared.schemas.jobs import JobSpec

app = typer.Typer(help="Paddy: train, track and compare rice-leaf disease classifiers.", no_args_is_help=True)
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
    services: Annotated[
        str | None,
        typer.Option(help="comma-separated services to run, e.g. redis,mongo,recorder,api,trainer (default: all)"),
    ] = None,
    env: Annotated[
        list[str] | None,
        typer.Option("--env", metavar="NAME=VALUE", help="set in every service's environment (repeatable)"),
    ] = None,
    detach: Annotated[bool, typer.Option(help="start in the background and return")] = False,
) -> None:
    """Start the whole stack locally (no Docker) and restart what crashes; Ctrl-C or `paddy down` stops it."""
    from infra.local_stack import SERVICE_ORDER, StackConfig, StackError
    from infra.supervisor import run_foreground, start_detached

    config = StackConfig(
        state_dir=state_dir,
        trainers=trainers,
        redis_port=redis_port,
        mongo_port=mongo_port,
        api_port=api_port,
        dashboard_port=dashboard_port,
        flower_port=flower_port,
        services=tuple(name.strip() for name in services.split(",") if name.strip()) if services else SERVICE_ORDER,
        extra_env=_parse_env(env or []),
    )
    try:
        if not detach:
            raise typer.Exit(
                run_foreground(
                    config, on_ready=lambda stack: _print_urls(stack.urls(), state_dir, "press Ctrl-C to stop")
                )
            )
        state = start_detached(config)
    except StackError as error:
        _fail(f"paddy up: {error}")
    _print_urls(
        state["urls"],
        state_dir,
        f"running in the background (supervisor pid {state['supervisor']['pid']}); "
        "`paddy status` shows it, `paddy down` stops it",
    )


def _parse_env(assignments: list[str]) -> dict[str, str]:
    values = {}
    for assignment in assignments:
        name, sep, value = assignment.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"{assignment!r} is not NAME=VALUE", param_hint="--env")
        values[name] = value
    return values


def _print_urls(urls: dict[str, str], state_dir: Path, note: str) -> None:
    for name, url in urls.items():
        typer.echo(f"{name:>10}  {url}")
    typer.echo(f"      logs  {state_dir / 'logs'}")
    typer.echo(note)


@app.command()
def down(state_dir: StateDir = Path(".paddy")) -> None:
    """Stop the stack and every process it started, restarted ones included."""
    from infra.local_stack import stop_recorded_stack

    stopped = stop_recorded_stack(state_dir)
    typer.echo(f"stopped {', '.join(stopped)}" if stopped else "nothing was running")


@app.command()
def status(state_dir: StateDir = Path(".paddy")) -> None:
    """Show each service of the stack: status, pid, up since, restarts, URL (exit 1: not running)."""
    import time

    from infra.local_stack import SERVICE_ORDER, read_recorded_stack, running_recorded

    state = read_recorded_stack(state_dir)
    if state is None:
        _fail(f"nothing is running in {state_dir}")
    alive = set(running_recorded(state_dir))
    supervisor = state.get("supervisor") or {}
    if "supervisor" in alive:
        typer.echo(f"supervisor  pid {supervisor['pid']}, running")
    elif supervisor:
        typer.echo(
            f"supervisor  pid {supervisor['pid']}, not running: nothing restarts crashed services; "
            "`paddy down` stops what is left"
        )
    rows = [["SERVICE", "STATUS", "PID", "UP SINCE", "RESTARTS", "URL"]]
    services = state.get("services", {})
    order = {name: index for index, name in enumerate(SERVICE_ORDER)}
    for name in sorted(services, key=lambda n: (order.get(n.split("-")[0], len(order)), n)):
        entry = services[name]
        running = name in alive
        waiting = entry.get("status") == "restarting" and "supervisor" in alive
        since = entry.get("started_at")
        rows.append(
            [
                name,
                entry.get("status", "?") if running or waiting else "dead",
                str(entry["pid"]) if running else "-",
                f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(since))} ({_duration(time.time() - since)})"
                if running and since
                else "-",
                str(entry.get("restarts", 0)),
                entry.get("url") or "-",
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    if "supervisor" not in alive:
        raise typer.Exit(1)


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


@app.command()
def restart(
    names: Annotated[
        list[str], typer.Argument(metavar="SERVICE...", help="e.g. recorder, api, trainer-1 (trainer: every trainer)")
    ],
    state_dir: StateDir = Path(".paddy"),
) -> None:
    """Restart services of a running stack; returns once they are ready again."""
    from infra.local_stack import StackError
    from infra.supervisor import request_restart

    try:
        restarted = request_restart(state_dir, names)
    except StackError as error:
        _fail(f"paddy restart: {error}")
    for name, pid in restarted.items():
        typer.echo(f"restarted {name} (pid {pid})")


@app.command()
def demo(
    api_url: Annotated[str, typer.Option(help="the API to queue jobs on")] = "http://127.0.0.1:8000",
    dataset: Annotated[str, typer.Option(help="dataset, relative to the data root")] = DEMO_DATA.dataset,
    epochs: int = DEMO_EPOCHS,
    api_key: Annotated[
        str, typer.Option(envvar="PADDY_API_KEY", show_default=False, help="the API's key (default: the local stack's)")
    ] = "",
) -> None:
    """Queue a few small jobs that finish in minutes on a CPU."""
    from infra.demo import DemoError, queue_demo_jobs
    from infra.local_stack import DEV_API_KEY

    try:
        queued = queue_demo_jobs(api_url, dataset, epochs, api_key or DEV_API_KEY)
    except DemoError as error:
        _fail(f"paddy demo: {error}")
    for run_id, spec in queued:
        typer.echo(f"queued {run_id}  {spec}")


@data_app.command("synth")
def data_synth(
    out: Annotated[Path, typer.Option(help="output directory (ImageFolder layout)")],
    per_class: Annotated[int, typer.Option(min=1, help="images per class")] = 100,
    size: Annotated[
        int, typer.Option(min=16, max=2048, help="image side in pixels; a strip's short side, varied ±30 %")
    ] = 128,
    seed: Annotated[int, typer.Option(min=0)] = 0,
    masks: Annotated[
        Path | None,
        typer.Option(help="also write each image's lesion mask here (<class>/NNNN.png); keep it outside --out"),
    ] = None,
    shape: Annotated[
        str,
        typer.Option(
            help="square (a blade across the photo), strip (a whole leaf on paper, 2.5:1 to 4:1, "
            "like field photos) or tile (a square cut from a strip)"
        ),
    ] = "square",
    crop_classes: Annotated[
        str | None,
        typer.Option(metavar="CLASS[,CLASS]", help="with --shape strip, draw these classes as tiles instead"),
    ] = None,
) -> None:
    """Draw a synthetic rice-leaf dataset: Bacterialblight, Brownspot and Leafsmut."""
    from shared.datasets.synth import synthesize_dataset

    if masks is not None and masks.resolve().is_relative_to(out.resolve()):
        _fail(f"paddy data synth: --masks {masks} lies inside --out {out}, where masks would read as images")
    tiled = tuple(name.strip() for name in (crop_classes or "").split(",") if name.strip())
    try:
        counts = synthesize_dataset(
            out, per_class=per_class, size=size, seed=seed, masks=masks, shape=shape, crop_classes=tiled
        )
    except ValueError as error:
        _fail(f"paddy data synth: {error}")
    for class_name, count in counts.items():
        typer.echo(f"{count:>6}  {out / class_name}" + ("  (tiles)" if class_name in tiled else ""))


@data_app.command("audit")
def data_audit(
    folder: Annotated[Path, typer.Argument(help="ImageFolder directory, one folder per class")],
    as_json: Annotated[bool, typer.Option("--json", help="print the whole report as JSON (DatasetAudit)")] = False,
    dataset: Annotated[
        str | None, typer.Option(help="the dataset's name in the report (default: the folder's)")
    ] = None,
) -> None:
    """Audit a dataset: images per class, sizes, unreadable files, copies of one photo (label
    conflicts first) and shortcuts; a progress bar on stderr. Findings do not change the exit code."""
    from infra.audit_report import AuditProgress, audit_lines
    from services.trainer.audit import audit_dataset
    from shared.datasets.imagefolder import DatasetError

    progress = AuditProgress()
    try:
        audit = audit_dataset(folder, dataset or folder.resolve().name, progress)
    except DatasetError as error:
        _fail(f"paddy data audit: {error}")
    finally:
        progress.close()
    typer.echo(audit.model_dump_json(indent=2) if as_json else "\n".join(audit_lines(audit)))


def _about(field: str) -> str | None:
    """The help of a `train` option that sets a JobSpec field: the field's own description."""
    return JobSpec.model_fields[field].description


def _image_size(text: str | None) -> int | list[int] | None:
    if text is None:
        return None
    from shared.images import parse_image_size  # numpy and Pillow: not for every paddy command

    try:
        return parse_image_size(text)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--image-size") from None


@app.command()
def train(
    model: Annotated[str, typer.Option(help=f"model name: {', '.join(MODELS)}")],
    # Here the dataset, a weights file and the version are the caller's own: no data root, no
    # weights root, no store to number versions.
    data: Annotated[Path, typer.Option(help="ImageFolder directory, one folder per class")],
    epochs: Annotated[int | None, typer.Option(help=_about("epochs"))] = None,
    batch_size: Annotated[int | None, typer.Option(help=_about("batch_size"))] = None,
    learning_rate: Annotated[float | None, typer.Option(help=_about("learning_rate"))] = None,
    image_size: Annotated[
        str | None, typer.Option(help="the side of a square (224) or HEIGHTxWIDTH (96x320) in pixels")
    ] = None,
    resize: Annotated[str | None, typer.Option(help=_about("resize"))] = None,
    augment: Annotated[str | None, typer.Option(help=_about("augment"))] = None,
    tta: Annotated[bool | None, typer.Option("--tta/--no-tta", help=_about("tta"))] = None,
    dropout: Annotated[float | None, typer.Option(help=_about("dropout"))] = None,
    patience: Annotated[int | None, typer.Option(help=_about("patience"))] = None,
    seed: Annotated[int | None, typer.Option(help=_about("seed"))] = None,
    split: Annotated[str | None, typer.Option(help=_about("split"))] = None,
    split_seed: Annotated[int | None, typer.Option(help=_about("split_seed"))] = None,
    group_pattern: Annotated[str | None, typer.Option(help=_about("group_pattern"))] = None,
    feature_extraction: Annotated[
        bool | None,
        typer.Option("--feature-extraction/--no-feature-extraction", help=_about("feature_extraction")),
    ] = None,
    feature_views: Annotated[int | None, typer.Option(help=_about("feature_views"))] = None,
    weights: Annotated[str | None, typer.Option(help='"imagenet", "none" or a state-dict file')] = None,
    version: Annotated[str | None, typer.Option(help='run label such as "v3"')] = None,
    artifacts: Annotated[Path | None, typer.Option(help="artifacts directory; default: the settings'")] = None,
) -> None:
    """Train one model here in the foreground, without the stack; results go to the run directory."""
    import uuid

    from pydantic import ValidationError

    weights_file = Path(weights).resolve() if weights not in (None, "imagenet", "none") else None
    options = {
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "image_size": _image_size(image_size),
        "resize": resize,
        "augment": augment,
        "tta": tta,
        "dropout": dropout,
        "patience": patience,
        "seed": seed,
        "split": split,
        "split_seed": split_seed,
        "group_pattern": group_pattern,
        "feature_extraction": feature_extraction,
        "feature_views": feature_views,
        "version": version,
        "weights": str(weights_file) if weights_file else weights,
    }
    try:
        spec = JobSpec(
            model_name=model,
            dataset=str(data.resolve()),
            **{name: value for name, value in options.items() if value is not None},
        )
    except ValidationError as error:
        _fail(f"paddy train: invalid job:\n{error}", code=2)
    # Here the files are the caller's own: the dataset folder is its own data root, and a
    # weights file's folder its weights root (a queued job's stay inside the configured roots).
    roots = {"data_root": data.resolve()} | ({"weights_root": weights_file.parent} if weights_file else {})
    settings = _trainer_settings(artifacts).model_copy(update=roots)
    run_id = uuid.uuid4().hex[:12]

    from services.trainer import checkpoints
    from services.trainer.local_run import EVENTS_FILE, SUMMARY_FILE, train_locally

    run_dir = checkpoints.run_dir(settings.artifacts_root, run_id)
    typer.echo(f"run {run_id}: {spec.model_name} on {spec.dataset}")
    try:
        summary = train_locally(run_id, spec, settings, on_event=_EpochLines(spec.epochs))
    except ValueError as error:
        _fail(f"paddy train: run {run_id} failed: {error}\n  events: {run_dir / EVENTS_FILE}")
    typer.echo(
        f"run {run_id}: test accuracy {summary.test_accuracy:.4f} "
        f"(best epoch {summary.best_epoch} of {summary.epochs_run})"
    )
    typer.echo(f"  checkpoints  {run_dir}")
    typer.echo(f"  events       {run_dir / EVENTS_FILE}")
    typer.echo(f"  summary      {run_dir / SUMMARY_FILE}")


class _EpochLines:
    """Prints a line when the run starts and one per finished epoch."""

    def __init__(self, epochs_planned: int):
        self.epochs_planned = epochs_planned

    def __call__(self, event) -> None:
        if event.type == "run_started":
            sizes = ", ".join(f"{name} {count}" for name, count in event.split_sizes.items())
            typer.echo(f"  {len(event.class_names)} classes ({sizes} images) on {event.device}")
        elif event.type == "epoch_finished":
            typer.echo(
                f"  epoch {event.epoch:>3}/{self.epochs_planned}  "
                f"train loss {event.train_loss:.4f} acc {event.train_acc:.3f}  "
                f"val loss {event.val_loss:.4f} acc {event.val_acc:.3f}  {event.epoch_time_sec:.1f}s"
            )


@app.command()
def predict(
    images: Annotated[
        list[Path], typer.Argument(help="image files, or one folder: every image below it is classified")
    ],
    run: Annotated[str | None, typer.Option(help="run id: a completed training run or an ensemble")] = None,
    onnx: Annotated[
        Path | None,
        typer.Option(help="a run's ONNX export (model.onnx): classify here, without torch or the stack"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
    artifacts: Annotated[Path | None, typer.Option(help="artifacts directory; default: the settings'")] = None,
    api_url: Annotated[str, typer.Option(help="a folder: the API that classifies it")] = "http://127.0.0.1:8000",
    api_key: Annotated[
        str,
        typer.Option(
            envvar="PADDY_API_KEY", show_default=False, help="a folder: the API's key (default: the local stack's)"
        ),
    ] = "",
    out: Annotated[Path | None, typer.Option(help="write a CSV here (with --run: a folder's only)")] = None,
) -> None:
    """Classify images with a completed run (--run) or its ONNX export (--onnx): the class and the
    probability of every class. With --run, image files are classified here and a folder is sent to
    the API as a batch (POST /batches), classified by the stack's predictors with a progress bar,
    its CSV printed or written to --out. With --onnx everything is classified here, a folder file by
    file with a progress bar; the table, --json, or a CSV in --out."""
    if (run is None) == (onnx is None):
        _fail("paddy predict: give --run RUN or --onnx MODEL (one of them)", code=2)
    folder = next((path for path in images if path.is_dir()), None)
    if folder is not None and len(images) > 1:
        _fail("paddy predict: give one folder, or image files", code=2)
    if onnx is not None:
        _predict_onnx(onnx, images, folder, as_json, out)
        return
    assert run is not None
    if folder is not None:
        _predict_folder(run, folder, api_url, api_key, out)
        return
    from services.trainer.predict import PredictionError, predict_images

    try:
        predictions = predict_images(run, images, _trainer_settings(artifacts))
    except PredictionError as error:
        _fail(f"paddy predict: {error}")
    answers = [_Answer(str(path), p.class_name, p.probabilities) for path, p in zip(images, predictions, strict=True)]
    _print_answers(answers, as_json)


class _Answer(NamedTuple):
    image: str
    class_name: str | None  # None: the image could not be read (error says why)
    probabilities: dict[str, float] | None
    error: str | None = None


def _predict_onnx(model: Path, images: list[Path], folder: Path | None, as_json: bool, out: Path | None) -> None:
    """Classify with an ONNX export in this process: onnxruntime, Pillow and numpy, never torch."""
    from infra.audit_report import AuditProgress
    from shared.datasets.imagefolder import IMAGE_EXTENSIONS
    from shared.onnx_model import OnnxClassifier, OnnxPredictionError

    try:
        classifier = OnnxClassifier.load(model)
    except OnnxPredictionError as error:
        _fail(f"paddy predict: {error}")
    if folder is None:
        try:
            predictions = classifier.predict(images)
        except OnnxPredictionError as error:
            _fail(f"paddy predict: {error}")
        answers = [_Answer(str(path), *prediction) for path, prediction in zip(images, predictions, strict=True)]
        _write_answers(answers, classifier.class_names, as_json, out)
        return
    files = sorted(
        path.relative_to(folder)
        for path in folder.rglob("*")
        if path.is_file()
        and path.suffix.lower() in IMAGE_EXTENSIONS
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    )
    answers = []
    progress = AuditProgress()  # one bar on stderr, as `paddy data audit` shows its phases
    try:
        for done, file in enumerate(files, start=1):
            try:
                [(class_name, probabilities)] = classifier.predict([folder / file])
                answers.append(_Answer(file.as_posix(), class_name, probabilities))
            except OnnxPredictionError as error:
                answers.append(_Answer(file.as_posix(), None, None, str(error).replace(f"{folder}/", "")))
            progress("classifying", done, len(files))
    finally:
        progress.close()
    _write_answers(answers, classifier.class_names, as_json, out)
    unreadable = sum(answer.error is not None for answer in answers)
    typer.echo(f"{folder}: {len(answers)} images, {unreadable} unreadable", err=True)


def _write_answers(answers: list["_Answer"], class_names: list[str], as_json: bool, out: Path | None) -> None:
    """The CSV in out (the columns of a batch's: file, class, each class's probability, error),
    else JSON or the table on stdout."""
    if out is None:
        _print_answers(answers, as_json, class_names)
        return
    import csv

    with out.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["file", "class", *class_names, "error"])
        for answer in answers:
            probabilities = answer.probabilities or {}
            # A name a spreadsheet would read as a formula (CSV injection) gets a leading apostrophe.
            name = f"'{answer.image}" if answer.image[:1] in ("=", "+", "-", "@") else answer.image
            writer.writerow([name, answer.class_name, *(probabilities.get(c, "") for c in class_names), answer.error])
    typer.echo(f"{len(answers)} images → {out}")


def _print_answers(answers: list["_Answer"], as_json: bool, class_names: list[str] | None = None) -> None:
    if as_json:
        import json

        typer.echo(
            json.dumps(
                [
                    {"image": a.image, "class": a.class_name, "probabilities": a.probabilities}
                    | ({"error": a.error} if a.error else {})
                    for a in answers
                ],
                indent=2,
            )
        )
        return
    if class_names is None:
        class_names = list(answers[0].probabilities or {}) if answers else []
    header = ["image", "class", *class_names]
    rows = [
        [
            a.image,
            a.class_name or "unreadable",
            *(f"{a.probabilities[name]:.4f}" if a.probabilities else "-" for name in class_names),
        ]
        for a in answers
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = [
            cell.ljust(width) if i < 2 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        typer.echo("  ".join(cells).rstrip())
    for a in answers:
        if a.error:
            typer.echo(f"{a.image}: {a.error}", err=True)


def _predict_folder(run: str, folder: Path, api_url: str, api_key: str, out: Path | None) -> None:
    from infra.audit_report import AuditProgress
    from infra.batch_client import BatchError, predict_folder
    from infra.local_stack import DEV_API_KEY

    progress = AuditProgress()  # one bar on stderr, as `paddy data audit` shows its phases
    try:
        batch, csv_text = predict_folder(
            api_url, api_key or DEV_API_KEY, run, folder, lambda b: progress("classifying", b["done"], b["total"])
        )
    except BatchError as error:
        _fail(f"paddy predict: {error}")
    finally:
        progress.close()
    summary = f"batch {batch['batch_id']}: {batch['total']} images, {batch['failed_images']} unreadable"
    if out is None:  # the CSV alone on stdout, ready for a pipe
        typer.echo(csv_text, nl=False)
        typer.echo(summary, err=True)
        return
    out.write_text(csv_text, encoding="utf-8")
    typer.echo(f"{summary} → {out}")


def _trainer_settings(artifacts: Path | None):
    from services.trainer.settings import TrainerSettings

    settings = TrainerSettings()
    return settings.model_copy(update={"artifacts_root": artifacts}) if artifacts else settings


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.secho(message, fg="red", err=True)
    raise typer.Exit(code)


# --- paddy weights: torchvision's ImageNet files for the transfer models -------------------

weights_app = typer.Typer(
    help="Pretrained ImageNet weights in torch's hub cache (TORCH_HOME), for trainers without network.",
    no_args_is_help=True,
)
app.add_typer(weights_app, name="weights")


@weights_app.command("download")
def weights_download(
    models: Annotated[list[str] | None, typer.Argument(help="models (default: all transfer models)")] = None,
) -> None:
    """Download torchvision's ImageNet weights into the cache; prints where each file is."""
    from services.trainer import weights

    failed = 0
    for model_name in models or TRANSFER_MODELS:
        try:
            path = weights.download_weights(model_name)
        except ValueError as error:
            typer.secho(f"{model_name}: {error}", fg="red", err=True)
            failed += 1
            continue
        typer.echo(f"{model_name:>12}  {path}")
    if failed:
        raise typer.Exit(1)


@weights_app.command("import")
def weights_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="a torchvision weights file")],
    model: Annotated[str | None, typer.Option(help="its model; inferred from torchvision's file name")] = None,
    check_hash: Annotated[bool, typer.Option(help="require the sha256 prefix of torchvision's file name")] = True,
) -> None:
    """Copy a weights file into the cache under the name torchvision expects."""
    from services.trainer import weights

    try:
        path = weights.import_weights(file, model, check_hash=check_hash)
    except ValueError as error:
        typer.secho(f"paddy weights import: {error}", fg="red", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{file} → {path}")


if __name__ == "__main__":
    app()
