"""Progress bars for the long operator commands: tqdm on a terminal, nothing otherwise.

A bar per stage shows items (or bytes, when the stage counts them) done, the rate and the time
left. When stderr is not a terminal (a cron job, a pipe, CI) nothing is drawn: the command prints
only its final summary, so logs stay clean.
"""

from __future__ import annotations

import os
import sys

from aicommons.hub.progress import SILENT, Progress


class TerminalProgress:
    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self._bar = None
        self._by_bytes = False

    def stage(self, name: str, *, items: int | None = None, nbytes: int | None = None) -> None:
        from tqdm import tqdm

        self.close()
        # Bytes tell more about time left than items when the items differ in size (blobs).
        self._by_bytes = nbytes is not None
        self._bar = tqdm(total=nbytes if self._by_bytes else items, desc=name, file=self.stream,
                         unit="B" if self._by_bytes else " items", unit_scale=self._by_bytes,
                         unit_divisor=1024 if self._by_bytes else 1000, ncols=_columns(self.stream), leave=True)

    def advance(self, items: int = 1, nbytes: int = 0) -> None:
        if self._bar is not None:
            self._bar.update(nbytes if self._by_bytes else items)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _columns(stream) -> int:
    """The terminal's width; 80 where it reports none (a fresh pseudo-terminal says 0 columns, and
    tqdm would then draw an empty bar)."""
    try:
        return os.get_terminal_size(stream.fileno()).columns or 80
    except (OSError, ValueError, AttributeError):
        return 80


def progress_for_terminal(stream=None) -> Progress:
    """A bar when ``stream`` (stderr by default) is a terminal, else silence."""
    stream = stream or sys.stderr
    return TerminalProgress(stream) if stream.isatty() else SILENT
