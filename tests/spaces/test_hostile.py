"""A hostile Space: it tries to read the hub's data folder and another space's files, to see the
host's processes, to connect outside and to the hub's own port, to fork-bomb, to eat memory and to
fill the disk. Each attempt must be contained, the hub must keep serving, and the space must end in
RUNTIME_ERROR with a log that says what happened."""

from __future__ import annotations

import re
import time

import httpx
from huggingface_hub import CommitOperationAdd

from tests.conftest import unique_name
from tests.spaces.conftest import GRADIO, run_log, wait_stage

HOSTILE = b'''import os, socket, sys, time, urllib.request

def attempt(name, fn):
    try:
        result = fn()
    except BaseException as exc:
        print(f"CONTAINED {name}: {type(exc).__name__}: {exc}"[:300], flush=True)
    else:
        print(f"ESCAPED {name}: {result!r}"[:300], flush=True)

def host_processes():
    pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    if len(pids) > 10:
        return pids
    raise PermissionError(f"only the sandbox's own processes are visible: {pids}")

def fork_bomb():
    kids = []
    try:
        while len(kids) < 20000:
            pid = os.fork()
            if pid == 0:
                time.sleep(30)
                os._exit(0)
            kids.append(pid)
    finally:
        for k in kids:
            os.kill(k, 9)
        for k in kids:
            os.waitpid(k, 0)
    return len(kids)

def cpu_hog():
    """Two processes spinning for 3 s: with half a CPU for the whole space, about 1.5 CPU-seconds."""
    started = time.monotonic()
    kids = []
    for _ in range(2):
        pid = os.fork()
        if pid == 0:
            while time.monotonic() - started < 3:
                pass
            os._exit(0)
        kids.append(pid)
    for k in kids:
        os.waitpid(k, 0)
    wall = time.monotonic() - started
    used = os.times().children_user + os.times().children_system
    if used <= 0.5 * wall * 1.3:
        raise RuntimeError(f"throttled: {used:.2f} CPU-seconds in {wall:.2f} s")
    return f"{used:.2f} CPU-seconds in {wall:.2f} s"

def fill_disk():
    written = 0
    with open("/tmp/filler", "wb") as f:
        while written < 20 * 1024**3:
            f.write(b"x" * (1 << 20))
            f.flush()
            written += 1 << 20
    return written

def fill_disk_many_files():
    written = 0
    while written < 20 * 1024**3:
        with open(f"/home/user/app/filler-{written}", "wb") as f:
            f.write(b"y" * (4 << 20))
        written += 4 << 20
    return written

data = os.environ["HUB_DATA_DIR"]
attempt("read-hub-database", lambda: open(os.path.join(data, "hub.db"), "rb").read(16))
attempt("read-secret-key", lambda: open(os.path.join(data, "secret_key")).read())
attempt("list-data-folder", lambda: os.listdir(data))
attempt("read-other-space", lambda: os.listdir(os.environ["OTHER_SPACE_DIR"]))
attempt("change-own-files", lambda: open("/home/user/app/app.py", "a").write("# changed"))
attempt("see-host-processes", host_processes)
attempt("connect-outside", lambda: socket.create_connection(("1.1.1.1", 80), timeout=3))
attempt("connect-hub-port", lambda: socket.create_connection(("127.0.0.1", int(os.environ["HUB_REAL_PORT"])), timeout=3))
print("HUB-VIA-ENDPOINT", urllib.request.urlopen(os.environ["HF_ENDPOINT"] + "/api/health", timeout=10).status, flush=True)
attempt("cpu-hog", cpu_hog)
attempt("fork-bomb", fork_bomb)
attempt("memory-hog", lambda: len(bytearray(16 * 1024**3)))
attempt("disk-filler", fill_disk)
attempt("disk-filler-many-files", fill_disk_many_files)
print("hostile: done", flush=True)
sys.exit(3)
'''
ATTEMPTS = ("read-hub-database", "read-secret-key", "list-data-folder", "read-other-space", "change-own-files",
            "see-host-processes", "connect-outside", "connect-hub-port", "cpu-hog", "fork-bomb", "memory-hog", "disk-filler",
            "disk-filler-many-files")


def test_hostile_space_is_contained(spaces_api, spaces_hub):
    other = f"alice/{unique_name('other')}"
    spaces_api.create_repo(other, repo_type="space", space_sdk="static")
    spaces_api.upload_file(path_or_fileobj=b"<p>other</p>", path_in_repo="index.html", repo_id=other,
                           repo_type="space")
    assert httpx.get(f"{spaces_hub.url}/spaces-apps/{other}/").status_code == 200  # its files are exported
    other_dir = next((spaces_hub.data_dir / "spaces" / "src").iterdir())
    space_id = f"alice/{unique_name('hostile')}"
    spaces_api.create_repo(space_id, repo_type="space", space_sdk="gradio")
    for key, value in (("HUB_DATA_DIR", str(spaces_hub.data_dir)), ("OTHER_SPACE_DIR", str(other_dir)),
                       ("HUB_REAL_PORT", spaces_hub.url.rsplit(":", 1)[1])):
        spaces_api.add_space_variable(space_id, key, value)
    spaces_api.create_commit(space_id, repo_type="space", commit_message="hostile", operations=[
        CommitOperationAdd("app.py", HOSTILE), CommitOperationAdd("requirements.txt", GRADIO.encode())])
    deadline = time.time() + 300
    while "Not restarted again" not in (logs := run_log(spaces_hub, space_id)):
        assert httpx.get(f"{spaces_hub.url}/api/health", timeout=10).status_code == 200  # the hub keeps serving
        assert time.time() < deadline, logs[-3000:]
        time.sleep(2)
    assert "ESCAPED" not in logs, logs
    first_run = logs.split("hostile: done", 1)[0]
    for name in ATTEMPTS:
        assert re.search(rf"CONTAINED {name}: ", first_run), (name, first_run)
    assert "HUB-VIA-ENDPOINT 200" in first_run  # the hub itself stays reachable through HF_ENDPOINT
    assert re.search(r"CONTAINED fork-bomb: BlockingIOError", first_run)
    # The whole tree's CPU time is capped (AICOMMONS_SPACES_CPUS=0.5 in this hub) by a control group.
    assert "Limits by control group" in first_run and "0.5 CPU" in first_run, first_run
    assert re.search(r"CONTAINED cpu-hog: RuntimeError: throttled", first_run)
    assert re.search(r"CONTAINED memory-hog: MemoryError", first_run)
    assert re.search(r"CONTAINED disk-filler: OSError: \[Errno (27|28)\]", first_run)  # EFBIG / ENOSPC
    runtime = spaces_api.get_space_runtime(space_id)
    assert wait_stage(spaces_api, space_id, {"RUNTIME_ERROR"}, timeout=30) == "RUNTIME_ERROR"
    assert "exit status 3" in runtime.raw.get("errorMessage", ""), runtime.raw
    assert httpx.get(f"{spaces_hub.url}/api/health").status_code == 200


def test_a_build_reaches_the_package_index_and_nothing_else(spaces_api, spaces_hub):
    """A build's only network is the hub's proxy to the package index: a requirement (or a setup.py)
    that asks for the hub's own port or the cloud metadata address is refused, and the log says so."""
    port = spaces_hub.url.rsplit(":", 1)[1]
    for target in (f"http://127.0.0.1:{port}/api/health", "http://169.254.169.254/latest/meta-data/"):
        space_id = f"alice/{unique_name('reach')}"
        spaces_api.create_repo(space_id, repo_type="space", space_sdk="gradio")
        spaces_api.create_commit(space_id, repo_type="space", commit_message="app", operations=[
            CommitOperationAdd("app.py", b"print('hi')\n"),
            CommitOperationAdd("requirements.txt", f"probe @ {target}x.tar.gz\n".encode())])
        assert wait_stage(spaces_api, space_id, {"RUNNING", "BUILD_ERROR", "RUNTIME_ERROR"}) == "BUILD_ERROR"
        build = run_log(spaces_hub, space_id, "build")
        host = target.split("/")[2].split(":")[0]
        assert f"Build network: refused: {host} is not a package index host" in build, build
        spaces_api.delete_repo(space_id, repo_type="space")
