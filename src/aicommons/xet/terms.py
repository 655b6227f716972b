"""Planning a Xet download: the CAS "reconstruction" of a byte range of a file (pure, no I/O).

A file is a sequence of segments, each a chunk range ``[start, end)`` of one xorb (from the shard
that described it). For the bytes ``[first, end)`` of the file, the answer hf_xet expects is:

- ``terms``: the segments that overlap the range, trimmed to the chunks that do (whole chunks: a
  client cannot decompress part of one), in file order;
- ``offset_into_first_range``: how far into the first term's first chunk the range starts (the
  client also drops whatever the last term has past ``end``);
- per xorb, the stored byte ranges to fetch: the terms' chunk ranges merged where they overlap or
  touch, so that each term lies inside one fetch (the client looks it up that way) and no chunk is
  fetched twice within one answer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aicommons.xet.hashing import to_hex
from aicommons.xet.shard import FileSegment
from aicommons.xet.xorb import XorbIndex


class ReconstructionError(ValueError):
    """The stored data does not match the file's description (a segment past a xorb's end...)."""


@dataclass(frozen=True)
class Term:
    xorb_hash: bytes
    chunk_start: int
    chunk_end: int  # exclusive
    unpacked_length: int  # bytes of the whole chunks, even where the range cuts into them


@dataclass(frozen=True)
class XorbFetch:
    chunk_start: int
    chunk_end: int  # exclusive
    byte_start: int
    byte_end: int  # inclusive, as in an HTTP Range header
    whole_xorb: bool  # every chunk of the xorb: no byte of it is outside what the reader may see


@dataclass(frozen=True)
class Reconstruction:
    offset_into_first_range: int
    terms: tuple[Term, ...]
    fetches: dict[bytes, list[XorbFetch]]  # by xorb hash, sorted by chunk


EMPTY = Reconstruction(0, (), {})


def plan(segments: Sequence[FileSegment], index_of: Callable[[bytes], XorbIndex], first: int,
         end: int) -> Reconstruction:
    """Terms and fetches for the file bytes ``[first, end)``; the caller makes sure that
    ``0 <= first < end <= file size`` (an empty range gives ``EMPTY``)."""
    if first >= end:
        return EMPTY
    terms: list[Term] = []
    offset = 0
    pos = 0  # file offset of the current segment
    for segment in segments:
        segment_end = pos + segment.size
        if segment_end <= first:
            pos = segment_end
            continue
        if pos >= end:
            break
        index = _checked_index(segment, index_of)
        start_chunk, end_chunk, start_pos, end_pos = segment.chunk_start, segment.chunk_end, pos, segment_end
        while start_pos + index.unpacked_size(start_chunk, start_chunk + 1) <= first:  # wholly before
            start_pos += index.unpacked_size(start_chunk, start_chunk + 1)
            start_chunk += 1
        while end_pos - index.unpacked_size(end_chunk - 1, end_chunk) >= end:  # wholly after
            end_pos -= index.unpacked_size(end_chunk - 1, end_chunk)
            end_chunk -= 1
        if not terms:
            offset = first - start_pos
        terms.append(Term(segment.xorb_hash, start_chunk, end_chunk, end_pos - start_pos))
        pos = segment_end
    if not terms:
        raise ReconstructionError(f"the file's segments end before byte {first}")
    return Reconstruction(offset, tuple(terms), _fetches(terms, index_of))


def _checked_index(segment: FileSegment, index_of: Callable[[bytes], XorbIndex]) -> XorbIndex:
    index = index_of(segment.xorb_hash)
    if segment.chunk_end > len(index) or index.unpacked_size(segment.chunk_start, segment.chunk_end) != segment.size:
        raise ReconstructionError(f"a segment does not match stored xorb {to_hex(segment.xorb_hash)}")
    return index


def _fetches(terms: Sequence[Term], index_of: Callable[[bytes], XorbIndex]) -> dict[bytes, list[XorbFetch]]:
    ranges: dict[bytes, list[tuple[int, int]]] = {}
    for term in terms:
        ranges.setdefault(term.xorb_hash, []).append((term.chunk_start, term.chunk_end))
    out: dict[bytes, list[XorbFetch]] = {}
    for xorb_hash, spans in ranges.items():
        spans.sort()
        merged = [list(spans[0])]
        for start, end in spans[1:]:
            if start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        index = index_of(xorb_hash)
        out[xorb_hash] = [XorbFetch(start, end, *index.byte_range(start, end),
                                    whole_xorb=start == 0 and end == len(index)) for start, end in merged]
    return out
