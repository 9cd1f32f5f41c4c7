"""``edgekit check`` (the regression gate) and ``edgekit baseline`` (record what the gate holds to)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import typer

CHECK_HELP = r"""Fail when a model got worse than its baseline (the CI regression gate).

TARGET is a bench report, or a model that is exported and benched here first. Per format,
quant, runtime and profile: accuracy against the float model; accuracy, latency (noise-aware)
and size against the baseline; agreement with the source. In the model form, a row that fails
on latency alone is measured again, and fails only if the rerun does too. Thresholds come from edgekit.yaml
(key `check`) or \[tool.edgekit.check] in pyproject.toml (see docs/ci.md).
Exit 0 when everything passes, 1 on a regression, 2 on bad usage or input.

Examples:
  edgekit check runs/demo/bench.json --baseline ci/baseline.json --junit check.xml
  edgekit check runs/demo --baseline ci/baseline.json --profile host,raspberry-pi-4
"""

BASELINE_HELP = """Record a baseline from a bench report, for `edgekit check`.

Example: edgekit baseline runs/demo/bench.json --out ci/baseline.json
"""


def baseline(
    report: Path = typer.Argument(..., help="A bench report (edgekit bench --json FILE)."),
    out: Path = typer.Option(..., "--out", "-o", help="Where to write the baseline (JSON)."),
) -> int:
    from edgekit.cli.output import console
    from edgekit.files import atomic_write_json, check_writable_dir
    from edgekit.gate.baseline import load_report, make_baseline

    check_writable_dir(out.parent, flag="--out folder")
    b = make_baseline(load_report(report))
    atomic_write_json(out, b)
    console().print(f"baseline: {out} ({len(b['rows'])} rows)")
    return 0


def check(
    target: Path = typer.Argument(..., help="A bench report (.json), or a model to export and bench here."),
    baseline_path: Path = typer.Option(..., "--baseline", "-b", help="The baseline to compare with."),
    config: Path = typer.Option(None, "--config", help="Threshold file (default: ./edgekit.yaml or ./pyproject.toml)."),
    junit: Path = typer.Option(None, "--junit", help="Write JUnit XML (CI systems display it)."),
    markdown: Path = typer.Option(None, "--markdown", help="Write a Markdown summary (for a job summary)."),
    update_baseline: bool = typer.Option(False, "--update-baseline", help="Accept this report: write it as the new baseline."),
    data: str = typer.Option(None, "--data", "-d", help="MODEL form: evaluation and calibration DATA."),
    profile: str = typer.Option(None, "--profile", "-p", help="MODEL form: profiles (default: the baseline's)."),
    format: str = typer.Option(None, "--format", "-f", help="MODEL form: formats (default: the baseline's)."),
    quant: str = typer.Option(None, "--quant", "-q", help="MODEL form: quant modes (default: the baseline's)."),
    repeats: int = typer.Option(3, "--repeats", help="MODEL form: interleaved repeats of every measurement."),
    json_out: Path = typer.Option(None, "--json", help="MODEL form: also keep the bench report here."),
) -> int:
    from edgekit.cli.output import console
    from edgekit.files import atomic_write_json, check_writable_dir
    from edgekit.gate.baseline import check_same_model, load_baseline, load_report, make_baseline, report_model
    from edgekit.gate.compare import confirm_latency, latency_suspects, run_check
    from edgekit.gate.output import print_result, write_junit, write_markdown
    from edgekit.gate.thresholds import load_thresholds

    for f in (junit, markdown, json_out):
        if f is not None:
            check_writable_dir(Path(f).parent, flag="--junit/--markdown/--json folder")
    thresholds = load_thresholds(config)
    base = None
    if baseline_path.exists() or not update_baseline:
        base = load_baseline(baseline_path)
    con = console(width=150)
    with contextlib.ExitStack() as stack:
        if target.suffix.lower() == ".json" and target.is_file():
            report, rebench = load_report(target), None
        else:
            report, rebench = stack.enter_context(_exported_and_benched(
                target, base, data=data, profile=profile, format=format, quant=quant, repeats=repeats, con=con))
            if json_out:
                atomic_write_json(json_out, report)
        model = report_model(report, str(target))
        if base is not None:
            check_same_model(base, model, str(baseline_path))
            result = run_check(report, base, thresholds)
            suspects = latency_suspects(result)
            if suspects and rebench is not None and not update_baseline:
                con.print(f"latency failed on {len(suspects)} row(s) and nothing else: measuring them again to confirm",
                          highlight=False)
                result = confirm_latency(result, rebench([r.row["artifact"] for r in suspects]), base, thresholds)
    if base is not None:
        print_result(result, con)
        if junit:
            write_junit(result, junit)
            con.print(f"junit: {junit}")
        if markdown:
            write_markdown(result, markdown)
            con.print(f"markdown: {markdown}")
    if update_baseline:
        atomic_write_json(baseline_path, make_baseline(report))
        con.print(f"baseline updated: {baseline_path}")
        return 0
    return result.exit_code


@contextlib.contextmanager
def _exported_and_benched(model: Path, base, *, data, profile, format, quant, repeats, con):
    """The one-shot form: export MODEL to what the baseline covers (or the flags say), bench it, and
    yield ``(report, rebench)``; ``rebench(artifacts)`` measures some of them again while they exist."""
    import tempfile

    from edgekit.bench.runner import run_bench
    from edgekit.cli.output import quiet_tensorflow, status
    from edgekit.errors import InputError, parse_choices
    from edgekit.exporters import all_quant_modes, format_names
    from edgekit.exporters.pipeline import export_model

    if not model.exists():
        raise InputError(f"{model} does not exist", hint="pass a bench report (.json) or a model")
    rows = list((base or {}).get("rows", {}).values())
    formats = parse_choices(format, format_names(), what="format", flag="--format") if format else \
        sorted({r["format"] for r in rows if r["format"] in format_names()}) or ["tflite"]
    quants = parse_choices(quant, all_quant_modes(formats), what="quant mode", flag="--quant",
                           all_means=all_quant_modes(formats, on_request=False)) if quant else \
        sorted({r["quant"] for r in rows}) or ["fp32", "int8"]
    profiles = profile or ",".join(sorted({r["profile"] for r in rows})) or "host"
    runtimes = sorted({r["runtime"] for r in rows}) or None
    quiet_tensorflow()
    with tempfile.TemporaryDirectory(prefix="edgekit-check-") as tmp:
        out = Path(tmp) / "export"
        with status("exporting"):
            export_model(model, formats, quants, out, calib=data, log=lambda line: con.print(line))

        def bench(paths: list[str]) -> dict:
            # the yardstick lets the gate compare latency with a baseline measured on another machine
            return run_bench(paths, data=data, profiles=profiles, repeats=repeats,
                             runtimes=runtimes if not profile else None, yardstick=True)

        with status("benchmarking"):
            report = bench([str(out)])

        def rebench(paths: list[str]) -> dict:
            with status("measuring again"):
                return bench(sorted(set(paths)))

        yield report, rebench
