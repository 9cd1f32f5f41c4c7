"""``tune --artifacts DIR``: every trial's files in one store that every worker and the reader reach.

Workers on several machines each write a trial's run and export into their own OUT. With
``--artifacts``, a deployable trial's folder is also packed (``trial-NNNN.tar.gz``) into Optuna's
artifact store at DIR (``optuna.artifacts.FileSystemArtifactStore``: a folder on a network file
system, or any folder all workers share), recorded on the trial in the study's storage; when a
worker writes the reports, the front's folders it does not hold are fetched from the store into
its OUT/trials, so every worker's OUT ends with the whole front.

Example:
    >>> store = artifact_store("/mnt/shared/tune-artifacts")                 # doctest: +SKIP
    >>> upload_trial(store, trial, Path("runs/tune/trials/0003"))            # doctest: +SKIP
    >>> fetch_front(store, study, storage, summary, Path("runs/tune"))        # doctest: +SKIP
"""

from __future__ import annotations

import tarfile
import tempfile
from pathlib import Path
from typing import Any

from edgekit.errors import UsageError

PACKED = "trial-{:04d}.tar.gz"


def artifact_store(path: str | Path):
    """Optuna's file-system artifact store at ``path`` (made if missing; it must be writable)."""
    from optuna.artifacts import FileSystemArtifactStore

    root = Path(path)
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / ".edgekit-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise UsageError(f"--artifacts {path} cannot be written: {e.strerror or e}",
                         hint="a folder every worker can write (a network file system on several machines)") from None
    return FileSystemArtifactStore(str(root))


def upload_trial(store, trial, folder: Path) -> str:
    """Pack the trial's folder and record it on the (still running) trial; returns the artifact id."""
    from optuna.artifacts import upload_artifact

    with tempfile.TemporaryDirectory(prefix="edgekit-pack-") as tmp:
        packed = Path(tmp) / PACKED.format(trial.number)
        with tarfile.open(packed, "w:gz") as tar:
            tar.add(folder, arcname=folder.name)
        return upload_artifact(artifact_store=store, file_path=str(packed), study_or_trial=trial)


def fetch_front(store, study, storage, summary: dict[str, Any], out: Path, log=lambda s: None) -> list[int]:
    """Fetch into OUT/trials the front members' folders this OUT does not hold; returns their numbers."""
    from optuna.artifacts import download_artifact, get_all_artifact_meta

    fetched = []
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    for entry in summary["front"]:
        folder = out / "trials" / f"{entry['number']:04d}"
        if folder.is_dir():
            continue
        metas = [m for m in get_all_artifact_meta(trials[entry["number"]], storage=storage)
                 if m.filename == PACKED.format(entry["number"])]
        if not metas:
            log(f"trial {entry['number']} is on the front but not in the artifact store (its worker ran without --artifacts)")
            continue
        with tempfile.TemporaryDirectory(prefix="edgekit-fetch-") as tmp:
            packed = Path(tmp) / metas[-1].filename
            download_artifact(artifact_store=store, file_path=str(packed), artifact_id=metas[-1].artifact_id)
            folder.parent.mkdir(parents=True, exist_ok=True)
            with tarfile.open(packed, "r:gz") as tar:
                tar.extractall(folder.parent, filter="data")
        fetched.append(entry["number"])
    if fetched:
        log(f"fetched the front's trial {', '.join(map(str, fetched))} from the artifact store into {out / 'trials'}")
    return fetched
