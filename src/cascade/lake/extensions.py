"""DuckDB extensions from the PyPI extension wheels, installed from local files only.

`INSTALL '<file>'` copies a wheel's extension into cascade's extension directory once; after that
`LOAD <name>` works in every process (dlt and dbt-duckdb included) without any network access.
The directory is inside the Python environment cascade runs from (`<venv>/duckdb_extensions`),
not DuckDB's default `~/.duckdb`: it holds binaries for exactly this environment's DuckDB, and
removing the environment (`make clean`) removes them.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import duckdb

EXTENSIONS = ("ducklake", "httpfs", "postgres_scanner", "sqlite_scanner")
EXTENSION_DIR = Path(sys.prefix) / "duckdb_extensions"


def extension_directory_statement() -> str:
    """The SET that points a connection at cascade's extension directory (run it first)."""
    return "set extension_directory = '" + str(EXTENSION_DIR).replace("'", "''") + "'"


class ExtensionMissing(RuntimeError):
    """An extension wheel is not installed; the message names the package to install."""


def wheel_package(name: str) -> str:
    """The PyPI package that ships extension `name`, e.g. duckdb-extension-postgres-scanner."""
    return "duckdb-extension-" + name.replace("_", "-")


def extension_file(name: str) -> Path:
    """The extension binary inside its wheel, for the running DuckDB version."""
    module = "duckdb_extension_" + name
    spec = importlib.util.find_spec(module)
    version = duckdb.__version__
    if spec is None or spec.origin is None:
        raise ExtensionMissing(
            f"DuckDB extension {name!r} is not installed: "
            f"install the package {wheel_package(name)}=={version}"
        )
    path = Path(spec.origin).parent / "extensions" / f"v{version}" / f"{name}.duckdb_extension"
    if not path.exists():
        raise ExtensionMissing(
            f"{wheel_package(name)} does not match DuckDB {version} ({path} is missing): "
            f"install {wheel_package(name)}=={version}"
        )
    return path


_installed = False


def install_extensions(con: duckdb.DuckDBPyConnection) -> None:
    """Install every extension cascade needs from the wheels, once per process.

    Nothing is loaded here: ATTACH and the first S3 access autoload what they use, and each
    load re-verifies a signed 20–40 MB binary, so loading only what is needed keeps a fresh
    connection cheap.
    """
    global _installed
    con.execute(extension_directory_statement())
    if _installed:
        return
    installed = {
        row[0]
        for row in con.execute(
            "select extension_name from duckdb_extensions() where installed"
        ).fetchall()
    }
    for name in EXTENSIONS:
        if name not in installed:
            con.execute("install '" + str(extension_file(name)).replace("'", "''") + "'")
    _installed = True


def ensure_installed() -> None:
    """Install every extension into DuckDB's extension directory (for dbt and dlt processes)."""
    con = duckdb.connect()
    try:
        install_extensions(con)
        for name in EXTENSIONS:
            con.execute(f"load {name}")
    finally:
        con.close()
