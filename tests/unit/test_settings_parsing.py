"""Configuration fails fast: a bad value is refused at start-up, naming its variable."""

from __future__ import annotations

import subprocess
import sys

import pytest

from aicommons.config import STORAGE_SCHEMES, Settings, SettingsError
from aicommons.inference.settings import InferenceSettings
from aicommons.storage import BACKENDS


@pytest.fixture
def env(monkeypatch, tmp_path):
    for name in list(__import__("os").environ):
        if name.startswith("AICOMMONS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AICOMMONS_DATA_DIR", str(tmp_path))
    return monkeypatch


@pytest.mark.parametrize(("variable", "value", "says"), [
    ("PORT", "eighty", "expected an integer"),
    ("PORT", "-1", "at least 0"),
    ("MAX_COMMIT_BODY_BYTES", "1GiB", "expected an integer"),
    ("JOB_WORKERS", "-1", "at least 0"),
    ("TOKEN_CACHE_SECONDS", "soon", "expected a number"),
    ("SCAN_UPLOADS", "maybe", "expected true or false"),
    ("SHARED_LIMITS", "sometimes", "expected one of auto, on, off"),
    ("LOG_LEVEL", "loud", "expected one of"),
    ("DATABASE_URL", "mysql://x/y", "expected sqlite"),
    ("STORAGE_URL", "ftp://bucket/x", "expected a URL starting with"),
    ("STORAGE_QUOTA_DEFAULT", "lots", "is not a size"),
    ("STORAGE_QUOTA_DEFAULT", "5 furlongs", "is not a size"),
    ("STORAGE_ACCOUNTING_MINUTES", "-5", "at least 0"),
    ("TRUSTED_PROXIES", "127.0.0.1,nginx.internal", "is not an IP address or network"),
])
def test_bad_values_name_their_variable(env, variable, value, says):
    env.setenv(f"AICOMMONS_{variable}", value)
    with pytest.raises(SettingsError) as caught:
        Settings.from_env()
    assert f"AICOMMONS_{variable}=" in str(caught.value) and says in str(caught.value)


def test_trusted_proxies_never_cover_the_space_relay(env):
    env.setenv("AICOMMONS_TRUSTED_PROXIES", " 127.0.0.1, 10.0.0.0/24 ,::1")
    settings = Settings.from_env()
    assert settings.trusted_proxies == "127.0.0.1,10.0.0.0/24,::1"
    settings.check_can_serve()  # 127.0.0.2, where Space apps come from, is not listed
    for covering in ("127.0.0.0/8", "*", "127.0.0.2"):
        env.setenv("AICOMMONS_TRUSTED_PROXIES", covering)
        with pytest.raises(SettingsError, match="forge their client IP"):
            Settings.from_env().check_can_serve()
    env.setenv("AICOMMONS_SPACES_RUN", "false")  # a hub that runs no Space may trust any proxy
    Settings.from_env().check_can_serve()


def test_good_values_parse(env):
    env.setenv("AICOMMONS_SCAN_UPLOADS", "off")
    env.setenv("AICOMMONS_DIRECT_UPLOADS", "Yes")
    env.setenv("AICOMMONS_LOG_LEVEL", "WARNING")
    settings = Settings.from_env()
    assert (settings.scan_uploads, settings.direct_uploads, settings.log_level) == (False, True, "warning")


def test_storage_quota_sizes(env):
    assert Settings.from_env().storage_quota_default is None  # empty: unlimited
    for text, size in (("1000", 1000), ("500MB", 500 * 1000 ** 2), ("100 GiB", 100 * 1024 ** 3), ("1.5TB", 1.5e12)):
        env.setenv("AICOMMONS_STORAGE_QUOTA_DEFAULT", text)
        assert Settings.from_env().storage_quota_default == size


def test_inference_settings_use_the_same_parser(env):
    env.setenv("AICOMMONS_INFERENCE_MAX_RUNNING", "lots")
    with pytest.raises(SettingsError, match="AICOMMONS_INFERENCE_MAX_RUNNING='lots': expected an integer"):
        InferenceSettings.from_env()
    env.setenv("AICOMMONS_INFERENCE_MAX_RUNNING", "4")
    env.setenv("AICOMMONS_INFERENCE_ANON_ALLOWED", "nope")
    with pytest.raises(SettingsError, match="AICOMMONS_INFERENCE_ANON_ALLOWED"):
        InferenceSettings.from_env()


def test_storage_schemes_match_the_backends():
    assert set(STORAGE_SCHEMES) == set(BACKENDS)


def test_postgresql_needs_an_explicit_shared_secret(env):
    env.setenv("AICOMMONS_DATABASE_URL", "postgresql://u:p@127.0.0.1:1/db")
    settings = Settings.from_env()  # parsing alone is fine: admin commands need no key
    with pytest.raises(SettingsError, match="AICOMMONS_SECRET_KEY is empty"):
        settings.check_can_serve()
    env.setenv("AICOMMONS_SECRET_KEY", "short")
    with pytest.raises(SettingsError, match="too short"):
        Settings.from_env().check_can_serve()
    env.setenv("AICOMMONS_SECRET_KEY", "k" * 64)
    Settings.from_env().check_can_serve()


def test_serve_refuses_to_start_and_says_why(env, tmp_path):
    environ = {k: v for k, v in __import__("os").environ.items() if not k.startswith("AICOMMONS_")}
    environ.update(AICOMMONS_DATA_DIR=str(tmp_path), AICOMMONS_JOB_WORKERS="many")
    done = subprocess.run([sys.executable, "-m", "aicommons.cli.main", "serve"], env=environ,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "configuration error: AICOMMONS_JOB_WORKERS='many': expected an integer" in done.stderr
