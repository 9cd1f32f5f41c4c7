"""Throwaway servers for the tune workers' tests. PostgreSQL: its own data folder and Unix socket, no
TCP port, stopped and deleted afterwards; Debian's server binaries (``make install`` installs them);
as root, the server runs as the ``postgres`` user (PostgreSQL refuses to run as root). S3: moto's
S3 server on a free local port, over HTTP as MinIO would be, its buckets in memory.

Example:
    with postgres_server() as url:        # postgresql://edgekit@/postgres?host=/tmp/edgekit-pg-x&port=5433
        ...
    with s3_server() as env:              # AWS_ENDPOINT_URL=http://127.0.0.1:PORT and test credentials
        ...
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path


def binaries() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl``, or None."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    return Path(dirs[-1]) if dirs and Path(dirs[-1], "initdb").exists() else None


@contextlib.contextmanager
def postgres_server(port: int = 54329):
    bindir = binaries()
    if bindir is None:
        raise RuntimeError("PostgreSQL's initdb is not installed (make install installs it as root)")
    root = Path(tempfile.mkdtemp(prefix="edgekit-pg-"))  # /tmp, not pytest's 0700 folder: the server user reads it
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, sock = root / "data", root
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    try:
        subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(data), "-U", "edgekit", "--auth=trust",
                        "--no-sync", "-E", "UTF8"], check=True, capture_output=True, env=env)
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-w", "-t", "60", "-l", str(root / "log"),
                        "-o", f"-c listen_addresses='' -k {sock} -p {port} -c fsync=off -c max_connections=50",
                        "start"], check=True, capture_output=True, env=env)
        yield f"postgresql://edgekit@/postgres?host={sock}&port={port}"
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                       capture_output=True, env=env)
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def s3_server():
    """moto's S3 server on a free local port; yields the environment that points boto3 (and so a
    worker's ``--artifacts s3://...``) at it."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "edgekit-test",
               "AWS_SECRET_ACCESS_KEY": "edgekit-test-secret", "AWS_DEFAULT_REGION": "us-east-1"}
    finally:
        server.stop()
