"""``edgekit tune`` against random search: hypervolume of the front, same trial budget, 3 seeds each.

Both run the real search (``edgekit.tune``): the ``cnn`` recipe on ``builtin:digits`` (6 epochs at
most), int8 TFLite, measured on this host (profile ``host``), 12 trials per run (about 8 minutes in
all). edgekit's search is its default: the recipe's defaults and its smallest variant first, then
multi-objective TPE. The baseline is random search through the same command (``--sampler
random``: Optuna's random sampler over the same space, from the same two starting points). Seeds 0, 1, 2 for
each; a seed fixes the sampler and the training seed.

Hypervolume: objectives (accuracy, latency ms, size KB), the dominated volume of each run's feasible
trials (:mod:`edgekit.tuning.front`). The reference point is the one Ishibuchi et al. recommend for
comparing searches ("How to specify a reference point in hypervolume calculation for fair
performance comparison", Evolutionary Computation 26(3), 2018): each objective normalised from the
ideal to the nadir point of the Pareto front of every trial of the benchmark (all runs together),
and the reference 1 + 1/H past the nadir, H = 10; reported as a fraction of the box from the ideal
point to the reference. Also shown, not judged: the reference used before (accuracy 0, 1.1 x the
largest latency and size seen), under which no search can gain 10% here: even the ideal point
(the best accuracy at the lowest latency and size, which no model reaches) is only 9.5% above
random search's mean (docs/tune.md).

Targets: edgekit's mean hypervolume at least 10% above random search's.

History: until this version the random baseline started from nothing, while edgekit's search was
given its two starting points, which hold most of the hypervolume (docs/tune.md): the target was
met (+12.9%, +19.2%, +14.5%) against a tilted baseline. Random search now starts from the same
points, and the result against it is reported as measured. Also shown: the seconds
per trial outside training (export, validation, bench) against the training seconds.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from common import Results

TRIALS, EPOCHS, SEEDS = 12, 6, (0, 1, 2)
H = 10  # the reference point's margin past the nadir: 1/H of each objective's range


def run(sampler: str, seed: int, tmp: Path) -> dict:
    import edgekit

    return edgekit.tune("cnn", "builtin:digits", tmp / f"{sampler}-{seed}", profiles="host", quant="int8",
                        trials=TRIALS, epochs=EPOCHS, sampler=sampler, seed=seed, log=lambda s: None)


def main() -> bool:
    from edgekit.tuning.front import hypervolume, pareto_indices

    res = Results("tune_search")
    print(f"edgekit tune vs random search: cnn on builtin:digits, int8, host, {TRIALS} trials x {len(SEEDS)} seeds each")
    summaries: dict[tuple[str, int], dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in SEEDS:
            for sampler in ("tpe", "random"):
                summaries[(sampler, seed)] = run(sampler, seed, Path(tmp))
    points = {k: [(t["objectives"]["accuracy"], t["objectives"]["latency_ms"], t["objectives"]["size_kb"])
                  for t in s["trials"] if t["state"] == "complete"] for k, s in summaries.items()}
    every = [p for ps in points.values() for p in ps]
    front = [every[i] for i in pareto_indices(every)]
    ideal = (max(p[0] for p in front), min(p[1] for p in front), min(p[2] for p in front))
    nadir = (min(p[0] for p in front), max(p[1] for p in front), max(p[2] for p in front))

    def normalised(p):  # 1 at the ideal accuracy, 0 at the ideal latency and size; the nadir at 0, 1, 1
        return tuple((v - n) / (i - n) if k == 0 else (v - i) / (n - i)
                     for k, (v, i, n) in enumerate(zip(p, ideal, nadir, strict=True)))

    margin = 1 / H
    ref = (-margin, 1 + margin, 1 + margin)
    box = (1 + margin) ** 3
    hv = {k: hypervolume([normalised(p) for p in ps], ref) / box for k, ps in points.items()}
    tpe = [hv[("tpe", s)] for s in SEEDS]
    rnd = [hv[("random", s)] for s in SEEDS]
    gain = statistics.mean(tpe) / statistics.mean(rnd) - 1
    res.add("hypervolume, edgekit (TPE) vs random search (normalised, reference 1 + 1/10 past the nadir)",
            f"{statistics.mean(tpe):.4f} vs {statistics.mean(rnd):.4f} "
            f"({gain:+.1%}; per seed {', '.join(f'{a:.4f}/{b:.4f}' for a, b in zip(tpe, rnd, strict=True))})",
            ">= +10%", gain >= 0.10, tpe=tpe, random=rnd, ideal=ideal, nadir=nadir,
            points={f"{k[0]}-{k[1]}": v for k, v in points.items()},
            params={f"{k[0]}-{k[1]}": [t["params"] for t in s["trials"] if t["state"] == "complete"]
                    for k, s in summaries.items()})
    old_ref = (0.0, 1.1 * max(p[1] for p in every), 1.1 * max(p[2] for p in every))
    old = {k: hypervolume(ps, old_ref) / (old_ref[1] * old_ref[2]) for k, ps in points.items()}
    old_tpe, old_rnd = statistics.mean(old[("tpe", s)] for s in SEEDS), statistics.mean(old[("random", s)] for s in SEEDS)
    bound = hypervolume([ideal], old_ref) / (old_ref[1] * old_ref[2])
    res.add("the same, earlier reference (accuracy 0, 1.1x the largest latency and size)",
            f"{old_tpe:.4f} vs {old_rnd:.4f} ({old_tpe / old_rnd - 1:+.1%}); the ideal point's is {bound:.4f} "
            f"({bound / old_rnd - 1:+.1%} over random)", "reported", None, reference=old_ref)
    trials = [t for s in summaries.values() for t in s["trials"] if t.get("seconds")]
    train = statistics.mean(t["seconds"]["train"] for t in trials)
    export = statistics.mean(t["seconds"]["export"] for t in trials)
    bench = statistics.mean(t["seconds"]["bench"] for t in trials)
    res.add("seconds per trial outside training vs training", f"{export + bench:.1f} s (export and validation "
            f"{export:.1f}, bench {bench:.1f}) vs {train:.1f} s training", "reported", None,
            export=export, bench=bench, train=train)
    fronts = {f"{k[0]}-{k[1]}": len(s["front"]) for k, s in summaries.items()}
    res.add("front sizes", ", ".join(f"{k}: {v}" for k, v in fronts.items()), "reported", None)
    return res.save()


if __name__ == "__main__":
    raise SystemExit(0 if main() else 1)
