"""Xet over HTTP: the Hub's token endpoints and the CAS routes hf_xet calls (spec §9.5, §10).

huggingface_hub 2.4 uploads every "lfs" file through Xet when hf_xet is installed, with no fallback
to the LFS batch API. The client first asks the Hub for a token (``xet-write-token``), then talks to
the CAS URL in it with ``Authorization: Bearer <token>``: it POSTs xorbs, then one shard describing
the files, then commits with ordinary ``lfsFile`` lines. Our CAS lives under ``/xet-cas`` on the hub
itself; the auth middleware leaves those paths to the token check here.

Downloads: a ``/resolve/`` HEAD (or a tree entry) of a Xet file names its hash and the
``xet-read-token`` URL; hf_xet asks ``GET /v2/reconstructions/{file}`` (falling back to v1 on 404)
with ``Range: bytes=…`` blocks of the file, then GETs the byte ranges of stored xorbs from the signed
URLs in the answer (``/xet-cas/v1/xorb-ranges/…``, no token: the URL is the credential).

There is no ``HEAD /v1/xorbs/...`` (hf_xet never asks): whether a xorb exists is not for any token
to learn, since xorbs are shared by all repos and a private file's xorb would answer too.

Routes hf_xet (1.8) probes that we do not serve answer 404, which it handles: ``POST /v2/shards``
(it falls back to ``/v1/shards``) and ``POST /v1/xorb-grants/...`` (presigned direct uploads; it falls
back to ``POST /v1/xorbs/...``). The global dedup query ``GET /v1/chunks/...`` is answered with
keyed chunk hashes (xet/dedup.py).
Its best-effort ``POST /v1/telemetry`` goes to the host root and is refused (401); it never retries.
"""

from __future__ import annotations

import functools

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from aicommons.api.http import (
    base_url,
    blocking,
    hub_of,
    principal_of,
    read_body,
    repo_id_param,
    repo_type_param,
    run_sync,
)
from aicommons.api.ranges import parse_range
from aicommons.api.socket_body import upload_body
from aicommons.errors import BadRequest, NotFound, PayloadTooLarge, Unauthorized
from aicommons.hub.access import Principal
from aicommons.hub.audit import CHUNKING_JOB
from aicommons.hub.policy import Action
from aicommons.xet import wire
from aicommons.xet.fetch_urls import requested_range
from aicommons.xet.service import parse_hash
from aicommons.xet.shard import MAX_SHARD_BYTES
from aicommons.xet.tokens import XetGrant
from aicommons.xet.xorb import MAX_XORB_BYTES

CAS_PREFIX = "/xet-cas"
XORB_NAMESPACE = "default"  # the only xorb prefix current xet-core uses
DEDUP_NAMESPACES = ("default", "default-merkledb")  # current xet-core, and older docs
MAX_BATCH_FILES = 1000
XORB_READ_PIECE = 1024 * 1024


def _token_response(request: Request, token: str, expires: int) -> Response:
    # The store id in the URL: hf_xet keys its local dedup cache on the CAS URL (xet/keys.py).
    cas_url = f"{base_url(request)}{CAS_PREFIX}/{hub_of(request).xet.store_id()}"
    # huggingface_hub reads the headers, hf_xet the JSON body.
    headers = {"X-Xet-Cas-Url": cas_url, "X-Xet-Access-Token": token, "X-Xet-Token-Expiration": str(expires)}
    return JSONResponse({"accessToken": token, "exp": expires, "casUrl": cas_url}, headers=headers)


@blocking
def write_token(request: Request) -> Response:
    """A CAS write token for this repo. Same rights as an LFS upload: a signed-in write token that
    can see the repo (PR contributors upload too); files join the repo only through a commit, which
    has its own checks. The revision (``None`` when the client is about to open a PR) plays no part."""
    hub, principal = hub_of(request), principal_of(request)
    repo = hub.repos.find(repo_type_param(request), repo_id_param(request), principal, action=Action.CONTRIBUTE)
    return _token_response(request, *hub.xet.mint(repo.storage_key, "write", principal))


@blocking
def read_token(request: Request) -> Response:
    """A CAS read token for this repo: whoever may download its files (``/resolve/`` makes the same
    two checks, gating included). It reads the Xet files whose objects the repo references, at any
    revision; the revision in the URL plays no part."""
    hub, principal = hub_of(request), principal_of(request)
    repo = hub.repos.find(repo_type_param(request), repo_id_param(request), principal, action=Action.READ_CONTENT)
    return _token_response(request, *hub.xet.mint(repo.storage_key, "read", principal))


def _grant(request: Request, operation: str) -> XetGrant:
    """The request's Xet grant (blocking: it looks the repo and the minting credential up). A write
    is recorded in the audit log under the account the token was issued to, or as ``system:chunking``
    for the hub's own chunking job (hub/chunking.py), whose token has no account."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        raise Unauthorized("A Xet access token is required (Authorization: Bearer)")
    hub = hub_of(request)
    grant = hub.xet.grant(token.strip(), operation)
    store = request.path_params.get("store")
    if store is not None and store != hub.xet.store_id():
        raise NotFound("This Xet CAS URL belongs to another store: request a new token from the Hub")
    _check_still_allowed(request, grant)
    if operation == "write" and grant.account_id == 0:  # the hub's own chunking job (_check_still_allowed)
        request.state.principal = Principal(key=CHUNKING_JOB, token_role="write")
    elif operation == "write":
        account = hub.accounts.by_id(grant.account_id)
        request.state.principal = Principal(key=f"xet:{grant.account_id}", account=account, token_role="write")
    return grant


def _check_still_allowed(request: Request, grant: XetGrant) -> None:
    """A Xet token lives as long as ``AICOMMONS_UPLOAD_URL_TTL_SECONDS``, but what it was minted under
    can end sooner: the repo made private, a gated repo's access request rejected, a member removed
    from the organisation, the account suspended, the minting token expired. Each CAS request takes
    the minting credential's decision again, as signed LFS links do (api/lfs.py ``_link_access``):
    reading the repo's files for a read token, uploading to it for a write token."""
    hub = hub_of(request)
    if grant.account_id == 0 and grant.operation == "write":
        return  # the hub's own chunking job (hub/chunking.py): nobody else gets an anonymous write token
    if grant.token_id is not None:
        key = f"token:{grant.token_id}"
    else:
        key = f"user:{grant.account_id}" if grant.account_id else "anon:"
    principal = hub.accounts.principal_for_key(key)
    repo = hub.repos.by_id(grant.repo_id)
    action = Action.READ_CONTENT if grant.operation == "read" else Action.CONTRIBUTE
    if principal is None or repo is None or not hub.policy.allows(principal, repo, action):
        raise Unauthorized("This Xet token no longer gives access to the repository: request a new one from the Hub")


def _xorb_hash(request: Request) -> str:
    if request.path_params["prefix"] != XORB_NAMESPACE:
        raise NotFound(f"Unknown xorb namespace {request.path_params['prefix']!r}")
    return request.path_params["hash"]


async def post_xorb(request: Request) -> Response:
    """Store a verified xorb. ``was_inserted`` is always true: whether someone else had uploaded the
    same xorb before is not the uploader's business (it would tell that a private file exists)."""
    grant = await run_sync(_grant, request, "write")
    xorb_hash = _xorb_hash(request)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_XORB_BYTES:
        raise PayloadTooLarge(f"Request body is larger than the limit of {MAX_XORB_BYTES} bytes")
    # The storage quota, before a byte is stored (the declared size; 1 byte when not declared).
    size = int(declared) if declared is not None and declared.isdigit() else 1
    reservation = await run_sync(hub_of(request).xet.admit_xorb, grant.repo_id, size, grant.account_id)
    try:
        # Verified and written as it arrives, in a worker thread (xet/service.py): never held whole.
        await hub_of(request).xet.receive_xorb(xorb_hash, upload_body(request), grant.account_id)
    finally:
        if reservation is not None:  # none where no quota applies: spare the thread hop
            await run_sync(hub_of(request).xet.release_xorb, reservation)
    return JSONResponse({"was_inserted": True})


async def post_shard(request: Request) -> Response:
    grant = await run_sync(_grant, request, "write")
    body = await read_body(request, MAX_SHARD_BYTES)
    await run_sync(hub_of(request).xet.ingest_shard, grant.repo_id, body, grant.account_id)
    return JSONResponse({"result": 1})  # 1 = "sync performed"


@blocking
def chunk_dedup(request: Request) -> Response:
    """The global dedup query (xet/dedup.py): a shard of keyed chunk hashes, or 404."""
    _grant(request, "write")
    if request.path_params["prefix"] not in DEDUP_NAMESPACES:
        raise NotFound(f"Unknown dedup namespace {request.path_params['prefix']!r}")
    chunk_hex = request.path_params["hash"]
    parse_hash(chunk_hex, "chunk")
    answer = hub_of(request).xet.dedup.answer(chunk_hex)
    if answer is None:
        raise NotFound("No deduplication information for this chunk")
    return Response(answer, media_type="application/octet-stream", headers={"Cache-Control": "no-store"})


# --- downloads ------------------------------------------------------------------------------------


def _file_range(header: str | None, size: int) -> tuple[int, int]:
    """``[first, end)`` of the file that a reconstruction's ``Range`` asks for. Past the end: 416,
    which hf_xet takes as the end of the file."""
    if size == 0:
        return 0, 0
    ranges = parse_range(header, size) if header else None
    if not ranges:
        return 0, size
    if len(ranges) > 1:
        raise BadRequest("A reconstruction takes a single byte range")
    return ranges[0][0], ranges[0][1] + 1


def _reconstruction(request: Request, shape) -> Response:
    grant = _grant(request, "read")
    reads = hub_of(request).xet.reads
    file_hex = request.path_params["hash"]
    parse_hash(file_hex, "file")
    row = reads.readable_file(grant.repo_id, file_hex)
    rec = reads.reconstruct(row, *_file_range(request.headers.get("range"), row.size))
    return JSONResponse(shape(rec, functools.partial(reads.fetch_url, base_url(request) + CAS_PREFIX)))


@blocking
def reconstruction_v1(request: Request) -> Response:
    return _reconstruction(request, wire.v1)


@blocking
def reconstruction_v2(request: Request) -> Response:
    return _reconstruction(request, wire.v2)


@blocking
def batch_reconstruction(request: Request) -> Response:
    """Whole files, several at once; files this token cannot read are left out (as unknown ones)."""
    grant = _grant(request, "read")
    reads = hub_of(request).xet.reads
    file_ids = request.query_params.getlist("file_id")
    if len(file_ids) > MAX_BATCH_FILES:
        raise BadRequest(f"At most {MAX_BATCH_FILES} file_id values per request")
    recs = {}
    for file_hex in dict.fromkeys(file_ids):
        parse_hash(file_hex, "file")
        try:
            row = reads.readable_file(grant.repo_id, file_hex)
        except NotFound:
            continue
        recs[file_hex] = reads.reconstruct(row, 0, row.size)
    return JSONResponse(wire.batch(recs, functools.partial(reads.fetch_url, base_url(request) + CAS_PREFIX)))


async def xorb_range(request: Request) -> Response:
    """Bytes of a stored xorb, as a reconstruction signed them (the URL is the credential)."""
    reads = hub_of(request).xet.reads
    xorb_hex = request.path_params["hash"]
    first, last = reads.signer.check(xorb_hex, dict(request.query_params))
    start, end = requested_range(request.headers.get("range"), first, last)
    f = await run_sync(reads.open_xorb_at, xorb_hex, start)

    async def body():
        try:
            left = end - start + 1
            while left:
                piece = await run_sync(f.read, min(left, XORB_READ_PIECE))
                if not piece:
                    raise RuntimeError(f"stored xorb {xorb_hex} is shorter than a signed range of it")
                left -= len(piece)
                yield piece
        finally:
            await run_sync(f.close)

    headers = {"Content-Length": str(end - start + 1)}
    if "range" not in request.headers:
        return StreamingResponse(body(), headers=headers, media_type="application/octet-stream")
    # No client needs the xorb's total size; '*' spares a metadata request to the object store.
    headers["Content-Range"] = f"bytes {start}-{end}/*"
    return StreamingResponse(body(), status_code=206, headers=headers, media_type="application/octet-stream")


def xet_routes() -> list[Route]:
    cas = [
        ("/v1/xorbs/{prefix}/{hash}", post_xorb, ["POST"]),
        ("/v1/shards", post_shard, ["POST"]),
        ("/v1/chunks/{prefix}/{hash}", chunk_dedup, None),
        ("/v1/reconstructions/{hash}", reconstruction_v1, None),
        ("/v2/reconstructions/{hash}", reconstruction_v2, None),
        ("/v1/reconstructions", batch_reconstruction, None),
    ]
    # Each CAS route under the URL tokens name (/xet-cas/{store}/...) and, for tokens handed out
    # before the store id was part of it, without it. Signed xorb ranges carry their own credential.
    return [
        Route("/api/{types}/{ns}/{name}/xet-write-token/{rev}", write_token),
        Route("/api/{types}/{ns}/{name}/xet-read-token/{rev}", read_token),
        *(Route(CAS_PREFIX + path, handler, methods=methods) for path, handler, methods in cas),
        *(Route(CAS_PREFIX + "/{store}" + path, handler, methods=methods) for path, handler, methods in cas),
        Route(CAS_PREFIX + "/v1/xorb-ranges/{hash}", xorb_range),
    ]
