"""Downloads through Xet with the real, unmodified clients (huggingface_hub 2.4 + hf_xet).

Files uploaded through Xet are advertised as Xet files (``X-Xet-Hash`` + ``rel="xet-auth"`` on
``/resolve/``, ``xetHash`` in tree entries) and downloaded by hf_xet from CAS reconstructions;
files uploaded through LFS stay plain HTTP downloads. The client's requests are watched through a
recording proxy in front of the hub: the hub builds every URL it hands out (read token, CAS,
signed xorb ranges) from the ``Host`` the client used, so the client stays on the proxy.
"""

from __future__ import annotations

import hashlib
import http.client
import http.server
import os
import random
import threading
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
import lz4.frame
import pytest

from aicommons.xet.xorb import CHUNK_HEADER_BYTES, Scheme, bg4_join
from tests.conftest import ALICE_TOKEN, BOB_TOKEN, auth, unique_name

pytest.importorskip("hf_xet")

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


# --- a recording proxy ---------------------------------------------------------------------------


@dataclass
class RecordingProxy:
    url: str
    log: list[tuple[str, str]] = field(default_factory=list)  # (method, path with query)

    def paths(self, method: str, contains: str) -> list[str]:
        return [p for m, p in self.log if m == method and contains in p]


def _handler(hub_host: str, hub_port: int, record: list):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self):
            record.append((self.command, self.path))
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            upstream = http.client.HTTPConnection(hub_host, hub_port, timeout=60)
            try:
                upstream.request(self.command, self.path, body=body, headers=dict(self.headers.items()))
                response = upstream.getresponse()
                data = response.read()
                self.send_response(response.status)
                for name, value in response.getheaders():
                    if name.lower() not in HOP_BY_HOP:
                        self.send_header(name, value)
                declared = response.getheader("Content-Length")
                self.send_header("Content-Length", declared if self.command == "HEAD" and declared else str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
            finally:
                upstream.close()

        do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _forward

        def log_message(self, *args):  # quiet
            pass

    return Handler


@pytest.fixture
def proxy(live_hub):
    hub = urlsplit(live_hub.url)
    record: list = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(hub.hostname, hub.port, record))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield RecordingProxy(f"http://127.0.0.1:{server.server_address[1]}", record)
    server.shutdown()
    server.server_close()


def _local_storage(live_hub) -> bool:
    return live_hub.env.get("AICOMMONS_STORAGE_URL", "").split(":")[0] in ("", "file")


def _xet_hash(api, repo_id, path) -> str | None:
    return api.get_paths_info(repo_id, [path])[0].xet_hash


def _read_token(http, repo_id, token=ALICE_TOKEN, rev="main") -> httpx.Response:
    return http.get(f"/api/models/{repo_id}/xet-read-token/{rev}", headers=auth(token) if token else {})


def _cas_headers(http, repo_id) -> dict:
    response = _read_token(http, repo_id)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['accessToken']}"}


# --- the real client -----------------------------------------------------------------------------


def test_hf_hub_download_goes_through_xet(xet, api, repo_id, proxy, http, tmp_path):
    from huggingface_hub import hf_hub_download

    content = random.Random(11).randbytes(2 * 1024 * 1024 + 5)
    api.upload_file(path_or_fileobj=content, path_in_repo="weights.bin", repo_id=repo_id)
    file_hash = _xet_hash(api, repo_id, "weights.bin")
    assert file_hash is not None

    head = http.head(f"/{repo_id}/resolve/main/weights.bin", headers=auth(ALICE_TOKEN))
    assert head.headers["X-Xet-Hash"] == file_hash
    assert head.headers["X-Linked-Size"] == str(len(content))
    assert head.headers["X-Linked-Etag"] == f'"{hashlib.sha256(content).hexdigest()}"'
    commit = head.headers["X-Repo-Commit"]
    assert head.headers["Link"] == f'<{xet.url}/api/models/{repo_id}/xet-read-token/{commit}>; rel="xet-auth"'

    path = hf_hub_download(repo_id, "weights.bin", endpoint=proxy.url, token=ALICE_TOKEN, cache_dir=tmp_path)
    with open(path, "rb") as f:
        assert f.read() == content
    assert proxy.paths("GET", f"/api/models/{repo_id}/xet-read-token/{commit}")
    assert proxy.paths("GET", f"/reconstructions/{file_hash}")
    assert not proxy.paths("GET", "/resolve/")  # the bytes did not come over plain HTTP
    if _local_storage(xet):  # object storage signs its own URLs for whole xorbs: they bypass the proxy
        assert proxy.paths("GET", "/xet-cas/v1/xorb-ranges/")


def test_snapshot_download_uses_xet_hashes_from_the_tree(xet, api, repo_id, proxy, tmp_path):
    from huggingface_hub import snapshot_download

    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    files = {"a.bin": os.urandom(400_000), "sub/b.safetensors": os.urandom(900_000),
             "sub/copy-of-a.bin": None, "notes.txt": b"plain text, a regular file\n"}
    files["sub/copy-of-a.bin"] = files["a.bin"]
    for name, content in files.items():
        (folder / name).write_bytes(content)
    api.upload_folder(folder_path=str(folder), repo_id=repo_id)
    tree = {e.path: e for e in api.list_repo_tree(repo_id, recursive=True) if hasattr(e, "lfs")}
    assert tree["notes.txt"].lfs is None and tree["notes.txt"].xet_hash is None
    assert tree["a.bin"].xet_hash == tree["sub/copy-of-a.bin"].xet_hash is not None

    local = snapshot_download(repo_id, endpoint=proxy.url, token=ALICE_TOKEN, cache_dir=str(tmp_path / "cache"))
    for name, content in files.items():
        with open(os.path.join(local, name), "rb") as f:
            assert f.read() == content
    # Xet files skip the HEAD (the tree gave their hash) and are reconstructed; regular files do not.
    assert not proxy.paths("HEAD", "a.bin") and not proxy.paths("HEAD", "b.safetensors")
    assert proxy.paths("GET", f"/reconstructions/{tree['sub/b.safetensors'].xet_hash}")
    assert proxy.paths("GET", f"/reconstructions/{tree['a.bin'].xet_hash}")
    assert {p.rsplit("/", 1)[1] for p in proxy.paths("GET", "/resolve/")} == {"notes.txt", ".gitattributes"}


def test_lfs_uploaded_files_stay_plain_http(xet, api, repo_id, proxy, http, tmp_path, monkeypatch):
    from huggingface_hub import constants, hf_hub_download

    content = os.urandom(300_000)
    with monkeypatch.context() as m:  # upload through the LFS batch API
        m.setattr(constants, "HF_HUB_DISABLE_XET", True)
        api.upload_file(path_or_fileobj=content, path_in_repo="lfs.bin", repo_id=repo_id)
    entry = api.get_paths_info(repo_id, ["lfs.bin"])[0]
    assert entry.lfs is not None and entry.xet_hash is None
    head = http.head(f"/{repo_id}/resolve/main/lfs.bin", headers=auth(ALICE_TOKEN))
    assert "X-Xet-Hash" not in head.headers and "Link" not in head.headers

    path = hf_hub_download(repo_id, "lfs.bin", endpoint=proxy.url, token=ALICE_TOKEN, cache_dir=tmp_path)
    with open(path, "rb") as f:
        assert f.read() == content
    assert not proxy.paths("GET", "/xet-cas/")
    if _local_storage(xet):  # object storage redirects the GET to a presigned URL
        assert proxy.paths("GET", "/resolve/main/lfs.bin")


# --- access ---------------------------------------------------------------------------------------


def test_a_read_token_reads_only_its_own_repos_files(xet, api, repo_id, http):
    private = f"alice/{unique_name('private')}"
    api.create_repo(private, private=True)
    api.upload_file(path_or_fileobj=os.urandom(200_000), path_in_repo="secret.bin", repo_id=private)
    file_hash = _xet_hash(api, private, "secret.bin")
    assert http.get(f"/xet-cas/v1/reconstructions/{file_hash}", headers=_cas_headers(http, private)).status_code == 200

    # alice's public repo does not reference the object: its token cannot read the file.
    mine = _cas_headers(http, repo_id)
    for version in ("v1", "v2"):
        response = http.get(f"/xet-cas/{version}/reconstructions/{file_hash}", headers=mine)
        assert response.status_code == 404, response.text
    batch = http.get("/xet-cas/v1/reconstructions", params={"file_id": file_hash}, headers=mine)
    assert batch.status_code == 200 and batch.json() == {"files": {}, "fetch_info": {}}

    assert _read_token(http, private, BOB_TOKEN).status_code == 404  # bob cannot see the repo
    assert _read_token(http, private, None).status_code == 401
    write = http.get(f"/api/models/{private}/xet-write-token/main", headers=auth(ALICE_TOKEN)).json()
    response = http.get(f"/xet-cas/v1/reconstructions/{file_hash}",
                        headers={"Authorization": f"Bearer {write['accessToken']}"})
    assert response.status_code == 401  # a write token does not read
    assert http.get(f"/xet-cas/v1/reconstructions/{file_hash}").status_code == 401


def test_gated_repos_give_read_tokens_only_to_accepted_users(xet, api, repo_id, http, tmp_path):
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import GatedRepoError

    content = os.urandom(150_000)
    api.upload_file(path_or_fileobj=content, path_in_repo="gated.bin", repo_id=repo_id)
    api.update_repo_settings(repo_id, gated="manual")
    assert _read_token(http, repo_id, BOB_TOKEN).status_code == 403
    assert _read_token(http, repo_id, None).status_code == 401
    with pytest.raises(GatedRepoError):
        hf_hub_download(repo_id, "gated.bin", endpoint=xet.url, token=BOB_TOKEN, cache_dir=tmp_path)
    path = hf_hub_download(repo_id, "gated.bin", endpoint=xet.url, token=ALICE_TOKEN, cache_dir=tmp_path)
    with open(path, "rb") as f:
        assert f.read() == content


def test_a_read_token_stops_reading_when_access_ends(xet, api, repo_id, http):
    """A CAS read token outlives the request that minted it (an hour by default): a rejected access
    request, or a repo made private, must end what it reads at once, as on /resolve/."""
    api.upload_file(path_or_fileobj=os.urandom(150_000), path_in_repo="gated.bin", repo_id=repo_id)
    file_hash = _xet_hash(api, repo_id, "gated.bin")
    anonymous = {"Authorization": f"Bearer {_read_token(http, repo_id, None).json()['accessToken']}"}
    assert http.get(f"/xet-cas/v1/reconstructions/{file_hash}", headers=anonymous).status_code == 200

    api.update_repo_settings(repo_id, gated="manual")
    assert http.get(f"/xet-cas/v1/reconstructions/{file_hash}", headers=anonymous).status_code == 401
    assert http.post(f"/api/models/{repo_id}/ask-access", json={}, headers=auth(BOB_TOKEN)).status_code == 200
    handle = f"/api/models/{repo_id}/user-access-request/handle"
    assert http.post(handle, json={"user": "bob", "status": "accepted"}, headers=auth(ALICE_TOKEN)).status_code == 200
    response = _read_token(http, repo_id, BOB_TOKEN)
    assert response.status_code == 200, response.text
    bob = {"Authorization": f"Bearer {response.json()['accessToken']}"}
    for version in ("v1", "v2"):
        assert http.get(f"/xet-cas/{version}/reconstructions/{file_hash}", headers=bob).status_code == 200

    assert http.post(handle, json={"user": "bob", "status": "rejected"}, headers=auth(ALICE_TOKEN)).status_code == 200
    for version in ("v1", "v2"):
        response = http.get(f"/xet-cas/{version}/reconstructions/{file_hash}", headers=bob)
        assert response.status_code == 401, response.text
    assert http.get("/xet-cas/v1/reconstructions", params={"file_id": file_hash}, headers=bob).status_code == 401

    assert http.post(handle, json={"user": "bob", "status": "accepted"}, headers=auth(ALICE_TOKEN)).status_code == 200
    assert http.get(f"/xet-cas/v1/reconstructions/{file_hash}", headers=bob).status_code == 200
    api.update_repo_settings(repo_id, private=True)  # bob is not on the owner side
    assert http.get(f"/xet-cas/v1/reconstructions/{file_hash}", headers=bob).status_code == 401
    assert http.get(f"/xet-cas/v1/reconstructions/{file_hash}", headers=_cas_headers(http, repo_id)).status_code == 200


def test_xet_tokens_of_a_suspended_account_stop_at_once(xet, live_hub, api, repo_id, http):
    """Suspending an account ends its Xet tokens too (as its LFS links), not an hour later."""
    name = unique_name("x").replace("-", "")
    live_hub.cli("user", "create", name, "--email", f"{name}@example.org")
    token = live_hub.cli("token", "create", name).stdout.strip().splitlines()[-1]
    api.upload_file(path_or_fileobj=os.urandom(150_000), path_in_repo="open.bin", repo_id=repo_id)
    file_hash = _xet_hash(api, repo_id, "open.bin")
    reader = {"Authorization": f"Bearer {_read_token(http, repo_id, token).json()['accessToken']}"}
    own = f"{name}/{unique_name('own')}"
    assert http.post("/api/repos/create", json={"name": own.split("/")[1], "type": "model"},
                     headers=auth(token)).status_code == 200
    minted = http.get(f"/api/models/{own}/xet-write-token/main", headers=auth(token))
    assert minted.status_code == 200, minted.text
    writer = {"Authorization": f"Bearer {minted.json()['accessToken']}"}
    chunk = "00" * 32
    assert http.get(f"/xet-cas/v1/reconstructions/{file_hash}", headers=reader).status_code == 200
    assert http.get(f"/xet-cas/v1/chunks/default/{chunk}", headers=writer).status_code == 404  # unknown chunk

    live_hub.cli("user", "suspend", name)
    try:
        assert http.get(f"/xet-cas/v1/reconstructions/{file_hash}", headers=reader).status_code == 401
        assert http.get(f"/xet-cas/v1/chunks/default/{chunk}", headers=writer).status_code == 401
    finally:
        live_hub.cli("user", "unsuspend", name)
    assert http.get(f"/xet-cas/v1/reconstructions/{file_hash}", headers=reader).status_code == 200


# --- the CAS read API, by hand --------------------------------------------------------------------


def _decode_chunks(data: bytes) -> bytes:
    """Decompress a run of serialized xorb chunks (what a fetch URL returns), like hf_xet does."""
    out, pos = bytearray(), 0
    while pos < len(data):
        header = data[pos:pos + CHUNK_HEADER_BYTES]
        stored, scheme = int.from_bytes(header[1:4], "little"), header[4]
        payload = data[pos + CHUNK_HEADER_BYTES:pos + CHUNK_HEADER_BYTES + stored]
        if scheme == Scheme.NONE:
            out += payload
        else:
            raw = lz4.frame.decompress(payload)
            out += bg4_join(raw) if scheme == Scheme.BG4_LZ4 else raw
        pos += CHUNK_HEADER_BYTES + stored
    return bytes(out)


def _rebuild(http, answer: dict, first: int, end: int) -> bytes:
    """The file bytes [first, end) from a v1 reconstruction answer."""
    fetched = {}
    out = bytearray()
    for term in answer["terms"]:
        infos = answer["fetch_info"][term["hash"]]
        info = next(i for i in infos if i["range"]["start"] <= term["range"]["start"]
                    and term["range"]["end"] <= i["range"]["end"])
        key = (term["hash"], info["range"]["start"])
        if key not in fetched:
            url_range = info["url_range"]
            response = http.get(info["url"], headers={"Range": f"bytes={url_range['start']}-{url_range['end']}"})
            assert response.status_code == 206, response.text
            fetched[key] = (info["range"]["start"], response.content)
        start_chunk, raw = fetched[key]
        chunks = _split_chunks(raw)
        skip = term["range"]["start"] - start_chunk
        part = b"".join(_decode_chunks(c) for c in chunks[skip:skip + term["range"]["end"] - term["range"]["start"]])
        assert len(part) == term["unpacked_length"]
        out += part
    offset = answer["offset_into_first_range"]
    return bytes(out[offset:offset + end - first])


def _split_chunks(data: bytes) -> list[bytes]:
    chunks, pos = [], 0
    while pos < len(data):
        size = CHUNK_HEADER_BYTES + int.from_bytes(data[pos + 1:pos + 4], "little")
        chunks.append(data[pos:pos + size])
        pos += size
    return chunks


def test_reconstruction_answers_ranges_of_a_file_spanning_two_xorbs(xet, api, repo_id, http):
    rng = random.Random(5)
    first_part = rng.randbytes(1024 * 1024)
    api.upload_file(path_or_fileobj=first_part, path_in_repo="v1.bin", repo_id=repo_id)
    content = first_part + rng.randbytes(700_000)  # hf_xet reuses v1's chunks: two xorbs
    api.upload_file(path_or_fileobj=content, path_in_repo="v2.bin", repo_id=repo_id)
    file_hash = _xet_hash(api, repo_id, "v2.bin")
    headers = _cas_headers(http, repo_id)
    url = f"/xet-cas/v1/reconstructions/{file_hash}"

    whole = http.get(url, headers=headers).json()
    assert whole["offset_into_first_range"] == 0 and len(whole["fetch_info"]) == 2
    assert sum(t["unpacked_length"] for t in whole["terms"]) == len(content)
    assert _rebuild(http, whole, 0, len(content)) == content
    for first, last in ((0, 0), (123_456, 1_500_000), (1024 * 1024 - 1, 1024 * 1024), (len(content) - 10, 10**9)):
        answer = http.get(url, headers={**headers, "Range": f"bytes={first}-{last}"}).json()
        end = min(last + 1, len(content))
        assert _rebuild(http, answer, first, end) == content[first:end]
    assert http.get(url, headers={**headers, "Range": f"bytes={len(content)}-"}).status_code == 416

    v2 = http.get(f"/xet-cas/v2/reconstructions/{file_hash}", headers=headers).json()
    assert v2["terms"] == whole["terms"] and set(v2["xorbs"]) == set(whole["fetch_info"])
    for xorb, fetches in v2["xorbs"].items():
        assert [f["ranges"] for f in fetches] == [[{"chunks": i["range"], "bytes": i["url_range"]}]
                                                  for i in whole["fetch_info"][xorb]]
    batch = http.get("/xet-cas/v1/reconstructions", params=[("file_id", file_hash)], headers=headers).json()
    assert batch["files"] == {file_hash: whole["terms"]}


def test_xorb_urls_grant_exactly_the_signed_range(xet, api, repo_id, http):
    api.upload_file(path_or_fileobj=os.urandom(600_000), path_in_repo="f.bin", repo_id=repo_id)
    file_hash = _xet_hash(api, repo_id, "f.bin")
    headers = _cas_headers(http, repo_id)
    answer = http.get(f"/xet-cas/v1/reconstructions/{file_hash}", headers={**headers, "Range": "bytes=100000-300000"})
    info = next(iter(answer.json()["fetch_info"].values()))[0]
    first, last = info["url_range"]["start"], info["url_range"]["end"]
    url = info["url"]
    assert http.get(url, headers={"Range": f"bytes={first}-{last}"}).status_code == 206
    assert http.get(url).content == http.get(url, headers={"Range": f"bytes={first}-{last}"}).content
    assert http.get(url, headers={"Range": f"bytes={first}-{last + 1}"}).status_code == 416
    widened = url.replace(f"bytes={first}-{last}", f"bytes=0-{last + 100_000}")
    assert widened != url and http.get(widened).status_code == 403
    assert http.get(url.replace("expires=", "expires=1")).status_code == 403
