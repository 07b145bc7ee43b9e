"""The `cascade` command: dates, errors, the environment for plain dbt; no lake needed."""

from __future__ import annotations

import socket
import subprocess
import sys
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import click
import pytest
from click.testing import CliRunner

from cascade.cli import COMMANDS, main
from cascade.cli.common import day_range, describe_days, one_line, reported
from cascade.settings import Settings

PASSWORD = "Zq9-secret-pw"
SCALE = {
    "CASCADE_CATALOG_URL": f"postgresql://cascade:{PASSWORD}@db.example:5432/lake",
    "CASCADE_DATA_PATH": "s3://bucket/lake",
    "CASCADE_S3_ACCESS_KEY_ID": "AKIA-key-id-1",
    "CASCADE_S3_SECRET_ACCESS_KEY": "s3-secret-key-1",
}


def invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(main, list(args), env=env, prog_name="cascade")


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_help(name: str):
    result = invoke(name, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage: cascade" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ("run", "--start", "2024-03-02", "--end", "2024-03-01"),
        ("backfill", "--start", "2024-03-02", "--end", "2024-03-01"),
        ("transform", "--start", "2024-03-02", "--end", "2024-03-01"),
        ("report", "--start", "2024-03-02", "--end", "2024-03-01"),
        ("ingest", "--start", "2024-03-02", "--end", "2024-03-01"),
    ],
)
def test_one_wording_for_an_end_not_after_the_start(args):
    result = invoke(*args)
    assert result.exit_code == 2
    assert "--end 2024-03-01 is not after --start 2024-03-02" in result.output


@pytest.mark.parametrize("command", ["run", "backfill", "transform", "report", "ingest"])
def test_a_bad_date_names_its_option(command: str):
    result = invoke(command, "--start", "2024-02-30", "--end", "2024-03-01")
    assert result.exit_code == 2
    assert "'--start'" in result.output and "'2024-02-30' is not a date" in result.output


def test_run_refuses_zero_days_by_name():
    result = invoke("run", "--days", "0")
    assert result.exit_code == 2 and "'--days'" in result.output
    assert "None" not in result.output


def test_day_range_fills_in_from_days():
    settings = Settings(_env_file=None)
    today = datetime.now(ZoneInfo(settings.timezone)).date()
    assert day_range(settings, None, None, 14) == (today - timedelta(days=13), today)
    assert day_range(settings, None, date(2024, 3, 1), 7) == (date(2024, 2, 23), date(2024, 2, 29))
    assert day_range(settings, date(2024, 3, 1), date(2024, 3, 2), 14) == (
        date(2024, 3, 1),
        date(2024, 3, 1),
    )
    with pytest.raises(click.UsageError, match="is after today"):
        day_range(settings, today + timedelta(days=2), None, 14)


def test_a_window_ending_today_says_the_last_day_is_partial():
    settings = Settings(_env_file=None)
    today = datetime.now(ZoneInfo(settings.timezone)).date()
    assert "partial" in describe_days(settings, today - timedelta(days=3), today)
    assert "partial" not in describe_days(settings, date(2024, 3, 1), date(2024, 3, 5))


class SiteError(RuntimeError):
    pass


def test_a_failure_before_any_lake_leaves_no_cascade_home(tmp_path):
    result = invoke("maintain", env={"CASCADE_HOME": str(tmp_path / "none")})
    assert result.exit_code == 1 and "no lake at" in result.output
    assert not (tmp_path / "none").exists()


def test_an_invalid_setting_is_named_by_its_variable(tmp_path):
    env = {"CASCADE_HOME": str(tmp_path), "CASCADE_DBT_BATCH_READINGS": "0"}
    result = invoke("env", env=env)
    assert result.exit_code == 1
    assert "invalid configuration: CASCADE_DBT_BATCH_READINGS: Input should be greater than 0" in (
        result.output
    )


def test_one_line_redacts_and_flattens():
    settings = Settings(
        _env_file=None, **{k.removeprefix("CASCADE_").lower(): v for k, v in SCALE.items()}
    )
    exc = RuntimeError(f"could not connect\n  to postgresql://cascade:{PASSWORD}@db.example/lake")
    line = one_line(settings, exc)
    assert "\n" not in line and PASSWORD not in line and "could not connect to" in line


def test_a_failure_is_one_line_exit_1_and_the_traceback_is_in_the_log(tmp_path):
    settings = Settings(home=tmp_path / "home", _env_file=None)
    settings.home.mkdir()

    @click.command()
    def broken() -> None:
        with reported(settings, "broken"):
            raise ValueError("the first\nthing broke")

    result = CliRunner().invoke(broken, [])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ValueError: the first thing broke")
    log = (tmp_path / "home" / "logs" / "broken.log").read_text()
    assert str(tmp_path / "home" / "logs" / "broken.log") in lines[0]
    assert "Traceback" in log and "the first" in log


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_site_is_one_line_naming_the_site_without_its_token(tmp_path):
    port = _closed_port()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cascade.cli",
            "ingest",
            "--url",
            f"http://127.0.0.1:{port}/?token=tok-123456789",
        ],
        capture_output=True,
        text=True,
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            "CASCADE_HTTP_RETRIES": "0",
            "CASCADE_HTTP_TIMEOUT_S": "2",
            "COLUMNS": "60",
        },
        timeout=120,
    )
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error")]
    assert errors == [errors[0]] and f"Nightscout site http://127.0.0.1:{port}/" in errors[0]
    assert "is the site up?" in errors[0] and "S3" not in errors[0]
    assert "tok-123456789" not in done.stderr + done.stdout and "Traceback" not in done.stderr


def test_env_keeps_secrets_out_unless_asked():
    hidden = invoke("env", env=SCALE)
    assert hidden.exit_code == 0, hidden.output
    assert PASSWORD not in hidden.output and "s3-secret-key-1" not in hidden.output
    assert (
        'export DBT_ENV_SECRET_CASCADE_PG_PASSWORD="${DBT_ENV_SECRET_CASCADE_PG_PASSWORD:-}"'
        in (hidden.output)
    )
    assert "export CASCADE_DBT_PG_HOST=db.example" in hidden.output
    shown = invoke("env", "--show-secrets", env=SCALE)
    assert f"export DBT_ENV_SECRET_CASCADE_PG_PASSWORD={PASSWORD}" in shown.output


def test_env_points_plain_dbt_at_the_local_lake(tmp_path):
    result = invoke("env", env={"CASCADE_HOME": str(tmp_path / "lake")})
    lines = dict(line.removeprefix("export ").split("=", 1) for line in result.output.splitlines())
    assert lines["CASCADE_DBT_CATALOG_PATH"] == str(tmp_path / "lake" / "catalog.sqlite")
    assert lines["DBT_PROFILES_DIR"].endswith("transforms/dbt")
    # what the shell then holds starts cascade again: the unset limit reads back as unset
    assert lines["CASCADE_DUCKDB_MEMORY_LIMIT"] == "-1"
    assert "CASCADE_DUCKDB_TEMP_DIRECTORY" not in lines  # this process's folder: gone with it
    again = invoke("env", env={"CASCADE_HOME": str(tmp_path / "lake"), **lines})
    assert again.exit_code == 0, again.output


def test_no_import_cycle_between_the_cli_and_the_report():
    code = "import cascade.report.build, sys; assert 'cascade.cli' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_failed_steps_of_one_unreachable_site_read_as_one_line():
    from cascade.cli.run import failure_line

    error = "cascade.sources.nightscout.helpers.NightscoutError: http://127.0.0.1:9/ failed"
    line = failure_line([f"nightscout_raw: {error}", f"raw__profile: {error}", "dbt: boom"])
    assert line == (
        "Nightscout site http://127.0.0.1:9/ failed (step nightscout_raw, raw__profile); "
        "boom (step dbt)"
    )


def test_docs_without_a_lake_says_so(tmp_path):
    result = invoke("docs", env={"CASCADE_HOME": str(tmp_path / "none")})
    assert result.exit_code == 1 and "no lake at" in result.output
