"""How long-running operations (backup, restore, fsck, gc, and later mirror syncs and conversions)
report how far they are, without knowing who watches.

An operation calls ``progress.stage(...)`` when it starts a phase (with the totals it knows) and
``progress.advance(...)`` as items and bytes are done. The command line shows a bar on a terminal
(``cli/progress.py``); jobs and tests pass ``SILENT``. Reporting never changes what the operation
does, and costs nothing when nobody watches.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def stage(self, name: str, *, items: int | None = None, nbytes: int | None = None) -> None:
        """A new phase begins: ``items`` things to do (``nbytes`` bytes in all), when known."""

    def advance(self, items: int = 1, nbytes: int = 0) -> None:
        """``items`` more things done, ``nbytes`` more bytes."""

    def close(self) -> None:
        """The operation ended (finished or not)."""


class _Silent:
    def stage(self, name: str, *, items: int | None = None, nbytes: int | None = None) -> None:
        pass

    def advance(self, items: int = 1, nbytes: int = 0) -> None:
        pass

    def close(self) -> None:
        pass


SILENT: Progress = _Silent()
