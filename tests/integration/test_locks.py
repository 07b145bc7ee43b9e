"""Bounded lock waits: a second acquirer gives up within the deadline and names the holder."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from cascade.lake.lock import LockTimeout, transform_lock, writer_lock
from cascade.settings import Settings

HOLD = """
import sys, time
from cascade.lake.lock import {lock}
from cascade.settings import Settings
with {lock}(Settings(_env_file=None)):
    print("held", flush=True)
    time.sleep(60)
"""


def hold_in_another_process(lock: str, env: dict[str, str]) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD.format(lock=lock), "--holder-marker"],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline().strip() == "held"
    return process


def test_local_writer_lock_wait_is_bounded_and_names_the_holder(local_settings):
    env = {"CASCADE_HOME": str(local_settings.home)}
    holder = hold_in_another_process("writer_lock", env)
    try:
        settings = Settings(home=local_settings.home, lock_timeout_s=1.0, _env_file=None)
        started = time.monotonic()
        with pytest.raises(LockTimeout) as info, writer_lock(settings):
            pass
        assert time.monotonic() - started < 5
        message = str(info.value)
        assert f"pid {holder.pid} on {socket.gethostname()}" in message
        assert "--holder-marker" in message and "CASCADE_LOCK_TIMEOUT_S" in message
    finally:
        holder.kill()
        holder.wait()
    with writer_lock(settings) as waited:  # released by the kill
        assert waited < 1


@pytest.mark.pg
def test_postgres_transform_lock_wait_is_bounded_and_names_the_holder(pg_database, tmp_path):
    env = {"CASCADE_CATALOG_URL": pg_database, "CASCADE_DATA_PATH": "s3://bucket/lake"}
    holder = hold_in_another_process("transform_lock", env)
    try:
        settings = Settings(
            home=tmp_path,
            catalog_url=pg_database,
            data_path="s3://bucket/lake",
            lock_timeout_s=1.0,
            _env_file=None,
        )
        started = time.monotonic()
        with pytest.raises(LockTimeout) as info, transform_lock(settings):
            pass
        assert time.monotonic() - started < 5
        message = str(info.value)
        assert "PostgreSQL backend pid" in message
        assert f"cascade lock pid={holder.pid}" in message
        assert "pg_terminate_backend" in message
        password = settings.catalog.password.get_secret_value()
        assert not password or password not in message
    finally:
        holder.kill()
        holder.wait()
    with transform_lock(settings) as waited:  # the server let go when the holder died
        assert waited < 5
