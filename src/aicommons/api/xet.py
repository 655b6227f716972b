"""Xet over HTTP: the Hub's token endpoint and the CAS routes hf_xet calls to upload (spec §9.5, §10).

huggingface_hub 2.4 uploads every "lfs" file through Xet when hf_xet is installed, with no fallback
to the LFS batch API. The client first asks the Hub for a token (``xet-write-token``), then talks to
the CAS URL in it with ``Authorization: Bearer <token>``: it POSTs xorbs, then one shard describing
the files, then commits with ordinary ``lfsFile`` lines. Our CAS lives under ``/xet-cas`` on the hub
itself; the auth middleware leaves those paths to the token check here.

Routes hf_xet (1.8) probes that we do not serve answer 404, which it handles: ``POST /v2/shards``
(it falls back to ``/v1/shards``), ``POST /v1/xorb-grants/...`` (presigned direct uploads; it falls
back to ``POST /v1/xorbs/...``) and the global dedup query ``GET /v1/chunks/...`` (no dedup answer).
Its best-effort ``POST /v1/telemetry`` goes to the host root and is refused (401); it never retries.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from aicommons.api.http import (
    base_url, blocking, hub_of, principal_of, read_body, repo_id_param, repo_type_param, run_sync,
)
from aicommons.api.lfs import require_uploader
from aicommons.errors import NotFound, Unauthorized
from aicommons.xet.shard import MAX_SHARD_BYTES
from aicommons.xet.tokens import XetGrant
from aicommons.xet.xorb import MAX_XORB_BYTES

CAS_PREFIX = "/xet-cas"
XORB_NAMESPACE = "default"  # the only xorb prefix current xet-core uses


@blocking
def write_token(request: Request) -> Response:
    """A CAS write token for this repo. Same rights as an LFS upload: a signed-in write token that
    can see the repo (PR contributors upload too); files join the repo only through a commit, which
    has its own checks. The revision (``None`` when the client is about to open a PR) plays no part."""
    hub, principal = hub_of(request), principal_of(request)
    repo = hub.repos.find(repo_type_param(request), repo_id_param(request), principal)
    require_uploader(principal)
    token, expires = hub.xet.tokens.issue(repo.id, "write", principal.account.id)
    cas_url = base_url(request) + CAS_PREFIX
    # huggingface_hub reads the headers, hf_xet the JSON body.
    headers = {"X-Xet-Cas-Url": cas_url, "X-Xet-Access-Token": token, "X-Xet-Token-Expiration": str(expires)}
    return JSONResponse({"accessToken": token, "exp": expires, "casUrl": cas_url}, headers=headers)


def _grant(request: Request, operation: str) -> XetGrant:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        raise Unauthorized("A Xet access token is required (Authorization: Bearer)")
    return hub_of(request).xet.tokens.check(token.strip(), operation)


def _xorb_hash(request: Request) -> str:
    if request.path_params["prefix"] != XORB_NAMESPACE:
        raise NotFound(f"Unknown xorb namespace {request.path_params['prefix']!r}")
    return request.path_params["hash"]


async def post_xorb(request: Request) -> Response:
    _grant(request, "write")
    xorb_hash = _xorb_hash(request)
    body = await read_body(request, MAX_XORB_BYTES)
    inserted = await run_sync(hub_of(request).xet.store_xorb, xorb_hash, body)
    return JSONResponse({"was_inserted": inserted})


async def head_xorb(request: Request) -> Response:
    _grant(request, "write")
    exists = await run_sync(hub_of(request).xet.has_xorb, _xorb_hash(request))
    return Response(status_code=200 if exists else 404)


async def post_shard(request: Request) -> Response:
    grant = _grant(request, "write")
    body = await read_body(request, MAX_SHARD_BYTES)
    await run_sync(hub_of(request).xet.ingest_shard, grant.repo_id, body)
    return JSONResponse({"result": 1})  # 1 = "sync performed"


async def chunk_dedup(request: Request) -> Response:
    _grant(request, "write")
    raise NotFound("No deduplication information for this chunk")


def xet_routes() -> list[Route]:
    return [
        Route("/api/{types}/{ns}/{name}/xet-write-token/{rev}", write_token),
        Route(CAS_PREFIX + "/v1/xorbs/{prefix}/{hash}", post_xorb, methods=["POST"]),
        Route(CAS_PREFIX + "/v1/xorbs/{prefix}/{hash}", head_xorb, methods=["HEAD"]),
        Route(CAS_PREFIX + "/v1/shards", post_shard, methods=["POST"]),
        Route(CAS_PREFIX + "/v1/chunks/{prefix}/{hash}", chunk_dedup),
    ]
