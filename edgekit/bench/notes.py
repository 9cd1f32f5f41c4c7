"""What bench says beside its rows: each artifact's size as a ratio of its fp32 sibling, and the
notes a reader needs (weight-only modes that gain no speed, a quant slower than fp32 here).

Example:
    >>> add_ratios(rows); row_notes(rows)   # doctest: +SKIP
    ['note: TF.js fp16 and uint8 quantize weights only: ...']
"""

from __future__ import annotations


def add_ratios(rows: list[dict]) -> None:
    """size_ratio and speedup against the fp32 artifact of the same source, format and runtime."""
    def key(r):
        return (r["source"], r["format"], r["runtime"], r.get("profile"), r.get("threads"))

    base = {key(r): r for r in rows if r["quant"] == "fp32" and r["status"] == "ok" and not r["is_reference"]}
    for r in rows:
        b = base.get(key(r))
        r["size_ratio"] = round(r["size_bytes"] / b["size_bytes"], 3) if b and b["size_bytes"] else None
        if b and r["status"] == "ok" and r["latency_ms"] and b["latency_ms"]:
            r["speedup"] = round(b["latency_ms"]["p50"] / r["latency_ms"]["p50"], 3)
        else:
            r["speedup"] = None


WEIGHT_ONLY = {("tfjs", "fp16"), ("tfjs", "uint8")}


def row_notes(rows: list[dict]) -> list[str]:
    notes = []
    several = sorted({len(r["outputs"]) for r in rows if r.get("outputs")})
    if several:
        names = next(list(r["outputs"]) for r in rows if r.get("outputs"))
        notes.append(f"several outputs ({', '.join(names)}): accuracy is the lowest of the labelled outputs', agreement "
                     "and cosine the worst output's; every output's figures are in --json (rows[i].outputs).")
    if any((r["format"], r["quant"]) in WEIGHT_ONLY for r in rows):
        notes.append("TF.js fp16 and uint8 quantize weights only: they are dequantized to float32 at load and compute "
                     "stays float32, so they gain download size, not speed; check their accuracy and agreement.")
    fp32_est = {(r["profile"], r["source"], r["format"]): r["estimate"]["latency_ms"] for r in rows
                if r["quant"] == "fp32" and (r.get("estimate") or {}).get("latency_ms")}
    for r in rows:
        est = (r.get("estimate") or {}).get("latency_ms")
        base = fp32_est.get((r.get("profile"), r["source"], r["format"]))
        if r["quant"] == "int8" and est and base and est >= 0.95 * base:
            notes.append(f"{r['profile']}: {r['name']} is estimated no faster than fp32 on this device (~{est:.4g} ms vs "
                         f"~{base:.4g} ms); ship it for its size, not its speed.")
        if r.get("profile", "host") != "host" and not r.get("is_reference"):
            if r["status"] != "ok":
                notes.append(f"{r['profile']}: {r['name']} ({r['runtime']}) failed: {r['error']}")
            elif (r.get("estimate") or {}).get("error"):  # ran here, but the device cannot be estimated for it
                notes.append(f"{r['profile']}: {r['name']}: no estimate: {r['estimate']['error']}")
            continue
        if r["status"] != "ok":
            notes.append(f"{r['name']} ({r['runtime']}) failed: {r['error']}")
        elif (r.get("gpu") or "").startswith("software"):
            notes.append(f"{r['name']} ({r['runtime']}): WebGL ran on {r['gpu']}; its latency is a software "
                         "renderer's, not a GPU's.")
        elif (r["format"], r["quant"]) in WEIGHT_ONLY:
            continue
        elif r["quant"] != "fp32" and r.get("speedup") is not None and r["speedup"] < 0.95:
            notes.append(
                f"{r['name']}: {r['quant']} is slower than fp32 on this machine with {r['runtime']} "
                f"({r['latency_ms']['p50']:.4g} ms vs {r['latency_ms']['p50'] * r['speedup']:.4g} ms p50); "
                "its gain here is size, not speed."
            )
    return notes
