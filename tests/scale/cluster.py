"""A scaled-out deployment on loopback: N ``aicommons serve`` replicas sharing one PostgreSQL
database, one S3 bucket (moto), one git folder and one secret key, behind nginx.

Used by ``test_replicas.py`` and by ``bench_replicas.py`` (the numbers in docs/deploy.md).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.backends import MotoS3, PostgresCluster, free_port
from tests.conftest import ALICE_TOKEN, LiveHub, server_env, start_hub, stop_hub, wait_healthy
from tests.scale.conftest import s3_storage_url, seed

NGINX_CONF = """
{user}
worker_processes 2;
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {root}/client_body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    client_max_body_size 0;
    upstream hub {{
{servers}
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://hub;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_request_buffering off;
            proxy_buffering off;
            proxy_read_timeout 600s;
            proxy_send_timeout 600s;
            proxy_next_upstream error timeout;
        }}
    }}
}}
"""


class Nginx:
    def __init__(self, upstream_ports: list[int]):
        self.root = Path(tempfile.mkdtemp(prefix="aicommons-nginx-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        servers = "\n".join(f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;" for p in upstream_ports)
        # As root, nginx would switch its workers to "nobody", who cannot read our temp folders.
        user = "user root;" if os.geteuid() == 0 else ""
        (self.root / "nginx.conf").write_text(NGINX_CONF.format(user=user, root=self.root, servers=servers,
                                                               port=self.port))
        self.process: subprocess.Popen | None = None

    def start(self) -> Nginx:
        with open(self.root / "stderr.log", "wb") as stderr:  # nginx keeps its own copy
            self.process = subprocess.Popen(["nginx", "-p", str(self.root), "-c", str(self.root / "nginx.conf")],
                                            stdout=subprocess.DEVNULL, stderr=stderr)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                httpx.get(f"{self.url}/api/health", timeout=2)
                return self
            except httpx.HTTPError:
                if self.process.poll() is not None:
                    raise RuntimeError((self.root / "stderr.log").read_text()) from None
                time.sleep(0.1)
        raise RuntimeError("nginx did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class Deployment:
    root: Path
    env: dict
    replicas: list[LiveHub] = field(default_factory=list)
    nginx: Nginx | None = None
    pg: PostgresCluster | None = None
    s3: MotoS3 | None = None

    @property
    def url(self) -> str:
        return self.nginx.url

    def start_replica(self, index: int, port: int | None = None) -> LiveHub:
        data_dir = self.root / f"replica-{index}"
        data_dir.mkdir(exist_ok=True)
        hub = start_hub(data_dir, port or free_port(), **self.env)
        hub.tokens = {"alice": ALICE_TOKEN}
        return hub

    def kill_replica(self, index: int) -> None:
        self.replicas[index].process.send_signal(signal.SIGKILL)
        self.replicas[index].process.wait()

    def restart_replica(self, index: int) -> None:
        old = self.replicas[index]
        port = int(old.url.rsplit(":", 1)[1])
        self.replicas[index] = self.start_replica(index, port)
        wait_healthy(self.replicas[index].url, self.replicas[index].process)

    def stop(self) -> None:
        if self.nginx:
            self.nginx.stop()
        for hub in self.replicas:
            if hub.process.poll() is None:
                stop_hub(hub)
        if self.s3:
            self.s3.stop()
        if self.pg:
            self.pg.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def start_deployment(replicas: int = 3, **extra_env: str) -> Deployment:
    root = Path(tempfile.mkdtemp(prefix="aicommons-scale-"))
    dep = Deployment(root=root, env={})
    try:
        dep.pg = PostgresCluster().start()
        dep.s3 = MotoS3(root).start()
        (root / "git").mkdir()
        dep.env = {
            "AICOMMONS_DATABASE_URL": dep.pg.create_database("hub"),
            "AICOMMONS_STORAGE_URL": s3_storage_url(dep.s3, dep.s3.create_bucket()),
            "AICOMMONS_GIT_DIR": str(root / "git"),
            "AICOMMONS_SECRET_KEY": secrets.token_hex(32),
            "AICOMMONS_TRUSTED_PROXIES": "127.0.0.1",  # nginx, on this machine
            **extra_env,
        }
        seed(server_env(root / "seed", 0, **dep.env))
        dep.replicas = [dep.start_replica(i) for i in range(replicas)]
        dep.nginx = Nginx([int(h.url.rsplit(":", 1)[1]) for h in dep.replicas]).start()
        return dep
    except BaseException:
        dep.stop()
        raise
