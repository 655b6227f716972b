"""Property tests (hypothesis) for the pure parsers hostile input meets first: the NDJSON commit
parser, path / ref / revision validation (hub/names.py) and HTTP Range parsing (api/ranges.py).

The property each time: any input ends as a result that satisfies the invariants or as one of our
HubErrors (a 4xx) — never another exception (a 500) — and well-formed input round-trips.
Deterministic: derandomized, a bounded number of examples, no example database.
"""

from __future__ import annotations

import base64
import json
import unicodedata

import pygit2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aicommons.api.commit_payload import CommitPayloadParser, parse_commit_payload
from aicommons.api.ranges import MAX_RANGES, parse_range
from aicommons.errors import BadRequest, HubError, InvalidPath, PayloadTooLarge, RangeNotSatisfiable
from aicommons.gitrepo.trees import PathConflict, TreeChange, apply_changes
from aicommons.hub.commits import AddFile, AddLfsFile, DeleteFile, DeleteFolder
from aicommons.hub.names import (
    BIDI_CONTROLS,
    MAX_PATH_BYTES,
    RESERVED_REF_NAMES,
    check_branch_name,
    check_file_path,
    check_revision,
    check_tag_name,
    pr_number,
)

settings.register_profile("aicommons", derandomize=True, max_examples=300, database=None, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("aicommons")

# Text that leans towards the characters that matter: separators, dots, controls, bidi, surrogates.
TRICKY = st.sampled_from(list("/\\.:~ -_aA\x00\x01\t\n\x7f\x85\u202e\u2066\u200f\ud800\udfffé👩\u200d.git"))
tricky_text = st.lists(st.one_of(TRICKY, st.text(max_size=3), st.sampled_from([".git", "..", "GIT~1", "C:"])),
                       max_size=12).map("".join)
any_text = st.one_of(tricky_text, st.text(max_size=40))


def _unsafe(c: str) -> bool:
    return unicodedata.category(c) in ("Cc", "Cs") or c in BIDI_CONTROLS


# --- paths ---------------------------------------------------------------------------------------

@given(any_text)
def test_file_path_is_valid_or_invalid_path(path):
    try:
        out = check_file_path(path)
    except InvalidPath:
        return
    assert out == path and path and not path.startswith(("/", "\\"))
    assert len(path.encode()) <= MAX_PATH_BYTES
    assert not any(_unsafe(c) for c in path)
    for seg in path.replace("\\", "/").split("/"):
        assert seg not in (".", "..")
        assert seg.lower().rstrip(". ") != ".git"
    assert "" not in path.split("/")
    assert not (len(path) > 1 and path[1] == ":")


SAFE_SEGMENT = st.text(alphabet=st.characters(categories=["L", "N"], include_characters="-_ "),
                       min_size=1, max_size=20)


@given(st.lists(SAFE_SEGMENT, min_size=1, max_size=8))
def test_ordinary_paths_are_accepted(segments):
    path = "/".join(segments)
    if len(path.encode()) > MAX_PATH_BYTES or any(len(s.encode()) > 255 for s in segments) \
            or (len(path) > 1 and path[1] == ":") or any(s.lower() == "git~1" for s in segments):
        return
    assert check_file_path(path) == path


# --- branch, tag and revision names ----------------------------------------------------------------

@given(any_text)
def test_branch_and_tag_names_are_valid_refs_or_a_400(name):
    for check, prefix in ((check_branch_name, "refs/heads/"), (check_tag_name, "refs/tags/")):
        try:
            assert check(name) == name
        except BadRequest:
            continue
        assert pygit2.reference_is_valid_name(prefix + name)
        assert name not in RESERVED_REF_NAMES and not name.startswith("refs/")
        assert not any(_unsafe(c) for c in name)


@given(any_text)
def test_revisions_never_carry_unstorable_text(revision):
    try:
        check_revision(revision)
    except BadRequest:
        return
    assert revision and not any(unicodedata.category(c) in ("Cc", "Cs") for c in revision)


@given(st.one_of(any_text, st.integers().map(lambda n: f"refs/pr/{n}"), st.text().map(lambda t: "refs/pr/" + t)))
def test_pr_numbers_are_small_positive_integers(ref):
    num = pr_number(ref)
    if num is not None:
        assert 0 < num < 2**31 and ref == f"refs/pr/{num}"


@given(st.integers(min_value=1, max_value=999_999_999))
def test_pr_refs_round_trip(num):
    assert pr_number(f"refs/pr/{num}") == num


# --- Range --------------------------------------------------------------------------------------

range_spec = st.one_of(
    st.tuples(st.integers(0, 3000), st.one_of(st.none(), st.integers(0, 3000))).map(
        lambda t: f"{t[0]}-{'' if t[1] is None else t[1]}"),
    st.integers(-10, 3000).map(lambda n: f"-{n}"),
    st.text(alphabet="0123456789-, _+ \t", max_size=12),
    st.sampled_from(["", "-", "--", "1-2-3", "9" * 30 + "-", "-" + "9" * 5000, "１-２"]),
)
range_header = st.one_of(
    st.lists(range_spec, min_size=1, max_size=6).map(lambda parts: "bytes=" + ",".join(parts)),
    st.tuples(st.sampled_from(["bytes", "BYTES", " bytes ", "items", ""]), st.text(max_size=30)).map("=".join),
    st.text(max_size=40),
)


@given(range_header, st.integers(0, 4000))
def test_parse_range_gives_disjoint_ranges_inside_the_file(header, size):
    try:
        ranges = parse_range(header, size)
    except RangeNotSatisfiable as exc:
        assert exc.status == 416 and exc.headers["Content-Range"] == f"bytes */{size}"
        return
    if ranges is None:
        return
    assert 0 < len(ranges) <= MAX_RANGES
    for start, end in ranges:
        assert 0 <= start <= end < size
    for (_, end), (start, _) in zip(ranges, ranges[1:]):
        assert start > end + 1  # sorted, merged, not even adjacent


@given(st.integers(0, 5000), st.integers(0, 5000), st.integers(1, 5000))
def test_parse_range_of_one_valid_range(start, length, size):
    end = start + length
    header = f"bytes={start}-{end}"
    if start >= size:
        with pytest.raises(RangeNotSatisfiable):
            parse_range(header, size)
        return
    assert parse_range(header, size) == [(start, min(end, size - 1))]


@pytest.mark.parametrize("header", ["bytes=1_0-20", "bytes=+1-2", "bytes=١-٢", "bytes=1-2_0", "bytes=0x1-2",
                                    "bytes=" + "9" * 20 + "-"])
def test_parse_range_takes_ascii_digits_only(header):
    assert parse_range(header, 100) is None


@given(st.integers(1, 5000), st.integers(1, 5000))
def test_parse_range_suffix(length, size):
    assert parse_range(f"bytes=-{length}", size) == [(max(0, size - length), size - 1)]


# --- NDJSON commit payloads -------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | any_text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(any_text, children, max_size=3),
    max_leaves=10)
line_values = st.one_of(
    json_values,
    st.fixed_dictionaries({"key": st.sampled_from(["header", "file", "lfsFile", "deletedFile", "deletedFolder", "x"]),
                           "value": st.dictionaries(st.sampled_from(["path", "content", "encoding", "oid", "size",
                                                                     "algo", "summary", "description",
                                                                     "parentCommit"]), json_values, max_size=5)}),
)
raw_lines = st.one_of(line_values.map(json.dumps), st.binary(max_size=30).map(lambda b: b.decode("latin-1")),
                      st.sampled_from(["[" * 5000 + "]" * 5000, '{"key":' * 3000, "\ud800", '"\\ud800"', "\r", ""]))


@given(st.lists(raw_lines, max_size=8), st.sampled_from([b"\n", b"\r\n", b"\r"]), st.integers(1, 64))
def test_any_payload_parses_or_is_a_4xx(lines, sep, chunk):
    body = sep.join(line.encode("utf-8", "surrogatepass") for line in lines)
    whole = _parse(lambda: parse_commit_payload(body))
    parser = CommitPayloadParser()
    def fed():
        for i in range(0, len(body), chunk):  # the same body in arbitrary chunks gives the same answer
            parser.feed(body[i:i + chunk])
        return parser.finish()
    assert _parse(fed) == whole


def _parse(fn):
    try:
        return fn()
    except HubError as exc:
        assert 400 <= exc.status < 500
        return type(exc)


operations = st.lists(st.one_of(
    st.builds(AddFile, SAFE_SEGMENT, st.binary(max_size=50)),
    st.builds(AddLfsFile, SAFE_SEGMENT, st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
              st.one_of(st.none(), st.integers(0, 2**40))),
    st.builds(DeleteFile, SAFE_SEGMENT),
    st.builds(DeleteFolder, SAFE_SEGMENT),
), max_size=10)


def _line(op) -> dict:
    if isinstance(op, AddFile):
        return {"key": "file", "value": {"path": op.path, "content": base64.b64encode(op.content).decode(),
                                         "encoding": "base64"}}
    if isinstance(op, AddLfsFile):
        value = {"path": op.path, "algo": "sha256", "oid": op.oid}
        if op.size is not None:
            value["size"] = op.size
        return {"key": "lfsFile", "value": value}
    return {"key": "deletedFile" if isinstance(op, DeleteFile) else "deletedFolder", "value": {"path": op.path}}


@given(operations, any_text.filter(lambda t: "\x00" not in t and not any("\ud800" <= c <= "\udfff" for c in t)),
       st.integers(1, 200))
def test_well_formed_payloads_round_trip(ops, summary, chunk):
    lines = [{"key": "header", "value": {"summary": summary, "description": "d"}}] + [_line(op) for op in ops]
    body = "\n".join(json.dumps(item) for item in lines).encode()
    parser = CommitPayloadParser()
    for i in range(0, len(body), chunk):
        parser.feed(body[i:i + chunk])
    request = parser.finish()
    assert request.summary == summary and request.description == "d"
    assert list(request.operations) == ops


def test_a_line_longer_than_any_file_is_refused_before_its_end():
    parser = CommitPayloadParser(max_line=1000)
    parser.feed(b'{"key": "header", "value": {"summary": "s"}}\n')
    with pytest.raises(PayloadTooLarge):
        for _ in range(100):
            parser.feed(b"A" * 100)


def test_operation_count_is_capped():
    parser = CommitPayloadParser(max_operations=3)
    parser.feed(b'{"key": "header", "value": {"summary": "s"}}\n')
    with pytest.raises(BadRequest, match="at most 3 operations"):
        parser.feed(b'{"key": "deletedFile", "value": {"path": "x"}}\n' * 4)


# --- tree building: a change set never silently drops a file ---------------------------------------

tree_changes = st.lists(st.tuples(st.lists(st.sampled_from("ab"), min_size=1, max_size=3).map("/".join),
                                  st.booleans()), max_size=6)


@given(tree_changes, tree_changes)
def test_tree_changes_keep_every_file_or_refuse(base_changes, changes):
    repo = pygit2.init_repository(_scratch_repo(), bare=True)
    blob = str(repo.create_blob(b"x"))
    try:
        base = repo[apply_changes(repo, None, [TreeChange(p, blob) for p, add in base_changes if add])]
    except PathConflict:
        return
    try:
        tree = repo[apply_changes(repo, base, [TreeChange(p, blob if add else None) for p, add in changes])]
    except PathConflict:
        return
    files = set(_files(repo, tree))
    expected = set(_files(repo, base))
    for path, add in changes:
        if add:  # a file replaces only itself: anything else it would displace must be a PathConflict
            expected.add(path)
        else:  # deleting a folder deletes what is under it
            expected = {f for f in expected if f != path and not f.startswith(path + "/")}
    assert files == expected


def _files(repo, tree, prefix=""):
    for entry in tree:
        if entry.filemode == pygit2.GIT_FILEMODE_TREE:
            yield from _files(repo, repo[entry.id], f"{prefix}{entry.name}/")
        else:
            yield prefix + entry.name


_REPO_DIR: list = []


def _scratch_repo() -> str:
    if not _REPO_DIR:
        import tempfile

        _REPO_DIR.append(tempfile.mkdtemp(prefix="aicommons-prop-"))
    return _REPO_DIR[0]
