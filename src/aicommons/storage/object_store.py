"""Object storage (S3 and S3-compatible, Google Cloud Storage, Azure Blob) through obstore.

One class for every cloud: obstore (Rust ``object_store``) speaks each provider's protocol, signs
URLs and does multipart uploads. Configuration, in order of precedence:

- query parameters of ``AICOMMONS_STORAGE_URL``, passed to obstore as config keys, e.g.
  ``s3://bucket/prefix?endpoint=http://minio:9000&region=eu-west-1&allow_http=true``
  (``allow_http`` and the other HTTP-client keys go to obstore's client options);
- the providers' standard environment variables, which obstore reads itself: ``AWS_*``
  (``AWS_ENDPOINT_URL``, ``AWS_REGION``, ``AWS_ACCESS_KEY_ID``...), ``GOOGLE_*``
  (``GOOGLE_SERVICE_ACCOUNT``/``GOOGLE_APPLICATION_CREDENTIALS``), ``AZURE_*``;
- the providers' ambient credentials (instance metadata, workload identity).

Downloads are redirected to presigned GET URLs, so blob bytes never pass through the hub.
Writes use ``mode="create"`` (S3 ``If-None-Match: *``, GCS ``ifGenerationMatch=0``): a blob is
published whole by one PUT and never overwritten; an existing blob is kept, not replaced. The hub,
not whoever uploaded the bytes, decides the stored object's headers: every published blob is
``application/octet-stream`` with no ``Content-Encoding`` (``PUBLISHED_ATTRIBUTES``), and on S3 the
presigned GETs also carry ``response-content-type``/``response-content-disposition=attachment``
overrides and presigned PUTs sign ``Content-Length`` (``s3_signing.py``).

There is deliberately no ``copy``: a server-side copy keeps the source's metadata and S3 cannot make
it create-only, so content keys are written only by ``put_file`` from a file the hub has hashed.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal, cast
from urllib.parse import parse_qsl, urlparse, urlunparse

from aicommons.storage.base import PUBLISHED_CONTENT_TYPE, BlobInfo, StorageError, attachment_disposition

if TYPE_CHECKING:
    from obstore import ObjectMeta, ReadableFile
    from obstore.store import ObjectStore

    from aicommons.storage.s3_signing import S3Signer

# Keys of obstore's ClientConfig (HTTP client settings); every other query key is store config.
CLIENT_KEYS = frozenset({
    "allow_http", "allow_invalid_certificates", "connect_timeout", "default_content_type",
    "http1_only", "http2_only", "pool_idle_timeout", "pool_max_idle_per_host", "proxy_url",
    "proxy_ca_certificate", "proxy_excludes", "timeout", "user_agent",
})


def _translate(exc: Exception) -> StorageError:
    """obstore raises its own errors (and FileNotFoundError); nothing above storage/ sees them."""
    return StorageError(f"object store: {type(exc).__name__}: {exc}")


def split_url(url: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(URL without query, store config, client options) from a storage URL."""
    parsed = urlparse(url)
    config: dict[str, Any] = {}
    client: dict[str, Any] = {}
    for key, value in parse_qsl(parsed.query, keep_blank_values=True):
        (client if key in CLIENT_KEYS else config)[key] = value
    return urlunparse(parsed._replace(query="")), config, client


class _Reader(io.RawIOBase):
    """A standard binary file object over obstore's ReadableFile (which returns ``Bytes``)."""

    def __init__(self, raw: ReadableFile):
        self._raw = raw

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            data = self._raw.read(len(buffer))
        except Exception as exc:  # noqa: BLE001 - translated at the adapter
            raise _translate(exc) from exc
        n = len(data)
        buffer[:n] = memoryview(data)
        return n

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return int(self._raw.seek(offset, whence))

    def tell(self) -> int:
        return int(self._raw.tell())

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


# obstore sends a create-only PUT in one request and holds the whole body in memory for it. Above this
# size a verified blob is published by a multipart upload instead, after checking the key is free: a
# concurrent writer of the same key can only write the same verified bytes with the same headers.
SINGLE_PUT_MAX = 64 * 1024 * 1024
# A multipart upload sends its parts in parallel (issue 21): 16 MiB parts (a 1 GiB checkpoint is 64
# parts, far below S3's 10,000), eight in flight, so one large upload is not one slow stream.
MULTIPART_PART_BYTES = 16 * 1024 * 1024
MULTIPART_CONCURRENCY = 8
PUBLISHED_ATTRIBUTES = {"Content-Type": PUBLISHED_CONTENT_TYPE}


class ObjectBlobStore:
    def __init__(self, store: ObjectStore, url: str):
        self.store = store
        self.url = url
        self._s3_signer: S3Signer | None = None

    @classmethod
    def from_url(cls, url: str, tmp_dir: Path | None = None) -> ObjectBlobStore:
        from obstore.store import from_url

        base, config, client = split_url(url)
        try:
            # The keys come from the URL as strings; obstore checks them (a bad one raises here).
            store = from_url(base, config=cast(Any, config or None), client_options=cast(Any, client or None))
        except Exception as exc:  # noqa: BLE001 - bad configuration surfaces as a storage error
            raise _translate(exc) from exc
        return cls(store, base)

    def put_file(self, key: str, src: Path) -> None:
        import obstore
        from obstore.exceptions import AlreadyExistsError

        src = Path(src)
        try:
            if src.stat().st_size <= SINGLE_PUT_MAX:
                obstore.put(self.store, key, src, mode="create", attributes=PUBLISHED_ATTRIBUTES)
            elif self._head(key) is None:
                obstore.put(self.store, key, src, attributes=PUBLISHED_ATTRIBUTES, use_multipart=True,
                            chunk_size=MULTIPART_PART_BYTES, max_concurrency=MULTIPART_CONCURRENCY)
        except AlreadyExistsError:
            pass  # content addressed: the stored blob has the same bytes and is kept, not replaced
        except Exception as exc:  # noqa: BLE001
            raise _translate(exc) from exc
        Path(src).unlink(missing_ok=True)

    def _head(self, key: str) -> ObjectMeta | None:
        import obstore

        try:
            return obstore.head(self.store, key)
        except FileNotFoundError:
            return None
        except Exception as exc:  # noqa: BLE001
            raise _translate(exc) from exc

    def exists(self, key: str) -> bool:
        return self._head(key) is not None

    def size(self, key: str) -> int | None:
        meta = self._head(key)
        return None if meta is None else int(meta["size"])

    def open(self, key: str) -> BinaryIO:
        import obstore

        try:
            raw = obstore.open_reader(self.store, key, buffer_size=1024 * 1024)
        except Exception as exc:  # noqa: BLE001
            raise _translate(exc) from exc
        return io.BufferedReader(_Reader(raw), buffer_size=1024 * 1024)

    def read_prefix(self, key: str, limit: int) -> Iterator[bytes]:
        import obstore

        if limit <= 0:
            return
        try:
            result = obstore.get(self.store, key, options={"range": (0, limit)})
            got = 0
            for chunk in result.stream(min_chunk_size=1024 * 1024):
                data = bytes(chunk)[:limit - got]
                got += len(data)
                yield data
                if got >= limit:
                    return
        except Exception as exc:  # noqa: BLE001
            raise _translate(exc) from exc

    def local_path(self, key: str) -> Path | None:
        return None

    def presigned_url(self, key: str, expires_in: int, filename: str | None = None) -> str | None:
        """A GET URL that makes the bucket answer ``application/octet-stream`` as an attachment (S3)."""
        signer = self._signer()
        if signer is not None:
            return signer.get_url(key, expires_in, attachment_disposition(filename))
        return self._sign("GET", key, expires_in)

    def presigned_put_url(self, key: str, expires_in: int, size: int) -> str | None:
        """A URL a client can PUT exactly ``size`` bytes of ``key`` to (direct uploads to a staging
        key); on S3 the signature covers ``Content-Length``, so the bucket refuses any other size."""
        signer = self._signer()
        if signer is not None:
            return signer.put_url(key, expires_in, size)
        return self._sign("PUT", key, expires_in)

    def _signer(self) -> S3Signer | None:
        from obstore.store import S3Store

        if self._s3_signer is None and isinstance(self.store, S3Store):
            from aicommons.storage.s3_signing import S3Signer

            try:
                self._s3_signer = S3Signer.for_store(self.store)
            except Exception as exc:  # noqa: BLE001 - botocore configuration errors
                raise _translate(exc) from exc
        return self._s3_signer

    def _sign(self, method: Literal["GET", "PUT"], key: str, expires_in: int) -> str:
        import obstore
        from obstore.store import AzureStore, GCSStore, S3Store

        if not isinstance(self.store, AzureStore | GCSStore | S3Store):
            raise StorageError(f"object store: {type(self.store).__name__} cannot sign URLs")
        try:
            return obstore.sign(self.store, method, key, timedelta(seconds=expires_in))
        except Exception as exc:  # noqa: BLE001
            raise _translate(exc) from exc

    def delete(self, key: str) -> None:
        import obstore

        try:
            obstore.delete(self.store, key)
        except FileNotFoundError:
            pass
        except Exception as exc:  # noqa: BLE001
            raise _translate(exc) from exc

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        for info in self.list_blobs(prefix):
            yield info.key

    def list_blobs(self, prefix: str = "") -> Iterator[BlobInfo]:
        import obstore

        try:
            for batch in obstore.list(self.store, prefix=prefix.rstrip("/") or None, chunk_size=1000):
                for meta in batch:
                    yield BlobInfo(meta["path"], int(meta["size"]), meta["last_modified"])
        except Exception as exc:  # noqa: BLE001
            raise _translate(exc) from exc
