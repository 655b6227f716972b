"""Run huggingface_hub's own test suite against a fresh AI Commons server.

    .venv/bin/python conformance/run.py            # full run (LFS path), rewrites docs/compatibility.md
    .venv/bin/python conformance/run.py --fast     # CI subset (conformance/fast.txt), checks the threshold
    .venv/bin/python conformance/run.py --xet      # Xet enabled: fails where the server's Xet support ends
    .venv/bin/python conformance/run.py -- tests/test_hf_api.py::TestCommitApi -x   # any pytest selection

Exit status: full LFS run: 1 below the 95% target; --fast: 1 below conformance/fast_threshold.json;
otherwise 0 whatever the tests did (the report says), or pytest's status if the run itself broke.

Steps: download the huggingface_hub sdist of the pinned version (``pip download --no-binary``) into
``.conformance/cache``; unpack its ``tests/`` into ``.conformance/huggingface_hub-<v>/``; add our
harness (``tests/__init__.py``, ``conformance/conftest.py``, ``conformance/pytest.ini``); point the
tests at our server (``ENDPOINT_STAGING`` read from ``HUB_TEST_ENDPOINT``); start ``aicommons serve``
on a free port with a fresh data dir, seeded with the users, tokens and org the tests expect (values
read from the sdist's ``testing_constants.py``); run pytest; stop the server; write the report.

Nothing of the sdist is copied into the repository: it lives in the git-ignored ``.conformance/``.
Everything after ``--`` goes to pytest unchanged (e.g. ``-- -k whoami``); such a narrowed run writes
``.conformance/report-<run>-adhoc.md`` instead of the docs.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import report  # noqa: E402  (conformance/report.py)

HFH_VERSION = "2.4.0"
WORK = ROOT / ".conformance"
ENDPOINT_ENV = "HUB_TEST_ENDPOINT"
STAGING_URL = "https://hub-ci.huggingface.co"
# Not in testing_constants.py: test_hf_api.py::TestHfApiEndpoints::test_whoami_with_passing_token.
ORG_NAME, ORG_FULLNAME = "valid_org_hub", "Dummy Hub Org"
DESELECTED = HERE / "deselected.txt"
FAST_LIST = HERE / "fast.txt"
THRESHOLD = HERE / "fast_threshold.json"
DOC = ROOT / "docs" / "compatibility.md"
TARGET = 0.95  # issue 3: at least 95% of the selected tests pass on the LFS path


# --------------------------------------------------------------------------------------------------
# The upstream tests
# --------------------------------------------------------------------------------------------------


# Imported by the upstream tests or needed by the run (module name: package to install).
TEST_DEPS = {"pytest": "pytest", "xdist": "pytest-xdist", "pytest_timeout": "pytest-timeout",
             "pytest_mock": "pytest-mock", "pytest_asyncio": "pytest-asyncio", "PIL": "Pillow", "jedi": "jedi"}


def check_test_deps() -> None:
    import importlib.util

    missing = sorted(pkg for mod, pkg in TEST_DEPS.items() if importlib.util.find_spec(mod) is None)
    if missing:
        raise SystemExit(f"conformance: install the test dependencies first: pip install {' '.join(missing)}")


def fetch_sdist(cache: Path) -> Path:
    name = f"huggingface_hub-{HFH_VERSION}.tar.gz"
    target = cache / name
    if not target.exists():
        cache.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps",
               f"huggingface_hub=={HFH_VERSION}", "-d", str(cache), "--quiet"]
        print("+", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
    if not target.exists():
        raise SystemExit(f"pip download did not produce {target}")
    return target


def unpack_tests(sdist: Path, dest: Path) -> Path:
    """Fresh copy of the sdist's tests/ under dest/ (returned: the rootdir for pytest)."""
    prefix = f"huggingface_hub-{HFH_VERSION}/tests/"
    root = dest / f"huggingface_hub-{HFH_VERSION}"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    with tarfile.open(sdist) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(prefix) and (m.isfile() or m.isdir())]
        if not members:
            raise SystemExit(f"{sdist.name} has no tests/ folder")
        for m in members:
            m.name = m.name[len(f"huggingface_hub-{HFH_VERSION}/"):]
        tar.extractall(root, members=members, filter="data")
    return root


def patch_text(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text()
    found = text.count(old)
    if found != count:
        raise SystemExit(f"harness patch: expected {count} occurrence(s) of {old!r} in {path.name}, found {found}")
    path.write_text(text.replace(old, new))


def install_harness(root: Path) -> Path:
    tests = root / "tests"
    (tests / "__init__.py").write_text("")
    shutil.copyfile(HERE / "conftest.py", tests / "conftest.py")
    shutil.copyfile(HERE / "pytest.ini", root / "pytest.ini")
    # The staging endpoint is hard-coded upstream; read ours from the environment instead.
    patch_text(tests / "testing_constants.py", f'ENDPOINT_STAGING = "{STAGING_URL}"',
               f'import os\nENDPOINT_STAGING = os.environ.get("{ENDPOINT_ENV}", "{STAGING_URL}").rstrip("/")')
    # TestHfApiRepoFileExists::test_file_exists monkeypatches ENDPOINT with the literal staging URL.
    api_tests = tests / "test_hf_api.py"
    patch_text(api_tests, f'"{STAGING_URL}/{{repo_id}}/resolve/{{revision}}/{{filename}}"',
               'ENDPOINT_STAGING + "/{repo_id}/resolve/{revision}/{filename}"')
    patch_text(api_tests, f'monkeypatch.setattr(constants, "ENDPOINT", "{STAGING_URL}")',
               'monkeypatch.setattr(constants, "ENDPOINT", ENDPOINT_STAGING)')
    return root


def read_constants(tests: Path) -> dict[str, str]:
    values = {}
    for node in ast.parse((tests / "testing_constants.py").read_text()).body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    values[target.id] = node.value.value
    missing = {"USER", "FULL_NAME", "TOKEN", "OTHER_USER", "OTHER_TOKEN"} - set(values)
    if missing:
        raise SystemExit(f"testing_constants.py lacks {sorted(missing)}")
    return values


# --------------------------------------------------------------------------------------------------
# The server under test
# --------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Hub:
    """``aicommons serve`` on a free port with a fresh data dir; always stopped by ``close()``."""

    def __init__(self, data_dir: Path, log_path: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.bin = Path(sys.executable).parent / "aicommons"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AICOMMONS_")}
        self.env.update(AICOMMONS_DATA_DIR=str(data_dir), AICOMMONS_HOST="127.0.0.1",
                        AICOMMONS_PORT=str(self.port), AICOMMONS_LOG_LEVEL="warning")
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def admin(self, *args: str) -> None:
        done = subprocess.run([str(self.bin), *args], env=self.env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"aicommons {' '.join(args)} failed:\n{done.stdout}{done.stderr}")

    def seed(self, c: dict[str, str]) -> None:
        self.admin("user", "create", c["USER"], "--fullname", c["FULL_NAME"])
        self.admin("user", "create", c["OTHER_USER"], "--fullname", c["OTHER_USER"])
        self.admin("org", "create", ORG_NAME, "--fullname", ORG_FULLNAME, "--member", c["USER"])
        self.admin("token", "create", c["USER"], "--value", c["TOKEN"], "--name", "conformance")
        self.admin("token", "create", c["OTHER_USER"], "--value", c["OTHER_TOKEN"], "--name", "conformance")

    def start(self) -> None:
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen([str(self.bin), "serve", "--port", str(self.port)], env=self.env,
                                        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.time() + 90
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"server exited with {self.process.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise SystemExit(f"server not healthy after 90s; see {self.log_path}")

    def close(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)  # the group holds only the server we started
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


# --------------------------------------------------------------------------------------------------
# pytest
# --------------------------------------------------------------------------------------------------


def fast_targets() -> list[str]:
    lines = [line.split("#", 1)[0].strip() for line in FAST_LIST.read_text().splitlines()]
    return [line for line in lines if line]


def pytest_env(hub_url: str, xet: bool, out_dir: Path, scratch: Path) -> dict[str, str]:
    # No inherited client settings; no proxies either: the tests only talk to the loopback server, and
    # upstream's proxy test expects exactly the proxies it sets itself.
    proxies = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HF_", "HUGGINGFACE_", "HUGGING_FACE_")) and k != ENDPOINT_ENV
           and k.lower() not in proxies and k not in ("NO_COLOR", "PYTEST_ADDOPTS", "PYTEST_PLUGINS")}
    env.update({
        "HF_ENDPOINT": hub_url,
        ENDPOINT_ENV: hub_url,
        "HF_TOKEN": "",
        "HUGGING_FACE_HUB_TOKEN": "",
        "HF_HOME": str(scratch / "hf-home"),  # the conftest gives each test its own; this guards the rest
        # A private HOME: some upstream tests configure git (`git config --global credential.helper`,
        # the `store` helper writing ~/.git-credentials); they must not touch the machine's user.
        "HOME": str(scratch / "home"),
        "XDG_CONFIG_HOME": str(scratch / "home" / ".config"),
        "XDG_CACHE_HOME": str(scratch / "home" / ".cache"),
        "XDG_DATA_HOME": str(scratch / "home" / ".local" / "share"),
        "DISABLE_SYMLINKS_IN_WINDOWS_TESTS": "1",
        "AICOMMONS_CONFORMANCE_DESELECT": str(DESELECTED),
        "AICOMMONS_CONFORMANCE_OUT": str(out_dir),
        "AICOMMONS_CONFORMANCE_RUN": "xet" if xet else "lfs",
        # The expected CLI output in test_cli_output.py has no ANSI colours.
        "NO_COLOR": "1",
    })
    if not xet:
        env["HF_HUB_DISABLE_XET"] = "1"
    return env


def pytest_command(root: Path, args: argparse.Namespace, junit: Path, targets: list[str]) -> list[str]:
    marks = "not production" if args.xet else "not production and not xet"
    cmd = [sys.executable, "-m", "pytest", "-c", str(root / "pytest.ini"), "--rootdir", str(root),
           "-m", marks, f"--junitxml={junit}", "-q", "-p", "no:randomly"]
    if args.workers > 1:
        cmd += ["-n", str(args.workers), "--dist", "loadscope"]
    return cmd + targets + args.pytest_args


def display_command(args: argparse.Namespace) -> str:
    parts = [".venv/bin/python conformance/run.py"]
    if args.fast:
        parts.append("--fast")
    if args.xet:
        parts.append("--xet")
    if args.workers != 2:
        parts.append(f"--workers {args.workers}")
    if args.pytest_args:
        parts += ["--", *args.pytest_args]
    return " ".join(parts)


# --------------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    own, rest = argv, []
    if "--" in argv:
        i = argv.index("--")
        own, rest = argv[:i], argv[i + 1:]
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fast", action="store_true", help="run the CI subset (conformance/fast.txt) and "
                        "fail if it does worse than conformance/fast_threshold.json (LFS path only)")
    parser.add_argument("--xet", action="store_true", help="run with Xet enabled (selects xet-marked tests "
                        "too); expected to fail until the server speaks the whole Xet protocol")
    parser.add_argument("--workers", type=int, default=2, help="pytest-xdist workers (default 2; 1 = no xdist)")
    parser.add_argument("--doc", type=Path, default=None, help="report file to write (default: "
                        "docs/compatibility.md for a full run, .conformance/report-<run>.md otherwise)")
    parser.add_argument("--no-doc", action="store_true", help="do not write the report")
    parser.add_argument("--record-threshold", action="store_true", help="with --fast: store this run's pass "
                        "rate (rounded down) as the new threshold")
    parser.add_argument("--keep", action="store_true", help="keep the server data dir under .conformance/")
    args = parser.parse_args(own)
    args.pytest_args = rest
    if args.workers > 2:
        parser.error("at most 2 workers: the machine is shared")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    run_kind = "xet" if args.xet else "lfs"
    label = f"{run_kind}-fast" if args.fast else run_kind
    if args.pytest_args:
        label += "-adhoc"  # a narrowed run never overwrites the results of a full or fast one
    check_test_deps()
    WORK.mkdir(exist_ok=True)
    sdist = fetch_sdist(WORK / "cache")
    root = install_harness(unpack_tests(sdist, WORK))
    constants = read_constants(root / "tests")

    out_dir = WORK / f"out-{label}"
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    scratch = Path(tempfile.mkdtemp(prefix=f"conformance-{label}-", dir=WORK))
    hub = Hub(scratch / "hub-data", out_dir / "server.log")
    junit = out_dir / "junit.xml"
    targets = fast_targets() if args.fast else ["tests"]
    if any(a == "tests" or a.startswith("tests/") for a in args.pytest_args):
        targets = []  # the pytest arguments name the tests to run
    started = time.time()
    env = None
    try:
        hub.data_dir.mkdir()
        hub.seed(constants)
        hub.start()
        print(f"AI Commons under test at {hub.url} (data {hub.data_dir}, log {hub.log_path})", flush=True)
        cmd = pytest_command(root, args, junit, targets)
        print("+", " ".join(cmd), flush=True)
        env = pytest_env(hub.url, args.xet, out_dir, scratch)
        (scratch / "home").mkdir()
        shutil.copyfile(HERE / "gitconfig", scratch / "home" / ".gitconfig")
        rc = subprocess.run(cmd, cwd=root, env=env).returncode
    finally:
        hub.close()
        if env is not None:  # the `cache` credential helper some tests configure leaves a daemon behind
            try:
                subprocess.run(["git", "credential-cache", "exit"], env=env, capture_output=True, timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                pass
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    elapsed = time.time() - started

    if not junit.exists():
        print(f"pytest wrote no junit report (exit {rc})", file=sys.stderr)
        return rc or 1
    results = report.load_results(junit, out_dir, DESELECTED, run_kind)
    results.update(command=display_command(args), run=run_kind, fast=args.fast, elapsed_s=round(elapsed),
                   hfh_version=HFH_VERSION, pytest_exit=rc, targets=targets)
    (out_dir / "results.json").write_text(json.dumps(results, indent=1, sort_keys=True))
    summary = report.summary_line(results)
    print(summary, flush=True)

    if not args.no_doc:
        full = not args.fast and not args.pytest_args
        doc = args.doc or (DOC if full else WORK / f"report-{label}.md")
        report.write_doc(doc, results, HERE)
        print(f"report written to {doc}")

    if args.fast and not args.pytest_args and run_kind == "lfs":
        return check_threshold(results, args.record_threshold)
    if rc not in (0, 1):  # 1 = some tests failed (the report says which); anything else broke the run
        return rc
    if run_kind == "lfs" and not args.pytest_args and results["totals"]["pass_rate"] < TARGET:
        print(f"below the target: {results['totals']['pass_rate']:.1%} < {TARGET:.0%}", file=sys.stderr)
        return 1
    return 0


def check_threshold(results: dict, record: bool) -> int:
    totals = results["totals"]
    rate = totals["pass_rate"]
    if record:
        floor = int(rate * 1000) / 1000
        THRESHOLD.write_text(json.dumps({"min_pass_rate": floor, "min_passed": totals["passed"],
                                         "recorded_with": results["command"]}, indent=1) + "\n")
        print(f"threshold recorded: pass rate >= {floor}, passed >= {totals['passed']}")
        return 0
    want = json.loads(THRESHOLD.read_text())
    ok = rate >= want["min_pass_rate"] and totals["passed"] >= want["min_passed"]
    verdict = "OK" if ok else "REGRESSION"
    print(f"fast subset: {totals['passed']} passed, pass rate {rate:.1%}; threshold "
          f"{want['min_pass_rate']:.1%} and {want['min_passed']} passed -> {verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
