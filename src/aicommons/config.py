"""Settings: the only module that reads the environment.

Every setting is an ``AICOMMONS_*`` environment variable, documented here next to its default.
``docs/configuration.md`` is generated from ``SETTINGS`` (``aicommons settings-doc``) and a test
checks that it is up to date, so the reference cannot drift from the code.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path

DEFAULT_DATA_DIR = "~/.local/share/aicommons"
SIGNUP_POLICIES = ("open", "approval", "invite", "closed")
SMTP_SCHEMES = ("smtp", "smtps", "smtp+starttls")
STORAGE_SCHEMES = ("file", "s3", "s3a", "gs", "az", "abfs", "abfss")  # storage.BACKENDS, checked by a test
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("DATA_DIR", DEFAULT_DATA_DIR,
            "Folder holding everything by default: the SQLite database, git repositories, blobs."),
    Setting("DATABASE_URL", "",
            "SQLAlchemy URL of the metadata database. Empty: SQLite file `<DATA_DIR>/hub.db`. "
            "`postgresql://user:pass@host/db` uses PostgreSQL (psycopg 3)."),
    Setting("STORAGE_URL", "",
            "Where large-file blobs live. Empty: `file://<DATA_DIR>/blobs`. Object storage: "
            "`s3://bucket/prefix`, `gs://bucket/prefix`, `az://container/prefix`; obstore config keys may "
            "follow as query parameters (`?endpoint=...&region=...`), credentials come from the cloud's "
            "standard variables (`AWS_*`, `GOOGLE_*`, `AZURE_*`). See docs/deploy.md."),
    Setting("GIT_DIR", "",
            "Folder of the bare git repositories. Empty: `<DATA_DIR>/git`. Shared between replicas."),
    Setting("HOST", "127.0.0.1", "Interface `aicommons serve` listens on."),
    Setting("PORT", "8000", "Port `aicommons serve` listens on."),
    Setting("TRUSTED_PROXIES", "",
            "Reverse proxies whose `X-Forwarded-For` / `X-Forwarded-Proto` the server believes: IP addresses or "
            "networks, comma-separated (`127.0.0.1` for nginx on this machine, `10.0.0.0/24`, `*` for any). "
            "Empty: none, and each request's client is the address that connected (the per-IP limits count "
            "it). Space apps reach the hub from `127.0.0.2`, which must not be listed "
            "while Spaces run: the server refuses to start if it is."),
    Setting("PUBLIC_URL", "",
            "Base URL clients use to reach the hub, put in returned URLs and pagination links. "
            "Empty: taken from each request's `Host` header (and `X-Forwarded-Proto` behind a proxy), "
            "which is what clients configured; set it when a proxy rewrites the host."),
    Setting("MAX_REGULAR_FILE_BYTES", str(10 * 1024 * 1024),
            "Largest file accepted inline in a commit (base64 `file` lines); bigger files must use LFS."),
    Setting("MAX_COMMIT_BODY_BYTES", str(1024 * 1024 * 1024),
            "Largest commit (NDJSON) request body."),
    Setting("MAX_JSON_BODY_BYTES", str(16 * 1024 * 1024), "Largest JSON request body on other endpoints."),
    Setting("MAX_LFS_FILE_BYTES", str(50 * 1024 ** 3), "Largest single LFS object."),
    Setting("LFS_THRESHOLD_BYTES", str(10 * 1024 * 1024),
            "Files at least this big are always stored with LFS (preupload answers `lfs`)."),
    Setting("XET_REBUILD_ALLOWANCE_BYTES", str(20 * 1024 ** 3),
            "Xet: file bytes an account may make the server rebuild from xorbs per hour beyond 8 times the "
            "xorb bytes it uploaded that hour (a small edit of a large file rebuilds all of it). 0: only "
            "what its uploads back."),
    Setting("UPLOAD_URL_TTL_SECONDS", "3600",
            "Lifetime of the signed LFS upload URLs the batch API hands out, and of Xet access tokens."),
    Setting("SECRET_KEY", "",
            "Key that signs sessions, CSRF tokens and transfer URLs (at least 32 characters). Empty: a "
            "random key kept in `<DATA_DIR>/secret_key`, which only a single SQLite server may use: with "
            "PostgreSQL `serve` and `worker` refuse to start without it, since replicas must share it."),
    Setting("SHARED_LIMITS", "auto",
            "Keep inference rate limits (tokens per minute, requests in flight) in the database so that "
            "they hold across replicas: `on`, `off`, or `auto` (on with PostgreSQL, the multi-replica "
            "setup; off with SQLite, where one process serves)."),
    Setting("API_REQUESTS_PER_MINUTE", "5000",
            "Hub API requests (everything but downloads, inference and signed transfers, web pages "
            "included) per minute per user, all their tokens and web sessions together; 0 = unlimited. "
            "Over it: 429 with `Retry-After` and `RateLimit` headers."),
    Setting("ANON_API_REQUESTS_PER_MINUTE", "1000",
            "The same for anonymous callers, per client IP (behind a proxy: the address "
            "forwarded by a proxy of `TRUSTED_PROXIES`)."),
    Setting("RESOLVER_REQUESTS_PER_MINUTE", "20000",
            "File downloads (`/resolve/`) per minute per user; 0 = unlimited."),
    Setting("ANON_RESOLVER_REQUESTS_PER_MINUTE", "5000",
            "File downloads per minute per anonymous client IP."),
    Setting("DOWNLOAD_CACHE_BYTES", "10GB",
            "Local disk kept for whole copies of chunk-stored files (Xet uploads, chunked LFS files), so that "
            "plain HTTP downloads of them are sent by the kernel (`<DATA_DIR>/download-cache`, per replica; "
            "least recently served go first; files under 1 MiB are not copied). Empty or 0: off, every "
            "download is rebuilt from the chunks."),
    Setting("DOWNLOAD_CACHE_BUCKET_BYTES", "10GB",
            "On object storage: bucket space kept for whole copies of chunk-stored files (`download-cache/` in "
            "the bucket, shared by every replica), made from the local download cache's checked copies, so that "
            "plain HTTP downloads of them are presigned redirects like those of whole-file LFS objects. Least "
            "recently served go first; an evicted copy's object is deleted once its presigned URLs have expired "
            "(10 minutes). Needs `AICOMMONS_DOWNLOAD_CACHE_BYTES` (the copies come from there). Ignored on local "
            "disk. Empty or 0: off."),
    Setting("DOWNLOAD_FLUSH_SECONDS", "5",
            "Download counts are added up in memory and written to the database this often, in one "
            "statement (and when the server stops cleanly), instead of one write per download. "
            "0 = write each download at once."),
    Setting("DASHBOARD_ROLLUP_MINUTES", "15",
            "How often the admin dashboard's figures (storage, largest and fastest-growing repos and owners, "
            "scan verdicts, job backlog, sign-ups) are rolled up by a background job; the page reads only "
            "these rollups. `aicommons stats rollup` runs one now. 0 = never on a schedule."),
    Setting("METRICS_ROLLUP_SECONDS", "60",
            "How often each server adds what its request and inference counters (those of /metrics) gained "
            "to the admin dashboard's per-minute figures. 0 = not recorded."),
    Setting("TOKEN_CACHE_SECONDS", "5",
            "How long a checked access token is remembered, sparing the database on every request. "
            "Revoking a token or changing an organisation's members through this server applies at "
            "once; through the CLI or another replica, within this many seconds. 0 = check every time."),
    Setting("SESSION_LIFETIME_SECONDS", str(14 * 24 * 3600),
            "How long a web UI sign-in lasts. Sessions are kept server-side: signing out, a password "
            "change or `aicommons user sign-out` ends them at once."),
    Setting("DEVICE_CLIENT_IDS", "26be6b09-91c5-47da-9861-d2d2bb7a7e36",
            "OAuth client ids allowed to start a device login (`hf auth login`), comma-separated. The "
            "default is huggingface_hub's; a client run with `HF_DEVICE_CODE_OAUTH_CLIENT_ID` sends another."),
    Setting("DEVICE_TOKEN_DAYS", "30",
            "Lifetime of the tokens device logins hand out; huggingface_hub refreshes its token (a new "
            "lifetime each time) when less than a day is left, so a CLI used monthly stays signed in."),
    Setting("OIDC_ISSUER", "",
            "Single sign-on: the OpenID Connect issuer URL (its `/.well-known/openid-configuration` is read). "
            "Empty: no single sign-on. See docs/teams.md."),
    Setting("OIDC_CLIENT_ID", "", "Single sign-on: the client id the hub is registered under at the provider."),
    Setting("OIDC_CLIENT_SECRET", "", "Single sign-on: that client's secret."),
    Setting("OIDC_SCOPES", "openid profile email",
            "Single sign-on: scopes asked for (add the one that releases the groups claim, if any)."),
    Setting("OIDC_GROUPS_CLAIM", "groups", "Single sign-on: the claim (ID token or userinfo) listing the user's groups."),
    Setting("OIDC_GROUP_ROLES", "",
            "Single sign-on: provider groups to organisation roles, `group=org:role` separated by commas "
            "(e.g. `ml-team=acme:write,ml-leads=acme:admin`). Re-applied at every sign-in: a user gets the "
            "highest role their groups give in each listed org, and leaves listed orgs none of them gives."),
    Setting("OIDC_TRUST_POLICIES", "",
            "Workload identity for CI: a JSON list of trust policies, each `{\"org\", \"issuer\", \"audience\", "
            "\"subject\", \"repos\", \"permissions\"}`; an ID token they accept is exchanged at `/oauth/token` "
            "(RFC 8693) for a one-hour token of the org on one repo. See docs/teams.md."),
    Setting("PASSWORD_SIGN_IN", "1",
            "`0`: passwords no longer sign anyone in (web form and HTTP Basic); single sign-on and tokens only."),
    Setting("ORG_SELF_SERVICE", "1",
            "`1`: any signed-in user whose account may create repos creates organisations at "
            "`/organizations/new` and becomes their admin (as on the Hub); `0`: only site administrators "
            "do (there, or `aicommons org create`)."),
    Setting("MAX_AVATAR_BYTES", str(5 * 1024 * 1024),
            "Largest avatar image a user may upload on `/settings/profile` (PNG, JPEG, GIF or WebP); the hub "
            "re-encodes it to a 256-pixel PNG without its metadata (EXIF, GPS position)."),
    Setting("SIGN_IN_FAILURES_PER_ACCOUNT", "10",
            "Refused passwords (web sign-in and HTTP Basic) allowed per user name per "
            "`SIGN_IN_FAILURE_WINDOW_SECONDS`, refilled continuously; beyond it password sign-ins for "
            "that name get 429 with `Retry-After` (tokens keep working). 0 = unlimited."),
    Setting("SIGN_IN_FAILURES_PER_IP", "50",
            "The same per client IP (behind a proxy: the address forwarded by a proxy of `TRUSTED_PROXIES`)."),
    Setting("SIGN_IN_FAILURE_WINDOW_SECONDS", "900",
            "The window of the two limits above."),
    Setting("LOG_LEVEL", "info", "Log level of the server."),
    Setting("DIRECT_UPLOADS", "false",
            "`true`: with object storage, LFS uploads up to 5 GiB go straight to the bucket by presigned "
            "PUT to a per-upload staging key; at `verify` the hub copies them to a private file, hashes it "
            "and publishes that file create-only."),
    Setting("JOB_WORKERS", "1",
            "Background-job worker threads each `aicommons serve` runs in-process (0: none; then run "
            "`aicommons worker`). Jobs are queued in the database and each runs once."),
    Setting("SCAN_UPLOADS", "true",
            "Scan the files of every new commit in the background (pickle imports, archives, "
            "safetensors/GGUF headers, chat templates, leaked secrets) and show the results; needs job "
            "workers (`JOB_WORKERS` or `aicommons worker`). Scanning flags files, it never blocks a commit."),
    Setting("CHUNK_LFS_UPLOADS", "true",
            "Chunk every verified LFS upload (batch API, `git lfs push`, direct uploads) into the Xet chunk "
            "store in the background, so that later revisions deduplicate against it and Xet clients can "
            "download it; GC then removes the whole-file copy. Needs job workers and the `hf_xet` package "
            "(the `chunking` extra); without it, LFS objects stay whole."),
    Setting("SCAN_MEMORY_MB", "1024",
            "Address-space limit (RLIMIT_AS) of each scan worker process; a scan past it ends as an `error` "
            "result (\"scan exceeded the memory limit\") and the worker is replaced. Scans never run in the "
            "server process. 0: no limit."),
    Setting("SCAN_CPU_SECONDS", "120",
            "CPU seconds one file's scan may use (RLIMIT_CPU in the worker); past it: `error`. 0: no limit."),
    Setting("SCAN_TIMEOUT_SECONDS", "300",
            "Wall-clock seconds the hub waits for one file's scan before it kills the worker: `error`."),
    Setting("GC_GRACE_HOURS", "24",
            "Blob GC deletes only unreferenced blobs older than this; must exceed the longest upload."),
    Setting("SIGNUP", "invite",
            "Who may create an account from the web UI (`/join`): `open` (anyone; the e-mail address "
            "is verified by a link), `approval` (anyone may ask; a site admin approves), `invite` (only "
            "with an invite link from a site admin or an organisation admin: `aicommons invite create`) "
            "or `closed` (only admins create accounts). The first admin comes from the one-time `/setup` "
            "link `aicommons serve` prints, or `aicommons user create --admin`. See docs/accounts.md."),
    Setting("SIGNUP_EMAIL_DOMAINS", "",
            "Comma-separated e-mail domains sign-ups must use (`example.org,lab.example.org`); empty: any."),
    Setting("SIGNUP_ATTEMPTS_PER_HOUR", "10",
            "Sign-up and password-reset form submissions per client IP per hour (behind a proxy: the "
            "address forwarded by a proxy of `TRUSTED_PROXIES`), shared by every replica; beyond it 429 with `Retry-After`. "
            "0 = unlimited."),
    Setting("TERMS_URL", "",
            "A link to the hub's terms of use shown on the sign-up page (`/join`); empty: none."),
    Setting("SMTP_URL", "",
            "How mail is sent (verification, password reset, invites): `smtp://host:25`, "
            "`smtps://user:pass@host:465` (TLS) or `smtp+starttls://user:pass@host:587`; user and password "
            "percent-encoded. Mail is sent by a background job with retries. Empty: each mail is written "
            "to `<DATA_DIR>/outbox/*.eml` and its links logged, so a one-machine hub's flows still work."),
    Setting("EMAIL_FROM", "AI Commons <noreply@localhost>",
            "The `From:` of the hub's mail."),
    Setting("GC_INTERVAL_HOURS", "0",
            "Run blob GC (applying deletions) every this many hours through the job workers. 0: never; "
            "run `aicommons gc --apply` yourself."),
    Setting("STORAGE_QUOTA_DEFAULT", "",
            "Storage quota of every user and organization without one of its own (`aicommons storage quota "
            "set`): bytes, or a size such as `500MB`, `100GiB`, `2TB`. Empty: unlimited. Counted against it: "
            "the owner's git folders plus every LFS object its repos hold, committed or only uploaded; an "
            "upload that would pass it is refused whole with 403, and so is an `aicommons bundle import` (also "
            "into a namespace the import would create; `--ignore-quota` overrides, docs/mirror.md). Not "
            "applied to pulled-through mirror namespaces. See docs/deploy.md."),
    Setting("UPLOAD_EXPIRY_HOURS", "72",
            "An LFS or Xet upload that no commit names within this many hours is forgotten by its repo (no "
            "longer pending against the quota; GC then deletes its bytes if nothing else uses them). Must "
            "exceed the longest gap between an upload and its commit."),
    Setting("SNAPSHOT_MAX_BYTES", "100GB",
            "Inference snapshots (files materialised for models, `<DATA_DIR>/snapshots`) beyond this size are "
            "removed least recently used first by the lifecycle job; a repo's go at once when it is deleted "
            "or has LFS files permanently deleted. Empty: no cap."),
    Setting("LIFECYCLE_INTERVAL_HOURS", "6",
            "Run the storage lifecycle job (expire uploads never committed, cap snapshots, `git gc "
            "--no-prune` of repos whose refs moved, prune idle rate-limit rows) this often through the job "
            "workers. 0: never; run `aicommons storage lifecycle --apply` yourself."),
    Setting("STORAGE_ACCOUNTING_MINUTES", "60",
            "Recompute every repo's storage figures (logical, pending and physical bytes: "
            "`aicommons storage report`, the settings page, `usedStorage`) this often through the job "
            "workers. 0: only when `aicommons storage refresh` runs."),
    Setting("LISTING_COUNTS_MINUTES", "60",
            "Recompute the listings' trending scores (`sort=trendingScore`, \"Trending\") and rebuild their "
            "precomputed facet counts from the repo rows (repairing any drift) this often through the job "
            "workers. 0: only when `aicommons listings recount` runs."),
    Setting("UPSTREAM_URL", "",
            "Pull-through mirror: the upstream hub(s) a repo missing here is looked up on, comma-separated "
            "in order (e.g. `https://huggingface.co`). Empty: no mirror. See docs/mirror.md."),
    Setting("UPSTREAM_TOKEN", "",
            "The mirror's service token for the upstream hub (optional; raises upstream's rate limits). "
            "It never serves gated or private upstream repos to anyone."),
    Setting("UPSTREAM_METADATA_TTL_SECONDS", "300",
            "How long a pulled-through repo's branches and tags are served before they are fetched again "
            "(commit ids are immutable and never refetched)."),
    Setting("UPSTREAM_GRANT_TTL_SECONDS", "300",
            "How long upstream's answer to \"may this user's linked upstream token read this gated or private "
            "repo\" is remembered; a grant revoked upstream stops being honoured here within this time."),
    Setting("UPSTREAM_TIMEOUT_SECONDS", "30",
            "Timeout of one request to the upstream hub; an unreachable upstream fails fast with this bound."),
    Setting("UPSTREAM_ALLOW", "",
            "Which upstream repos may be pulled through: comma-separated globs over repo ids "
            "(`meta-llama/*,google/*`), together with `aicommons mirror policy allow` rules. None at all: any."),
    Setting("UPSTREAM_BLOCK", "",
            "Upstream repos never pulled through, whatever UPSTREAM_ALLOW says (comma-separated globs)."),
    Setting("UPSTREAM_LICENSES", "",
            "If set, only upstream repos whose card declares one of these licenses (comma-separated, e.g. "
            "`apache-2.0,mit`) are pulled through."),
    Setting("UPSTREAM_BLOCKED_LICENSES", "",
            "Upstream repos whose card declares one of these licenses (comma-separated) are never pulled "
            "through or served, whatever else allows them."),
    Setting("VIEWER_MAX_BYTES", str(64 * 1024 * 1024),
            "The dataset viewer reads a split whole when its files total at most this many bytes; a larger "
            "split shows the first rows of its first file, marked partial. See docs/viewer.md."),
    Setting("VIEWER_FIRST_ROWS_MAX_BYTES", "1000000",
            "`/first-rows` answers at most this many bytes of rows (their JSON), as datasets-server's "
            "FIRST_ROWS_MAX_BYTES: past it, the last rows' cells longer than 100 bytes are cut to 100 "
            "characters of their JSON and named in `truncated_cells`, and the first 10 rows are always "
            "kept. See docs/viewer.md."),
    Setting("PARQUET_CONVERSION", "true",
            "Convert every new commit of a dataset's default branch to Parquet on `refs/convert/parquet` in "
            "the background, with the `datasets` library (needs job workers). See docs/viewer.md."),
    Setting("PARQUET_MAX_BYTES", str(5 * 1024 ** 3),
            "A dataset config whose files total more than this many bytes is converted partially: the first "
            "rows of each split, up to about this many bytes, into `{config}/partial-{split}/`."),
    Setting("BUNDLE_TRUSTED_KEYS", "",
            "Public keys (PEM files, comma-separated) whose signed bundles `aicommons bundle import` accepts, "
            "besides those given with `--trusted-key`. See docs/mirror.md."),
    Setting("PARQUET_RETRY_MINUTES", "10",
            "A pulled-through dataset whose Parquet conversion failed fetching its files from upstream (upstream "
            "unreachable, the quota, more than `AICOMMONS_PARQUET_MAX_BYTES` not fetched yet) is converted again "
            "after this many minutes, then 6, 36 and 144 times as long (10 min, 1 h, 6 h, 24 h), then only on its "
            "next commit. 0: never retried. See docs/mirror.md."),
    Setting("UPSTREAM_SYNC_INTERVAL_HOURS", "24",
            "The job workers sync every pinned mirror (`aicommons mirror add`) this often. 0: only by hand "
            "(`aicommons mirror sync`)."),
    Setting("WEBHOOKS_ALLOW_PRIVATE_TARGETS", "false",
            "`true`: webhooks may deliver to hosts that resolve to loopback, private or link-local addresses "
            "(a hub on a company network calling its own services). Off, such targets are refused when "
            "each delivery is made (after DNS resolution; redirects are never followed): server-side "
            "request forgery."),
    Setting("WEBHOOK_TIMEOUT_SECONDS", "10", "How long one webhook delivery may take (connect, send, answer)."),
    Setting("WEBHOOK_MAX_ATTEMPTS", "5",
            "Attempts per webhook delivery; a failed one (network error or a non-2xx answer other than a "
            "redirect) is retried with exponential backoff."),
    Setting("WEBHOOK_RETRY_SECONDS", "30",
            "Delay before the first retry of a failed webhook delivery; each further retry waits twice as long."),
    # Spaces (docs/spaces.md)
    Setting("SPACES_RUN", "true",
            "`true`: Spaces with an app file are built and run (sandboxed with bubblewrap) on every push to "
            "their default branch; `false`: they are stored repos only (the runtime API still answers)."),
    Setting("UPSTREAM_SPACES_RUN", "false",
            "On a pull-through mirror: `true` builds and runs the Spaces pulled through from the upstream hub "
            "like local ones (at the request of whoever first asks, anonymous callers included); `false` keeps "
            "them as stored repos (files, history, runtime API), so nobody can make this hub run upstream code. "
            "Spaces created on this hub run as SPACES_RUN says."),
    Setting("SPACES_DOMAIN", "",
            "Empty: apps are served under `<hub>/spaces-apps/<ns>/<name>/` (path mode: the hub's cookies are "
            "stripped, the page's frame is sandboxed). A domain such as `spaces.example.org`: each Space "
            "answers at `https://<ns>-<name>.spaces.example.org/` (a separate origin; point a wildcard DNS "
            "record and certificate at the hub)."),
    Setting("SPACES_HARDWARE", "cpu-basic",
            "The hardware flavours Spaces may request (comma-separated; the first is the default): "
            "`cpu-basic`, `cpu-upgrade`, or GPU names of the Hub's list on a host that has them."),
    Setting("SPACES_SLEEP_SECONDS", "172800",
            "A running Space with no request for this long is stopped (SLEEPING) and woken by the next "
            "request; owners may set their own (`set_space_sleep_time`, -1: never)."),
    Setting("SPACES_MAX_RUNNING", "8",
            "At most this many Space apps run at once; starting one more puts the least recently used to sleep."),
    Setting("SPACES_MEMORY_MB", "2048",
            "Memory of each Space app: the address-space limit (RLIMIT_AS) of each of its processes, and the "
            "resident memory of all of them together where a control group can be made (see SPACES_CGROUP)."),
    Setting("SPACES_PROCESSES", "128",
            "Most processes (and threads) one Space app may have (RLIMIT_NPROC per Space uid, and the control "
            "group's task limit)."),
    Setting("SPACES_CPUS", "1",
            "CPU time of each Space app, in CPUs (0.5: half of one CPU; 0: no quota), for all its processes "
            "together. Needs a control group: cgroup v1 hierarchies the hub may write (root), or SPACES_CGROUP "
            "on cgroup v2. Without one, the build and run logs say that CPU is not limited."),
    Setting("SPACES_CGROUP", "",
            "cgroup v2 only: a control-group folder delegated to the hub (e.g. "
            "`/sys/fs/cgroup/system.slice/aicommons.service/spaces` with systemd's `Delegate=yes`), below which "
            "each Space app gets its own group. Empty: the hub's own cgroup v1 groups where writable."),
    Setting("SPACES_DISK_MB", "512",
            "Size of a Space app's writable folders (tmpfs) and the largest file it may write (RLIMIT_FSIZE)."),
    Setting("SPACES_INDEX_URL", "",
            "Package index Space builds install `requirements.txt` from (`pip --index-url`). Empty: pip's own "
            "configuration. Downloads are cached in `<DATA_DIR>/spaces/pip-cache`, one cache per owner."),
    Setting("SPACES_BUILD_HOSTS", "",
            "Host names a Space build may reach besides its package index (comma-separated, e.g. `github.com` for "
            "`git+https` requirements). A build's only network is a proxy to the index's host (`SPACES_INDEX_URL`'s, "
            "else `pypi.org` and `files.pythonhosted.org`) and these; never a link-local address."),
    Setting("SPACES_PIP_CACHE_DIR", "",
            "Where pip's download caches for Space builds live (one folder per owner: builds run packages' setup code, "
            "so only one owner's builds share a cache). Empty: `<DATA_DIR>/spaces/pip-cache`."),
    Setting("SPACES_SITE_PACKAGES", "false",
            "`true`: Space environments see the hub's own Python packages (`venv --system-site-packages`): "
            "faster builds, for tests and trusted installs."),
    Setting("SPACES_BUILD_TIMEOUT_SECONDS", "900", "How long one Space build (pip install) may take."),
)


SPACES_RELAY_ADDRESS = "127.0.0.2"  # the source address of Space apps' connections to the hub (never trusted)


class SettingsError(ValueError):
    """A setting has a value we cannot use; the message names the variable and what it expects."""


def _env(name: str) -> str:
    spec = next(s for s in SETTINGS if s.name == name)
    return os.environ.get(f"AICOMMONS_{name}", spec.default)


TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off", "")


def parse_value(variable: str, raw: str, kind: type, minimum: float | None = None,
                choices: tuple[str, ...] | None = None):
    """One parser for every setting (the hub's and inference's): ``raw`` as ``kind``, or a
    ``SettingsError`` naming ``variable``, what it holds and what it should hold."""
    text = raw.strip()
    if kind is bool:
        if text.lower() in TRUE_WORDS:
            return True
        if text.lower() in FALSE_WORDS:
            return False
        raise SettingsError(f"{variable}={raw!r}: expected true or false")
    if kind in (int, float):
        try:
            value = kind(text)
        except ValueError:
            raise SettingsError(f"{variable}={raw!r}: expected {'an integer' if kind is int else 'a number'}") from None
        if minimum is not None and value < minimum:
            raise SettingsError(f"{variable}={raw!r}: must be at least {minimum}")
        return value
    if choices is not None and text.lower() not in choices:
        raise SettingsError(f"{variable}={raw!r}: expected one of {', '.join(choices)}")
    return raw


def _typed(name: str, kind: type, minimum: float | None = None, choices: tuple[str, ...] | None = None):
    return parse_value(f"AICOMMONS_{name}", _env(name), kind, minimum, choices)


def _int(name: str, minimum: int | None = 0) -> int:
    return _typed(name, int, minimum)


def _float(name: str, minimum: float | None = None) -> float:
    return _typed(name, float, minimum)


SIZE_UNITS = {"": 1, "b": 1, "kb": 1000, "mb": 1000 ** 2, "gb": 1000 ** 3, "tb": 1000 ** 4, "pb": 1000 ** 5,
              "kib": 1024, "mib": 1024 ** 2, "gib": 1024 ** 3, "tib": 1024 ** 4, "pib": 1024 ** 5}


def parse_size(text: str) -> int:
    """``"500MB"``, ``"100 GiB"``, ``"1.5TB"`` or plain bytes -> bytes; ValueError otherwise."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    if match is None or match[2].lower() not in SIZE_UNITS:
        raise ValueError(f"{text!r} is not a size: expected bytes or a number with a unit "
                         "(kB, MB, GB, TB, KiB, MiB, GiB, TiB)")
    return int(float(match[1]) * SIZE_UNITS[match[2].lower()])


def _size(name: str) -> int | None:
    raw = _env(name).strip()
    if not raw:
        return None
    try:
        return parse_size(raw)
    except ValueError as exc:
        raise SettingsError(f"AICOMMONS_{name}={raw!r}: {exc}") from None


def _trust_policies(text: str) -> list:
    """The raw policies (JSON); hub/workload_identity.py checks their fields when it builds them."""
    if not text.strip():
        return []
    import json

    try:
        value = json.loads(text)
    except ValueError as exc:
        raise SettingsError(f"AICOMMONS_OIDC_TRUST_POLICIES: {exc}") from None
    if not isinstance(value, list):
        raise SettingsError("AICOMMONS_OIDC_TRUST_POLICIES: expected a JSON list of policies")
    return value


def _group_roles(text: str) -> tuple[tuple[str, str, str], ...]:
    out = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        group, _, target = item.partition("=")
        org, _, role = target.partition(":")
        if not group.strip() or not org.strip() or role.strip() not in ("read", "contributor", "write", "admin"):
            raise SettingsError(f"AICOMMONS_OIDC_GROUP_ROLES: {item!r} is not group=org:role "
                                "(role: read, contributor, write or admin)")
        out.append((group.strip(), org.strip(), role.strip()))
    return tuple(out)


def _spaces_hardware(text: str) -> str:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names or any(not n.replace("-", "").isalnum() for n in names):
        raise SettingsError(f"AICOMMONS_SPACES_HARDWARE={text!r}: expected flavour names separated by commas, "
                            "e.g. cpu-basic,cpu-upgrade")
    return ",".join(names)


def _trusted_proxies(text: str) -> str:
    import ipaddress

    entries = [e.strip() for e in text.split(",") if e.strip()]
    for entry in entries:
        if entry == "*":
            continue
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise SettingsError(f"AICOMMONS_TRUSTED_PROXIES={text!r}: {entry!r} is not an IP address or network "
                                "(e.g. 127.0.0.1,10.0.0.0/24)") from None
    return ",".join(entries)


def trusts(trusted_proxies: str, address: str) -> bool:
    """Whether ``address`` is one of ``trusted_proxies`` (TRUSTED_PROXIES' value)."""
    import ipaddress

    ip = ipaddress.ip_address(address)
    return any(e == "*" or (ip.version == ipaddress.ip_network(e, strict=False).version
                            and ip in ipaddress.ip_network(e, strict=False))
               for e in trusted_proxies.split(",") if e)


def _bool(name: str) -> bool:
    return _typed(name, bool)


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    storage_url: str
    git_dir: Path
    host: str
    port: int
    public_url: str
    max_regular_file_bytes: int
    max_commit_body_bytes: int
    max_json_body_bytes: int
    max_lfs_file_bytes: int
    lfs_threshold_bytes: int
    upload_url_ttl_seconds: int
    xet_rebuild_allowance_bytes: int
    secret_key: str
    shared_limits: str
    api_requests_per_minute: int
    anon_api_requests_per_minute: int
    resolver_requests_per_minute: int
    anon_resolver_requests_per_minute: int
    token_cache_seconds: float
    download_flush_seconds: float
    download_cache_bytes: int
    download_cache_bucket_bytes: int
    dashboard_rollup_minutes: float
    metrics_rollup_seconds: float
    session_lifetime_seconds: int
    device_client_ids: str  # comma-separated: see ``device_client_id_list``
    device_token_days: int
    oidc_issuer: str
    oidc_client_id: str
    oidc_client_secret: str
    oidc_scopes: str
    oidc_groups_claim: str
    oidc_group_roles: str  # raw: see ``group_role_list``
    password_sign_in: bool
    org_self_service: bool
    oidc_trust_policies: str  # raw JSON: see ``trust_policy_list``
    max_avatar_bytes: int
    sign_in_failures_per_account: int
    sign_in_failures_per_ip: int
    sign_in_failure_window_seconds: float
    log_level: str
    direct_uploads: bool
    job_workers: int
    scan_uploads: bool
    chunk_lfs_uploads: bool
    scan_memory_mb: int
    scan_cpu_seconds: int
    scan_timeout_seconds: float
    gc_grace_hours: float
    gc_interval_hours: float
    storage_quota_default: int | None
    storage_accounting_minutes: float
    listing_counts_minutes: float
    upload_expiry_hours: float
    snapshot_max_bytes: int | None
    lifecycle_interval_hours: float
    upstream_url: str
    upstream_token: str
    upstream_metadata_ttl_seconds: float
    upstream_timeout_seconds: float
    upstream_grant_ttl_seconds: float
    upstream_sync_interval_hours: float
    bundle_trusted_keys: str
    viewer_max_bytes: int
    viewer_first_rows_max_bytes: int
    parquet_conversion: bool
    parquet_max_bytes: int
    parquet_retry_minutes: float
    upstream_allow: str
    upstream_block: str
    upstream_licenses: str
    upstream_blocked_licenses: str
    signup: str
    signup_email_domains: str  # normalised "a.org,b.org" (a string, so that settings_env round-trips it)
    signup_attempts_per_hour: int
    terms_url: str
    smtp_url: str
    email_from: str
    webhooks_allow_private_targets: bool = False
    webhook_timeout_seconds: float = 10
    webhook_max_attempts: int = 5
    webhook_retry_seconds: float = 30
    trusted_proxies: str = ""
    spaces_run: bool = True
    upstream_spaces_run: bool = False
    spaces_domain: str = ""
    spaces_hardware: str = "cpu-basic"  # comma-separated flavour names
    spaces_sleep_seconds: int = 172800
    spaces_max_running: int = 8
    spaces_memory_mb: int = 2048
    spaces_processes: int = 128
    spaces_disk_mb: int = 512
    spaces_cpus: float = 1.0
    spaces_cgroup: str = ""
    spaces_index_url: str = ""
    spaces_pip_cache_dir: str = ""
    spaces_build_hosts: str = ""
    spaces_site_packages: bool = False
    spaces_build_timeout_seconds: float = 900
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_env(cls, **overrides) -> Settings:
        data_dir = Path(os.path.expanduser(overrides.pop("data_dir", None) or _env("DATA_DIR"))).resolve()
        host = overrides.pop("host", None) or _env("HOST")
        port = overrides.pop("port", None) or _int("PORT")
        values = dict(
            data_dir=data_dir,
            database_url=_env("DATABASE_URL") or f"sqlite:///{data_dir / 'hub.db'}",
            storage_url=_env("STORAGE_URL") or f"file://{data_dir / 'blobs'}",
            git_dir=Path(_env("GIT_DIR") or data_dir / "git"),
            host=host,
            port=port,
            public_url=_env("PUBLIC_URL").rstrip("/"),
            max_regular_file_bytes=_int("MAX_REGULAR_FILE_BYTES"),
            max_commit_body_bytes=_int("MAX_COMMIT_BODY_BYTES"),
            max_json_body_bytes=_int("MAX_JSON_BODY_BYTES"),
            max_lfs_file_bytes=_int("MAX_LFS_FILE_BYTES"),
            lfs_threshold_bytes=_int("LFS_THRESHOLD_BYTES"),
            upload_url_ttl_seconds=_int("UPLOAD_URL_TTL_SECONDS"),
            xet_rebuild_allowance_bytes=_int("XET_REBUILD_ALLOWANCE_BYTES"),
            secret_key=_env("SECRET_KEY"),
            shared_limits=_typed("SHARED_LIMITS", str, choices=("auto", "on", "off")).strip().lower(),
            api_requests_per_minute=_int("API_REQUESTS_PER_MINUTE"),
            anon_api_requests_per_minute=_int("ANON_API_REQUESTS_PER_MINUTE"),
            resolver_requests_per_minute=_int("RESOLVER_REQUESTS_PER_MINUTE"),
            anon_resolver_requests_per_minute=_int("ANON_RESOLVER_REQUESTS_PER_MINUTE"),
            token_cache_seconds=_float("TOKEN_CACHE_SECONDS", minimum=0),
            download_flush_seconds=_float("DOWNLOAD_FLUSH_SECONDS", minimum=0),
            download_cache_bytes=_size("DOWNLOAD_CACHE_BYTES") or 0,
            download_cache_bucket_bytes=_size("DOWNLOAD_CACHE_BUCKET_BYTES") or 0,
            dashboard_rollup_minutes=_float("DASHBOARD_ROLLUP_MINUTES", minimum=0),
            metrics_rollup_seconds=_float("METRICS_ROLLUP_SECONDS", minimum=0),
            session_lifetime_seconds=_int("SESSION_LIFETIME_SECONDS", minimum=60),
            device_client_ids=_env("DEVICE_CLIENT_IDS"),
            device_token_days=_int("DEVICE_TOKEN_DAYS", minimum=1),
            oidc_issuer=_env("OIDC_ISSUER").strip().rstrip("/"),
            oidc_client_id=_env("OIDC_CLIENT_ID").strip(),
            oidc_client_secret=_env("OIDC_CLIENT_SECRET"),
            oidc_scopes=_env("OIDC_SCOPES").strip(),
            oidc_groups_claim=_env("OIDC_GROUPS_CLAIM").strip(),
            oidc_group_roles=_env("OIDC_GROUP_ROLES"),
            password_sign_in=_bool("PASSWORD_SIGN_IN"),
            org_self_service=_bool("ORG_SELF_SERVICE"),
            oidc_trust_policies=_env("OIDC_TRUST_POLICIES"),
            max_avatar_bytes=_int("MAX_AVATAR_BYTES", minimum=1024),
            sign_in_failures_per_account=_int("SIGN_IN_FAILURES_PER_ACCOUNT"),
            sign_in_failures_per_ip=_int("SIGN_IN_FAILURES_PER_IP"),
            sign_in_failure_window_seconds=_float("SIGN_IN_FAILURE_WINDOW_SECONDS", minimum=1),
            log_level=_typed("LOG_LEVEL", str, choices=LOG_LEVELS).strip().lower(),
            direct_uploads=_bool("DIRECT_UPLOADS"),
            job_workers=_int("JOB_WORKERS"),
            scan_uploads=_bool("SCAN_UPLOADS"),
            chunk_lfs_uploads=_bool("CHUNK_LFS_UPLOADS"),
            scan_memory_mb=_int("SCAN_MEMORY_MB", minimum=0),
            scan_cpu_seconds=_int("SCAN_CPU_SECONDS", minimum=0),
            scan_timeout_seconds=_float("SCAN_TIMEOUT_SECONDS", minimum=1),
            gc_grace_hours=_float("GC_GRACE_HOURS", minimum=0),
            gc_interval_hours=_float("GC_INTERVAL_HOURS", minimum=0),
            storage_quota_default=_size("STORAGE_QUOTA_DEFAULT"),
            storage_accounting_minutes=_float("STORAGE_ACCOUNTING_MINUTES", minimum=0),
            listing_counts_minutes=_float("LISTING_COUNTS_MINUTES", minimum=0),
            upload_expiry_hours=_float("UPLOAD_EXPIRY_HOURS", minimum=0),
            snapshot_max_bytes=_size("SNAPSHOT_MAX_BYTES"),
            lifecycle_interval_hours=_float("LIFECYCLE_INTERVAL_HOURS", minimum=0),
            upstream_url=_env("UPSTREAM_URL").strip(),
            upstream_token=_env("UPSTREAM_TOKEN").strip(),
            upstream_metadata_ttl_seconds=_float("UPSTREAM_METADATA_TTL_SECONDS", minimum=0),
            upstream_timeout_seconds=_float("UPSTREAM_TIMEOUT_SECONDS", minimum=1),
            upstream_grant_ttl_seconds=_float("UPSTREAM_GRANT_TTL_SECONDS", minimum=0),
            upstream_sync_interval_hours=_float("UPSTREAM_SYNC_INTERVAL_HOURS", minimum=0),
            bundle_trusted_keys=_env("BUNDLE_TRUSTED_KEYS").strip(),
            viewer_max_bytes=_int("VIEWER_MAX_BYTES", minimum=1024),
            viewer_first_rows_max_bytes=_int("VIEWER_FIRST_ROWS_MAX_BYTES", minimum=0),
            parquet_conversion=_bool("PARQUET_CONVERSION"),
            parquet_max_bytes=_int("PARQUET_MAX_BYTES", minimum=1024),
            parquet_retry_minutes=_float("PARQUET_RETRY_MINUTES", minimum=0),
            upstream_allow=_env("UPSTREAM_ALLOW").strip(),
            upstream_block=_env("UPSTREAM_BLOCK").strip(),
            upstream_licenses=_env("UPSTREAM_LICENSES").strip(),
            upstream_blocked_licenses=_env("UPSTREAM_BLOCKED_LICENSES").strip(),
            signup=_typed("SIGNUP", str, choices=SIGNUP_POLICIES).strip().lower(),
            signup_email_domains=",".join(d.strip().lower().lstrip("@") for d in _env("SIGNUP_EMAIL_DOMAINS").split(",")
                                          if d.strip()),
            signup_attempts_per_hour=_int("SIGNUP_ATTEMPTS_PER_HOUR"),
            terms_url=_env("TERMS_URL").strip(),
            smtp_url=_env("SMTP_URL").strip(),
            email_from=_env("EMAIL_FROM").strip(),
            webhooks_allow_private_targets=_bool("WEBHOOKS_ALLOW_PRIVATE_TARGETS"),
            webhook_timeout_seconds=_float("WEBHOOK_TIMEOUT_SECONDS", minimum=0.1),
            webhook_max_attempts=_int("WEBHOOK_MAX_ATTEMPTS", minimum=1),
            webhook_retry_seconds=_float("WEBHOOK_RETRY_SECONDS", minimum=0),
            trusted_proxies=_trusted_proxies(_env("TRUSTED_PROXIES")),
            spaces_run=_bool("SPACES_RUN"),
            upstream_spaces_run=_bool("UPSTREAM_SPACES_RUN"),
            spaces_domain=_env("SPACES_DOMAIN").strip().strip(".").lower(),
            spaces_hardware=_spaces_hardware(_env("SPACES_HARDWARE")),
            spaces_sleep_seconds=_int("SPACES_SLEEP_SECONDS", minimum=1),
            spaces_max_running=_int("SPACES_MAX_RUNNING", minimum=1),
            spaces_memory_mb=_int("SPACES_MEMORY_MB", minimum=64),
            spaces_processes=_int("SPACES_PROCESSES", minimum=4),
            spaces_disk_mb=_int("SPACES_DISK_MB", minimum=1),
            spaces_cpus=_float("SPACES_CPUS", minimum=0),
            spaces_cgroup=_env("SPACES_CGROUP").strip(),
            spaces_index_url=_env("SPACES_INDEX_URL").strip(),
            spaces_pip_cache_dir=_env("SPACES_PIP_CACHE_DIR").strip(),
            spaces_build_hosts=_env("SPACES_BUILD_HOSTS").strip(),
            spaces_site_packages=_bool("SPACES_SITE_PACKAGES"),
            spaces_build_timeout_seconds=_float("SPACES_BUILD_TIMEOUT_SECONDS", minimum=1),
        )
        values.update(overrides)
        settings = cls(**values)
        settings._check_urls()
        settings.group_role_list, settings.trust_policy_list  # noqa: B018 - bad values name their variable now
        return settings

    @property
    def device_client_id_list(self) -> tuple[str, ...]:
        return tuple(c.strip() for c in self.device_client_ids.split(",") if c.strip())

    @property
    def group_role_list(self) -> tuple[tuple[str, str, str], ...]:
        return _group_roles(self.oidc_group_roles)

    @property
    def trust_policy_list(self) -> list:
        return _trust_policies(self.oidc_trust_policies)

    def _check_urls(self) -> None:
        if self.database_url.split(":", 1)[0].split("+", 1)[0] not in ("sqlite", "postgresql", "postgres"):
            raise SettingsError(f"AICOMMONS_DATABASE_URL={self.database_url!r}: expected sqlite:///<file> "
                                "or postgresql://user:pass@host/db")
        scheme = self.storage_url.split("://", 1)[0] if "://" in self.storage_url else ""
        if scheme not in STORAGE_SCHEMES:
            raise SettingsError(f"AICOMMONS_STORAGE_URL={self.storage_url!r}: expected a URL starting with "
                                + ", ".join(f"{s}://" for s in STORAGE_SCHEMES))
        if self.smtp_url:
            from urllib.parse import urlsplit

            try:
                parts = urlsplit(self.smtp_url)
                parts.port  # noqa: B018 - raises on a bad port
            except ValueError:
                parts = None
            if parts is None or parts.scheme not in SMTP_SCHEMES or not parts.hostname:
                shown = self.smtp_url.split("@")[-1]  # never echo a password
                raise SettingsError(f"AICOMMONS_SMTP_URL=...{shown!r}: expected "
                                    + ", ".join(f"{s}://[user:password@]host[:port]" for s in SMTP_SCHEMES))
        if self.terms_url and not self.terms_url.startswith(("https://", "http://", "/")):
            raise SettingsError(f"AICOMMONS_TERMS_URL={self.terms_url!r}: expected an http(s) URL or a /path")

    def check_can_serve(self) -> None:
        """What a server (or job worker) needs beyond parsing. On PostgreSQL several replicas share the
        database, so each must be given the same signing key: a per-replica random key would make
        every session, CSRF token and transfer link minted by one replica fail on the others."""
        if not self.database_url.startswith("sqlite") and not self.secret_key:
            raise SettingsError("AICOMMONS_SECRET_KEY is empty: with PostgreSQL (several replicas) set it "
                                "explicitly, to the same long random value on every replica "
                                "(e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`)")
        if self.secret_key and len(self.secret_key) < 32:
            raise SettingsError("AICOMMONS_SECRET_KEY is too short: use at least 32 random characters")
        if self.spaces_run and trusts(self.trusted_proxies, SPACES_RELAY_ADDRESS):
            raise SettingsError(f"AICOMMONS_TRUSTED_PROXIES={self.trusted_proxies!r} covers {SPACES_RELAY_ADDRESS}, "
                                "the address Space apps reach the hub from: they could then forge their client IP. "
                                "List your proxies' own addresses (e.g. 127.0.0.1), or set AICOMMONS_SPACES_RUN=false")

    @property
    def allowed_email_domains(self) -> tuple[str, ...]:
        """The domains sign-ups must use (SIGNUP_EMAIL_DOMAINS); empty: any."""
        return tuple(d for d in self.signup_email_domains.split(",") if d)

    @property
    def limits_are_shared(self) -> bool:
        if self.shared_limits in ("on", "off"):
            return self.shared_limits == "on"
        return not self.database_url.startswith("sqlite")

    @property
    def scan_worker_limits(self):
        from aicommons.scanning.limits import WorkerLimits

        return WorkerLimits(self.scan_memory_mb, self.scan_cpu_seconds, self.scan_timeout_seconds)

    @property
    def tmp_dir(self) -> Path:
        return self.data_dir / "tmp"


def settings_table(settings: tuple[Setting, ...], prefix: str = "AICOMMONS_") -> str:
    """A markdown table of settings: variable, default, meaning."""
    lines = ["| Variable | Default | Meaning |", "|---|---|---|"]
    for s in settings:
        default = f"`{s.default}`" if s.default else "(empty)"
        lines.append(f"| `{prefix}{s.name}` | {default} | {s.help} |")
    return "\n".join(lines) + "\n"


def settings_reference_markdown() -> str:
    """The configuration reference of the core, generated from SETTINGS."""
    return ("# Configuration reference\n\n"
            "Generated from `src/aicommons/config.py` and `src/aicommons/inference/settings.py` by\n"
            "`aicommons settings-doc`; do not edit by hand. Every setting is an environment variable.\n"
            "A value that cannot be used stops every command at start-up with exit status 2 and\n"
            "`configuration error: AICOMMONS_<NAME>=<value>: <what it expects>`.\n\n"
            "## Hub\n\n" + settings_table(SETTINGS))

assert {f.name for f in fields(Settings)} - {"extra"} == {s.name.lower() for s in SETTINGS}
