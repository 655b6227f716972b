"""One contract for every BlobStore: local disk and S3 (moto's real S3 protocol server on loopback)."""

from __future__ import annotations

import hashlib
import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from aicommons.storage import open_blob_store
from aicommons.storage.base import StorageError
from aicommons.storage.local import LocalBlobStore
from aicommons.storage.object_store import ObjectBlobStore
from tests.backends import MotoS3


@pytest.fixture
def moto(moto_s3):
    return moto_s3


def s3_url(moto: MotoS3, bucket: str, prefix: str = "blobs") -> str:
    # Configuration through URL query parameters (the environment-variable way is used by live hubs).
    return (f"s3://{bucket}/{prefix}?endpoint={moto.endpoint}&region=us-east-1&access_key_id=testing"
            "&secret_access_key=testing&allow_http=true")


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        return open_blob_store(f"file://{tmp_path / 'blobs'}", tmp_path / "tmp")
    moto = request.getfixturevalue("moto")
    return open_blob_store(s3_url(moto, moto.create_bucket()), tmp_path / "tmp")


def staged(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / f"staged-{hashlib.sha256(data).hexdigest()[:12]}-{os.urandom(4).hex()}"
    path.write_bytes(data)
    return path


def key_for(data: bytes) -> str:
    oid = hashlib.sha256(data).hexdigest()
    return f"lfs/{oid[:2]}/{oid[2:4]}/{oid}"


def test_backend_is_chosen_by_url_scheme(store):
    assert isinstance(store, (LocalBlobStore, ObjectBlobStore))


def test_put_then_read_back_and_source_is_consumed(store, tmp_path):
    data = os.urandom(100_000)
    src = staged(tmp_path, data)
    store.put_file(key_for(data), src)
    assert not src.exists()
    assert store.exists(key_for(data))
    assert store.size(key_for(data)) == len(data)
    with store.open(key_for(data)) as f:
        assert f.read() == data


def test_put_of_existing_key_keeps_the_blob(store, tmp_path):
    data = b"same bytes" * 1000
    store.put_file(key_for(data), staged(tmp_path, data))
    second = staged(tmp_path, data)
    store.put_file(key_for(data), second)
    assert not second.exists()
    with store.open(key_for(data)) as f:
        assert f.read() == data


def test_concurrent_writers_of_one_blob_leave_one_whole_blob(store, tmp_path):
    data = os.urandom(300_000)
    sources = [staged(tmp_path, data) for _ in range(4)]
    errors = []

    def put(src):
        try:
            store.put_file(key_for(data), src)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=put, args=(s,)) for s in sources]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert errors == []
    with store.open(key_for(data)) as f:
        assert hashlib.sha256(f.read()).hexdigest() == key_for(data).rsplit("/", 1)[1]


def test_missing_blob(store):
    key = "lfs/00/00/" + "0" * 64
    assert not store.exists(key)
    assert store.size(key) is None
    with pytest.raises(StorageError):
        store.open(key).read()


def test_open_is_seekable(store, tmp_path):
    data = bytes(range(256)) * 100
    store.put_file(key_for(data), staged(tmp_path, data))
    with store.open(key_for(data)) as f:
        f.seek(1000)
        assert f.read(10) == data[1000:1010]
        assert f.tell() == 1010


def test_large_blob_uses_multipart_and_round_trips(store, tmp_path):
    data = os.urandom(12 * 1024 * 1024 + 17)  # above obstore's 5 MiB multipart threshold
    store.put_file(key_for(data), staged(tmp_path, data))
    assert store.size(key_for(data)) == len(data)
    digest = hashlib.sha256()
    with store.open(key_for(data)) as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    assert digest.hexdigest() == key_for(data).rsplit("/", 1)[1]


def test_listing_under_a_folder(store, tmp_path):
    blobs = [os.urandom(1000) for _ in range(3)]
    for data in blobs:
        store.put_file(key_for(data), staged(tmp_path, data))
    store.put_file("xet/other", staged(tmp_path, b"not lfs"))
    listed = {info.key: info for info in store.list_blobs("lfs/")}
    assert set(listed) == {key_for(d) for d in blobs}
    assert set(store.iter_keys("lfs/")) == set(listed)
    now = datetime.now(UTC)
    for data in blobs:
        info = listed[key_for(data)]
        assert info.size == len(data)
        assert now - timedelta(minutes=5) < info.last_modified <= now + timedelta(minutes=5)
    assert "xet/other" in set(store.iter_keys(""))


def test_delete_is_idempotent(store, tmp_path):
    data = b"to delete"
    store.put_file(key_for(data), staged(tmp_path, data))
    store.delete(key_for(data))
    store.delete(key_for(data))
    assert not store.exists(key_for(data))
    assert key_for(data) not in set(store.iter_keys("lfs/"))


def test_download_location(store, tmp_path):
    """Local stores serve a path (sendfile); object stores hand out presigned GETs that honour Range."""
    data = os.urandom(5000)
    store.put_file(key_for(data), staged(tmp_path, data))
    local = store.local_path(key_for(data))
    url = store.presigned_url(key_for(data), 60)
    if isinstance(store, LocalBlobStore):
        assert url is None
        assert local.read_bytes() == data
        return
    assert local is None
    assert httpx.get(url).content == data  # no credentials needed
    ranged = httpx.get(url, headers={"Range": "bytes=10-19"})
    assert ranged.status_code == 206 and ranged.content == data[10:20]


def test_local_store_rejects_keys_that_escape_its_folder(tmp_path):
    store = LocalBlobStore(tmp_path / "blobs")
    with pytest.raises(StorageError):
        store.put_file("../outside", staged(tmp_path, b"x"))


def test_object_store_errors_are_storage_errors(moto, tmp_path):
    store = open_blob_store(s3_url(moto, "no-such-bucket-here"), tmp_path)
    with pytest.raises(StorageError):
        store.put_file("lfs/x", staged(tmp_path, b"x"))
    with pytest.raises(StorageError):
        list(store.iter_keys("lfs/"))


def test_presigned_put_reaches_the_bucket_and_signs_the_declared_length(moto, tmp_path):
    store = open_blob_store(s3_url(moto, moto.create_bucket()), tmp_path)
    url = store.presigned_put_url("staging/abc", 60, len(b"direct upload"))
    assert "content-length" in parse_qs(urlparse(url).query)["X-Amz-SignedHeaders"][0].split(";")
    assert httpx.put(url, content=b"direct upload").status_code == 200
    with store.open("staging/abc") as f:
        assert f.read() == b"direct upload"


# --- create-only content keys (issue 19): a key, once written, keeps its bytes and its headers -----

def test_put_of_an_existing_key_never_replaces_it_even_with_other_bytes(store, tmp_path):
    data = os.urandom(20_000)
    store.put_file(key_for(data), staged(tmp_path, data))
    other = staged(tmp_path, b"other bytes under the same key")
    store.put_file(key_for(data), other)
    assert not other.exists()
    with store.open(key_for(data)) as f:
        assert f.read() == data


def test_large_put_of_an_existing_key_never_replaces_it(store, tmp_path):
    """Above the single-PUT size the object store publishes by multipart upload: still create-only."""
    from aicommons.storage import object_store

    data = os.urandom(1000)
    store.put_file(key_for(data), staged(tmp_path, data))
    other = staged(tmp_path, os.urandom(2000))
    old, object_store.SINGLE_PUT_MAX = object_store.SINGLE_PUT_MAX, 100
    try:
        store.put_file(key_for(data), other)
        fresh = os.urandom(3000)
        store.put_file(key_for(fresh), staged(tmp_path, fresh))
    finally:
        object_store.SINGLE_PUT_MAX = old
    with store.open(key_for(data)) as f:
        assert f.read() == data
    with store.open(key_for(fresh)) as f:
        assert f.read() == fresh


def test_stores_have_no_copy_between_keys(store):
    """A server-side copy would carry the source's (client-chosen) metadata and cannot be create-only
    on S3: content keys are written by put_file only."""
    assert not hasattr(store, "copy")


def test_read_prefix_reads_at_most_the_limit(store, tmp_path):
    data = os.urandom(3 * 1024 * 1024 + 5)
    store.put_file(key_for(data), staged(tmp_path, data))
    assert b"".join(store.read_prefix(key_for(data), 1001)) == data[:1001]
    assert b"".join(store.read_prefix(key_for(data), len(data) + 1)) == data
    assert b"".join(store.read_prefix(key_for(data), 0)) == b""
    with pytest.raises(StorageError):
        b"".join(store.read_prefix("lfs/00/00/" + "1" * 64, 10))


def test_published_objects_have_hub_fixed_headers(moto, tmp_path):
    store = open_blob_store(s3_url(moto, moto.create_bucket()), tmp_path)
    data = b"<html><script>1</script></html>"
    store.put_file(key_for(data), staged(tmp_path, data))
    bare = httpx.get(store._sign("GET", key_for(data), 60))  # no response overrides
    assert bare.headers["content-type"] == "application/octet-stream"
    assert "content-encoding" not in bare.headers
    served = httpx.get(store.presigned_url(key_for(data), 60, filename='évil".html'))
    assert served.headers["content-type"] == "application/octet-stream"
    assert served.headers["content-disposition"].startswith("attachment;")
    assert 'filename="vil.html"' in served.headers["content-disposition"]
    assert served.content == data
