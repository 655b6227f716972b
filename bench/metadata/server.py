"""A real ``aicommons serve`` on a throwaway data dir, on SQLite or on a throwaway PostgreSQL cluster
(``tests/backends.py``), with the rate limits off so that the benchmark measures the work, not the
limiter."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # tests.backends: the PostgreSQL helpers the test suite uses
    sys.path.insert(0, str(ROOT))

USER = "bench"
TOKEN = "hf_bench_metadata_write_token_000001"

# Everything that would throttle or add background work during a measurement is off. Upload scanning
# is off too: the seeded commits would otherwise be scanned (10,000 files) while the load runs.
BENCH_SETTINGS = {
    "API_REQUESTS_PER_MINUTE": "0", "ANON_API_REQUESTS_PER_MINUTE": "0",
    "RESOLVER_REQUESTS_PER_MINUTE": "0", "ANON_RESOLVER_REQUESTS_PER_MINUTE": "0",
    "SCAN_UPLOADS": "false", "LOG_LEVEL": "warning",
    # PostgreSQL deployments must share an explicit key; set one on both databases alike.
    "SECRET_KEY": "bench-metadata-secret-key-0123456789abcdef",
}


def free_port() -> int:
    from tests.backends import free_port as _free_port

    return _free_port()


class Database:
    """Where the hub's metadata lives: ``sqlite`` (a file in the data dir) or ``postgres`` (a fresh
    cluster, durability off as in the test suite: we measure query paths, not fsync)."""

    def __init__(self, kind: str, data_dir: Path):
        self.kind = kind
        self.cluster = None
        if kind == "sqlite":
            self.url = f"sqlite:///{data_dir / 'hub.db'}"
        elif kind == "postgres":
            from tests.backends import PostgresCluster, have_postgres

            if not have_postgres():
                raise RuntimeError("PostgreSQL 15 binaries not found (apt-get install postgresql-15)")
            self.cluster = PostgresCluster().start()
            self.url = self.cluster.create_database("hub")
        else:
            raise ValueError(f"unknown database {kind!r}: sqlite or postgres")

    def kill(self) -> None:
        """Stop at once, dropping whatever requests are still queued (SQLite's WAL and PostgreSQL
        both recover; nothing the benchmark reads is written by these requests)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        self.process = None

    def stop(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()


@dataclass
class Hub:
    url: str
    port: int
    data_dir: Path
    env: dict
    process: subprocess.Popen | None = None

    def cli(self, *args: str) -> str:
        proc = subprocess.run([sys.executable, "-m", "aicommons.cli.main", *args], env=self.env, cwd=ROOT,
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"aicommons {' '.join(args)} failed: {proc.stderr[-2000:]}")
        return proc.stdout

    def start(self, timeout: float = 120) -> Hub:
        log = open(self.data_dir.parent / f"server-{self.port}.log", "ab")
        self.process = subprocess.Popen([sys.executable, "-m", "aicommons.cli.main", "serve"], env=self.env,
                                        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"hub exited with {self.process.returncode}; see {log.name}")
            try:
                if httpx.get(f"{self.url}/api/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("hub did not become healthy")

    def kill(self) -> None:
        """Stop at once, dropping whatever requests are still queued (SQLite's WAL and PostgreSQL
        both recover; nothing the benchmark reads is written by these requests)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:  # the in-process job worker and idle keep-alive clients can hold a graceful stop
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None


def make_hub(database: Database, data_dir: Path) -> Hub:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not (k.startswith("AICOMMONS_") or k.startswith("HF_"))}
    env.update({f"AICOMMONS_{k}": v for k, v in BENCH_SETTINGS.items()})
    env.update(AICOMMONS_DATA_DIR=str(data_dir), AICOMMONS_PORT=str(port), AICOMMONS_HOST="127.0.0.1",
               AICOMMONS_DATABASE_URL=database.url, HF_HUB_OFFLINE="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), env.get("PYTHONPATH", "")) if p)
    return Hub(url=f"http://127.0.0.1:{port}", port=port, data_dir=data_dir, env=env)


def scratch_dir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
