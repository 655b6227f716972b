"""Timestamps: naive UTC datetimes in the database, ISO 8601 with a literal Z on the wire."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import overload


def utcnow() -> datetime:
    """Now, in UTC, naive, at millisecond precision (what every database here stores exactly)."""
    now = datetime.now(UTC).replace(tzinfo=None)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


@overload
def iso_z(value: datetime) -> str: ...
@overload
def iso_z(value: None) -> None: ...
def iso_z(value: datetime | None) -> str | None:
    """The only date format huggingface_hub accepts: ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""
    if value is None:
        return None
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def iso_z_from_timestamp(ts: int) -> str:
    return iso_z(datetime.fromtimestamp(ts, UTC).replace(tzinfo=None))
