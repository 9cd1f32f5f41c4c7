"""``tune --artifacts DIR|s3://BUCKET/PREFIX``: every trial's files in one store that every worker and the reader reach.

Workers on several machines each write a trial's run and export into their own OUT. With
``--artifacts``, a deployable trial's folder is also packed (``trial-NNNN.tar.gz``) into Optuna's
artifact store, recorded on the trial in the study's storage; when a worker writes the reports, the
front's folders it does not hold are fetched from the store into its OUT/trials, so every worker's
OUT ends with the whole front. The store is a folder (``optuna.artifacts.FileSystemArtifactStore``:
a network file system, or any folder all workers share) or an S3 bucket, with an optional prefix
(``optuna.artifacts.Boto3ArtifactStore``): Amazon S3, or any S3-compatible server (MinIO, Ceph,
Cloudflare R2) named by ``AWS_ENDPOINT_URL``; credentials come from boto3's usual chain
(``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``~/.aws``, an instance role).

Example:
    >>> store = artifact_store("s3://ml-artifacts/tune/kws")                 # doctest: +SKIP
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


def artifact_store(where: str | Path):
    """Optuna's artifact store at ``where``: ``s3://BUCKET[/PREFIX]``, or a folder (made if missing).
    Either is checked writable now, so that a wrong store fails before any trial, in one line."""
    if str(where).startswith("s3://"):
        return _s3_store(str(where))
    from optuna.artifacts import FileSystemArtifactStore

    root = Path(where)
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / ".edgekit-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise UsageError(f"--artifacts {where} cannot be written: {e.strerror or e}",
                         hint="a folder every worker can write (a network file system on several machines), "
                              "or s3://BUCKET/PREFIX") from None
    return FileSystemArtifactStore(str(root))


class PrefixedStore:
    """An artifact store whose objects are kept under ``prefix`` (several studies in one bucket)."""

    def __init__(self, store, prefix: str):
        self.store, self.prefix = store, prefix

    def open_reader(self, artifact_id: str):
        return self.store.open_reader(self.prefix + artifact_id)

    def write(self, artifact_id: str, content_body) -> None:
        self.store.write(self.prefix + artifact_id, content_body)

    def remove(self, artifact_id: str) -> None:
        self.store.remove(self.prefix + artifact_id)


S3_HINT = ("credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or ~/.aws); an S3-compatible server (MinIO, "
           "Ceph, R2): AWS_ENDPOINT_URL=http://host:port")


def _s3_store(url: str):
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    prefix = prefix.strip("/")
    if not bucket:
        raise UsageError(f"--artifacts {url} names no bucket", hint="--artifacts s3://BUCKET or s3://BUCKET/PREFIX")
    try:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        raise UsageError(f"--artifacts {url} needs boto3, which is not installed", hint="pip install boto3") from None
    from optuna.artifacts import Boto3ArtifactStore

    # the endpoint (AWS_ENDPOINT_URL), region and credentials come from boto3's own configuration chain
    client = boto3.client("s3", config=Config(connect_timeout=10, read_timeout=60, retries={"max_attempts": 3}))
    probe = f"{prefix}/.edgekit-write-test" if prefix else ".edgekit-write-test"
    try:
        client.put_object(Bucket=bucket, Key=probe, Body=b"")
        client.delete_object(Bucket=bucket, Key=probe)
    except ClientError as e:
        code = e.response.get("Error", {}).get("Code", "")
        why = {"NoSuchBucket": f"bucket '{bucket}' does not exist",
               "AccessDenied": f"these credentials may not write to s3://{bucket}/{prefix}",
               "InvalidAccessKeyId": "the access key is not known to the server",
               "SignatureDoesNotMatch": "the secret key does not match the access key"}.get(code, f"{code}: {e}")
        raise UsageError(f"--artifacts {url}: {why}", hint=f"create it (aws s3 mb s3://{bucket}), or name another"
                         if code == "NoSuchBucket" else S3_HINT) from None
    except BotoCoreError as e:  # no credentials, an endpoint that does not answer, a malformed URL
        raise UsageError(f"--artifacts {url}: {e}", hint=S3_HINT) from None
    return PrefixedStore(Boto3ArtifactStore(bucket, client=client), f"{prefix}/" if prefix else "")


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
