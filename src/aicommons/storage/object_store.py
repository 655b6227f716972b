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
published whole by one PUT (or one multipart completion) and never overwritten.
"""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO, Iterator
from urllib.parse import parse_qsl, urlparse, urlunparse

from aicommons.storage.base import BlobInfo, StorageError

# Keys of obstore's ClientConfig (HTTP client settings); every other query key is store config.
CLIENT_KEYS = frozenset({
    "allow_http", "allow_invalid_certificates", "connect_timeout", "default_content_type",
    "http1_only", "http2_only", "pool_idle_timeout", "pool_max_idle_per_host", "proxy_url",
    "proxy_ca_certificate", "proxy_excludes", "timeout", "user_agent",
})


def _translate(exc: Exception) -> StorageError:
    """obstore raises its own errors (and FileNotFoundError); nothing above storage/ sees them."""
    return StorageError(f"object store: {type(exc).__name__}: {exc}")


def split_url(url: str) -> tuple[str, dict, dict]:
    """(URL without query, store config, client options) from a storage URL."""
    parsed = urlparse(url)
    config: dict = {}
    client: dict = {}
    for key, value in parse_qsl(parsed.query, keep_blank_values=True):
        (client if key in CLIENT_KEYS else config)[key] = value
    return urlunparse(parsed._replace(query="")), config, client


class _Reader(io.RawIOBase):
    """A standard binary file object over obstore's ReadableFile (which returns ``Bytes``)."""

    def __init__(self, raw):
        self._raw = raw

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            data = self._raw.read(len(buffer))
        except Exception as exc:  # noqa: BLE001 - translated at the adapter
            raise _translate(exc) from exc
        n = len(data)
        buffer[:n] = memoryview(data)
        return n

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


class ObjectBlobStore:
    def __init__(self, store, url: str):
        self.store = store
        self.url = url

    @classmethod
    def from_url(cls, url: str, tmp_dir: Path | None = None) -> "ObjectBlobStore":
        from obstore.store import from_url

        base, config, client = split_url(url)
        try:
            store = from_url(base, config=config or None, client_options=client or None)
        except Exception as exc:  # noqa: BLE001 - bad configuration surfaces as a storage error
            raise _translate(exc) from exc
        return cls(store, base)

    def put_file(self, key: str, src: Path) -> None:
        import obstore
        from obstore.exceptions import AlreadyExistsError

        try:
            obstore.put(self.store, key, Path(src), mode="create")
        except AlreadyExistsError:
            pass  # content addressed: the stored blob has the same bytes
        except Exception as exc:  # noqa: BLE001
            raise _translate(exc) from exc
        Path(src).unlink(missing_ok=True)

    def _head(self, key: str) -> dict | None:
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

    def local_path(self, key: str) -> Path | None:
        return None

    def presigned_url(self, key: str, expires_in: int) -> str | None:
        return self._sign("GET", key, expires_in)

    def presigned_put_url(self, key: str, expires_in: int) -> str | None:
        """A URL a client can PUT the bytes of ``key`` to (for direct uploads to a staging key)."""
        return self._sign("PUT", key, expires_in)

    def _sign(self, method: str, key: str, expires_in: int) -> str:
        import obstore

        try:
            return obstore.sign(self.store, method, key, timedelta(seconds=expires_in))
        except Exception as exc:  # noqa: BLE001
            raise _translate(exc) from exc

    def copy(self, src_key: str, dst_key: str) -> None:
        """Server-side copy. Overwriting is harmless: keys are content addressed."""
        import obstore

        try:
            obstore.copy(self.store, src_key, dst_key, overwrite=True)
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
