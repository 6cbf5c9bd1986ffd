"""Registry fixtures: real SQLite and a real throwaway PostgreSQL server, a live server.

The PostgreSQL cluster is created once per session in a temporary folder with the
Debian binaries (``/usr/lib/postgresql/*/bin``), listening on loopback only; each test
gets its own database. Tests that need it are skipped, with the reason, when the
binaries are absent. As root, the cluster runs as the ``postgres`` user (PostgreSQL
refuses to run as root).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from registry_support import Live, free_port

from modelward.registry.config import RegistryConfig, build_registry
from modelward.registry.service import Limits, Registry


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``postgresql://...`` base URL of a throwaway cluster on loopback."""
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not installed (apt-get install postgresql)")
    pytest.importorskip("psycopg")
    root = Path(tempfile_dir := str(tmp_path_factory.mktemp("pg")))
    data = root / "data"
    prefix: list[str] = []
    if os.geteuid() == 0:
        prefix = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres")
        os.chmod(root, 0o700)
        for parent in root.parents:  # the postgres user must reach its folder
            if str(parent).startswith(("/tmp", tempfile_dir)) and parent != Path("/tmp"):
                os.chmod(parent, os.stat(parent).st_mode | 0o711)
    port = free_port()
    subprocess.run([*prefix, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U",
                    "postgres", "--no-sync"], check=True, capture_output=True)
    subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-w", "-t", "120", "-l",
                    str(root / "log"), "-o",
                    f"-h 127.0.0.1 -p {port} -k {root} -c fsync=off "
                    "-c max_connections=200", "start"], check=True, capture_output=True)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate",
                        "stop"], capture_output=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database of each kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.db'}"
    base = request.getfixturevalue("pg_server")
    import psycopg

    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(base + "/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"{base}/{name}"


RegistryFactory = Callable[..., Registry]


@pytest.fixture
def make_registry(tmp_path: Path, database_url: str) -> Iterator[RegistryFactory]:
    made: list[Registry] = []

    def make(**kwargs: object) -> Registry:
        config = RegistryConfig(tmp_path / "data", database_url=database_url,
                                **kwargs)  # type: ignore[arg-type]
        registry = build_registry(config)
        made.append(registry)
        return registry

    yield make
    for registry in made:
        registry.close()


@pytest.fixture
def live(make_registry: RegistryFactory) -> Iterator[Live]:
    server = Live(make_registry(limits=Limits(max_file_size=1 << 20, max_json=64 << 10)))
    yield server
    server.stop()


@pytest.fixture
def tokens(live: Live) -> dict[str, str]:
    reg = live.registry
    return {role: reg.create_token(f"{role}-user", role)
            for role in ("reader", "publisher", "admin")}
