"""Table definitions. The Alembic migrations create exactly this schema (a test compares them)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    true,
)

metadata = MetaData()

# Users and organisations share one namespace, as on the Hub.
accounts = Table(
    "accounts", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(96), nullable=False),
    Column("name_lower", String(96), nullable=False, unique=True),
    Column("kind", String(8), nullable=False),  # "user" | "org"
    Column("fullname", String(256), nullable=False, default=""),
    Column("email", String(256)),
    Column("password_hash", String(256)),
    Column("is_admin", Boolean, nullable=False, default=False),
    Column("created_at", DateTime, nullable=False),
    # Self-service accounts (migration 0015): a suspended account signs in nowhere (tokens, sessions,
    # passwords) until unsuspended; profile text shown on the user's page.
    Column("suspended_at", DateTime),
    Column("bio", Text),
    Column("homepage", String(512)),
    # Self-service sign-up (migration 0014): a self-registered user's e-mail is verified by a link;
    # accounts an admin creates count as verified. status: "active" | "pending" (awaits approval).
    Column("email_verified", Boolean, nullable=False, server_default=true(), default=True),
    Column("status", String(16), nullable=False, server_default="active", default="active"),
)

# A user's avatar: an uploaded image re-encoded by the hub (hub/profiles.py), so no metadata survives.
avatars = Table(
    "avatars", metadata,
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("content_type", String(32), nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

# An e-mail change waiting for the link sent to the new address (only the link's sha256 is kept).
email_changes = Table(
    "email_changes", metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("new_email", String(256), nullable=False),
    Column("expires_at", DateTime, nullable=False),
    Index("ix_email_changes_user_id", "user_id"),
)

memberships = Table(
    "memberships", metadata,
    Column("org_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("role", String(16), nullable=False, default="write"),  # "read" | "contributor" | "write" | "admin"
)

tokens = Table(
    "tokens", metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(128), nullable=False),
    Column("role", String(16), nullable=False),  # "read" | "write"
    Column("token_hash", String(64), nullable=False, unique=True),  # sha256 of the token
    Column("created_at", DateTime, nullable=False),
    Column("last_used_at", DateTime),
    Column("fine_grained", JSON),  # None: a classic read/write token; see hub/token_scopes.py
    Column("expires_at", DateTime),  # None: never
    Column("origin", String(16)),  # None: made by hand; "device": OAuth device login (hub/device_login.py)
    # Device-login tokens are refreshed (OAuth refresh grant): the sha256 of the current refresh
    # token, and of the one it replaced (presenting that one again revokes the token: it was copied).
    Column("refresh_hash", String(64), index=True, unique=True),
    Column("previous_refresh_hash", String(64), index=True),
)

# OAuth device login (RFC 8628): a code the CLI polls with, approved by a signed-in user on the web.
device_codes = Table(
    "device_codes", metadata,
    Column("code_hash", String(64), primary_key=True),  # sha256 of the device_code
    Column("user_code", String(16), nullable=False, unique=True),
    Column("client_id", String(128), nullable=False),
    Column("client_name", String(256), nullable=False),  # what the device said it is (its User-Agent)
    Column("status", String(12), nullable=False),  # "pending" | "approved" | "denied" | "used"
    Column("user_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE")),
    Column("role", String(16)),  # the token role the approver chose
    Column("created_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
    Column("last_poll_at", DateTime),
)

# Invitations into an organisation: by link (anyone holding it) or for one e-mail address.
org_invitations = Table(
    "org_invitations", metadata,
    Column("id", Integer, primary_key=True),
    Column("org_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("email", String(256)),  # None: a link anyone signed in may use
    Column("role", String(16), nullable=False),
    Column("created_by", Integer, ForeignKey("accounts.id", ondelete="SET NULL")),
    Column("created_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
    Index("ix_org_invitations_org_id", "org_id"),
)

org_join_requests = Table(
    "org_join_requests", metadata,
    Column("org_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("created_at", DateTime, nullable=False),
)

# Single sign-on: the account an OpenID provider's subject signs in as (hub/sso.py).
identities = Table(
    "identities", metadata,
    Column("issuer", String(512), primary_key=True),
    Column("subject", String(255), primary_key=True),
    Column("user_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", DateTime, nullable=False),
)

# What an organisation's admins set up for sign-in (hub/org_trust.py): provider groups that give an
# org role at every SSO sign-in, and CI ID tokens the org trusts (workload identity).
org_group_roles = Table(
    "org_group_roles", metadata,
    Column("id", Integer, primary_key=True),
    Column("org_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("group_name", String(256), nullable=False),
    Column("role", String(16), nullable=False),
    Column("created_by", Integer, ForeignKey("accounts.id", ondelete="SET NULL")),
    Column("created_at", DateTime, nullable=False),
    UniqueConstraint("org_id", "group_name", name="uq_org_group_roles_group"),
)

org_trust_policies = Table(
    "org_trust_policies", metadata,
    Column("id", Integer, primary_key=True),
    Column("org_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("issuer", String(512), nullable=False),
    Column("audience", String(512)),  # None: the hub's own URL
    Column("subject", String(512), nullable=False),  # shell-style pattern
    Column("repos", JSON, nullable=False),  # shell-style patterns of repo ids
    Column("permissions", JSON, nullable=False),
    Column("created_by", Integer, ForeignKey("accounts.id", ondelete="SET NULL")),
    Column("created_at", DateTime, nullable=False),
)

# A user following a user or an organisation.
follows = Table(
    "follows", metadata,
    Column("follower_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("followee_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("created_at", DateTime, nullable=False),
    Index("ix_follows_followee_id", "followee_id"),
)

repos = Table(
    "repos", metadata,
    Column("id", Integer, primary_key=True),
    Column("type", String(8), nullable=False),  # "model" | "dataset" | "space"
    Column("namespace", String(96), nullable=False),
    Column("name", String(96), nullable=False),
    Column("full_id", String(193), nullable=False),  # "namespace/name", as the owner spelled it
    Column("full_id_lower", String(193), nullable=False),
    Column("owner_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("storage_key", String(64), nullable=False, unique=True),  # names the git repo on disk
    Column("private", Boolean, nullable=False, default=False),
    Column("gated", String(8)),  # None | "auto" | "manual"
    Column("disabled", Boolean, nullable=False, default=False),
    Column("sha", String(40)),  # head of the default branch, kept in sync on every ref update
    Column("card_data", JSON),
    Column("tags", JSON),
    Column("library_name", String(64)),
    Column("pipeline_tag", String(64)),
    Column("downloads", BigInteger, nullable=False, default=0),
    Column("likes", Integer, nullable=False, default=0),
    Column("created_at", DateTime, nullable=False),
    Column("last_modified", DateTime, nullable=False),
    Column("created_by", Integer),  # the user who created it (org "contributor" members write to theirs)
    # "Trending": recent downloads and likes with a 3-day half-life, in thousandths, recomputed by
    # the listing_counts job (hub/listing_counts.py); 0 for a repo nobody touched lately.
    Column("trending_score", BigInteger, nullable=False, default=0, server_default="0"),
    UniqueConstraint("type", "full_id_lower", name="uq_repos_type_id"),
)
Index("ix_repos_downloads", repos.c.downloads)
Index("ix_repos_likes", repos.c.likes)
Index("ix_repos_last_modified", repos.c.last_modified)
Index("ix_repos_created_at", repos.c.created_at)
Index("ix_repos_namespace", repos.c.namespace)
# Listings walk one of these in order and stop after a page (keyset paging, db/repos.py): one per
# sort key, led by the type every listing filters on, ending with the id that breaks ties.
Index("ix_repos_type_downloads", repos.c.type, repos.c.downloads, repos.c.id)
Index("ix_repos_type_likes", repos.c.type, repos.c.likes, repos.c.id)
Index("ix_repos_type_last_modified", repos.c.type, repos.c.last_modified, repos.c.id)
Index("ix_repos_type_created_at", repos.c.type, repos.c.created_at, repos.c.id)
Index("ix_repos_type_trending", repos.c.type, repos.c.trending_score, repos.c.id)
# ``author=`` compares case-insensitively: an index on the expression the query uses, on both databases.
Index("ix_repos_type_author", repos.c.type, func.lower(repos.c.namespace), repos.c.created_at, repos.c.id)

# What the listings and ``model_info`` need of the default branch's head, stored when it moves
# (hub/repos.py, ``after_ref_update``) instead of walking git per request: its files (compact
# ``[path, size, blob id, lfs sha256 | null, pointer size | null]`` rows) and their total size.
# Trusted only while ``sha`` equals the commit being described; a row for an older commit is
# recomputed (and rewritten) on first use, which is also how repos from before 0013 are filled.
repo_heads = Table(
    "repo_heads", metadata,
    Column("repo_id", Integer, ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
    Column("sha", String(40), nullable=False),
    Column("siblings", JSON, nullable=False),
    Column("used_storage", BigInteger, nullable=False),
    Column("git_bytes", BigInteger),  # the repo's git folder on disk when stored (list_user_repos)
)

# The listing pages' facet counts over public repos (hub/listing_counts.py): per repo type, how
# many public, enabled repos have each value of each facet ("total" with value "" counts them
# all). Kept in the same transaction as every change of a repo row (db/repos.py, ``_keep_facets``)
# and rebuilt from scratch by the listing_counts job and ``aicommons listings recount``.
repo_facet_counts = Table(
    "repo_facet_counts", metadata,
    Column("type", String(8), primary_key=True),
    Column("facet", String(16), primary_key=True),  # total | task | library | author | license | language | category
    Column("value", String(256), primary_key=True),
    Column("n", Integer, nullable=False),
)
Index("ix_repo_facet_counts_top", repo_facet_counts.c.type, repo_facet_counts.c.facet, repo_facet_counts.c.n)

# Filterable tags of a repo (from its card and its files), one row per tag.
repo_tags = Table(
    "repo_tags", metadata,
    Column("repo_id", Integer, ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
    Column("tag", String(256), primary_key=True),
)
Index("ix_repo_tags_tag", repo_tags.c.tag)

# Old names of moved repos, so that the old URLs keep answering (with a redirect).
repo_redirects = Table(
    "repo_redirects", metadata,
    Column("type", String(8), primary_key=True),
    Column("old_id_lower", String(193), primary_key=True),
    Column("repo_id", Integer, ForeignKey("repos.id", ondelete="CASCADE"), nullable=False),
)

# A large-file object (content addressed by sha256) stored once in the blob store.
lfs_objects = Table(
    "lfs_objects", metadata,
    Column("oid", String(64), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("created_at", DateTime, nullable=False),
)

# Which repo may read which LFS object: uploaded through it or referenced by one of its commits.
repo_lfs_objects = Table(
    "repo_lfs_objects", metadata,
    Column("repo_id", Integer, ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
    Column("oid", String(64), ForeignKey("lfs_objects.oid"), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("filename", Text),  # first path that committed it; None while only uploaded
    Column("ref", String(256)),
    Column("pushed_at", DateTime, nullable=False),
)

# Discussions and pull requests (a PR's changes live on the git ref refs/pr/{num}).
discussions = Table(
    "discussions", metadata,
    Column("id", Integer, primary_key=True),
    Column("repo_id", Integer, ForeignKey("repos.id", ondelete="CASCADE"), nullable=False),
    Column("num", Integer, nullable=False),
    Column("author_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("title", String(256), nullable=False),
    Column("status", String(8), nullable=False),  # "open" | "closed" | "merged" | "draft"
    Column("is_pull_request", Boolean, nullable=False),
    Column("target_branch", String(256)),  # "refs/heads/main" for PRs
    Column("merge_commit_id", String(40)),
    Column("created_at", DateTime, nullable=False),
    UniqueConstraint("repo_id", "num", name="uq_discussions_repo_num"),
)

discussion_events = Table(
    "discussion_events", metadata,
    Column("id", String(24), primary_key=True),
    Column("discussion_id", Integer, ForeignKey("discussions.id", ondelete="CASCADE"), nullable=False),
    Column("type", String(16), nullable=False),  # "comment" | "status-change" | "commit" | "title-change"
    Column("author_id", Integer, ForeignKey("accounts.id")),
    Column("created_at", DateTime, nullable=False),
    Column("data", JSON, nullable=False),
)
Index("ix_discussion_events_discussion", discussion_events.c.discussion_id, discussion_events.c.created_at)

likes = Table(
    "likes", metadata,
    Column("user_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("repo_id", Integer, ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
    Column("created_at", DateTime, nullable=False),
)
Index("ix_likes_repo", likes.c.repo_id)

# Requests for access to gated repos. "auto" gating accepts a request when it is made.
access_requests = Table(
    "access_requests", metadata,
    Column("id", Integer, primary_key=True),
    Column("repo_id", Integer, ForeignKey("repos.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("status", String(8), nullable=False),  # "pending" | "accepted" | "rejected"
    Column("fields", JSON),
    Column("rejection_reason", Text),
    Column("created_at", DateTime, nullable=False),
    UniqueConstraint("repo_id", "user_id", name="uq_access_requests_repo_user"),
)

# --- scale-out: GC leases and the background-job queue (migration 0005) --------------------------

# A writer of a blob key (an upload) holds a lease on it from just before the write until well after
# the database references it; GC never deletes a key whose lease is younger than its grace period.
blob_leases = Table(
    "blob_leases", metadata,
    Column("key", String(256), primary_key=True),
    Column("touched_at", DateTime, nullable=False),
)

# Storage of the huey job queue (hub/jobs.py): queued tasks, scheduled (delayed/retried) tasks,
# key/value data (results, locks with an expiry) and counters. ``queue`` is huey's name.
job_queue = Table(
    "job_queue", metadata,
    Column("id", Integer, primary_key=True),
    Column("queue", String(64), nullable=False),
    Column("priority", Integer, nullable=False, default=0),
    Column("data", LargeBinary, nullable=False),
)
Index("ix_job_queue_next", job_queue.c.queue, job_queue.c.priority, job_queue.c.id)

job_schedule = Table(
    "job_schedule", metadata,
    Column("id", Integer, primary_key=True),
    Column("queue", String(64), nullable=False),
    Column("run_at", DateTime, nullable=False),
    Column("data", LargeBinary, nullable=False),
)
Index("ix_job_schedule_due", job_schedule.c.queue, job_schedule.c.run_at)

job_data = Table(
    "job_data", metadata,
    Column("queue", String(64), primary_key=True),
    Column("key", String(256), primary_key=True),
    Column("value", LargeBinary, nullable=False),
    Column("expires_at", DateTime),  # None: never
)

job_counters = Table(
    "job_counters", metadata,
    Column("queue", String(64), primary_key=True),
    Column("key", String(256), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

# --- Xet (migration 0006) -----------------------------------------------------------------------

# A file uploaded through Xet: its Xet file hash and the LFS object (sha256) we rebuilt from its
# chunks, so that the client's ordinary ``lfsFile`` commit finds the object, and later Xet downloads
# and chunk-level dedup can find the file's chunks (the verified shard is kept in the blob store).
xet_files = Table(
    "xet_files", metadata,
    Column("file_hash", String(64), primary_key=True),
    Column("oid", String(64), ForeignKey("lfs_objects.oid", ondelete="CASCADE"), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("shard", String(64), nullable=False),  # sha256 of the shard that described the file
    Column("created_at", DateTime, nullable=False),
)
Index("ix_xet_files_oid", xet_files.c.oid)

# The global dedup index (xet/dedup.py): chunks a client may ask about (the first chunk of each file,
# and chunks whose hash is 0 mod 1024, as the Xet protocol picks them) -> the xorb that holds the
# chunk and the shard that described it (its sibling xorbs are offered in the same answer).
xet_dedup_chunks = Table(
    "xet_dedup_chunks", metadata,
    Column("chunk_hash", String(64), primary_key=True),
    Column("xorb_hash", String(64), nullable=False),
    Column("shard", String(64), nullable=False),
    Column("created_at", DateTime, nullable=False),
)
Index("ix_xet_dedup_chunks_xorb", xet_dedup_chunks.c.xorb_hash)

# What each account made the Xet CAS do, per hour (unix time // 3600): xorb bytes it sent, and file
# bytes the server rebuilt from xorbs for its shards. Bounds amplification (xet/service.py).
xet_usage = Table(
    "xet_usage", metadata,
    Column("account_id", Integer, primary_key=True),
    Column("hour", Integer, primary_key=True),
    Column("received_bytes", BigInteger, nullable=False),
    Column("rebuilt_bytes", BigInteger, nullable=False),
)

# Xorbs some replica verified (every chunk hashed as it arrived) and stored lately: a shard checked
# on another replica need not hash their chunks again (xet/service.py RecentXorbs); rows age out.
xet_verified_xorbs = Table(
    "xet_verified_xorbs", metadata,
    Column("xorb_hash", String(64), primary_key=True),
    Column("verified_at", DateTime, nullable=False),
    Index("ix_xet_verified_xorbs_verified_at", "verified_at"),
)

# Inference limits shared by every replica: a token bucket per principal, and one lease per
# request in flight (leases expire, so a replica that dies cannot hold a principal's slots forever).
rate_buckets = Table(
    "rate_buckets", metadata,
    Column("key", String(160), primary_key=True),
    Column("tokens", Float, nullable=False),
    Column("updated_at", Float, nullable=False),  # unix seconds
)

inflight_leases = Table(
    "inflight_leases", metadata,
    Column("id", String(32), primary_key=True),
    Column("key", String(160), nullable=False),
    Column("expires_at", Float, nullable=False),  # unix seconds
)
Index("ix_inflight_leases_key", inflight_leases.c.key)

# Every change made through the hub (and every refused attempt), newest last; see hub/audit.py.
audit_events = Table(
    "audit_events", metadata,
    Column("id", Integer, primary_key=True),
    Column("at", DateTime, nullable=False),
    Column("actor", String(96)),  # account name; NULL: anonymous, or the admin CLI when ip is NULL
    Column("ip", String(64)),
    Column("action", String(96), nullable=False),  # "POST /api/repos/create", "cli token revoke"
    Column("target", String(512), nullable=False),  # the path, or what a CLI command acted on
    Column("status", Integer, nullable=False),  # the HTTP status (0 for the CLI)
    Column("request_id", String(128)),  # the server's own id of the request
    Column("client_request_id", String(128)),  # the client's X-Request-Id / X-Amzn-Trace-Id, if sane
    Index("ix_audit_events_at", "at"),
    Index("ix_audit_events_actor", "actor"),
)

# Upload scan results (hub/scans.py), keyed by what the scan depends on: the file's content (LFS
# sha256 or git blob id) and its name (scanners pick by name and magic bytes), so identical files
# in many repos are scanned once.
file_scans = Table(
    "file_scans", metadata,
    Column("key", String(400), primary_key=True),
    Column("status", String(16), nullable=False),  # safe | suspicious | unsafe | error | skipped
    Column("result", JSON, nullable=False),  # FileScan.to_json()
    Column("scanned_at", DateTime, nullable=False),
)

# Web UI sessions (hub/sessions.py). The cookie holds a random id; only its sha256 is stored, so a
# copy of the database signs no one in. Deleting the row ends the session at once (sign-out,
# password change, ``aicommons user sign-out``).
web_sessions = Table(
    "web_sessions", metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("last_seen_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
    Index("ix_web_sessions_user_id", "user_id"),
    Index("ix_web_sessions_expires_at", "expires_at"),
)

# Repos pulled through from an upstream hub (hub/upstream.py): where each came from and when its
# refs were last fetched. Their namespaces were created by the mirror too (upstream_namespaces), so
# that a local account never receives an upstream repo under its name.
upstream_repos = Table(
    "upstream_repos", metadata,
    Column("repo_id", Integer, ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
    Column("upstream_url", String(500), nullable=False),
    Column("upstream_id", String(200), nullable=False),
    Column("fetched_at", DateTime, nullable=False),
    # A pinned mirror (``aicommons mirror add``): every large file of ``revisions`` is kept here, so
    # the repo works with the upstream gone.
    Column("pinned", Boolean, nullable=False, default=False),
    Column("revisions", JSON),
)
upstream_namespaces = Table(
    "upstream_namespaces", metadata,
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("upstream_url", String(500), nullable=False),
)
# A user's own upstream token ("link your upstream account", migration 0027): AES-GCM sealed with a
# key derived from the hub's secret (hub/keys.py "upstream-links"), never shown back. Gated and
# private upstream repos are served to a user only while upstream accepts this token for them.
upstream_links = Table(
    "upstream_links", metadata,
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("upstream_url", String(500), primary_key=True),
    Column("sealed", Text, nullable=False),  # base64 of nonce + ciphertext
    Column("upstream_user", String(200), nullable=False),  # the name upstream's whoami gave
    Column("created_at", DateTime, nullable=False),
)
# Administrators' mirror policy (``aicommons mirror policy``), on top of the AICOMMONS_UPSTREAM_*
# settings: ``effect`` "allow" | "block", ``kind`` "repo" (a glob over repo ids) | "license".
upstream_rules = Table(
    "upstream_rules", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("effect", String(8), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("pattern", String(200), nullable=False),
    Column("created_at", DateTime, nullable=False),
    UniqueConstraint("effect", "kind", "pattern", name="uq_upstream_rules"),
)

# --- sign-up (migration 0014) ---------------------------------------------------------------------

# Single-use links sent by mail or handed out: e-mail verification (24 h), password reset (1 h),
# invites. Only the sha256 of the token is stored; using a link deletes its row.
one_time_links = Table(
    "one_time_links", metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("purpose", String(16), nullable=False),  # "verify" | "reset" | "invite"
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE")),
    Column("email", String(256)),  # verify: the address verified; invite: the only address it admits
    Column("created_by", String(96)),
    Column("created_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
    Index("ix_one_time_links_account", "account_id"),
)

# Names of deleted or renamed users and organisations: never registrable by another account
# (the "namespace reuse" attack), until a site admin releases one (``aicommons name release``).
retired_names = Table(
    "retired_names", metadata,
    Column("name_lower", String(96), primary_key=True),
    Column("name", String(96), nullable=False),
    Column("kind", String(8), nullable=False),  # "user" | "org"
    Column("account_id", Integer),  # who held it (the account may be gone); it may take it back
    Column("reason", String(256), nullable=False),
    Column("retired_at", DateTime, nullable=False),
)

# Sign-up attempts per client address, shared by every replica (the sign-up throttle).
signup_attempts = Table(
    "signup_attempts", metadata,
    Column("id", Integer, primary_key=True),
    Column("client", String(64), nullable=False),
    Column("at", DateTime, nullable=False),
    Index("ix_signup_attempts_client_at", "client", "at"),
)

# --- collections and webhooks (migration 0017) ------------------------------------------------------

# A collection: an ordered list of repos, papers and other collections, owned by a user or an org.
# ``id`` is the 24-hex id at the end of the slug; the title part of the slug follows renames.
collections = Table(
    "collections", metadata,
    Column("id", String(24), primary_key=True),
    Column("owner_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("title", String(128), nullable=False),
    Column("description", Text),
    Column("private", Boolean, nullable=False, default=False),
    Column("theme", String(16), nullable=False),
    Column("position", Integer, nullable=False, default=0),  # among the owner's collections
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Index("ix_collections_owner", "owner_id", "position"),
)

# One entry of a collection. Exactly one of repo_id / paper_id / target_id is set; ``item_key``
# ("repo:12", "paper:2307.09288", "collection:<id>") makes an item appear once per collection.
# Repo items follow renames and vanish with the repo (ON DELETE CASCADE).
collection_items = Table(
    "collection_items", metadata,
    Column("id", String(24), primary_key=True),
    Column("collection_id", String(24), ForeignKey("collections.id", ondelete="CASCADE"), nullable=False),
    Column("item_type", String(16), nullable=False),  # model | dataset | space | paper | collection
    Column("item_key", String(64), nullable=False),
    Column("repo_id", Integer, ForeignKey("repos.id", ondelete="CASCADE")),
    Column("paper_id", String(32)),
    Column("target_id", String(24), ForeignKey("collections.id", ondelete="CASCADE")),
    Column("position", Integer, nullable=False),
    Column("note", Text),
    Column("created_at", DateTime, nullable=False),
    UniqueConstraint("collection_id", "item_key", name="uq_collection_items_key"),
    Index("ix_collection_items_repo", "repo_id"),
    Index("ix_collection_items_target", "target_id"),
)

# A webhook of a user: where to POST the Hub's payload when something it watches changes.
webhooks = Table(
    "webhooks", metadata,
    Column("id", String(24), primary_key=True),
    Column("owner_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("url", Text, nullable=False),
    Column("secret", String(256)),
    Column("domains", JSON, nullable=False),  # ["repo", "discussion"]
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Index("ix_webhooks_owner", "owner_id"),
)

# What a webhook watches, one row each, so that an event finds its webhooks by index.
webhook_watches = Table(
    "webhook_watches", metadata,
    Column("webhook_id", String(24), ForeignKey("webhooks.id", ondelete="CASCADE"), primary_key=True),
    Column("kind", String(8), primary_key=True),  # user | org | model | dataset | space
    Column("name_lower", String(193), primary_key=True),
    Column("name", String(193), nullable=False),  # as the owner spelled it
    Column("position", Integer, nullable=False),
    Index("ix_webhook_watches_target", "kind", "name_lower"),
)

# One event sent (or being sent) to one webhook: the delivery log.
webhook_deliveries = Table(
    "webhook_deliveries", metadata,
    Column("id", Integer, primary_key=True),
    Column("webhook_id", String(24), ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False),
    Column("event", String(64), nullable=False),  # "update repo.content"
    Column("payload", JSON, nullable=False),
    Column("status", String(16), nullable=False),  # pending | delivered | retrying | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("response_status", Integer),
    Column("response_body", Text),
    Column("error", Text),
    Column("created_at", DateTime, nullable=False),
    Column("last_attempt_at", DateTime),
    Index("ix_webhook_deliveries_webhook", "webhook_id", "id"),
)

# The admin dashboard's pre-aggregated figures (hub/dashboard.py): one value per series, key (a status
# class, a model, a repo...) and time bucket. Written by the periodic rollup job and each server's
# metrics recorder; the dashboard reads only these rows, never a big table.
stat_rollups = Table(
    "stat_rollups", metadata,
    Column("series", String(48), primary_key=True),
    Column("key", String(256), primary_key=True),
    Column("at", DateTime, primary_key=True),
    Column("value", Float, nullable=False),
    Index("ix_stat_rollups_series_at", "series", "at"),
)

# Downloads of a repo per UTC day ("Downloads last month"), written with the batched counts.
repo_downloads_daily = Table(
    "repo_downloads_daily", metadata,
    Column("repo_id", Integer, ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("downloads", BigInteger, nullable=False),
)

# The Parquet conversion of a dataset's default branch to refs/convert/parquet (hub/parquet_export.py):
# one row per dataset, for the latest commit of main that was queued.
parquet_conversions = Table(
    "parquet_conversions", metadata,
    Column("repo_id", Integer, ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
    Column("source_sha", String(40), nullable=False),  # the commit of main being (or that was) converted
    Column("state", String(16), nullable=False),  # pending | done | failed
    Column("converted_sha", String(40)),  # the commit of refs/convert/parquet it produced
    Column("partial", Boolean, nullable=False, default=False),
    Column("result", JSON),  # {"configs": {name: {"info": DatasetInfo dict, "files": [{split, path, size}]}}}
    Column("error", Text),
    Column("updated_at", DateTime, nullable=False),
)

# The conversion of each branch a dataset's owner opts into besides the default one (migration 0028):
# the row is the opt-in; source_sha "" until the branch's first commit is queued.
parquet_branch_conversions = Table(
    "parquet_branch_conversions", metadata,
    Column("repo_id", Integer, ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
    Column("branch", String(255), primary_key=True),
    Column("source_sha", String(40), nullable=False),
    Column("state", String(16), nullable=False),  # pending | done | failed
    Column("converted_sha", String(40)),  # the commit of refs/convert/parquet-branch/<branch>
    Column("partial", Boolean, nullable=False, default=False),
    Column("result", JSON),
    Column("error", Text),
    Column("updated_at", DateTime, nullable=False),
)

# --- spaces (migration 0021) --------------------------------------------------------------------------

# A Space's runtime settings and what its runner last reported (hub/spaces.py). One row per space repo,
# made on first use; ``stage`` is the Hub's SpaceStage string.
space_runtimes = Table(
    "space_runtimes", metadata,
    Column("repo_id", Integer, ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
    Column("hardware", String(32), nullable=False),  # the flavour requested (one the operator configured)
    Column("sleep_seconds", Integer),  # null: the hub's default; -1: never sleeps
    Column("paused", Boolean, nullable=False, default=False),
    Column("stage", String(32), nullable=False),
    Column("error", Text),  # why the last build or run failed, for the owner
    Column("sha", String(64)),  # the commit the current build is of
    Column("updated_at", DateTime, nullable=False),
)

# A Space's secrets (``kind`` "secret": the value encrypted, never returned) and variables
# ("variable": the value in clear, listed to the owner side); both reach the app as environment.
space_env = Table(
    "space_env", metadata,
    Column("repo_id", Integer, ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
    Column("kind", String(8), primary_key=True),  # secret | variable
    Column("key", String(128), primary_key=True),
    Column("value", Text, nullable=False),  # a secret's: base64 of nonce + AES-GCM ciphertext
    Column("description", Text),
    Column("updated_at", DateTime, nullable=False),
)

# --- storage accounting and quotas (migration 0025, hub/storage_usage.py) ------------------------

# What each repo costs, computed by the ``storage_accounting`` job (never per request): logical bytes
# (its git folder plus the LFS objects its history references, whole), bytes only uploaded to it and
# not committed yet, and physical bytes (its git folder plus its share of the stored objects, xorbs
# and whole-file blobs, each split equally between the repos that reference it).
storage_usage = Table(
    "storage_usage", metadata,
    Column("repo_id", Integer, ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
    Column("owner_id", Integer, nullable=False),
    Column("git_bytes", BigInteger, nullable=False),
    Column("lfs_bytes", BigInteger, nullable=False),
    Column("pending_bytes", BigInteger, nullable=False),
    Column("physical_bytes", BigInteger, nullable=False),
    Column("lfs_files", Integer, nullable=False),
    Column("computed_at", DateTime, nullable=False),
)
Index("ix_storage_usage_owner", storage_usage.c.owner_id)
# The quota check (StorageUsageStore.live_usage) and list_user_repos add up one owner's repos.
Index("ix_repos_owner", repos.c.owner_id)

# An owner's storage quota set by an admin (``aicommons storage quota set``); owners without a row
# get AICOMMONS_STORAGE_QUOTA_DEFAULT. quota_bytes None: unlimited, whatever the default.
storage_quotas = Table(
    "storage_quotas", metadata,
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("quota_bytes", BigInteger),
    Column("updated_at", DateTime, nullable=False),
)

# Quota reservations of uploads in flight (hub/storage_usage.py); expired rows are pruned.
storage_reservations = Table(
    "storage_reservations", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("owner_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("expires_at", DateTime, nullable=False),
    Index("ix_storage_reservations_owner", "owner_id"),
)

# Whole copies of chunk-stored files kept in the bucket for presigned download redirects
# (hub/bucket_copies.py): one row per object, served once ``ready``; ``key`` is unique per copy
# (never reused), so a retired copy's deletion cannot remove a newer one.
download_copies = Table(
    "download_copies", metadata,
    Column("oid", String(64), primary_key=True),
    Column("key", String(200), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("ready", Boolean, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("last_served_at", DateTime, nullable=False),
    Index("ix_download_copies_last_served", "last_served_at"),
)

# Copies no longer served, whose objects are deleted once ``due_at`` passed (after the lifetime of
# any presigned URL handed out for them; at once for deleted files).
download_copy_deletions = Table(
    "download_copy_deletions", metadata,
    Column("key", String(200), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("due_at", DateTime, nullable=False),
    Index("ix_download_copy_deletions_due", "due_at"),
)
