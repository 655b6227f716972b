"""The audit log: every change made through the hub, and every refused attempt at one.

Recorded at the HTTP edge (``api/middleware.AuditMiddleware``), so the API, git pushes and the web
UI's forms are all covered by one rule, plus the admin CLI's account and token commands. An event
is who (account name, ``system:…`` for the hub's own jobs, or anonymous), from where (client IP), what (method and path, or the CLI
command), the outcome (HTTP status) and the request id; never a request body, so no file content,
password or token value reaches it. Reads (GET/HEAD) and POSTs that change nothing (preupload,
paths-info, LFS batch, git fetch, the Xet routes hf_xet probes that we do not serve) are not
recorded; neither is inference (prompts are private, and its usage is counted in the metrics).
Any request that ends in a server error (5xx) is recorded whatever its method, an unhandled
exception included, so an attack that breaks something leaves a trace. The request id is the one the
server generated, never one a client sent; a sane id the client sent (``X-Request-Id`` or
``X-Amzn-Trace-Id``, which the answer's ``X-Request-Id`` then echoes) is kept beside it as
``client_request_id``, so an operator finds the event a client quotes. The event is written before the answer's status line is sent, so a client never
sees a success that the log missed.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from aicommons.db.audit import AuditEvent, AuditStore
from aicommons.times import utcnow

if TYPE_CHECKING:
    from aicommons.hub.access import Principal

_CHANGING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_NOT_AUDITED_PREFIXES = ("/v1/", "/models/", "/lfs-transfer/", "/api/validate-yaml")
_READ_ONLY_POSTS = ("/preupload/", "/paths-info/", "/info/lfs/objects/batch", "/info/lfs/objects/verify",
                    "/git-upload-pack")
# Routes hf_xet tries before every xorb and shard upload and we do not serve (api/xet.py), under the
# CAS URL we hand out (``/xet-cas/<store>``) or without the store: each answers 404 and changes
# nothing, and one audit row each cost a durable commit per xorb (issue 21).
# Principals of the hub's own jobs calling its HTTP API (api/xet.py: the chunking job's CAS uploads):
# recorded under their key, which no account name can equal (account names have no ':').
SYSTEM_PREFIX = "system:"
CHUNKING_JOB = SYSTEM_PREFIX + "chunking"
_XET_PROBE = re.compile(r"/xet-cas/(?:[^/]+/)?(?:v1/xorb-grants/|v2/shards$)")


def is_audited(method: str, path: str) -> bool:
    if method not in _CHANGING_METHODS:
        return False
    if path.startswith("/models/") and path.endswith(("/load", "/unload")):
        return True  # an administrator loading or unloading a model
    if path.startswith(_NOT_AUDITED_PREFIXES) or _XET_PROBE.match(path):
        return False
    return not any(marker in path for marker in _READ_ONLY_POSTS)


class AuditLog:
    def __init__(self, store: AuditStore):
        self.store = store

    def record_request(self, principal: Principal | None, ip: str | None, method: str, path: str, status: int,
                       request_id: str | None, client_request_id: str | None = None) -> None:
        actor = principal.name if principal else None
        if actor is None and principal is not None and principal.key.startswith(SYSTEM_PREFIX):
            actor = principal.key  # the hub's own job (e.g. system:chunking), not an anonymous caller
        self.store.append(AuditEvent(utcnow(), actor, ip, f"{method} {path}", path, status, request_id,
                                     client_request_id))

    def record_failed_sign_in(self, user_name: str, ip: str | None, via: str) -> None:
        """A refused password (``via``: "web" form or HTTP "basic"); the name tried is the target.
        Throttled attempts (429) are refused before the check and not recorded."""
        self.store.append(AuditEvent(utcnow(), None, ip, f"sign-in failed ({via})", user_name[:512], 401))

    def record_account(self, action: str, name: str, ip: str | None) -> None:
        """A change someone made to their own account through a form (sign-up, first-run setup,
        e-mail verified, password reset): the account is actor and target."""
        self.store.append(AuditEvent(utcnow(), name, ip, action, name, 200))

    def record_action(self, actor: str, ip: str | None, action: str, target: str) -> None:
        """A change whose request path does not name its target (e.g. the organisation a form created)."""
        self.store.append(AuditEvent(utcnow(), actor, ip, action, target, 200))

    def record_cli(self, command: str, target: str) -> None:
        """An admin command run on the server's machine: no account, no IP."""
        self.store.append(AuditEvent(utcnow(), None, None, f"cli {command}", target, 0))

    def events(self, **filters: Any) -> list[AuditEvent]:
        return self.store.events(**filters)
