"""The NDJSON body of ``POST .../commit/{rev}``, parsed as it arrives.

A ``header`` line, then ``file`` / ``lfsFile`` / ``deletedFile`` / ``deletedFolder`` lines, one
JSON object each. The parser is fed chunks: every complete line is parsed (and its base64 decoded)
at once, so only one unfinished line is ever buffered besides the decoded operations, and a line
longer than any file the commit could accept is refused before it is read to its end.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator

from aicommons.api.http import parse_json
from aicommons.errors import BadRequest, PayloadTooLarge
from aicommons.hub.commits import AddFile, AddLfsFile, CommitRequest, DeleteFile, DeleteFolder
from aicommons.hub.names import unstorable_char

# More operations than this in one commit is a 400: each costs a Python object and a tree entry,
# and a 1 GiB body of tiny deletion lines would otherwise become tens of millions of them.
MAX_OPERATIONS = 100_000
_LINE_SLACK = 64 * 1024  # JSON keys, the path and escapes around a base64 file's content


def max_line_bytes(max_regular_file_bytes: int) -> int:
    """The longest line a commit may hold: a regular file's base64 content plus its JSON."""
    return (max_regular_file_bytes + 2) // 3 * 4 + _LINE_SLACK


class CommitPayloadParser:
    def __init__(self, max_line: int | None = None, max_operations: int = MAX_OPERATIONS):
        self.max_line = max_line
        self.max_operations = max_operations
        self._buffer = bytearray()
        self._number = 0
        self._header: dict | None = None
        self._ops: list = []

    def feed(self, chunk: bytes) -> None:
        self._buffer += chunk
        start = 0
        while (end := self._buffer.find(b"\n", start)) >= 0:
            self._line(bytes(self._buffer[start:end]))
            start = end + 1
        if start:
            del self._buffer[:start]
        if self.max_line is not None and len(self._buffer) > self.max_line:
            raise PayloadTooLarge(f"Line {self._number + 1} of the commit payload is longer than {self.max_line} "
                                  "bytes: larger files must be uploaded with LFS")

    def finish(self) -> CommitRequest:
        if self._buffer:
            self._line(bytes(self._buffer))
            self._buffer.clear()
        header = self._header
        if header is None:
            raise BadRequest("The commit payload must start with a 'header' line")
        summary, description, parent = header.get("summary"), header.get("description") or "", header.get("parentCommit")
        if not isinstance(summary, str) or not isinstance(description, str) or \
                (parent is not None and not isinstance(parent, str)):
            raise BadRequest("The header needs a string 'summary' (and optional 'description', 'parentCommit')")
        for text in (summary, description, parent or ""):
            bad = unstorable_char(text)
            if bad:
                raise BadRequest(f"Invalid commit header: {bad} is not allowed in text")
        return CommitRequest(summary=summary, description=description, parent_commit=parent,
                             operations=tuple(self._ops))

    def _line(self, raw: bytes) -> None:
        # Lines end with "\n"; "\r\n" and a lone "\r" are accepted too, as bytes.splitlines() did.
        for line in raw.splitlines() if b"\r" in raw else (raw,):
            self._number += 1
            if line.strip():
                self._item(line, self._number)

    def _item(self, line: bytes, number: int) -> None:
        # Paths are checked by check_file_path (422 InvalidPath, as on the Hub) and the header's
        # texts in finish(): the other strings are only compared with constants.
        item = parse_json(line, f"line {number} of the commit payload", strings=False)
        if not isinstance(item, dict) or not isinstance(item.get("value"), dict):
            raise BadRequest(f"Line {number} of the commit payload must be an object with 'key' and 'value'")
        key, value = item.get("key"), item["value"]
        if key == "header":
            self._header = value
            return
        if len(self._ops) >= self.max_operations:
            raise BadRequest(f"A commit may hold at most {self.max_operations} operations: split it")
        path = value.get("path")
        if not isinstance(path, str):
            raise BadRequest(f"Line {number}: 'path' (string) is required")
        if key == "file":
            if value.get("encoding", "base64") != "base64" or not isinstance(value.get("content"), str):
                raise BadRequest(f"Line {number}: 'content' must be a base64 string")
            try:
                data = base64.b64decode(value["content"], validate=True)
            except (binascii.Error, ValueError):
                raise BadRequest(f"Line {number}: 'content' is not valid base64") from None
            self._ops.append(AddFile(path, data))
        elif key == "lfsFile":
            oid, size = value.get("oid"), value.get("size")
            if value.get("algo", "sha256") != "sha256" or not isinstance(oid, str):
                raise BadRequest(f"Line {number}: 'oid' (sha256) is required")
            if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
                raise BadRequest(f"Line {number}: 'size' must be a non-negative integer")
            self._ops.append(AddLfsFile(path, oid, size))
        elif key == "deletedFile":
            self._ops.append(DeleteFile(path))
        elif key == "deletedFolder":
            self._ops.append(DeleteFolder(path))
        else:
            raise BadRequest(f"Line {number}: unknown key {str(key)[:100]!r}")


def parse_commit_payload(body: bytes) -> CommitRequest:
    """The whole body at once (tests, small bodies)."""
    parser = CommitPayloadParser()
    parser.feed(body)
    return parser.finish()


async def read_commit_payload(chunks: AsyncIterator[bytes], declared_length: str | None, max_body: int,
                              max_regular_file_bytes: int, run_sync) -> CommitRequest:
    """Stream the body into the parser, refusing it (413) as soon as it passes ``max_body``.

    Complete lines are parsed off the event loop (``run_sync``); a chunk without a line end is only
    buffered."""
    if declared_length is not None and declared_length.isdigit() and int(declared_length) > max_body:
        raise PayloadTooLarge(f"Request body is larger than the limit of {max_body} bytes")
    parser = CommitPayloadParser(max_line_bytes(max_regular_file_bytes))
    total = 0
    async for chunk in chunks:
        total += len(chunk)
        if total > max_body:
            raise PayloadTooLarge(f"Request body is larger than the limit of {max_body} bytes")
        if b"\n" in chunk or b"\r" in chunk:
            await run_sync(parser.feed, chunk)
        else:
            parser.feed(chunk)  # no line ends: only appended (and its length checked)
    return await run_sync(parser.finish)
