"""``edgekit bench ARTIFACT... [--data DATA] [--runs N] [--threads T] [--json FILE]``."""

from __future__ import annotations

from pathlib import Path

import typer

HELP = """Benchmark artifacts on this machine: latency, memory, size, accuracy, agreement.

ARTIFACT is a .tflite or .onnx file, a TF.js model folder, an export folder (every artifact in
its manifest.json), or a model (.keras, .h5, SavedModel, run folder) benchmarked as the
reference. Each runs in its own process. TF.js models run in Node (tfjs-node) and in headless
Chromium (tfjs-browser), both on the wasm backend; --runtime picks others (tfjs-browser-webgl,
tfjs-node-cpu; litert-browser and ort-browser run .tflite and .onnx in LiteRT.js and ONNX Runtime
Web in Chromium; tflm runs a .tflite on TFLite Micro's kernels and reports its tensor arena). Accuracy needs labelled DATA (default: the run's own data, test split).

--profile runs each artifact as a device would (the profile's runtime, threads and CPU
affinity) and, for a device that is not this host, adds an estimated device latency (labelled
estimate, with its factor), a roofline figure, and pass/fail for memory, storage and the
latency budget. The browser profiles run every format on its web engine (TF.js, LiteRT.js, ONNX
Runtime Web) and add a "which engine for the web" table. `edgekit profiles list` shows the profiles.

--device URL measures on a board running `edgekit agent` (docs/devices.md): artifacts are sent
once (by sha256) and measured there by the same worker; with --profile, the profile's estimate
is shown beside the measurement with its error. --remote (with a browser profile) measures in a
phone's browser: it prints a URL and a QR code; the phone opens it and runs the page runner.

Example: edgekit bench runs/demo/export --profile host,raspberry-pi-4 --json runs/demo/bench.json --html runs/demo/bench.html
"""


def bench(
    artifacts: list[str] = typer.Argument(..., help="Files, export folders or models."),
    data: str = typer.Option(None, "--data", "-d", help="Evaluation DATA (default: the run's own data)."),
    runs: int = typer.Option(100, "--runs", "-n", help="Minimum timed runs per artifact."),
    warmup: int = typer.Option(10, "--warmup", help="Untimed runs before timing."),
    min_time: float = typer.Option(0.5, "--min-time", help="Minimum seconds of timed runs per artifact."),
    threads: int = typer.Option(1, "--threads", "-t", help="Runtime threads."),
    runtime: str = typer.Option(None, "--runtime", "-r", help="Comma list of runtimes (default: each format's own)."),
    profile: str = typer.Option("host", "--profile", "-p", help="Comma list of device profiles, a .yaml file, or all."),
    repeats: int = typer.Option(3, "--repeats", help="Interleaved repeats of every measurement (fresh process each)."),
    html_out: Path = typer.Option(None, "--html", help="Write an HTML report with plots."),
    samples: int = typer.Option(1000, "--samples", help="Most evaluation samples used for accuracy."),
    no_reference: bool = typer.Option(False, "--no-reference", help="Do not bench the source model beside its artifacts."),
    timeout: float = typer.Option(300.0, "--timeout", help="Seconds before a hung runtime is killed."),
    json_out: Path = typer.Option(None, "--json", help="Write the report as JSON."),
    markdown_out: Path = typer.Option(None, "--markdown", help="Write the table as Markdown."),
    yardstick: bool = typer.Option(False, "--yardstick", help="Also time a fixed small network, so that `edgekit "
                                   "check` compares latency with a baseline from another machine as a ratio to it."),
    output: str = typer.Option(None, "--output", help="For a model with several outputs: the output whose accuracy "
                               "and agreement the table shows (default: the worst)."),
    ops: bool = typer.Option(False, "--ops", help="Also profile every artifact per operator: where each runtime "
                             "spends an inference, by operator and Keras layer (in its own worker, after the timings)."),
    ops_runs: int = typer.Option(200, "--ops-runs", help="Inferences each per-operator profile averages over."),
    device: str = typer.Option(None, "--device", help="Measure on the device whose `edgekit agent` has this URL."),
    token: str = typer.Option(None, "--token", help="The agent's token (default: EDGEKIT_AGENT_TOKEN)."),
    remote: bool = typer.Option(False, "--remote", help="Measure in a phone's browser: serve the bench page on the "
                                "local network and wait for a phone to open it (with a browser --profile)."),
    remote_host: str = typer.Option("0.0.0.0", "--remote-host", help="Address the --remote page is served on."),
    remote_port: int = typer.Option(8766, "--remote-port", help="Port of the --remote page (0: any free one)."),
    remote_wait: float = typer.Option(600.0, "--remote-wait", help="Seconds to wait for a phone to open the page."),
) -> int:
    from edgekit.bench.runner import run_bench
    from edgekit.cli.output import console
    from edgekit.cli.output import progress as progress_bar
    from edgekit.errors import parse_choices
    from edgekit.files import check_writable_dir
    from edgekit.reports.render import focus_output, print_ops, print_table, write_json, write_markdown
    from edgekit.runtimes import RUNTIMES

    for f in (json_out, markdown_out, html_out):
        if f is not None:
            check_writable_dir(Path(f).parent, flag="--json/--markdown folder")
    if ops and ops_runs < 1:
        from edgekit.errors import UsageError

        raise UsageError(f"--ops-runs must be at least 1, got {ops_runs}")
    runtimes = parse_choices(runtime, list(RUNTIMES), what="runtime", flag="--runtime") if runtime else None
    if output:
        _check_output_name(artifacts, output)
    con = console()
    measurer = None  # where the artifacts are measured: None (here), an agent, a phone
    if device:
        import os

        from edgekit.agent.client import RemoteDevice
        from edgekit.agent.token import TOKEN_ENV

        measurer = RemoteDevice(device, token or os.environ.get(TOKEN_ENV))
        con.print(f"measuring on {measurer.label} at {measurer.url}", highlight=False)
    elif token:
        from edgekit.errors import UsageError

        raise UsageError("--token goes with --device URL (the agent it is for)")
    if remote:
        measurer = _open_remote(device, profile, remote_host, remote_port, remote_wait, con)
    with progress_bar("bench") as progress:
        # a terminal: a progress bar (measurements done of all, what runs now, time left); a log or CI job:
        # one line per measurement as it starts
        report = run_bench(
            artifacts, data=data, runs=runs, warmup=warmup, min_time_s=min_time, threads=threads,
            samples=samples, reference=not no_reference, timeout_s=timeout, runtimes=runtimes,
            profiles=profile, repeats=repeats, yardstick=yardstick, device=measurer, log=progress,
            ops=ops_runs if ops else 0,
        )
    if hasattr(measurer, "close"):
        measurer.close()
    shown = focus_output(report, output) if output else report
    print_table(shown)
    if ops:
        print_ops(shown)
    if json_out:
        write_json(report, json_out)
        con.print(f"report: {json_out}")
    if markdown_out:
        write_markdown(shown, markdown_out)
        con.print(f"markdown: {markdown_out}")
    if html_out:
        from edgekit.reports.html import write_html

        write_html(report, html_out)
        con.print(f"html: {html_out}")
    return 1 if any(r["status"] != "ok" for r in report["rows"]) else 0


def _open_remote(device, profile: str, host: str, port: int, wait_s: float, con):
    """The page a phone opens: its URL and QR code printed, then wait for the phone."""
    import sys

    from edgekit.agent.remote_browser import RemoteBrowser
    from edgekit.device_profiles import load_profiles
    from edgekit.errors import UsageError

    if device:
        raise UsageError("--remote and --device are two kinds of device: pick one")
    if not any(p.kind == "browser" for p in load_profiles(profile)):
        raise UsageError("--remote measures in a phone's browser: pass a browser profile",
                         hint="--profile browser-mobile (or browser-desktop)")
    try:
        phone = RemoteBrowser(host, port)
    except OSError as e:
        raise UsageError(f"cannot serve the remote page on {host}:{port}: {e.strerror or e}",
                         hint="pick another --remote-port, or 0 for any free one") from None
    print(f"open {phone.url} on the phone (the same network), or scan:", flush=True)
    try:
        import segno

        segno.make(phone.url).terminal(out=sys.stdout, compact=True)
    except ImportError:
        pass
    print("waiting for the phone...", flush=True)
    phone.wait_for_phone(wait_s)
    con.print(f"measuring in {phone.label}", highlight=False)
    return phone


def _check_output_name(artifacts: list[str], name: str) -> None:
    """Refuse ``--output NAME`` before benchmarking when the artifacts' manifests name no such output."""
    from edgekit.artifact import MANIFEST_NAME, Manifest
    from edgekit.reports.render import focus_output

    for a in artifacts:
        folder = Path(a) if Path(a).is_dir() and (Path(a) / MANIFEST_NAME).is_file() else Path(a).parent
        if (folder / MANIFEST_NAME).is_file():
            outputs = Manifest.load(folder).source.get("outputs") or []
            if len(outputs) > 1:
                focus_output({"rows": [{"outputs": {o["name"]: {} for o in outputs}}]}, name)
            else:
                focus_output({"rows": []}, name)
