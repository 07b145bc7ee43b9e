"""Scale-out: the cluster configurations in deploy/ load, and queued runs in separate run worker
processes write one PostgreSQL + S3 lake.

The multi-process test is the cluster's path on one machine: a QueuedRunCoordinator instance on
PostgreSQL (deploy/dagster.yaml, max_concurrent_runs 8), `dagster-daemon` started natively
through deploy/entrypoint.sh (which sets the lake_writers pool), three `nightscout_ingest` runs of
three demo people queued by the CLI, each launched by the DefaultRunLauncher as its own
`dagster api execute_run` process, all writing one lake (PostgreSQL catalog, moto S3). The
DockerRunLauncher and K8sRunLauncher only change where that process starts.

The daemon runs in its own process group and is killed with SIGKILL (dagster servers ignore
SIGTERM when run in the background); every wait is bounded.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
import yaml

from cascade.demo.server import DemoServer
from cascade.lake.connection import connect
from cascade.settings import Settings
from tests.conftest import pg_execute
from tests.support import S3_KEY_ID, S3_SECRET

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent
NOW = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)
DAY = "2024-03-09"
SITES = 3
RUN_DEADLINE_S = 420
LAUNCH_TIMEOUT_S = 180


# ---------------------------------------------------------------- configurations (no services)


def _instance_config(home: Path, text: str):
    from dagster._core.instance.config import dagster_instance_config

    (home / "dagster.yaml").write_text(text)
    config, custom_class = dagster_instance_config(str(home))
    assert custom_class is None
    return config


def test_docker_variant_loads_with_dagsters_instance_schema(tmp_path: Path):
    config = _instance_config(tmp_path, (DEPLOY / "dagster.docker.yaml").read_text())
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert "max_concurrent_runs" not in config["run_coordinator"].get("config", {})
    assert config["run_launcher"]["class"] == "DockerRunLauncher"
    assert config["concurrency"]["runs"]["max_concurrent_runs"] >= 1
    assert config["concurrency"]["pools"]["default_limit"] >= 1
    assert "postgres" in config["storage"]
    launcher = config["run_launcher"]["config"]
    # secrets pass by NAME from the daemon's environment, never as values in the file
    assert all("=" not in name for name in launcher["env_vars"])
    for name in ("CASCADE_CATALOG_URL", "CASCADE_SUBJECT_KEY", "CASCADE_S3_SECRET_ACCESS_KEY"):
        assert name in launcher["env_vars"]
    # the launcher's own schema (dagster-docker is a dev dependency)
    import dagster_docker as docker
    from dagster._config import process_config

    os.environ.setdefault("CASCADE_RUN_IMAGE", "registry.example.org/cascade:0.1.0")
    checked = process_config(docker.DockerRunLauncher.config_type(), launcher)
    assert checked.success, checked.errors


# keys of the official chart's values schema (helm/dagster/schema, chart 1.13) used below
K8S_RUN_LAUNCHER_KEYS = {
    "image", "imagePullPolicy", "jobNamespace", "loadInclusterConfig", "kubeconfigFile",
    "envConfigMaps", "envSecrets", "envVars", "volumeMounts", "volumes", "labels",
    "failPodOnRunFailure", "resources", "schedulerName", "securityContext", "runK8sConfig",
}  # fmt: skip
RUN_K8S_CONFIG_KEYS = {
    "containerConfig", "podSpecConfig", "podTemplateSpecMetadata", "jobSpecConfig", "jobMetadata",
}  # fmt: skip
QUEUED_KEYS = {
    "maxConcurrentRuns", "tagConcurrencyLimits", "dequeueIntervalSeconds", "dequeueNumWorkers",
    "dequeueUseThreads", "blockOpConcurrencyLimitedRuns",
}  # fmt: skip
CONCURRENCY = {"enabled", "pools", "runs"}
POOLS = {"defaultLimit", "granularity", "opGranularityRunBuffer"}
RUNS = {"maxConcurrentRuns", "tagConcurrencyLimits"}
POSTGRESQL_KEYS = {
    "postgresqlScheme", "image", "enabled", "postgresqlHost", "postgresqlUsername",
    "postgresqlPassword", "postgresqlDatabase", "postgresqlParams", "service",
}  # fmt: skip
GLOBAL_KEYS = {
    "postgresqlSecretName", "dagsterHome", "serviceAccountName", "celeryConfigSecretName",
    "dagsterInstanceConfigMap",
}  # fmt: skip


def _rendered_instance(values: dict) -> str:
    """The dagster.yaml the chart's configmap-instance template makes of these values (the parts
    cascade sets), so Dagster's own schema can check what the cluster would run with."""
    pg = values["postgresql"]
    db = {
        "username": pg["postgresqlUsername"],
        "password": {"env": "DAGSTER_PG_PASSWORD"},
        "hostname": pg["postgresqlHost"],
        "db_name": pg["postgresqlDatabase"],
        "port": pg["service"]["port"],
        "params": pg["postgresqlParams"],
        "scheme": pg["postgresqlScheme"],
    }
    queued = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    conc = values["concurrency"]
    instance = {
        "run_storage": {
            "module": "dagster_postgres.run_storage",
            "class": "PostgresRunStorage",
            "config": {"postgres_db": db},
        },
        "event_log_storage": {
            "module": "dagster_postgres.event_log",
            "class": "PostgresEventLogStorage",
            "config": {"postgres_db": db},
        },
        "schedule_storage": {
            "module": "dagster_postgres.schedule_storage",
            "class": "PostgresScheduleStorage",
            "config": {"postgres_db": db},
        },
        "run_launcher": {
            "module": "dagster_k8s",
            "class": "K8sRunLauncher",
            "config": {"load_incluster_config": True, "env_secrets": ["cascade-env"]},
        },
        "run_coordinator": {
            "module": "dagster.core.run_coordinator",
            "class": "QueuedRunCoordinator",
            "config": {"dequeue_interval_seconds": queued["dequeueIntervalSeconds"]},
        },
        "concurrency": {
            "pools": {
                "default_limit": conc["pools"]["defaultLimit"],
                "granularity": conc["pools"]["granularity"],
            },
            "runs": {
                "max_concurrent_runs": conc["runs"]["maxConcurrentRuns"],
                "tag_concurrency_limits": conc["runs"]["tagConcurrencyLimits"],
            },
        },
        "telemetry": {"enabled": values["telemetry"]["enabled"]},
    }
    return yaml.safe_dump(instance)


def test_helm_values_use_the_charts_keys_and_gate_writes_by_the_pool(tmp_path: Path):
    values = yaml.safe_load((DEPLOY / "k8s" / "values.yaml").read_text())
    launcher = values["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher"
    k8s = launcher["config"]["k8sRunLauncher"]
    assert set(k8s) <= K8S_RUN_LAUNCHER_KEYS, set(k8s) - K8S_RUN_LAUNCHER_KEYS
    assert set(k8s["runK8sConfig"]) <= RUN_K8S_CONFIG_KEYS
    assert set(values["postgresql"]) <= POSTGRESQL_KEYS
    assert values["postgresql"]["enabled"] is False
    assert set(values["global"]) <= GLOBAL_KEYS
    assert values["generatePostgresqlPasswordSecret"] is False

    coordinator = values["dagsterDaemon"]["runCoordinator"]
    assert coordinator["enabled"] and coordinator["type"] == "QueuedRunCoordinator"
    queued = coordinator["config"]["queuedRunCoordinator"]
    assert set(queued) <= QUEUED_KEYS
    # the chart (and dagster 1.13) refuse maxConcurrentRuns in both places
    assert "maxConcurrentRuns" not in queued and "tagConcurrencyLimits" not in queued

    conc = values["concurrency"]
    assert set(conc) <= CONCURRENCY and conc["enabled"] is True
    assert set(conc["pools"]) <= POOLS and set(conc["runs"]) <= RUNS
    assert conc["runs"]["maxConcurrentRuns"] >= 3

    # one Secret carries CASCADE_* to the code location, the daemon, the webserver and every run
    user = values["dagster-user-deployments"]
    assert user["enabled"]
    (location,) = user["deployments"]
    assert location["dagsterApiGrpcArgs"] == ["-m", "cascade.definitions"]
    assert ":" not in location["image"]["repository"].rsplit("/", 1)[-1]
    assert location["image"]["tag"] not in ("", "latest")
    for holder in (location, k8s, values["dagsterDaemon"], values["dagsterWebserver"]):
        assert {"name": "cascade-env"} in holder["envSecrets"]
    secret = yaml.safe_load((DEPLOY / "k8s" / "secret.example.yaml").read_text())
    assert secret["kind"] == "Secret" and secret["metadata"]["name"] == "cascade-env"
    for name in ("CASCADE_CATALOG_URL", "CASCADE_DATA_PATH", "CASCADE_SUBJECT_KEY"):
        assert name in secret["stringData"]
    assert int(secret["stringData"]["CASCADE_LAKE_WRITERS"]) == conc["pools"]["defaultLimit"]

    # lake_writers is cascade's only pool, so the chart's default pool limit is its limit
    from cascade.definitions import build_definitions
    from cascade.defs.partitions import LAKE_POOL

    definitions = build_definitions(Settings(_env_file=None))
    pools = {
        op.pool for job in definitions.resolve_all_job_defs() for op in job.graph.iterate_op_defs()
    } - {None}
    assert pools == {LAKE_POOL}, pools

    config = _instance_config(tmp_path, _rendered_instance(values))
    assert config["concurrency"]["pools"]["default_limit"] == conc["pools"]["defaultLimit"]


# ---------------------------------------------------------- queued runs in separate processes


@pytest.fixture
def dagster_db(pg_admin_url: str):
    """A second fresh database: Dagster's run/event storage, apart from the lake's catalog."""
    name = f"cascade_dagster_{uuid.uuid4().hex[:10]}"
    pg_execute(pg_admin_url, f"create database {name}")
    parts = urlsplit(pg_admin_url)
    try:
        yield parts, name
    finally:
        pg_execute(
            pg_admin_url,
            f"select pg_terminate_backend(pid) from pg_stat_activity where datname = '{name}'",
        )
        pg_execute(pg_admin_url, f"drop database if exists {name}")


def _lake_env(settings: Settings) -> dict[str, str]:
    return {
        "CASCADE_HOME": str(settings.home.absolute()),
        "CASCADE_CATALOG_URL": settings.catalog_url.get_secret_value(),
        "CASCADE_DATA_PATH": settings.data_path,
        "CASCADE_S3_ENDPOINT": settings.s3_endpoint,
        "CASCADE_S3_USE_SSL": "false",
        "CASCADE_S3_ACCESS_KEY_ID": S3_KEY_ID,
        "CASCADE_S3_SECRET_ACCESS_KEY": S3_SECRET,
        "CASCADE_START_DATE": "2024-03-01",
        "CASCADE_TIMEZONE": "UTC",
        "CASCADE_LAKE_WRITERS": "3",
    }


def _served_ids(url: str, low_ms: int, high_ms: int) -> set[str]:
    response = requests.get(
        f"{url}/api/v1/entries.json",
        params={"find[date][$gte]": low_ms, "find[date][$lte]": high_ms, "count": 100_000},
        timeout=30,
    )
    response.raise_for_status()
    return {r["_id"] for r in response.json()}


@pytest.mark.pg
@pytest.mark.timeout(RUN_DEADLINE_S + 3 * LAUNCH_TIMEOUT_S + 60)
def test_queued_runs_in_separate_processes_write_one_lake(
    scale_settings: Settings, dagster_db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from dagster import DagsterInstance, DagsterRunStatus

    parts, db_name = dagster_db
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(DEPLOY / "dagster.yaml", home / "dagster.yaml")
    env = {
        **os.environ,
        **_lake_env(scale_settings),
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_HOST": parts.hostname,
        "DAGSTER_PG_PORT": str(parts.port or 5432),
        "DAGSTER_PG_USER": parts.username or "postgres",
        "DAGSTER_PG_PASSWORD": parts.password or "",
        "DAGSTER_PG_DB": db_name,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    server = DemoServer(sites=SITES, now=NOW).start()
    daemon = None
    instance = None
    daemon_log = tmp_path / "daemon.log"
    try:
        subjects = {f"scaleout-{i + 1}": url for i, url in enumerate(server.site_urls)}
        # queue one ingest run per site (this also creates Dagster's tables before the daemon)
        for subject, url in subjects.items():
            run_config = {
                "resources": {
                    "cascade": {
                        "config": {"overrides": {"nightscout_url": url, "subject_id": subject}}
                    }
                }
            }
            launched = subprocess.run(
                [
                    str(BIN / "dagster"), "job", "launch", "-m", "cascade.definitions",
                    "-j", "nightscout_ingest", "--config-json", json.dumps(run_config),
                    "--tags", json.dumps({"dagster/partition": DAY, "cascade/site": subject}),
                ],
                env=env, cwd=ROOT, capture_output=True, text=True, timeout=LAUNCH_TIMEOUT_S,
            )  # fmt: skip
            assert launched.returncode == 0, launched.stderr[-3000:]

        for key, value in env.items():
            if key.startswith("DAGSTER_"):
                monkeypatch.setenv(key, value)
        instance = DagsterInstance.get()
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert type(instance.run_launcher).__name__ == "DefaultRunLauncher"
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs >= SITES
        runs = instance.get_runs()
        assert [r.status for r in runs] == [DagsterRunStatus.QUEUED] * SITES

        daemon = subprocess.Popen(
            [str(DEPLOY / "entrypoint.sh"), "dagster-daemon", "run", "-m", "cascade.definitions"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=daemon_log.open("w"),
            start_new_session=True,
        )
        done = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
        deadline = time.monotonic() + RUN_DEADLINE_S
        running_at_once = 0
        while time.monotonic() < deadline:
            assert daemon.poll() is None, daemon_log.read_text()[-3000:]
            runs = instance.get_runs()
            running_at_once = max(
                running_at_once, sum(r.status == DagsterRunStatus.STARTED for r in runs)
            )
            if all(r.status in done for r in runs):
                break
            time.sleep(1.0)
        statuses = {r.tags["cascade/site"]: r.status for r in runs}
        assert all(s == DagsterRunStatus.SUCCESS for s in statuses.values()), (
            statuses,
            daemon_log.read_text()[-3000:],
        )

        # each run was its own worker process (DefaultRunLauncher: `dagster api execute_run`)
        pids = set()
        for run in runs:
            records = instance.all_logs(run.run_id)
            pids |= {
                e.dagster_event.pid for e in records if e.dagster_event and e.dagster_event.pid
            }
        assert len(pids) >= SITES, pids
        assert os.getpid() not in pids and daemon.pid not in pids
        info = instance.event_log_storage.get_concurrency_info("lake_writers")
        assert info.slot_count == 3
        print(f"runs STARTED at once (sampled each second): {running_at_once}")

        # the one lake holds each site's rows exactly once, no site's rows under another's id
        start_ms = int(datetime(2024, 3, 9, tzinfo=UTC).timestamp() * 1000)
        end_ms = int(datetime(2024, 3, 10, tzinfo=UTC).timestamp() * 1000)
        with connect(scale_settings) as con:
            counts = {
                subject: (rows, keys)
                for subject, rows, keys in con.execute(
                    "select subject_id, count(*), count(distinct record_key) from raw.entries "
                    "group by all"
                ).fetchall()
            }
            keys = {
                subject: {
                    k for (k,) in con.execute(
                        "select record_key from raw.entries where subject_id = ?", [subject]
                    ).fetchall()
                }
                for subject in subjects
            }  # fmt: skip
        assert set(counts) == set(subjects), counts
        for subject, url in subjects.items():
            rows, distinct = counts[subject]
            assert rows == distinct, f"{subject}: {rows} rows, {distinct} keys"
            assert rows >= 250, f"{subject}: only {rows} readings for a whole day"
            assert keys[subject] <= _served_ids(url, start_ms, end_ms), subject
        assert not set.intersection(*keys.values())
    finally:
        if daemon is not None:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait(timeout=10)
        if instance is not None:
            instance.dispose()
        server.stop()
