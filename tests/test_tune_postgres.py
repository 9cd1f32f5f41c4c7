"""`edgekit tune` workers on one study in a real PostgreSQL server and one S3 artifact store (moto's
S3 server over HTTP, as MinIO would be): separate processes, each with its own OUT (as on separate
machines, sharing no folder), one killed mid-trial."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from conftest import REPO, REQUIRED, edgekit_cli
from servers import binaries, postgres_server, s3_server
from test_tune import _wait_for

needs_postgres = pytest.mark.skipif(binaries() is None and not REQUIRED,
                                    reason="PostgreSQL is not installed (make install installs it as root)")
TRIALS = 6
S3_CLIENT = {"endpoint_url": "AWS_ENDPOINT_URL", "aws_access_key_id": "AWS_ACCESS_KEY_ID",
             "aws_secret_access_key": "AWS_SECRET_ACCESS_KEY", "region_name": "AWS_DEFAULT_REGION"}


@needs_postgres
def test_three_workers_share_a_postgresql_study_and_a_killed_workers_trial_runs_again(tmp_path):
    import boto3
    import psycopg

    with postgres_server() as url, s3_server() as s3_env:
        s3 = boto3.client("s3", **{k: s3_env[v] for k, v in S3_CLIENT.items()})
        s3.create_bucket(Bucket="tune-artifacts")

        def worker(k: int) -> subprocess.Popen:
            args = [sys.executable, "-m", "edgekit", "tune", "mlp", "--data", "builtin:digits", "--trials", str(TRIALS),
                    "--epochs", "1", "--quant", "fp32", "--heartbeat", "1", "--storage", url, "--study", "pg",
                    "--resume", "--artifacts", "s3://tune-artifacts/team-a/pg", "--out", str(tmp_path / f"machine{k}")]
            return subprocess.Popen(args, cwd=REPO, env={**os.environ, **s3_env, "PYTHONUNBUFFERED": "1"},
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

        workers = [worker(k) for k in range(3)]
        pids = [w.pid for w in workers]
        try:
            victim = workers[0]
            _wait_for(victim, " complete in ", 300)  # its first trial is done; the next one starts
            time.sleep(2)
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            logs = [w.communicate(timeout=600)[0] for w in workers[1:]]
        finally:  # a worker that hangs is stopped here, not left to run beside the next tests
            for w in workers:
                if w.poll() is None:
                    w.kill()
                    w.wait()
        assert all(w.returncode == 0 for w in workers[1:]), logs
        assert sum("was interrupted (worker" in log and "stopped sending heartbeats" in log for log in logs) == 1, logs

        host, port = url.split("host=")[1].split("&port=")
        with psycopg.connect(host=host, port=port, user="edgekit", dbname="postgres") as db:
            states = db.execute("SELECT t.number, t.state FROM trials t JOIN studies s ON s.study_id = t.study_id "
                                "WHERE s.study_name = 'pg' ORDER BY t.number").fetchall()
        summaries = [json.loads((tmp_path / f"machine{k}" / "tune.json").read_text()) for k in (1, 2)]
        stored = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="tune-artifacts").get("Contents", []))
    trials = {t["number"]: t for t in summaries[0]["trials"]}
    assert [n for n, _ in states] == sorted(trials), "tune.json lists the study PostgreSQL holds"
    assert all(state != "RUNNING" for _, state in states), states
    interrupted = [t for t in trials.values() if t["state"] == "interrupted"]
    assert len(interrupted) == 1, trials
    retries = [t for t in trials.values() if t["retry_of"] == interrupted[0]["number"]]
    assert len(retries) == 1 and retries[0]["params"] == interrupted[0]["params"], "run again once, same parameters"
    assert retries[0]["worker"] != interrupted[0]["worker"], "by another worker"
    counted = [t for t in trials.values() if t["state"] != "interrupted"]
    assert len(counted) == TRIALS, [(t["number"], t["state"]) for t in trials.values()]
    assert all(t["state"] in ("complete", "infeasible", "pruned", "failed") for t in counted)
    assert all(t["reason"] for t in counted if t["state"] != "complete")
    assert len({t["worker"] for t in counted}) == 3, "every worker ran trials"
    # every deployable trial packed under the prefix, as Optuna names artifacts (a UUID), nothing else in the bucket
    feasible = [t for t in counted if t["state"] == "complete"]
    assert len(stored) >= len(feasible) and all(k.startswith("team-a/pg/") for k in stored), stored
    fronts = [[t["number"] for t in s["front"]] for s in summaries]
    assert fronts[0] == fronts[1] and fronts[0], fronts
    for k in (1, 2):  # the whole front in every worker's OUT, fetched from the shared store where another ran it
        for t in summaries[0]["front"]:
            assert (tmp_path / f"machine{k}" / t["artifact"]).is_file(), (k, t["number"], t["worker"])
        # a front member another worker ran was fetched, and said so
        own = f"{socket.gethostname()}:{pids[k]}"
        if any(t["worker"] != own for t in summaries[0]["front"]):
            assert "from the artifact store into" in logs[k - 1], logs[k - 1]
    shown = [edgekit_cli("tune", "--show", tmp_path / f"machine{k}").stdout for k in (1, 2)]
    assert shown[0] == shown[1] and "front" in shown[0].lower(), shown
