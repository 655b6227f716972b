"""Signed bundles for air-gapped sites: repos carried on a disk, verified before they are visible.

A bundle is one tar file:

    manifest.json   what is inside: each repo (type, id, the revisions and their commits), the sha256
                    of its git bundle, and every large file (oid = sha256, size) its revisions point at
    manifest.sig    Ed25519 signature of manifest.json by the exporting hub's key
    repos/N.bundle  ``git bundle`` of repo N's chosen revisions (upstream commit ids kept)
    lfs/<oid>       each large file once

``import_bundle`` checks everything before anything is visible: the signature against the trusted
keys, then every member's sha256 against the manifest, then the git bundles with ``git bundle
verify``. Only then are files stored and refs moved, so a tampered, unsigned or foreign bundle
changes nothing. Importing is idempotent (what is already here is skipped) and incremental (a later
bundle of the same repo adds its revisions).

The owners' storage quotas are checked before anything is stored, as for an upload (the bytes are
reserved while the import runs); a bundle that would take any owner past its quota is refused
whole, unless the administrator passes ``--ignore-quota`` (docs/mirror.md).

The hub's signing key lives in ``<data>/bundle-signing-key.pem`` (0600), made on first use;
``public_key_pem`` is what a receiving site trusts (``aicommons bundle key``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import pygit2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from aicommons.db.accounts import AccountStore, AlreadyExists
from aicommons.db.repos import RepoRow, RepoStore
from aicommons.gitrepo import GitStore
from aicommons.hub import content
from aicommons.hub.lfs import LfsService
from aicommons.hub.names import check_repo_type
from aicommons.hub.private_files import write_private_file
from aicommons.hub.progress import SILENT, Progress
from aicommons.hub.reachability import pointers_in_tree, ref_targets
from aicommons.hub.storage_usage import StorageAccounting, StorageLimitReached, format_size
from aicommons.storage.keys import blob_key
from aicommons.times import iso_z, utcnow

if TYPE_CHECKING:
    from aicommons.hub.hub import Hub

FORMAT = "aicommons-bundle/1"
CHUNK = 1024 * 1024


class BundleError(Exception):
    """The bundle cannot be exported or must not be imported; the message says why."""


# --- keys -----------------------------------------------------------------------------------------


def signing_key(data_dir: Path) -> Ed25519PrivateKey:
    path = Path(data_dir) / "bundle-signing-key.pem"
    if not path.exists():
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        write_private_file(path, pem.decode())
    return serialization.load_pem_private_key(path.read_bytes(), password=None)


def public_key_pem(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def load_public_key(pem: bytes, where: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError as exc:
        raise BundleError(f"{where} is not a PEM public key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise BundleError(f"{where} is not an Ed25519 public key")
    return key


def model_signing_key_path(data_dir: Path) -> Path:
    """The hub's key for OpenSSF model signing (``model_signing``'s elliptic-key method takes an EC
    key, not Ed25519): ``<data>/model-signing-key.pem`` (0600), a P-256 key made on first use. Its
    public half travels in the signed manifest and is printed by ``aicommons bundle key --model-signing``."""
    from cryptography.hazmat.primitives.asymmetric import ec

    path = Path(data_dir) / "model-signing-key.pem"
    if not path.exists():
        pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        write_private_file(path, pem.decode())
    return path


def model_signing_public_pem(data_dir: Path) -> str:
    key = serialization.load_pem_private_key(model_signing_key_path(data_dir).read_bytes(), password=None)
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def fingerprint(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "sha256:" + hashlib.sha256(raw).hexdigest()


# --- export ---------------------------------------------------------------------------------------


@dataclass
class RepoRequest:
    repo: RepoRow
    revisions: list[str]


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _materialize(git_repo: pygit2.Repository, tree: pygit2.Tree, lfs: LfsService, into: Path) -> None:
    """The files of ``tree`` as a checkout would have them (large files with their content), for
    model signing. Symbolic links are left out (model_signing refuses them)."""
    pointers = dict(pointers_in_tree(git_repo, tree))

    def walk(node: pygit2.Tree, prefix: str) -> None:
        for entry in node:
            path = prefix + entry.name
            obj = git_repo[entry.id]
            if isinstance(obj, pygit2.Tree):
                walk(obj, path + "/")
            elif isinstance(obj, pygit2.Blob) and entry.filemode != pygit2.enums.FileMode.LINK:
                target = into / path
                target.parent.mkdir(parents=True, exist_ok=True)
                if path in pointers:
                    with _open_object(lfs, pointers[path].oid, pointers[path].size) as src, open(target, "wb") as out:
                        shutil.copyfileobj(src, out, CHUNK)
                else:
                    target.write_bytes(obj.data)

    walk(tree, "")


def _open_object(lfs: LfsService, oid: str, size: int) -> BinaryIO:
    """A large file's bytes: its whole-file blob, or the chunks of a Xet upload (hub/objects.py)."""
    stored = lfs.objects.size(oid) if lfs.objects is not None else lfs.blobs.size(blob_key(oid))
    if stored != size:
        raise BundleError(f"large file {oid} ({size} bytes) is not stored here: download or sync it first")
    return lfs.objects.open(oid) if lfs.objects is not None else lfs.blobs.open(blob_key(oid))


def _sign_model(git_repo: pygit2.Repository, tree: pygit2.Tree, lfs: LfsService, model_key: Path, work: Path,
                signature: Path) -> str:
    """An OpenSSF model-signing signature (a Sigstore bundle signed with the hub's EC key) of the
    revision's files, as ``model_signing verify key`` checks them against a checkout; its sha256."""
    import model_signing

    checkout = Path(tempfile.mkdtemp(dir=work, prefix="model-"))
    try:
        _materialize(git_repo, tree, lfs, checkout)
        model_signing.signing.Config().use_elliptic_key_signer(private_key=model_key).sign(checkout, signature)
    finally:
        shutil.rmtree(checkout, ignore_errors=True)
    return _sha256_file(signature)


def export_bundle(requests: list[RepoRequest], git: GitStore, lfs: LfsService, key: Ed25519PrivateKey,
                  output: Path, tmp_dir: Path, progress: Progress = SILENT, model_key: Path | None = None) -> dict:
    """With ``model_key``, every revision of a model repo also gets an OpenSSF model-signing
    signature in ``signatures/`` (named, with its sha256, in the signed manifest)."""
    tmp_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=tmp_dir, prefix="bundle-export-"))
    try:
        manifest = {"format": FORMAT, "created_at": iso_z(utcnow()), "signed_by": fingerprint(key.public_key()),
                    "repos": [], "files": {}}
        if model_key is not None:
            public = serialization.load_pem_private_key(model_key.read_bytes(), password=None).public_key()
            manifest["model_signing_key"] = public.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        (work / "repos").mkdir()
        (work / "lfs").mkdir()
        (work / "signatures").mkdir()
        for index, request in enumerate(requests):
            repo = request.repo
            git_repo = git.open(repo.storage_key)
            revisions, refs = {}, []
            for revision in request.revisions:
                commit = content.resolve_revision(git_repo, revision)
                revisions[revision] = str(commit.id)
                for _path, pointer in pointers_in_tree(git_repo, commit.tree):
                    manifest["files"][pointer.oid] = pointer.size
                refs.append(_ref_for(git_repo, revision))
            bundle = work / "repos" / f"{index}.bundle"
            proc = subprocess.run(["git", "--git-dir", str(git.path(repo.storage_key)), "bundle", "create", "--quiet",
                                   str(bundle), *sorted(set(refs))], capture_output=True, text=True)
            if proc.returncode != 0:
                raise BundleError(f"git bundle of {repo.full_id} failed: {proc.stderr.strip()}")
            entry = {"type": repo.type, "id": repo.full_id, "private": bool(repo.private), "revisions": revisions,
                     "git_bundle": f"repos/{index}.bundle", "git_bundle_sha256": _sha256_file(bundle)}
            if model_key is not None and repo.type == "model":
                entry["model_signatures"] = {}
                for number, (revision, sha) in enumerate(revisions.items()):
                    name = f"signatures/{index}-{number}.sig"
                    tree = git_repo[sha].peel(pygit2.Commit).tree
                    digest = _sign_model(git_repo, tree, lfs, model_key, work, work / name)
                    entry["model_signatures"][revision] = {"path": name, "sha256": digest}
            manifest["repos"].append(entry)
        progress.stage("large files", items=len(manifest["files"]), nbytes=sum(manifest["files"].values()))
        for oid, size in manifest["files"].items():
            with _open_object(lfs, oid, size) as src, open(work / "lfs" / oid, "wb") as out:
                shutil.copyfileobj(src, out, CHUNK)
            progress.advance(1, size)
        body = json.dumps(manifest, indent=2, sort_keys=True).encode()
        (work / "manifest.json").write_bytes(body)
        (work / "manifest.sig").write_text(base64.b64encode(key.sign(body)).decode() + "\n")
        partial = output.with_name(output.name + ".partial")
        with tarfile.open(partial, "w") as tar:
            for name in ("manifest.json", "manifest.sig"):
                tar.add(work / name, arcname=name)
            for folder in ("repos", "lfs", "signatures"):
                for path in sorted((work / folder).iterdir()):
                    tar.add(path, arcname=f"{folder}/{path.name}")
        os.replace(partial, output)  # a bundle file is whole or absent
        return {"output": str(output), "repos": len(manifest["repos"]), "files": len(manifest["files"]),
                "signed_by": manifest["signed_by"]}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _ref_for(git_repo: pygit2.Repository, revision: str) -> str:
    """The branch or tag a revision travels as (a bundle carries refs, so a bare commit id cannot)."""
    for prefix in ("refs/heads/", "refs/tags/"):
        if git_repo.references.get(prefix + revision) is not None:
            return prefix + revision
    raise BundleError(f"{revision!r} is not a branch or tag: bundles carry branches and tags")


# --- import ---------------------------------------------------------------------------------------


def _safe_members(tar: tarfile.TarFile) -> list[tarfile.TarInfo]:
    members = []
    for member in tar.getmembers():
        name = member.name
        if not member.isfile() or name.startswith("/") or ".." in name.split("/") or \
                not (name in ("manifest.json", "manifest.sig") or name.startswith(("repos/", "lfs/", "signatures/"))):
            raise BundleError(f"unexpected entry {name!r} in the bundle")
        members.append(member)
    return members


def verify_bundle(path: Path, trusted: list[Ed25519PublicKey], work: Path) -> dict:
    """Unpack into ``work`` and check everything; the manifest if the bundle may be imported."""
    if not trusted:
        raise BundleError("no trusted key: pass --trusted-key or set AICOMMONS_BUNDLE_TRUSTED_KEYS")
    try:
        with tarfile.open(path, "r:") as tar:
            members = _safe_members(tar)
            tar.extractall(work, members=members, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise BundleError(f"{path} is not a readable bundle: {exc}") from None
    body = (work / "manifest.json").read_bytes() if (work / "manifest.json").exists() else None
    signature = (work / "manifest.sig").read_text() if (work / "manifest.sig").exists() else None
    if body is None or signature is None:
        raise BundleError("the bundle is not signed (no manifest.json / manifest.sig)")
    try:
        raw_signature = base64.b64decode(signature.strip(), validate=True)
    except ValueError:
        raise BundleError("the bundle's signature is malformed") from None
    for key in trusted:
        try:
            key.verify(raw_signature, body)
            break
        except InvalidSignature:
            continue
    else:
        raise BundleError("the bundle's signature does not match any trusted key (tampered, or signed by a "
                          "hub you do not trust)")
    manifest = json.loads(body)
    if manifest.get("format") != FORMAT:
        raise BundleError(f"unknown bundle format {manifest.get('format')!r}")
    for oid, size in manifest["files"].items():
        file = work / "lfs" / oid
        if not file.is_file() or file.stat().st_size != size or _sha256_file(file) != oid:
            raise BundleError(f"large file {oid} in the bundle does not match its manifest entry")
    for entry in manifest["repos"]:
        check_repo_type(entry["type"])
        bundle = work / entry["git_bundle"]
        if not bundle.is_file() or _sha256_file(bundle) != entry["git_bundle_sha256"]:
            raise BundleError(f"the git data of {entry['id']} does not match its manifest entry")
        for revision, signed in (entry.get("model_signatures") or {}).items():
            sig = work / signed["path"]
            if not signed["path"].startswith("signatures/") or not sig.is_file() or _sha256_file(sig) != signed["sha256"]:
                raise BundleError(f"the model signature of {entry['id']}@{revision} does not match its manifest entry")
    return manifest


class BundleImporter:
    def __init__(self, repo_store: RepoStore, accounts: AccountStore, git: GitStore, lfs: LfsService,
                 after_ref_update, quota: StorageAccounting | None = None):
        self.repo_store, self.accounts, self.git, self.lfs = repo_store, accounts, git, lfs
        self.after_ref_update = after_ref_update
        # The storage quota (hub/storage_usage.py), checked before anything is stored; None: not checked
        # (``aicommons bundle import --ignore-quota``).
        self.quota = quota

    def import_bundle(self, path: Path, trusted: list[Ed25519PublicKey], tmp_dir: Path,
                      progress: Progress = SILENT) -> dict:
        tmp_dir.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(dir=tmp_dir, prefix="bundle-import-"))
        reservations: list[int | None] = []
        try:
            manifest = verify_bundle(Path(path), trusted, work)
            for entry in manifest["repos"]:
                verify = subprocess.run(["git", "bundle", "list-heads", str(work / entry["git_bundle"])],
                                        capture_output=True, text=True)
                if verify.returncode != 0:
                    raise BundleError(f"the git data of {entry['id']} is not a git bundle: {verify.stderr.strip()}")
            if self.quota is not None:
                reservations = self._reserve(self._incoming(manifest, work))
            progress.stage("large files", items=len(manifest["files"]), nbytes=sum(manifest["files"].values()))
            for oid, size in manifest["files"].items():  # content-addressed: harmless before the refs
                if self.lfs.blobs.size(blob_key(oid)) != size:
                    staged = work / f"stage-{oid}"
                    os.link(work / "lfs" / oid, staged)
                    self.lfs.blobs.put_file(blob_key(oid), staged)
                progress.advance(1, size)
            imported = []
            for entry in manifest["repos"]:
                imported.append(self._import_repo(entry, work / entry["git_bundle"], manifest["files"]))
            return {"repos": imported, "files": len(manifest["files"]), "signed_by": manifest["signed_by"]}
        finally:
            if self.quota is not None:  # the imported bytes now count as the repos' own (live usage)
                for reservation in reservations:
                    self.quota.release_upload(reservation)
            shutil.rmtree(work, ignore_errors=True)

    # --- the storage quota ----------------------------------------------------------------------

    def _incoming(self, manifest: dict, work: Path) -> dict[str, int]:
        """Owner name -> the bytes the import adds to its live usage (what the quota counts): every
        large file a carried revision names that the repo does not hold yet (once per repo), and the
        git bundle's size for a repo that does not have all the carried commits yet. Read from a
        scratch copy of each git bundle, so nothing here is written before the check."""
        incoming: dict[str, int] = {}
        for index, entry in enumerate(manifest["repos"]):
            scratch = work / f"quota-{index}.git"
            pygit2.init_repository(str(scratch), bare=True)
            proc = subprocess.run(["git", "--git-dir", str(scratch), "fetch", "--quiet", str(work / entry["git_bundle"]),
                                   "refs/heads/*:refs/heads/*", "refs/tags/*:refs/tags/*"],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                raise BundleError(f"the git data of {entry['id']} cannot be read: {proc.stderr.strip()[-300:]}")
            scratch_repo = pygit2.Repository(str(scratch))
            repo = self.repo_store.get(entry["type"], entry["id"])
            here = self.git.open(repo.storage_key) if repo is not None else None
            files: dict[str, int] = {}
            for sha in entry["revisions"].values():
                try:
                    tree = scratch_repo[sha].peel(pygit2.Commit).tree
                except (KeyError, ValueError) as exc:
                    raise BundleError(f"the git data of {entry['id']} lacks its revision {sha}: {exc}") from None
                files.update({p.oid: p.size for _path, p in pointers_in_tree(scratch_repo, tree)})
            new = sum(size for oid, size in files.items()
                      if repo is None or self.lfs.repos.repo_lfs_size(repo.id, oid) is None)
            if here is None or any(sha not in here for sha in entry["revisions"].values()):
                new += (work / entry["git_bundle"]).stat().st_size
            namespace = entry["id"].split("/")[0]
            incoming[namespace] = incoming.get(namespace, 0) + new
            shutil.rmtree(scratch, ignore_errors=True)
        return incoming

    def _reserve(self, incoming: dict[str, int]) -> list[int | None]:
        """Hold each owner's incoming bytes against its quota (as an upload does, so parallel uploads
        cannot pass it meanwhile), or release them all and refuse the whole bundle."""
        assert self.quota is not None
        held: list[int | None] = []
        try:
            for namespace, size in sorted(incoming.items()):
                owner = self.accounts.get(namespace)
                if owner is not None:
                    held.append(self.quota.reserve_upload(owner.id, size))
                elif self.quota.default_quota is not None and size > self.quota.default_quota:
                    # A namespace the import creates gets the default quota, like any new organisation.
                    raise StorageLimitReached(
                        f"Storage limit reached for {namespace}: the bundle needs {format_size(size)} and a new "
                        f"owner's quota (AICOMMONS_STORAGE_QUOTA_DEFAULT) is {format_size(self.quota.default_quota)}")
        except StorageLimitReached as exc:
            for reservation in held:
                self.quota.release_upload(reservation)
            raise BundleError(f"{exc.message} To import the bundle anyway: raise the quota (`aicommons storage "
                              "quota set OWNER SIZE`), or pass --ignore-quota") from None
        return held

    def _import_repo(self, entry: dict, bundle: Path, files: dict) -> dict:
        repo_type, full_id = entry["type"], entry["id"]
        repo = self.repo_store.get(repo_type, full_id)
        created = repo is None
        storage_key = repo.storage_key if repo else secrets.token_hex(16)
        if created:
            self.git.init(storage_key)
        before = ref_targets(self.git.open(storage_key))
        proc = subprocess.run(["git", "--git-dir", str(self.git.path(storage_key)), "fetch", "--quiet", str(bundle),
                               "refs/heads/*:refs/heads/*", "refs/tags/*:refs/tags/*"], capture_output=True, text=True)
        if proc.returncode != 0:
            if created:
                self.git.delete(storage_key)
            raise BundleError(f"importing the history of {full_id} failed (a branch here moved apart from the "
                              f"bundle's?): {proc.stderr.strip()[-300:]}")
        if created:
            namespace, name = full_id.split("/")
            owner = self.accounts.get(namespace)
            if owner is None:
                try:
                    owner = self.accounts.create(namespace, "org", fullname=namespace)
                except AlreadyExists:
                    owner = self.accounts.get(namespace)
            repo = self.repo_store.create(type=repo_type, namespace=namespace, name=name, owner_id=owner.id,
                                          storage_key=storage_key, private=bool(entry.get("private", True)),
                                          now=utcnow())
        git_repo = self.git.open(storage_key)
        for sha in entry["revisions"].values():
            for _path, pointer in pointers_in_tree(git_repo, git_repo[sha].peel(pygit2.Commit).tree):
                self.lfs.repos.add_lfs_object(repo.id, pointer.oid, pointer.size, utcnow())
        after = ref_targets(git_repo)
        for ref in sorted(set(before) | set(after), key=lambda r: r == "refs/heads/main"):
            if before.get(ref) != after.get(ref):
                self.after_ref_update(repo, ref, after.get(ref))
        return {"id": full_id, "type": repo_type, "created": created, "revisions": entry["revisions"]}


class BundleService:
    """Bundles as the hub offers them (``aicommons bundle``): its key, export, import."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    @property
    def key(self) -> Ed25519PrivateKey:
        return signing_key(self.hub.settings.data_dir)

    def public_key_pem(self) -> str:
        return public_key_pem(self.key)

    def trusted_keys(self, extra_files: list[str]) -> list[Ed25519PublicKey]:
        paths = [p for p in self.hub.settings.bundle_trusted_keys.split(",") if p.strip()] + list(extra_files)
        keys = []
        for p in paths:
            try:
                keys.append(load_public_key(Path(p.strip()).read_bytes(), p.strip()))
            except OSError as exc:
                raise BundleError(f"cannot read the trusted key {p.strip()}: {exc}") from None
        return keys

    def export(self, specs: list[tuple[str, str, list[str]]], output: Path, progress: Progress = SILENT) -> dict:
        """``specs``: (repo type, repo id, revisions) — revisions are branches or tags (default main)."""
        requests = []
        for repo_type, full_id, revisions in specs:
            repo = self.hub.repo_store.get(check_repo_type(repo_type), full_id)
            if repo is None:
                raise BundleError(f"no {repo_type} {full_id} here")
            requests.append(RepoRequest(repo, revisions or ["main"]))
        try:
            import model_signing  # noqa: F401 - the [signing] extra
            model_key: Path | None = model_signing_key_path(self.hub.settings.data_dir)
        except ImportError:
            raise BundleError("model signing needs the model-signing package: pip install 'aicommons[signing]'") \
                from None
        return export_bundle(requests, self.hub.git, self.hub.lfs, self.key, Path(output), self.hub.settings.tmp_dir,
                             progress, model_key)

    def model_signing_public_pem(self) -> str:
        return model_signing_public_pem(self.hub.settings.data_dir)

    def import_(self, path: Path, trusted_files: list[str], progress: Progress = SILENT,
                ignore_quota: bool = False) -> dict:
        """``ignore_quota``: the administrator's override (``--ignore-quota``); the imported bytes
        still count against the owner's quota afterwards."""
        importer = BundleImporter(self.hub.repo_store, self.hub.accounts.store, self.hub.git, self.hub.lfs,
                                  self.hub.repos.after_ref_update, None if ignore_quota else self.hub.storage)
        return importer.import_bundle(Path(path), self.trusted_keys(trusted_files), self.hub.settings.tmp_dir, progress)
