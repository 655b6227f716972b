"""The access log never holds a bearer URL: signatures in query strings are redacted before logging.

Signed transfer links (``/lfs-transfer/...?sig=``), Xet fetch URLs (``signature=``) and presigned
bucket URLs (``X-Amz-Signature``, ``X-Amz-Credential``, ``X-Amz-Security-Token``, GCS/Azure ``sig``)
are capabilities: whoever reads a log line could replay them until they expire. uvicorn logs the full
path with its query, so its access logger gets this filter (``log_config()``, used by ``serve``).
"""

from __future__ import annotations

import copy
import logging
from urllib.parse import parse_qsl, urlencode

SECRET_PARAMS = frozenset({"sig", "signature", "x-amz-signature", "x-amz-credential", "x-amz-security-token",
                           "x-goog-signature", "x-goog-credential", "token", "access_token"})
REDACTED = "REDACTED"


def redact_query(path: str) -> str:
    """``path?query`` with the value of every signature-like parameter replaced by ``REDACTED``."""
    base, sep, query = path.partition("?")
    if not sep:
        return path
    pairs = parse_qsl(query, keep_blank_values=True)
    if not any(k.lower() in SECRET_PARAMS for k, _ in pairs):
        return path
    return base + "?" + urlencode([(k, REDACTED if k.lower() in SECRET_PARAMS else v) for k, v in pairs], safe="/:")


class RedactSignatures(logging.Filter):
    """For uvicorn's access records: ``args`` = (client, method, path with query, http version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact_query(args[2]), *args[3:])
        return True


def log_config() -> dict:
    """uvicorn's logging configuration with the access handler filtered."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_signatures"] = {"()": RedactSignatures}
    config["handlers"]["access"]["filters"] = ["redact_signatures"]
    return config
