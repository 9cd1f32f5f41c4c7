"""``edgekit profiles list`` and ``edgekit profiles show NAME|FILE``."""

from __future__ import annotations

import typer

HELP = """Device profiles: the devices bench measures for (host) or estimates (the others).

Example: edgekit profiles show raspberry-pi-4
"""

app = typer.Typer(help=HELP, no_args_is_help=True, add_completion=False)


@app.command("list", help="List the built-in profiles.")
def list_cmd(
    json_out: bool = typer.Option(False, "--json", help="Print the profiles as JSON."),
) -> int:
    from rich.table import Table

    from edgekit.cli.output import console
    from edgekit.device_profiles import list_profiles

    profiles = list_profiles()
    if json_out:
        import json

        print(json.dumps([p.to_dict() for p in profiles], indent=2))
        return 0
    table = Table(title="edgekit device profiles")
    for col in ("name", "kind", "runtimes", "threads", "memory", "storage", "budget", "device"):
        table.add_column(col)
    for p in profiles:
        memory = f"{p.memory_mb:g} MB" if p.memory_mb else f"{p.sram_kb:g} KB SRAM" if p.sram_kb else "-"
        storage = f"{p.storage_mb:g} MB" if p.storage_mb else f"{p.flash_kb:g} KB flash" if p.flash_kb else "-"
        table.add_row(p.name, p.kind, ", ".join(p.runtimes), str(p.threads or "--threads"), memory, storage,
                      f"{p.latency_budget_ms:g} ms" if p.latency_budget_ms else "-", p.description)
    console(width=160).print(table)
    return 0


@app.command("show", help="Show one profile (a built-in name or a .yaml file) and where its figures come from.",
             no_args_is_help=True)
def show_cmd(
    name: str = typer.Argument(..., help="A built-in profile name or a .yaml file."),
    json_out: bool = typer.Option(False, "--json", help="Print the profile as JSON."),
) -> int:
    from edgekit.cli.output import console
    from edgekit.device_profiles import load_profile

    p = load_profile(name)
    if json_out:
        import json

        print(json.dumps(p.to_dict(), indent=2))
        return 0
    con = console(width=160)
    con.print(f"[bold]{p.name}[/bold] ({p.kind}): {p.description}")
    if p.cpu:
        con.print("cpu: " + ", ".join(f"{k} {v}" for k, v in p.cpu.items()))
    con.print(f"runtimes (in order): {', '.join(p.runtimes)}; formats: {', '.join(p.formats)}")
    if p.kind == "mcu":
        memory = f"SRAM for the tensor arena: {p.sram_kb:g} KB; flash for the model: {p.flash_kb:g} KB; int8 files only"
    else:
        memory = f"memory: {_mb(p.memory_mb)}; storage: {_mb(p.storage_mb)}"
    con.print(f"threads: {p.threads or 'the --threads of bench'}; {memory}; "
              f"latency budget: {f'{p.latency_budget_ms:g} ms' if p.latency_budget_ms else 'none'}")
    t = p.throughput
    if t is None:
        con.print("estimates: none (measured on this machine)")
    else:
        r = t.reference
        con.print(f"peak throughput: {t.peak_gmacs_fp32:g} GMAC/s fp32, {t.peak_gmacs_int8:g} GMAC/s int8")
        con.print(f"reference: {r.workload} ({r.quant}) on {r.runtime}, {r.threads} threads = {r.latency_ms:g} ms")
        con.print(f"  source: {r.source}")
        con.print(f"int8 gain over fp32: {t.int8_gain:g}x ({t.int8_gain_source or 'no source given'})")
        con.print("estimate = host latency x (reference on the device / reference measured on this host); see docs/profiles.md")
    con.print(f"file: {p.path}")
    return 0


def _mb(v):
    return f"{v:g} MB" if v else "no limit"


@app.command("calibrate", help="Measure a profile's reference workload on a device running `edgekit agent` and write a "
             "profile of that device whose estimates use the measurement. Example: edgekit profiles calibrate "
             "raspberry-pi-4 --device http://pi4.local:8765 --out pi4.yaml", no_args_is_help=True)
def calibrate_cmd(
    base: str = typer.Argument(..., help="The profile the device is (a built-in name or a .yaml file)."),
    device: str = typer.Option(..., "--device", help="The agent's URL."),
    token: str = typer.Option(None, "--token", help="The agent's token (default: EDGEKIT_AGENT_TOKEN)."),
    out: str = typer.Option(None, "--out", "-o", help="The profile file to write (default: DEVICE-NAME.yaml here)."),
    runs: int = typer.Option(20, "--runs", help="Timed runs in each of the 5 bursts of the reference workload (the best burst's p50 is kept)."),
) -> int:
    import os
    from pathlib import Path

    from edgekit.agent.client import RemoteDevice
    from edgekit.agent.token import TOKEN_ENV
    from edgekit.cli.output import console
    from edgekit.device_profiles import load_profile
    from edgekit.device_profiles.calibration import calibrate_on_device
    from edgekit.errors import UsageError
    from edgekit.files import check_writable_dir

    profile = load_profile(base)
    if not profile.estimates:
        raise UsageError(f"{profile.name} makes no estimates: nothing to calibrate", hint="pick a device profile")
    remote = RemoteDevice(device, token or os.environ.get(TOKEN_ENV))
    path = Path(out or f"{remote.info.get('name')}.yaml")
    check_writable_dir(path.parent if str(path.parent) else Path("."), flag="--out folder")
    con = console()
    con.print(f"measuring {profile.throughput.reference.workload} on {remote.label}", highlight=False)
    doc, summary = calibrate_on_device(profile, remote, runs=runs)
    import yaml

    from edgekit.files import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(doc, sort_keys=False))
    con.print(summary, highlight=False)
    con.print(f"profile: {path} (use it with `edgekit bench ARTIFACTS --profile {path}`)", highlight=False)
    return 0
