"""Throwaway backing services for tests: a PostgreSQL 15 cluster and an S3 server (moto), on loopback.

Both start from nothing in a temp dir and are torn down completely, so CI needs only the Debian
``postgresql-15`` package and the ``moto[server]`` wheel. PostgreSQL refuses to run as root, so when
we are root (CI is) the cluster runs as the ``postgres`` OS user that the Debian package creates.

``AICOMMONS_TEST_BACKEND`` picks what the shared ``live_hub`` fixture runs on:
``sqlite-local`` (default) or ``postgres-s3``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

PG_BIN = Path(os.environ.get("AICOMMONS_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
BACKEND_ENV = "AICOMMONS_TEST_BACKEND"
S3_KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def selected_backend() -> str:
    return os.environ.get(BACKEND_ENV, "sqlite-local")


def have_postgres() -> bool:
    return (PG_BIN / "initdb").exists()


class PostgresCluster:
    """``initdb`` + ``pg_ctl start`` in a temp dir; ``url(db)`` gives a SQLAlchemy-ready URL."""

    def __init__(self, root: Path | None = None):
        self.root = Path(tempfile.mkdtemp(prefix="aicommons-pg-", dir=root))
        self.data = self.root / "data"
        self.port = free_port()
        self._as_root = os.geteuid() == 0

    def _run(self, *cmd: str) -> None:
        if self._as_root:  # postgres will not run as root: become the Debian package's user
            cmd = ("runuser", "-u", "postgres", "--", *cmd)
        subprocess.run(cmd, check=True, capture_output=True, cwd="/")

    def start(self) -> PostgresCluster:
        if self._as_root:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                  "--no-sync", "-E", "UTF8", "--locale=C.UTF-8")
        # Durability is irrelevant for a throwaway cluster: fsync off makes the suites fast.
        opts = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=400")
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", opts, "-l", str(self.root / "pg.log"),
                  "-w", "-t", "60", "start")
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; returns its URL."""
        import psycopg

        name = name or f"db_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)


class MotoS3:
    """moto's S3 server in its own process (so it does not share the GIL with the test clients)."""

    def __init__(self, log_dir: Path | None = None):
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._log = open(Path(log_dir or tempfile.gettempdir()) / f"moto-{self.port}.log", "ab")
        self.process: subprocess.Popen | None = None

    def start(self) -> MotoS3:
        code = "import sys; from moto.server import main; main(sys.argv[1:])"
        self.process = subprocess.Popen([sys.executable, "-c", code, "-H", "127.0.0.1", "-p", str(self.port)],
                                        stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                httpx.get(f"{self.endpoint}/moto-api/", timeout=1)
                return self
            except httpx.HTTPError:
                if self.process.poll() is not None:
                    raise RuntimeError("moto server exited") from None
                time.sleep(0.1)
        raise RuntimeError("moto server did not start")

    def create_bucket(self, name: str | None = None) -> str:
        name = name or f"bkt-{uuid.uuid4().hex[:12]}"
        # moto accepts unsigned requests: a bare PUT creates the bucket.
        httpx.put(f"{self.endpoint}/{name}", timeout=10).raise_for_status()
        return name

    def env(self) -> dict[str, str]:
        """Standard AWS variables that obstore (and boto3) read; see docs/deploy.md."""
        return {**S3_KEYS, "AWS_ENDPOINT_URL": self.endpoint, "AWS_ALLOW_HTTP": "true"}

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self._log.close()


@contextlib.contextmanager
def postgres_and_s3(scratch: Path):
    """(database URL, storage URL, extra env) on a fresh cluster and bucket; everything stopped after."""
    pg = PostgresCluster()
    s3 = MotoS3(scratch)
    try:
        pg.start()
        s3.start()
        db_url = pg.create_database("hub")
        bucket = s3.create_bucket()
        yield {"AICOMMONS_DATABASE_URL": db_url, "AICOMMONS_STORAGE_URL": f"s3://{bucket}/blobs", **s3.env()}
    finally:
        s3.stop()
        pg.stop()


@contextlib.contextmanager
def live_hub_backend(scratch: Path):
    """Extra server environment for the backend chosen by ``AICOMMONS_TEST_BACKEND``."""
    backend = selected_backend()
    if backend == "sqlite-local":
        yield {}
    elif backend == "postgres-s3":
        with postgres_and_s3(scratch) as env:
            yield env
    else:
        raise ValueError(f"{BACKEND_ENV}={backend!r}: expected sqlite-local or postgres-s3")


# --- pytest fixtures, re-exported by tests/contracts/conftest.py and tests/scale/conftest.py -----

import pytest  # noqa: E402 - fixtures live next to the services they start


@pytest.fixture(scope="session")
def pg_cluster():
    """One throwaway PostgreSQL cluster per test session (worker); tests create databases in it."""
    if not have_postgres():
        pytest.skip(f"PostgreSQL 15 binaries not found in {PG_BIN}")
    cluster = PostgresCluster().start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def moto_s3(tmp_path_factory):
    server = MotoS3(tmp_path_factory.mktemp("moto")).start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_engine(request, tmp_path):
    """A migrated metadata database on each backend: a temp SQLite file, then a fresh PostgreSQL
    database in the session's throwaway cluster."""
    from aicommons.db.engine import make_engine, upgrade_schema

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'hub.db'}"
    else:
        url = request.getfixturevalue("pg_cluster").create_database()
    engine = make_engine(url)
    upgrade_schema(engine)
    yield engine
    engine.dispose()
