"""``edgekit tune RECIPE|MODEL.py --data DATA --profile P --quant Q --trials N --out DIR``."""

from __future__ import annotations

from pathlib import Path

import typer

HELP = """Search for the most accurate models that fit a device: every trial is trained, exported in --quant, validated against its float model, benchmarked and estimated on each --profile.

The objectives are the quantized artifact's accuracy (maximise), its latency on the first profile (the profile's estimate; measured on host) and its size (minimise); each profile's latency budget, memory and storage (and --max-latency) are constraints. The answer is a Pareto front of deployable artifacts: a table, OUT/tune.json and OUT/tune.html; each front member keeps its run folder and export in OUT/trials/NNNN.

RECIPE is a built-in (mlp, cnn, ds-cnn, mobilenet-v2, resnet8: width, depth, kernel size, dropout, learning rate, epochs; image folders also the input size) or a .py file defining build_model(hp, input_shape, num_classes) with hp.Int, hp.Float, hp.Choice, hp.Boolean as in KerasTuner.

The study is stored in OUT/study.db (or --storage URL, any Optuna storage: several workers, even on several machines, share one study). --resume continues a stopped study or joins one; a trial cut off by a killed worker runs again once.

Example: edgekit tune cnn --data builtin:digits --profile raspberry-pi-4 --quant int8 --trials 12 --out runs/tune
Example: edgekit tune --show runs/tune
"""


def tune(
    model: str = typer.Argument(None, help="Built-in recipe name or a .py file defining build_model(hp, input_shape, num_classes)."),
    data: str = typer.Option(None, "--data", "-d", help="builtin:mnist, builtin:digits, .npz, image folder or .csv."),
    out: Path = typer.Option(None, "--out", "-o", help="Folder for the study, the trials and the reports."),
    profile: str = typer.Option("host", "--profile", "-p", help="Device profiles, comma-separated; the first gives the latency objective."),
    quant: str = typer.Option("int8", "--quant", "-q", help="fp32, fp16, dynamic or int8 (TF.js profiles: uint8 weights)."),
    trials: int = typer.Option(10, "--trials", "-n", help="Trials in the study (all workers together)."),
    timeout: float = typer.Option(None, "--timeout", help="Start no trial after this many seconds."),
    storage: str = typer.Option(None, "--storage", help="Optuna storage URL (default: sqlite in OUT), e.g. postgresql://..."),
    study: str = typer.Option("edgekit-tune", "--study", help="Study name in the storage."),
    resume: bool = typer.Option(False, "--resume", help="Continue (or join) the study instead of refusing an existing one."),
    sampler: str = typer.Option("tpe", "--sampler", help="tpe (multi-objective TPE), nsga2 or random."),
    epochs: int = typer.Option(10, "--epochs", help="Most epochs a trial trains (the search picks from half of it up)."),
    batch_size: int = typer.Option(64, "--batch-size"),
    lr: float = typer.Option(1e-3, "--lr", help="Centre of the learning-rate range (searched from lr/4 to lr*4)."),
    patience: int = typer.Option(3, "--patience", help="Early-stopping patience of each trial (val_loss)."),
    max_latency: float = typer.Option(None, "--max-latency", help="Latency limit in ms on the first profile (a constraint)."),
    seed: int = typer.Option(0, "--seed"),
    keep_all: bool = typer.Option(False, "--keep-all", help="Keep every trial's folder, not only the front's."),
    artifacts: str = typer.Option(None, "--artifacts", help="A folder every worker reaches (a network file "
                                  "system) or s3://BUCKET/PREFIX (AWS_ENDPOINT_URL for MinIO and other S3 servers): "
                                  "each deployable trial's files go there, and the front's are fetched into OUT."),
    device: list[str] = typer.Option(None, "--device", help="An `edgekit agent` URL: each trial's latency is "
                                     "measured on that device (repeat for a farm of the same board: trials in turn)."),
    token: str = typer.Option(None, "--token", help="The agents' token (default: EDGEKIT_AGENT_TOKEN)."),
    heartbeat_s: float = typer.Option(30.0, "--heartbeat", help="Seconds between a worker's heartbeats; a trial "
                                      "silent for 3 of them is run again by another worker (any machine)."),
    json_out: Path = typer.Option(None, "--json", help="Also write the summary here."),
    show: Path = typer.Option(None, "--show", help="Print the front of a finished tune folder and exit."),
) -> int:
    from edgekit.errors import UsageError

    if show is not None:
        from edgekit.tuning.report import load_summary, print_front

        print_front(load_summary(show))
        return 0
    missing = [flag for flag, v in (("RECIPE", model), ("--data", data), ("--out", out)) if v is None]
    if missing:
        raise UsageError(f"Missing {', '.join(missing)}",
                         hint="edgekit tune RECIPE --data DATA --out DIR, or edgekit tune --show DIR")
    import os

    from edgekit.agent.token import TOKEN_ENV
    from edgekit.cli.output import progress
    from edgekit.tuning.report import print_front
    from edgekit.tuning.study import tune as run_tune

    # a terminal: a progress bar (trials done of all, what the trial does now, time left); a log, a line per trial
    with progress("tune", log_steps=False) as report:
        summary = run_tune(model, data, out, profiles=profile, quant=quant, trials=trials, timeout_s=timeout,
                           storage=storage, study_name=study, resume=resume, sampler=sampler, seed=seed, epochs=epochs,
                           batch_size=batch_size, learning_rate=lr, patience=patience, max_latency_ms=max_latency,
                           keep_all=keep_all, heartbeat_s=heartbeat_s, artifacts=artifacts, devices=device or None,
                           token=token or os.environ.get(TOKEN_ENV), log=report.echo, progress=report)
    print_front(summary)
    print(f"report: {out / 'tune.html'}; summary: {out / 'tune.json'}")
    if json_out is not None:
        from edgekit.files import atomic_write_json

        atomic_write_json(json_out, summary)
    if not summary["front"]:
        from edgekit.errors import EdgekitError

        err = EdgekitError("no trial gave a deployable artifact that meets the constraints (see the reasons above)",
                           hint="relax --max-latency or the profile's budget, or run more --trials")
        err.exit_code = 1
        raise err
    return 0
