"""huggingface_hub 2.4 against a live hub: repo, file, ref and listing flows."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, hf_hub_download, snapshot_download
from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

from tests.conftest import ORG, auth, unique_name


def test_whoami_names_user_and_orgs(api):
    me = api.whoami()
    assert me["name"] == "alice"
    assert me["type"] == "user"
    assert me["fullname"] == "Alice Liddell"
    assert [o["name"] for o in me["orgs"]] == [ORG]
    assert me["auth"]["accessToken"]["role"] == "write"


def test_create_repo_returns_url_and_exist_ok(api, live_hub):
    name = unique_name()
    url = api.create_repo(name)
    assert url == f"{live_hub.url}/alice/{name}"
    assert url.repo_id == f"alice/{name}"
    assert api.create_repo(name, exist_ok=True).repo_id == f"alice/{name}"
    with pytest.raises(HfHubHTTPError) as err:
        api.create_repo(name)
    assert err.value.response.status_code == 409


def test_new_repo_has_initial_commit_with_gitattributes(api, repo_id):
    assert api.list_repo_files(repo_id) == [".gitattributes"]
    commits = api.list_repo_commits(repo_id)
    assert [c.title for c in commits] == ["initial commit"]
    assert commits[0].authors == ["alice"]  # the creator, as on the Hub


def test_upload_download_regular_and_lfs(api, repo_id, tmp_path):
    weights = os.urandom(300_000)
    api.upload_file(path_or_fileobj=b"hello", path_in_repo="notes/hello.txt", repo_id=repo_id)
    api.upload_file(path_or_fileobj=weights, path_in_repo="model.safetensors", repo_id=repo_id)
    path = hf_hub_download(repo_id, "model.safetensors", cache_dir=tmp_path)
    assert Path(path).read_bytes() == weights
    assert Path(hf_hub_download(repo_id, "notes/hello.txt", cache_dir=tmp_path)).read_bytes() == b"hello"
    info = api.model_info(repo_id, files_metadata=True)
    sizes = {s.rfilename: (s.size, s.lfs.sha256 if s.lfs else None) for s in info.siblings}
    import hashlib

    assert sizes["model.safetensors"] == (300_000, hashlib.sha256(weights).hexdigest())
    assert sizes["notes/hello.txt"] == (5, None)


def test_upload_folder_and_snapshot_download(api, repo_id, tmp_path):
    src = tmp_path / "src"
    (src / "sub" / "deeper").mkdir(parents=True)
    (src / "config.json").write_text('{"a": 1}')
    (src / "sub" / "data.bin").write_bytes(os.urandom(5000))
    (src / "sub" / "deeper" / "x.txt").write_text("x")
    api.upload_folder(folder_path=src, repo_id=repo_id, commit_message="add folder")
    local = snapshot_download(repo_id, cache_dir=tmp_path / "cache")
    for rel in ["config.json", "sub/data.bin", "sub/deeper/x.txt", ".gitattributes"]:
        assert (src / rel).exists() is (rel != ".gitattributes")
        assert os.path.exists(os.path.join(local, rel))
    assert Path(os.path.join(local, "sub/data.bin")).read_bytes() == (src / "sub" / "data.bin").read_bytes()
    only = snapshot_download(repo_id, allow_patterns=["*.json"], local_dir=tmp_path / "only")
    assert sorted(os.listdir(only)) == [".cache", "config.json"]


def test_create_commit_with_many_operations_and_parent(api, repo_id):
    head = api.model_info(repo_id).sha
    info = api.create_commit(repo_id, operations=[
        CommitOperationAdd("a.txt", b"A"), CommitOperationAdd("dir/b.txt", b"B"),
    ], commit_message="two files", commit_description="long description", parent_commit=head)
    assert len(info.oid) == 40
    assert info.commit_url.endswith(f"/{repo_id}/commit/{info.oid}")
    commits = api.list_repo_commits(repo_id)
    assert commits[0].title == "two files"
    assert commits[0].message == "long description"
    assert commits[0].authors == ["alice"]
    with pytest.raises(HfHubHTTPError) as err:  # stale parent
        api.create_commit(repo_id, operations=[CommitOperationAdd("c.txt", b"C")], commit_message="late",
                          parent_commit=head)
    assert err.value.response.status_code == 412
    assert "c.txt" not in api.list_repo_files(repo_id)


def test_short_sha_parent_commit(api, repo_id):
    head = api.model_info(repo_id).sha
    api.create_commit(repo_id, operations=[CommitOperationAdd("s.txt", b"s")], commit_message="short",
                      parent_commit=head[:7])
    assert "s.txt" in api.list_repo_files(repo_id)


def test_delete_file_folder_and_missing(api, repo_id):
    api.create_commit(repo_id, operations=[CommitOperationAdd("f/a.txt", b"1"), CommitOperationAdd("f/b.txt", b"2"),
                                           CommitOperationAdd("g.txt", b"3")], commit_message="files")
    api.delete_file("g.txt", repo_id)
    api.delete_folder("f", repo_id)
    assert api.list_repo_files(repo_id) == [".gitattributes"]
    with pytest.raises(EntryNotFoundError):
        api.delete_file("missing.txt", repo_id)
    with pytest.raises(EntryNotFoundError):
        api.create_commit(repo_id, operations=[CommitOperationDelete("nope/", is_folder=True)], commit_message="x")


def test_file_and_repo_exists(api, repo_id):
    api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_id)
    assert api.file_exists(repo_id, "x.txt")
    assert not api.file_exists(repo_id, "y.txt")
    assert api.repo_exists(repo_id)
    assert not api.repo_exists(f"alice/{unique_name('missing')}")
    assert api.revision_exists(repo_id, "main")
    assert not api.revision_exists(repo_id, "nope")


def test_list_repo_tree_and_paths_info(api, repo_id):
    api.create_commit(repo_id, operations=[CommitOperationAdd(p, b"data") for p in
                                           ["a/1.txt", "a/b/2.txt", "a/b/c/3.txt", "top.txt"]], commit_message="tree")
    top = {e.path for e in api.list_repo_tree(repo_id)}
    assert top == {".gitattributes", "a", "top.txt"}
    everything = {(e.path, type(e).__name__) for e in api.list_repo_tree(repo_id, recursive=True)}
    assert ("a/b", "RepoFolder") in everything and ("a/b/c/3.txt", "RepoFile") in everything
    sub = {e.path for e in api.list_repo_tree(repo_id, path_in_repo="a/b")}
    assert sub == {"a/b/2.txt", "a/b/c"}
    expanded = list(api.list_repo_tree(repo_id, path_in_repo="a", expand=True))
    assert all(e.last_commit is not None and e.last_commit.title == "tree" for e in expanded)
    with pytest.raises(EntryNotFoundError):
        list(api.list_repo_tree(repo_id, path_in_repo="nope"))
    infos = api.get_paths_info(repo_id, ["top.txt", "a", "missing.txt"])
    assert sorted(i.path for i in infos) == ["a", "top.txt"]


def test_branches_tags_and_revisions(api, repo_id, tmp_path):
    api.upload_file(path_or_fileobj=b"v1", path_in_repo="f.txt", repo_id=repo_id)
    api.create_branch(repo_id, branch="feature/x")
    api.upload_file(path_or_fileobj=b"v2", path_in_repo="f.txt", repo_id=repo_id, revision="feature/x")
    api.create_tag(repo_id, tag="v1.0", tag_message="first release")
    refs = api.list_repo_refs(repo_id)
    assert {b.name for b in refs.branches} == {"main", "feature/x"}
    assert [t.name for t in refs.tags] == ["v1.0"]
    def read(rev):
        return Path(hf_hub_download(repo_id, "f.txt", revision=rev, cache_dir=tmp_path)).read_bytes()

    assert read("feature/x") == b"v2"
    assert read("v1.0") == b"v1"
    assert read(refs.tags[0].target_commit[:8]) == b"v1"
    with pytest.raises(HfHubHTTPError) as err:
        api.create_branch(repo_id, branch="feature/x")
    assert err.value.response.status_code == 409
    api.create_branch(repo_id, branch="feature/x", exist_ok=True)
    with pytest.raises(HfHubHTTPError):
        api.create_tag(repo_id, tag="bad tag")
    with pytest.raises(HfHubHTTPError) as err:
        api.delete_branch(repo_id, branch="main")
    assert err.value.response.status_code == 403
    api.delete_branch(repo_id, branch="feature/x")
    api.delete_tag(repo_id, tag="v1.0")
    with pytest.raises(RevisionNotFoundError):
        api.delete_tag(repo_id, tag="v1.0")
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(repo_id, "f.txt", revision="feature/x", cache_dir=tmp_path / "other")


def test_super_squash_history(api, repo_id):
    for i in range(3):
        api.upload_file(path_or_fileobj=str(i).encode(), path_in_repo=f"{i}.txt", repo_id=repo_id)
    api.super_squash_history(repo_id, commit_message="squashed")
    commits = api.list_repo_commits(repo_id)
    assert [c.title for c in commits] == ["squashed"]
    assert set(api.list_repo_files(repo_id)) == {".gitattributes", "0.txt", "1.txt", "2.txt"}


def test_private_repo_is_invisible_to_others(api, bob_api, live_hub, tmp_path):
    name = f"alice/{unique_name('secret')}"
    api.create_repo(name, private=True)
    api.upload_file(path_or_fileobj=b"s", path_in_repo="s.txt", repo_id=name)
    assert api.model_info(name).private is True
    for client in (bob_api,):
        with pytest.raises(RepositoryNotFoundError):
            client.model_info(name)
        assert not client.repo_exists(name)
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download(name, "s.txt", token=False, cache_dir=tmp_path)
    assert name not in [m.id for m in bob_api.list_models(author="alice")]
    assert name in [m.id for m in api.list_models(author="alice")]
    # Her likes and discussions in it are counted for her, not for others (who see none of them).
    seen_by = {who: who.get_user_overview("alice") for who in (api, bob_api)}
    httpx.post(f"{api.endpoint}/api/models/{name}/like", headers=auth(api.token)).raise_for_status()  # no HfApi.like
    api.create_discussion(name, title="notes to self", description="private")
    now = {who: who.get_user_overview("alice") for who in (api, bob_api)}
    assert (now[api].num_likes, now[api].num_discussions) == \
        (seen_by[api].num_likes + 1, seen_by[api].num_discussions + 1)
    assert (now[bob_api].num_likes, now[bob_api].num_discussions) == \
        (seen_by[bob_api].num_likes, seen_by[bob_api].num_discussions)
    assert name in api.list_liked_repos("alice").models and name not in bob_api.list_liked_repos("alice").models
    api.update_repo_settings(name, private=False)
    assert bob_api.model_info(name).private is False
    assert bob_api.get_user_overview("alice").num_likes == seen_by[bob_api].num_likes + 1


def test_write_needs_owner_write_token(api, bob_api, repo_id, live_hub):
    from huggingface_hub import HfApi

    with pytest.raises(HfHubHTTPError) as err:
        bob_api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_id)
    assert err.value.response.status_code == 403
    reader = HfApi(endpoint=live_hub.url, token=live_hub.tokens["alice_read"])
    with pytest.raises(HfHubHTTPError):
        reader.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_id)
    assert "x.txt" not in api.list_repo_files(repo_id)


def test_org_repo_created_by_member(api, bob_api):
    name = f"{ORG}/{unique_name()}"
    api.create_repo(name)
    api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=name)
    with pytest.raises(HfHubHTTPError):
        bob_api.create_repo(f"{ORG}/{unique_name()}")


def test_list_models_search_filter_sort_card(api):
    tag = unique_name("tag")
    names = [f"alice/{unique_name('searchable')}" for _ in range(3)]
    for i, name in enumerate(names):
        api.create_repo(name)
        card = f"---\nlicense: apache-2.0\nlibrary_name: transformers\npipeline_tag: text-generation\ntags: [{tag}]\n---\n# Card {i}\n"
        api.upload_file(path_or_fileobj=card.encode(), path_in_repo="README.md", repo_id=name)
    found = list(api.list_models(filter=tag))
    assert sorted(m.id for m in found) == sorted(names)
    assert all(m.pipeline_tag == "text-generation" and m.library_name == "transformers" for m in found)
    by_search = [m.id for m in api.list_models(search=names[1].split("/")[1])]
    assert by_search == [names[1]]
    with_cards = list(api.list_models(filter=[tag, "license:apache-2.0"], cardData=True))
    assert len(with_cards) == 3 and all(m.card_data.license == "apache-2.0" for m in with_cards)
    full = list(api.list_models(filter=tag, full=True, limit=2, sort="created_at"))
    assert len(full) == 2 and all(any(s.rfilename == "README.md" for s in m.siblings) for m in full)


def test_a_gguf_only_repo_has_the_library_gguf(api):
    """A repo of GGUF files alone (no config.json, a card naming no library) had no library_name; the
    Hub gives it ``gguf`` (what llama.cpp's users filter by). A repo with a config.json stays transformers."""
    repo = f"alice/{unique_name('gguf-only')}"
    api.create_repo(repo)
    header = b"GGUF" + (3).to_bytes(4, "little") + bytes(16)  # magic, version 3, no tensors, no metadata
    api.upload_file(path_or_fileobj=header, path_in_repo="tiny.Q4_K_M.gguf", repo_id=repo)
    info = api.model_info(repo)
    assert info.library_name == "gguf" and "gguf" in info.tags
    api.upload_file(path_or_fileobj=b'{"model_type": "llama", "architectures": ["LlamaForCausalLM"]}',
                    path_in_repo="config.json", repo_id=repo)
    assert api.model_info(repo).library_name == "transformers"


def test_datasets_and_spaces_repo_types(api, tmp_path):
    ds = f"alice/{unique_name('ds')}"
    api.create_repo(ds, repo_type="dataset")
    api.upload_file(path_or_fileobj=b"a,b\n1,2\n", path_in_repo="data/train.csv", repo_id=ds, repo_type="dataset")
    assert api.dataset_info(ds).id == ds
    assert hf_hub_download(ds, "data/train.csv", repo_type="dataset", cache_dir=tmp_path)
    assert ds in [d.id for d in api.list_datasets(author="alice")]
    space = f"alice/{unique_name('space')}"
    api.create_repo(space, repo_type="space", space_sdk="static")
    api.upload_file(path_or_fileobj=b"<html></html>", path_in_repo="index.html", repo_id=space, repo_type="space")
    assert "index.html" in api.list_repo_files(space, repo_type="space")
    with pytest.raises(RepositoryNotFoundError):
        api.model_info(ds)  # same name, other type


def test_delete_and_move_repo(api, tmp_path):
    name = f"alice/{unique_name()}"
    api.create_repo(name)
    api.upload_file(path_or_fileobj=b"keep", path_in_repo="k.txt", repo_id=name)
    new = f"alice/{unique_name('moved')}"
    api.move_repo(name, new)
    assert api.model_info(new).id == new
    # the old name keeps answering, through a redirect
    assert api.model_info(name).id == new
    assert Path(hf_hub_download(name, "k.txt", cache_dir=tmp_path)).read_bytes() == b"keep"
    api.delete_repo(new)
    assert not api.repo_exists(new)
    api.delete_repo(new, missing_ok=True)
    with pytest.raises(RepositoryNotFoundError):
        api.delete_repo(new)


def test_unchanged_upload_is_skipped(api, repo_id):
    api.upload_file(path_or_fileobj=b"same", path_in_repo="same.txt", repo_id=repo_id)
    before = api.model_info(repo_id).sha
    api.upload_file(path_or_fileobj=b"same", path_in_repo="same.txt", repo_id=repo_id)
    assert api.model_info(repo_id).sha == before


def test_validate_yaml_rejects_bad_card(api, repo_id):
    with pytest.raises(ValueError, match="Invalid metadata"):
        api.upload_file(path_or_fileobj=b"---\nlicense: [unclosed\n---\n", path_in_repo="README.md", repo_id=repo_id)


def test_duplicate_repo_copies_models_and_datasets_with_their_large_files(xet, api, bob_api, tmp_path):
    """`hf repos duplicate` / `duplicate_repo` copies any repo type, as on the Hub: history, files and
    the large files, readable from the copy through Xet as from the source; the copy is as private as
    its source unless asked (it used to answer 404 for a model, and a duplicated Space's Xet files
    404ed in hf_xet)."""
    source = f"alice/{unique_name('dup')}"
    api.create_repo(source, private=True)
    weights = os.urandom(300_000)
    api.upload_file(path_or_fileobj=weights, path_in_repo="model.safetensors", repo_id=source)  # through Xet
    api.upload_file(path_or_fileobj=b"notes", path_in_repo="notes.txt", repo_id=source)
    target = f"alice/{unique_name('dup')}"
    assert api.duplicate_repo(source, target).repo_id == target
    assert api.model_info(target).private
    assert [c.commit_id for c in api.list_repo_commits(target)] == [c.commit_id for c in api.list_repo_commits(source)]
    assert api.get_paths_info(target, ["model.safetensors"])[0].xet_hash
    assert Path(hf_hub_download(target, "model.safetensors", cache_dir=tmp_path, token=api.token)).read_bytes() \
        == weights
    assert [f.filename for f in api.list_lfs_files(target)] == ["model.safetensors"]
    with pytest.raises(RepositoryNotFoundError):
        bob_api.duplicate_repo(source, f"bob/{unique_name('dup')}")  # a private source answers as a missing one
    assert api.duplicate_repo(source, target, exist_ok=True).repo_id == target

    dataset = f"alice/{unique_name('dup')}"
    api.create_repo(dataset, repo_type="dataset")
    api.upload_file(path_or_fileobj=b"a,b\n1,2\n", path_in_repo="train.csv", repo_id=dataset, repo_type="dataset")
    copy = bob_api.duplicate_repo(dataset, unique_name("dup"), repo_type="dataset", private=True)
    assert copy.repo_id.startswith("bob/") and bob_api.dataset_info(copy.repo_id).private
    assert bob_api.list_repo_files(copy.repo_id, repo_type="dataset") == [".gitattributes", "train.csv"]

    space = f"alice/{unique_name('dup')}"
    api.create_repo(space, repo_type="space", space_sdk="static", private=True)
    api.upload_file(path_or_fileobj=weights, path_in_repo="w.bin", repo_id=space, repo_type="space")
    space_copy = api.duplicate_repo(space, f"alice/{unique_name('dup')}", repo_type="space")
    assert api.space_info(space_copy.repo_id).private  # not made public by the copy
    assert Path(hf_hub_download(space_copy.repo_id, "w.bin", repo_type="space",
                                cache_dir=tmp_path, token=api.token)).read_bytes() == weights
    protected = api.duplicate_repo(space, f"alice/{unique_name('dup')}", repo_type="space", visibility="protected")
    assert api.space_info(protected.repo_id).private  # as create_repo takes it
