"""deploy/ starts: its dagster.yaml as an instance on PostgreSQL, the daemon runs a queued run.

The daemon is started natively (no Docker here) in its own process group and killed with
SIGKILL at the end: dagster servers ignore SIGTERM when run in the background.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
JOB_FILE = Path(__file__).parent / "deploy_fixture" / "tiny.py"
BIN = Path(sys.executable).parent
RUN_DEADLINE_S = 120

pytestmark = pytest.mark.pg


@pytest.fixture
def deploy_env(pg_database: str, tmp_path: Path) -> dict[str, str]:
    """The environment compose gives the Dagster services, pointed at a fresh test database."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(DEPLOY / "dagster.yaml", home / "dagster.yaml")
    parts = urlsplit(pg_database)
    return {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_HOST": parts.hostname,
        "DAGSTER_PG_PORT": str(parts.port or 5432),
        "DAGSTER_PG_USER": parts.username,
        "DAGSTER_PG_PASSWORD": parts.password or "",
        "DAGSTER_PG_DB": parts.path.lstrip("/"),
        "CASCADE_LAKE_WRITERS": "3",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def test_compose_binds_ports_to_loopback_and_pins_images():
    import yaml

    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"
        image = service.get("image")
        assert image is None or (":" in image and not image.endswith(":latest")), image
    assert "dagster_home:/opt/dagster/home" in compose["services"]["dagster-daemon"]["volumes"]
    assert (
        compose["services"]["dagster-webserver"]["volumes"]
        == (compose["services"]["dagster-daemon"]["volumes"])
    )
    ignored = (ROOT / ".dockerignore").read_text().split()
    for name in (".venv", ".cascade", ".cache", ".git", "reports", "**/__pycache__"):
        assert name in ignored


def test_daemon_runs_a_queued_run_on_the_deploy_instance(
    deploy_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
):
    from dagster import DagsterInstance, DagsterRunStatus

    # queue the run first (this also creates Dagster's tables), so nothing races on the schema
    launched = subprocess.run(
        [str(BIN / "dagster"), "job", "launch", "-f", str(JOB_FILE), "-j", "tiny"],
        env=deploy_env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert launched.returncode == 0, launched.stderr[-2000:]
    for key, value in deploy_env.items():
        if key.startswith("DAGSTER_"):
            monkeypatch.setenv(key, value)
    instance = DagsterInstance.get()
    assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
    assert [run.status for run in instance.get_runs()] == [DagsterRunStatus.QUEUED]
    # as in compose: the entrypoint sets the pool limit, then starts the daemon
    daemon = subprocess.Popen(
        [str(DEPLOY / "entrypoint.sh"), "dagster-daemon", "run", "-f", str(JOB_FILE)],
        env=deploy_env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + RUN_DEADLINE_S
        status = None
        while time.monotonic() < deadline and status not in (
            DagsterRunStatus.SUCCESS,
            DagsterRunStatus.FAILURE,
        ):
            assert daemon.poll() is None, daemon.stderr.read()[-2000:]
            time.sleep(0.5)
            status = instance.get_runs()[0].status
        assert status == DagsterRunStatus.SUCCESS, f"run ended {status}"
        info = instance.event_log_storage.get_concurrency_info("lake_writers")
        assert info.slot_count == 3
    finally:
        os.killpg(daemon.pid, signal.SIGKILL)
        daemon.wait(timeout=10)
        instance.dispose()
