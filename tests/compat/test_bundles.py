"""Signed bundles for air-gapped sites (issue 12): export repos from one hub, carry one file, import
into another that trusts the first hub's key. Tampered, unsigned and foreign bundles change nothing."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest
from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_download
from huggingface_hub.errors import RepositoryNotFoundError

from tests.backends import free_port
from tests.compat.test_git import Git
from tests.conftest import start_hub, stop_hub, unique_name

WEIGHTS = os.urandom(120_000)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The air-gapped hub."""
    hub = start_hub(tmp_path_factory.mktemp("airgap"), free_port())
    yield hub
    stop_hub(hub)


@pytest.fixture(scope="module")
def source_key(live_hub, tmp_path_factory):
    path = tmp_path_factory.mktemp("keys") / "source.pem"
    path.write_text(live_hub.cli("bundle", "key").stdout)
    return path


def make_repo(api) -> tuple[str, str]:
    repo = f"alice/{unique_name('bundle')}"
    api.create_repo(repo)
    api.create_commit(repo, [CommitOperationAdd("README.md", b"---\nlicense: mit\n---\n# Carried in\n"),
                             CommitOperationAdd("model.bin", WEIGHTS)], commit_message="weights")
    api.create_tag(repo, tag="v1")
    return repo, api.model_info(repo).sha


def flip(path, member_name: str, offset: int = 10) -> None:
    with tarfile.open(path) as tar:
        member = tar.getmember(member_name)
    with open(path, "r+b") as f:
        f.seek(member.offset_data + offset)
        byte = f.read(1)
        f.seek(member.offset_data + offset)
        f.write(bytes([byte[0] ^ 0x01]))


def test_export_carry_import(live_hub, api, site, source_key, tmp_path):
    repo, sha = make_repo(api)
    bundle = tmp_path / "carry.tar"
    exported = live_hub.cli("bundle", "export", f"{repo}@main,v1", "--output", str(bundle))
    assert "1 repos, 1 large files" in exported.stdout, exported.stdout + exported.stderr

    imported = site.cli("bundle", "import", str(bundle), "--trusted-key", str(source_key))
    assert f"model {repo}: created" in imported.stdout, imported.stdout + imported.stderr
    remote = HfApi(endpoint=site.url)
    assert remote.model_info(repo).sha == sha  # the same commit ids
    assert [t.name for t in remote.list_repo_refs(repo).tags] == ["v1"]
    got = hf_hub_download(repo, "model.bin", revision=sha, endpoint=site.url, cache_dir=tmp_path / "c")
    assert Path(got).read_bytes() == WEIGHTS
    git = Git(tmp_path / "home")
    git("clone", f"{site.url}/{repo}", str(tmp_path / "clone"))
    assert (tmp_path / "clone" / "model.bin").read_bytes() == WEIGHTS

    # Again: nothing new, no error. Then a later bundle adds a revision.
    assert f"model {repo}: updated" in site.cli("bundle", "import", str(bundle), "--trusted-key",
                                                str(source_key)).stdout
    new = api.upload_file(path_or_fileobj=b"v2", path_in_repo="v2.txt", repo_id=repo).oid
    later = tmp_path / "later.tar"
    live_hub.cli("bundle", "export", repo, "--output", str(later))
    site.cli("bundle", "import", str(later), "--trusted-key", str(source_key))
    assert remote.model_info(repo).sha == new


def test_files_uploaded_through_xet_are_carried(xet, api, site, source_key, tmp_path):
    """A file uploaded through Xet (huggingface_hub's default) is stored as chunks only: the export
    reads it through the chunk store. It looked only for a whole-file blob and stopped with "large
    file ... is not stored here: download or sync it first"."""
    weights = os.urandom(90_000)
    repo = f"alice/{unique_name('xetbundle')}"
    api.create_repo(repo)
    api.create_commit(repo, [CommitOperationAdd("model.bin", weights)], commit_message="weights")
    oid = next(f.lfs["sha256"] for f in api.model_info(repo, files_metadata=True).siblings if f.rfilename == "model.bin")
    assert not (xet.data_dir / "blobs" / "lfs" / oid[:2] / oid[2:4] / oid).exists()  # chunks only
    bundle = tmp_path / "xet.tar"
    exported = xet.cli("bundle", "export", repo, "--output", str(bundle), check=False)
    assert "1 repos, 1 large files" in exported.stdout, exported.stdout + exported.stderr
    imported = site.cli("bundle", "import", str(bundle), "--trusted-key", str(source_key))
    assert f"model {repo}: created" in imported.stdout, imported.stdout + imported.stderr
    got = hf_hub_download(repo, "model.bin", endpoint=site.url, cache_dir=tmp_path / "c")
    assert Path(got).read_bytes() == weights


@pytest.mark.parametrize("damage", ["large file", "manifest", "git data", "unsigned", "foreign key"])
def test_a_damaged_or_untrusted_bundle_changes_nothing(live_hub, api, site, source_key, tmp_path, damage):
    repo, _ = make_repo(api)
    bundle = tmp_path / "carry.tar"
    live_hub.cli("bundle", "export", repo, "--output", str(bundle))
    key = source_key
    if damage == "large file":
        with tarfile.open(bundle) as tar:
            name = next(m.name for m in tar.getmembers() if m.name.startswith("lfs/"))
        flip(bundle, name, 5000)
    elif damage == "manifest":
        flip(bundle, "manifest.json", 30)
    elif damage == "git data":
        flip(bundle, "repos/0.bundle", 200)
    elif damage == "unsigned":
        stripped = tmp_path / "stripped.tar"
        with tarfile.open(bundle) as src, tarfile.open(stripped, "w") as dst:
            for member in src.getmembers():
                if member.name != "manifest.sig":
                    dst.addfile(member, src.extractfile(member))
        bundle = stripped
    else:
        key = tmp_path / "other.pem"
        key.write_text(site.cli("bundle", "key").stdout)  # a key, but not the exporter's
    refused = site.cli("bundle", "import", str(bundle), "--trusted-key", str(key), check=False)
    assert refused.returncode == 1 and "nothing was imported" in refused.stderr, refused.stderr
    with pytest.raises(RepositoryNotFoundError):
        HfApi(endpoint=site.url).model_info(repo)
    no_key = site.cli("bundle", "import", str(bundle), check=False)
    assert no_key.returncode == 1 and "no trusted key" in no_key.stderr


def test_export_and_import_show_progress_on_a_terminal(live_hub, api, site, source_key, tmp_path):
    """Issue 22: every long command shows a bar on a terminal (a real pseudo-terminal here)."""
    from tests.compat.test_operator_progress import Terminal

    repo, _ = make_repo(api)
    bundle = tmp_path / "shown.tar"
    code, out = Terminal(live_hub.env, "bundle", "export", f"{repo}@main", "--output", str(bundle)).wait()
    assert code == 0, out
    assert "large files" in out and "100%" in out and "1 repos, 1 large files" in out
    code, out = Terminal(site.env, "bundle", "import", str(bundle), "--trusted-key", str(source_key)).wait()
    assert code == 0, out
    assert "large files" in out and "100%" in out


def test_model_files_carry_openssf_model_signing_signatures(live_hub, api, site, source_key, tmp_path):
    """A recipient verifies an exported model with the `model_signing` CLI and library (the OpenSSF
    format), against the hub's model-signing key; a tampered file fails that verification."""
    import json
    import subprocess
    import sys

    import model_signing
    from huggingface_hub import snapshot_download

    repo, _ = make_repo(api)
    api.upload_file(path_or_fileobj=b'{"layers": 2}', path_in_repo="sub/config.json", repo_id=repo)
    bundle = tmp_path / "signed.tar"
    live_hub.cli("bundle", "export", f"{repo}@main", "--output", str(bundle))
    key = tmp_path / "model-signing.pub"
    key.write_text(live_hub.cli("bundle", "key", "--model-signing").stdout)
    with tarfile.open(bundle) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        signed = manifest["repos"][0]["model_signatures"]["main"]
        signature = tmp_path / "model.sig"
        signature.write_bytes(tar.extractfile(signed["path"]).read())
    assert manifest["model_signing_key"] == key.read_text()  # the key travels in the signed manifest
    site.cli("bundle", "import", str(bundle), "--trusted-key", str(source_key))

    # The recipient downloads the model from the site and checks it with the standard tool.
    folder = Path(snapshot_download(repo, endpoint=site.url, local_dir=tmp_path / "model"))
    assert (folder / "model.bin").read_bytes() == WEIGHTS
    cli = [sys.executable, "-m", "model_signing", "verify", "key", str(folder), "--signature", str(signature),
           "--public_key", str(key), "--ignore-paths", str(folder / ".cache")]
    checked = subprocess.run(cli, capture_output=True, text=True)
    assert checked.returncode == 0 and "Verification succeeded" in checked.stdout, checked.stdout + checked.stderr
    verifier = model_signing.verifying.Config().use_elliptic_key_verifier(public_key=key).set_hashing_config(
        model_signing.hashing.Config().set_ignored_paths(paths=[".cache"]))
    verifier.verify(folder, signature)

    # One flipped byte in a model file: both refuse.
    weights = bytearray((folder / "model.bin").read_bytes())
    weights[1000] ^= 0x01
    (folder / "model.bin").write_bytes(bytes(weights))
    tampered = subprocess.run(cli, capture_output=True, text=True)
    assert tampered.returncode == 1 and "Verification failed" in tampered.stderr
    with pytest.raises(ValueError, match="Signature mismatch"):
        verifier.verify(folder, signature)
    # A signature that does not match its manifest entry refuses the whole bundle.
    flip(bundle, signed["path"], offset=40)
    refused = site.cli("bundle", "import", str(bundle), "--trusted-key", str(source_key), check=False)
    assert refused.returncode != 0 and "model signature" in refused.stderr


def test_an_import_past_the_owners_quota_is_refused_whole(live_hub, api, site, source_key, tmp_path):
    """Issue 11: `bundle import` checks the storage quota as an upload does, before anything is
    stored; an administrator may override it with --ignore-quota."""
    import json
    import subprocess
    import sys

    from tests.conftest import ORG

    def used(owner: str) -> int:
        return json.loads(site.cli("storage", "quota", "show", owner, "--json").stdout)["used_bytes"]

    def blobs() -> set[Path]:
        return {p for p in (site.data_dir / "blobs").rglob("*") if p.is_file()} \
            if (site.data_dir / "blobs").exists() else set()

    # alice exists on the site (an earlier bundle of hers, imported under no quota).
    first, _ = make_repo(api)
    carry = tmp_path / "first.tar"
    live_hub.cli("bundle", "export", first, "--output", str(carry))
    site.cli("bundle", "import", str(carry), "--trusted-key", str(source_key))
    before = used("alice")
    site.cli("storage", "quota", "set", "alice", str(before + 50_000))

    # The same weights in a second repo count again (the quota is per repo, logical): 120 kB > 50 kB.
    second, _ = make_repo(api)
    sha = api.upload_file(path_or_fileobj=os.urandom(30_000), path_in_repo="extra.bin", repo_id=second).oid
    bundle = tmp_path / "second.tar"
    live_hub.cli("bundle", "export", second, "--output", str(bundle))
    stored = blobs()
    refused = site.cli("bundle", "import", str(bundle), "--trusted-key", str(source_key), check=False)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "Storage limit reached for alice" in refused.stderr and "--ignore-quota" in refused.stderr
    assert "nothing was imported" in refused.stderr
    with pytest.raises(RepositoryNotFoundError):
        HfApi(endpoint=site.url).model_info(second)
    assert used("alice") == before and blobs() == stored  # not the extra file's bytes either

    # Nothing new is never refused: importing the first bundle again goes through.
    again = site.cli("bundle", "import", str(carry), "--trusted-key", str(source_key))
    assert f"model {first}: updated" in again.stdout

    # The administrator's override; the bytes then count against the quota like any other.
    forced = site.cli("bundle", "import", str(bundle), "--trusted-key", str(source_key), "--ignore-quota")
    assert f"model {second}: created" in forced.stdout, forced.stdout + forced.stderr
    assert HfApi(endpoint=site.url).model_info(second).sha == sha
    assert used("alice") > before + 150_000
    site.cli("storage", "quota", "set", "alice", "default")

    # A namespace the import would create gets the default quota (AICOMMONS_STORAGE_QUOTA_DEFAULT).
    org_repo = f"{ORG}/{unique_name('bundle')}"
    api.create_repo(org_repo)
    api.upload_file(path_or_fileobj=WEIGHTS, path_in_repo="model.bin", repo_id=org_repo)
    org_bundle = tmp_path / "org.tar"
    live_hub.cli("bundle", "export", org_repo, "--output", str(org_bundle))
    small_default = {**site.env, "AICOMMONS_STORAGE_QUOTA_DEFAULT": "50kB"}
    refused = subprocess.run([sys.executable, "-m", "aicommons.cli.main", "bundle", "import", str(org_bundle),
                              "--trusted-key", str(source_key)], env=small_default, capture_output=True, text=True)
    assert refused.returncode == 1 and f"Storage limit reached for {ORG}" in refused.stderr, refused.stderr
    assert "nothing was imported" in refused.stderr
    assert site.cli("storage", "quota", "show", ORG, check=False).returncode != 0  # not even the owner
    roomy = {**site.env, "AICOMMONS_STORAGE_QUOTA_DEFAULT": "1MB"}
    subprocess.run([sys.executable, "-m", "aicommons.cli.main", "bundle", "import", str(org_bundle),
                    "--trusted-key", str(source_key)], env=roomy, capture_output=True, text=True, check=True)
    assert HfApi(endpoint=site.url).model_info(org_repo).sha
