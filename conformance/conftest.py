"""AI Commons harness for huggingface_hub's own test suite (written for AI Commons, not taken upstream).

``conformance/run.py`` copies this file to ``tests/conftest.py`` inside the unpacked huggingface_hub
sdist. It provides what the upstream test modules expect from their conftest:

- fixtures ``api``, ``api_prod``, ``repo_factory`` (and the ``RepoFactory`` type the modules import),
  ``new_repo_id``;
- the markers ``production``, ``xet``, ``no_xet``, ``git_lfs`` and ``deprecated`` and the suite markers
  ``api`` / ``transfer`` / ``inference`` (a test without a suite marker gets ``api``);
- a fresh cache, token and assets location for every test, so no test sees another's files;
- the deselection list of ``conformance/deselected.txt`` (applied after ``-m``), recorded for the report;
- per test, the number of HTTP requests it sent to our server and the other hosts it tried to reach
  (as junit properties ``server_requests`` / ``external_hosts``), so the report can tell tests that
  exercise the hub from pure client unit tests and from tests that need huggingface.co itself.

The target server comes from ``tests/testing_constants.py::ENDPOINT_STAGING``, which the runner patches
to read ``HUB_TEST_ENDPOINT``.
"""

from __future__ import annotations

import fnmatch
import json
import os
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2
import pytest
from huggingface_hub import HfApi, RepoUrl, constants
from huggingface_hub.utils._runtime import is_package_available, is_xet_available

from .testing_constants import ENDPOINT_PRODUCTION, ENDPOINT_PRODUCTION_URL_SCHEME, ENDPOINT_STAGING, TOKEN, USER
from .testing_utils import repo_name

SUITE_MARKERS = ("api", "transfer", "inference")


# --------------------------------------------------------------------------------------------------
# Fixtures the upstream modules use
# --------------------------------------------------------------------------------------------------


class RepoFactory:
    """Creates repos on the hub under test and deletes them when the test ends.

    ``repo_factory()`` creates a model repo named ``repo_name()`` under the token's user;
    ``repo_factory("dataset", repo_id=..., token=..., private=..., visibility=..., space_sdk=...)``
    passes everything on to ``HfApi.create_repo``. Returns the ``RepoUrl``.
    """

    def __init__(self, endpoint: str, default_token: str) -> None:
        self._endpoint = endpoint
        self._default_token = default_token
        self._created: list[tuple[str, str, str]] = []

    def __call__(
        self, repo_type: str = "model", repo_id: str | None = None, *, token: str | None = None, **kwargs: Any
    ) -> RepoUrl:
        token = token or self._default_token
        api = HfApi(endpoint=self._endpoint, token=token)
        url = api.create_repo(repo_id or repo_name(), repo_type=repo_type, **kwargs)
        self._created.append((url.repo_id, url.repo_type or repo_type, token))
        return url

    def cleanup(self) -> None:
        for repo_id, repo_type, token in reversed(self._created):
            try:
                HfApi(endpoint=self._endpoint, token=token).delete_repo(repo_id, repo_type=repo_type, missing_ok=True)
            except Exception:  # a test may have moved or deleted it; cleanup must not fail the test
                pass
        self._created.clear()


@pytest.fixture(scope="session")
def api() -> HfApi:
    """A client for the hub under test, authenticated as the CI user (class-scoped fixtures use it too)."""
    return HfApi(endpoint=ENDPOINT_STAGING, token=TOKEN)


@pytest.fixture(scope="session")
def api_prod() -> HfApi:
    """An anonymous client for huggingface.co (only ``production`` tests use it)."""
    return HfApi(endpoint=ENDPOINT_PRODUCTION)


@pytest.fixture
def repo_factory():
    factory = RepoFactory(ENDPOINT_STAGING, TOKEN)
    try:
        yield factory
    finally:
        factory.cleanup()


@pytest.fixture
def new_repo_id():
    """A ``user/name`` that does not exist yet; whatever the test creates under it is deleted afterwards."""
    repo_id = f"{USER}/{repo_name()}"
    yield repo_id
    for repo_type in ("model", "dataset", "space"):
        try:
            HfApi(endpoint=ENDPOINT_STAGING, token=TOKEN).delete_repo(repo_id, repo_type=repo_type, missing_ok=True)
        except Exception:
            pass


@pytest.fixture(autouse=True)
def _isolated_hf_home(monkeypatch):
    """Every test gets its own HF home: hub cache, assets, Xet cache, token and stored tokens."""
    with tempfile.TemporaryDirectory(prefix="hf-home-", ignore_cleanup_errors=True) as home:
        hub_cache = os.path.join(home, "hub")
        monkeypatch.setattr(constants, "HF_HOME", home)
        monkeypatch.setattr(constants, "HF_HUB_CACHE", hub_cache)
        monkeypatch.setattr(constants, "HUGGINGFACE_HUB_CACHE", hub_cache)
        monkeypatch.setattr(constants, "HF_ASSETS_CACHE", os.path.join(home, "assets"))
        monkeypatch.setattr(constants, "HF_XET_CACHE", os.path.join(home, "xet"))
        monkeypatch.setattr(constants, "HF_TOKEN_PATH", os.path.join(home, "token"))
        monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", os.path.join(home, "stored_tokens"))
        yield


@pytest.fixture(autouse=True)
def _fresh_token_caches(monkeypatch):
    """The client caches the resolved (OAuth / OIDC) token per process; each test starts without it."""
    from huggingface_hub.utils import _auth

    for name in ("_OAUTH_REFRESH_CACHE", "_OIDC_TOKEN_CACHE"):
        if hasattr(_auth, name):
            monkeypatch.setattr(_auth, name, None)
    yield


@pytest.fixture(autouse=True)
def _marker_policy(request, monkeypatch):
    """What the markers mean: target endpoint for ``production``, Xet on/off for ``xet``/``no_xet``."""
    node = request.node
    if node.get_closest_marker("git_lfs") and not _truthy(os.environ.get("RUN_GIT_LFS_TESTS")):
        pytest.skip("git-lfs test: set RUN_GIT_LFS_TESTS=1 to run it")
    if node.get_closest_marker("xet"):
        if not is_package_available("hf_xet"):
            pytest.skip("Xet test: hf_xet is not installed")
        monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", False)
    if node.get_closest_marker("no_xet") and is_xet_available():
        pytest.skip("test runs only without hf_xet (install-free or HF_HUB_DISABLE_XET=1)")
    if node.get_closest_marker("production"):
        monkeypatch.setattr(constants, "ENDPOINT", ENDPOINT_PRODUCTION)
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", ENDPOINT_PRODUCTION_URL_SCHEME)
    yield


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """``@pytest.mark.deprecated("name", ...)``: the test must emit a FutureWarning naming each of them."""
    marker = item.get_closest_marker("deprecated")
    if marker is None:
        return (yield)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FutureWarning)
        result = yield
    messages = [str(w.message) for w in caught if issubclass(w.category, FutureWarning)]
    for name in marker.args:
        if not any(name in message for message in messages):
            pytest.fail(f"expected a FutureWarning mentioning {name!r}, got {messages!r}")
    return result


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


# --------------------------------------------------------------------------------------------------
# Collection: suite markers, deselection list, record of what was left out
# --------------------------------------------------------------------------------------------------


def _load_patterns(path: str | None) -> list[tuple[str, str]]:
    """Entries of the deselection list that apply to this run (``[lfs]``/``[xet]`` limit one to a run)."""
    patterns = []
    if not path:
        return patterns
    run = os.environ.get("AICOMMONS_CONFORMANCE_RUN", "lfs")
    for raw in Path(path).read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pattern, _, reason = line.partition("#")
        pattern = pattern.strip()
        if pattern.startswith("["):
            scope, _, pattern = pattern[1:].partition("]")
            if scope.strip() != run:
                continue
            pattern = pattern.strip()
        patterns.append((pattern, reason.strip()))
    return patterns


def _matches(nodeid: str, pattern: str) -> bool:
    if nodeid == pattern or nodeid.startswith(pattern + "::") or nodeid.startswith(pattern + "["):
        return True
    return ("*" in pattern or "?" in pattern) and fnmatch.fnmatchcase(nodeid, pattern)


_COLLECTED: dict[str, list[str]] = {}


def pytest_ignore_collect(collection_path, config):
    """Whole-module entries of the deselection list are not even imported (some cannot be)."""
    if not collection_path.is_relative_to(config.rootpath):
        return None
    rel = collection_path.relative_to(config.rootpath).as_posix()
    for pattern, _ in _load_patterns(os.environ.get("AICOMMONS_CONFORMANCE_DESELECT")):
        if "::" not in pattern and pattern.endswith(".py") and fnmatch.fnmatchcase(rel, pattern):
            return True
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session, config, items):
    for item in items:
        names = {m.name for m in item.iter_markers()}
        if names & {"xet", "no_xet"} and "transfer" not in names:
            item.add_marker(pytest.mark.transfer)
            names.add("transfer")
        if not names & set(SUITE_MARKERS):
            item.add_marker(pytest.mark.api)
        _COLLECTED[item.nodeid] = sorted(names & {"production", "xet", "no_xet", "transfer", "inference"})


class _DeselectAfterMarkers:
    """Applies ``deselected.txt`` after ``-m`` so the report attributes each test to one reason."""

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, session, config, items):
        patterns = _load_patterns(os.environ.get("AICOMMONS_CONFORMANCE_DESELECT"))
        selected_by_marker = {item.nodeid for item in items}
        kept, dropped = [], []
        by_pattern: dict[str, list[str]] = {}
        for item in items:
            hit = next((p for p, _ in patterns if _matches(item.nodeid, p)), None)
            if hit is None:
                kept.append(item)
            else:
                dropped.append(item)
                by_pattern.setdefault(hit, []).append(item.nodeid)
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = kept
        _write_collection_record(selected_by_marker, by_pattern, patterns, [item.nodeid for item in kept])


def _write_collection_record(selected_by_marker, by_pattern, patterns, kept) -> None:
    out = os.environ.get("AICOMMONS_CONFORMANCE_OUT")
    if not out:
        return
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    by_marker = {
        nodeid: markers for nodeid, markers in _COLLECTED.items() if nodeid not in selected_by_marker
    }
    record = {
        "collected": len(_COLLECTED),
        "deselected_by_marker": by_marker,
        "deselected_by_pattern": by_pattern,
        "reasons": {p: r for p, r in patterns},
        "selected": kept,
    }
    Path(out).mkdir(parents=True, exist_ok=True)
    (Path(out) / f"collection-{worker}.json").write_text(json.dumps(record, indent=1, sort_keys=True))


def pytest_configure(config):
    config.pluginmanager.register(_DeselectAfterMarkers(), "aicommons-deselect")
    _install_request_probe()


# --------------------------------------------------------------------------------------------------
# Which hosts each test talked to
# --------------------------------------------------------------------------------------------------

_COUNTS = {"server": 0, "external": set()}
_LOCK = threading.Lock()
_SERVER_NETLOC = urlsplit(ENDPOINT_STAGING).netloc


def _note(url) -> None:
    netloc = f"{url.host}:{url.port}" if url.port else url.host
    with _LOCK:
        if netloc == _SERVER_NETLOC:
            _COUNTS["server"] += 1
        else:
            _COUNTS["external"].add(url.host)


def _install_request_probe() -> None:
    if getattr(httpx2.HTTPTransport, "_aicommons_probe", False):
        return
    sync_send = httpx2.HTTPTransport.handle_request
    async_send = httpx2.AsyncHTTPTransport.handle_async_request

    def handle_request(self, request):
        _note(request.url)
        return sync_send(self, request)

    async def handle_async_request(self, request):
        _note(request.url)
        return await async_send(self, request)

    httpx2.HTTPTransport.handle_request = handle_request
    httpx2.AsyncHTTPTransport.handle_async_request = handle_async_request
    httpx2.HTTPTransport._aicommons_probe = True


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    with _LOCK:
        _COUNTS["server"] = 0
        _COUNTS["external"] = set()


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item, nextitem):
    with _LOCK:
        server, external = _COUNTS["server"], sorted(_COUNTS["external"])
    item.user_properties.append(("server_requests", server))
    if external:
        item.user_properties.append(("external_hosts", ",".join(external)))
