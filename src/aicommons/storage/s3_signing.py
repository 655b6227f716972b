"""Presigned S3 URLs that pin what the client may do, signed with botocore (obstore signs only the
method and key).

- GET: ``response-content-type=application/octet-stream`` and ``response-content-disposition=
  attachment`` are part of the signed query, so the bucket (or a CDN in front of it) answers every
  download as a file to save, whatever headers the object was stored with.
- PUT: ``Content-Length`` is a signed header, so the bucket refuses a body of any size other than the
  one declared to the hub (S3 answers 403 SignatureDoesNotMatch).

Configuration is the obstore store's own (URL query keys), with botocore's standard sources (the
``AWS_*`` environment, shared config, instance metadata) for what the URL does not say: the same
sources obstore reads.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from aicommons.storage.base import PUBLISHED_CONTENT_TYPE

if TYPE_CHECKING:
    from obstore.store import S3Store


def _normalise(config: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in config.items():
        key = key.lower()
        out[key[4:] if key.startswith("aws_") else key] = value
    return out


class S3Signer:
    # Any: botocore adds generate_presigned_url to its clients at run time; its stubs do not know it.
    def __init__(self, client: Any, bucket: str, prefix: str | None):
        self.client = client
        self.bucket = bucket
        self.prefix = (prefix or "").strip("/")

    @classmethod
    def for_store(cls, store: S3Store) -> S3Signer:
        import botocore.session
        from botocore.config import Config

        cfg = _normalise(dict(store.config or {}))
        endpoint = cfg.get("endpoint") or cfg.get("endpoint_url") or os.environ.get("AWS_ENDPOINT_URL")
        virtual = str(cfg.get("virtual_hosted_style_request", "")).lower() == "true"
        region = cfg.get("region") or cfg.get("default_region") or os.environ.get("AWS_REGION") \
            or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        client = botocore.session.get_session().create_client(
            "s3", region_name=region, endpoint_url=endpoint,
            aws_access_key_id=cfg.get("access_key_id"), aws_secret_access_key=cfg.get("secret_access_key"),
            aws_session_token=cfg.get("session_token") or cfg.get("token"),
            config=Config(signature_version="s3v4",
                          s3={"addressing_style": "virtual" if virtual else ("path" if endpoint else "auto")}))
        return cls(client, cfg["bucket"], store.prefix)

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def get_url(self, key: str, expires_in: int, disposition: str) -> str:
        return str(self.client.generate_presigned_url(
            "get_object", ExpiresIn=expires_in,
            Params={"Bucket": self.bucket, "Key": self._key(key), "ResponseContentType": PUBLISHED_CONTENT_TYPE,
                    "ResponseContentDisposition": disposition}))

    def put_url(self, key: str, expires_in: int, size: int) -> str:
        return str(self.client.generate_presigned_url(
            "put_object", ExpiresIn=expires_in,
            Params={"Bucket": self.bucket, "Key": self._key(key), "ContentLength": size}))
