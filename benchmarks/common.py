"""Shared set-up for benchmarks: a demo Nightscout server, moto's S3 and PostgreSQL lakes."""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cascade.settings import Settings

BIN = Path(sys.executable).parent
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


# the benchmark's own servers running now, name -> pid (the demo sites, moto's S3): they
# share the machine's cores with what is measured, and `cpu_seconds` tells how much they took
HELPERS: dict[str, int] = {}


@contextmanager
def process(args: list[str], port: int, name: str | None = None) -> Iterator[None]:
    """Run a server process until the block ends (listed in HELPERS under `name`, if given)."""
    child = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        if name:
            HELPERS[name] = child.pid
        yield
    finally:
        HELPERS.pop(name, None)
        child.terminate()
        child.wait(timeout=10)


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far (Linux's /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def demo_site() -> Iterator[str]:
    """`cascade demo-server` in its own process (as a real site would be); yields its URL."""
    port = free_port()
    with process([str(BIN / "cascade"), "demo-server", "--port", str(port)], port):
        yield f"http://127.0.0.1:{port}"


@contextmanager
def scale_settings(home: Path) -> Iterator[Settings]:
    """A fresh PostgreSQL database and moto S3 bucket; dropped afterwards."""
    import boto3
    import psycopg2

    port = free_port()
    name = f"cascade_bench_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(PG_ADMIN)
    admin.autocommit = True
    admin.cursor().execute(f"create database {name}")
    try:
        moto = [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]
        with process(moto, port, name="moto"):
            endpoint = f"http://127.0.0.1:{port}"
            boto3.client(
                "s3",
                endpoint_url=endpoint,
                aws_access_key_id="bench-key-id",
                aws_secret_access_key="bench-secret",
                region_name="us-east-1",
            ).create_bucket(Bucket="lake")
            yield Settings(
                home=home,
                catalog_url=f"postgresql://postgres@127.0.0.1:5432/{name}",
                data_path="s3://lake/cascade",
                s3_endpoint=endpoint,
                s3_use_ssl=False,
                s3_access_key_id="bench-key-id",
                s3_secret_access_key="bench-secret",
                _env_file=None,
            )
    finally:
        admin.cursor().execute(
            f"select pg_terminate_backend(pid) from pg_stat_activity where datname = '{name}'"
        )
        admin.cursor().execute(f"drop database if exists {name}")
        admin.close()


def peak_memory_mib(children: bool = False) -> float:
    """Peak resident memory of this process so far, or of its largest finished child process
    (a dbt build) with `children`."""
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024
