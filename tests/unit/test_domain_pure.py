"""Pure domain pieces: names, cards, LFS pointers and attributes, ranges, tree building."""

from __future__ import annotations

import pygit2
import pytest

from aicommons.api.ranges import parse_range
from aicommons.errors import BadRequest, RangeNotSatisfiable
from aicommons.gitrepo import TreeChange
from aicommons.gitrepo.trees import apply_changes
from aicommons.hub.cards import card_from_readme, validate_yaml
from aicommons.hub.gitattributes import DEFAULT_GITATTRIBUTES, LfsRules, format_pointer, parse_pointer
from aicommons.hub.names import check_branch_name, check_file_path, check_repo_name, check_tag_name
from aicommons.times import iso_z


@pytest.mark.parametrize("name", ["gpt2", "my-model_v1.0", "a", "A" * 96])
def test_valid_repo_names(name):
    assert check_repo_name(name) == name


@pytest.mark.parametrize("path", ["README.md", "a/b/c.bin", "dir with space/f", "ünïcode.txt", ".gitattributes"])
def test_valid_file_paths(path):
    assert check_file_path(path) == path


@pytest.mark.parametrize("name", ["main", "feature/x", "v1.0-rc"])
def test_valid_branch_names(name):
    assert check_branch_name(name) == name
    assert check_tag_name(name) == name


@pytest.mark.parametrize("name", ["refs/pr/1", "a..b", "x.lock", "", "a b", "~x", "a" * 0 + "0" * 40])
def test_invalid_branch_names(name):
    with pytest.raises(BadRequest):
        check_branch_name(name)


def test_card_metadata_becomes_tags():
    card = card_from_readme("---\nlicense: mit\nlibrary_name: transformers\npipeline_tag: fill-mask\n"
                            "tags: [a, b]\nbase_model: x/y\ndatasets: [d/e]\nlanguage: [en, fr]\n---\n# Hi", "model")
    assert card.library_name == "transformers" and card.pipeline_tag == "fill-mask"
    assert card.tags == ["a", "b", "transformers", "fill-mask", "license:mit", "base_model:x/y", "dataset:d/e",
                         "en", "fr"]
    assert card_from_readme("no front matter", "model").data is None
    assert card_from_readme("---\n: [bad\n---\n", "model").data is None


def test_validate_yaml():
    assert validate_yaml("---\nlicense: mit\n---\n") == ([], [])
    errors, warnings = validate_yaml("A card without metadata")
    assert errors == [] and "missing YAML metadata" in warnings[0]["message"]
    errors, _ = validate_yaml("---\nlicense: [\n---\n")
    assert errors and "Invalid YAML" in errors[0]["message"]
    errors, _ = validate_yaml("---\n- a list\n---\n")
    assert "mapping" in errors[0]["message"]
    errors, _ = validate_yaml("\n\n---\nmodel-index: foo\n---\n")  # blank lines before the fence
    assert "model-index" in errors[0]["message"]
    errors, _ = validate_yaml("---\nlicense: mit\n")
    assert "not closed" in errors[0]["message"]


def test_lfs_pointer_roundtrip_and_rejects_lookalikes():
    oid = "a" * 64
    pointer = parse_pointer(format_pointer(oid, 123))
    assert (pointer.oid, pointer.size) == (oid, 123)
    assert parse_pointer(b"version https://git-lfs.github.com/spec/v1\noid sha256:xyz\nsize 1\n") is None
    assert parse_pointer(b"hello") is None
    assert parse_pointer(format_pointer(oid, 1) + b"trailing garbage") is None


def test_gitattributes_rules():
    rules = LfsRules(DEFAULT_GITATTRIBUTES)
    assert rules.matches("model.safetensors") and rules.matches("deep/dir/x.parquet")
    assert rules.matches("saved_model/variables/v.data") and rules.matches("runs/events.out.tfevents.1")
    assert not rules.matches("config.json") and not rules.matches("README.md")
    assert LfsRules("*.txt filter=lfs diff=lfs merge=lfs -text\n# *.md filter=lfs\n").matches("a.txt")
    assert not LfsRules("# *.md filter=lfs\n").matches("a.md")


@pytest.mark.parametrize("header,expected", [
    ("bytes=0-9", [(0, 9)]), ("bytes=90-", [(90, 99)]), ("bytes=-10", [(90, 99)]), ("bytes=0-200", [(0, 99)]),
    ("bytes=0-4,3-9,20-29", [(0, 9), (20, 29)]), ("items=0-1", None), ("bytes=5-1", None), ("bytes=a-b", None),
])
def test_parse_range(header, expected):
    assert parse_range(header, 100) == expected


def test_unsatisfiable_range():
    with pytest.raises(RangeNotSatisfiable) as err:
        parse_range("bytes=100-", 100)
    assert err.value.headers["Content-Range"] == "bytes */100"


def test_tree_changes_delete_then_recreate_a_folder(tmp_path):
    repo = pygit2.init_repository(str(tmp_path), bare=True)
    blob = str(repo.create_blob(b"x"))
    base = repo[apply_changes(repo, None, [TreeChange("d/old.txt", blob), TreeChange("d/keep/k.txt", blob),
                                           TreeChange("top.txt", blob)])]
    tree = repo[apply_changes(repo, base, [TreeChange("d", None), TreeChange("d/new.txt", blob)])]
    assert sorted(e.name for e in repo[tree["d"].id]) == ["new.txt"]
    assert "top.txt" in tree
    emptied = repo[apply_changes(repo, base, [TreeChange("d/old.txt", None), TreeChange("d/keep/k.txt", None)])]
    assert [e.name for e in emptied] == ["top.txt"]  # empty folders vanish, as in git


def test_dates_have_a_literal_z():
    from datetime import datetime

    assert iso_z(datetime(2024, 1, 2, 3, 4, 5, 678901)) == "2024-01-02T03:04:05.678Z"
