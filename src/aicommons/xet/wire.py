"""JSON shapes of the CAS reconstruction answers, as hf_xet parses them (xet-core ``cas_types``).

Hashes are in the Xet hex form; chunk ranges are ``{start, end}`` with ``end`` exclusive, stored
byte ranges (``url_range``, ``bytes``) ``{start, end}`` with ``end`` inclusive, as in HTTP.

- v1 ``GET /v1/reconstructions/{file}``: ``{offset_into_first_range, terms, fetch_info}`` where
  ``fetch_info[xorb]`` is a list of ``{range, url, url_range}``;
- v2 ``GET /v2/reconstructions/{file}``: ``{offset_into_first_range, terms, xorbs}`` where
  ``xorbs[xorb]`` is a list of ``{url, ranges: [{chunks, bytes}]}`` (one URL may carry several
  ranges; ours carry one each, since each is signed on its own);
- batch ``GET /v1/reconstructions?file_id=…``: ``{files: {file: terms}, fetch_info}``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aicommons.xet.hashing import to_hex
from aicommons.xet.terms import Reconstruction, Term, XorbFetch

UrlFor = Callable[[bytes, XorbFetch], str]


def _span(start: int, end: int) -> dict:
    return {"start": start, "end": end}


def _term(term: Term) -> dict:
    return {"hash": to_hex(term.xorb_hash), "unpacked_length": term.unpacked_length,
            "range": _span(term.chunk_start, term.chunk_end)}


def _fetch_info(xorb_hash: bytes, fetch: XorbFetch, url_for: UrlFor) -> dict:
    return {"range": _span(fetch.chunk_start, fetch.chunk_end), "url": url_for(xorb_hash, fetch),
            "url_range": _span(fetch.byte_start, fetch.byte_end)}


def v1(rec: Reconstruction, url_for: UrlFor) -> dict:
    return {"offset_into_first_range": rec.offset_into_first_range, "terms": [_term(t) for t in rec.terms],
            "fetch_info": {to_hex(x): [_fetch_info(x, f, url_for) for f in fetches]
                           for x, fetches in rec.fetches.items()}}


def v2(rec: Reconstruction, url_for: UrlFor) -> dict:
    return {"offset_into_first_range": rec.offset_into_first_range, "terms": [_term(t) for t in rec.terms],
            "xorbs": {to_hex(x): [{"url": url_for(x, f),
                                   "ranges": [{"chunks": _span(f.chunk_start, f.chunk_end),
                                               "bytes": _span(f.byte_start, f.byte_end)}]}
                                  for f in fetches]
                      for x, fetches in rec.fetches.items()}}


def batch(recs: dict[str, Reconstruction], url_for: UrlFor) -> dict:
    files: dict[str, Any] = {}
    fetch_info: dict[str, Any] = {}
    for file_hex, rec in recs.items():
        files[file_hex] = [_term(t) for t in rec.terms]
        for x, fetches in rec.fetches.items():
            fetch_info.setdefault(to_hex(x), []).extend(_fetch_info(x, f, url_for) for f in fetches)
    return {"files": files, "fetch_info": fetch_info}
