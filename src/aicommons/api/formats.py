"""JSON shapes of the Hub API (what huggingface_hub parses): repo info, tree entries, commits."""

from __future__ import annotations

from aicommons.gitrepo.store import CommitInfo
from aicommons.hub.cards import Card, as_list
from aicommons.hub.content import Entry
from aicommons.hub.names import REPO_TYPE_PREFIX
from aicommons.hub.repos import RepoHead, RepoRow
from aicommons.times import iso_z as format_date
from aicommons.times import iso_z_from_timestamp as format_timestamp

# The ``expand=`` values of each repo type: huggingface_hub's ``Expand*Property_T`` literals (2.4) and
# ``securityRepoStatus``. Any other value is refused with a 400, as the Hub does (api/repos.py,
# ``expand_of``). A value the hub has no data for is accepted and its key left out (the client reads
# None): for models ``evalResults``, ``inference``, ``inferenceProviderMapping``, ``mask_token``,
# ``resourceGroup``, ``widgetData``; for datasets ``citation``, ``description``, ``mainSize``,
# ``paperswithcode_id``, ``resourceGroup``; for spaces ``region``, ``resourceGroup``.
COMMON_EXPAND = {"author", "cardData", "createdAt", "disabled", "gated", "lastModified", "likes", "private", "sha",
                 "siblings", "tags", "trendingScore", "usedStorage", "resourceGroup", "securityRepoStatus"}
MODEL_EXPAND = COMMON_EXPAND | {"downloads", "downloadsAllTime", "library_name", "pipeline_tag", "config", "spaces",
                                "safetensors", "transformersInfo", "baseModels", "childrenModelCount", "gguf",
                                "evalResults", "mask_token", "widgetData", "model-index", "inference",
                                "inferenceProviderMapping"}
DATASET_EXPAND = COMMON_EXPAND | {"downloads", "downloadsAllTime", "citation", "description", "mainSize",
                                  "paperswithcode_id"}
SPACE_EXPAND = COMMON_EXPAND | {"datasets", "models", "region", "runtime", "sdk", "subdomain"}
EXPAND = {"model": MODEL_EXPAND, "dataset": DATASET_EXPAND, "space": SPACE_EXPAND}

# Read from the model's files (hub/model_metadata.py), not from the stored head.
MODEL_METADATA_FIELDS = ("safetensors", "gguf", "config", "transformersInfo", "baseModels")


def repo_url(public_url: str, repo: RepoRow) -> str:
    return f"{public_url}/{REPO_TYPE_PREFIX[repo.type]}{repo.full_id}"


def tree_entry(entry: Entry, last_commit: CommitInfo | None = None, xet_hash: str | None = None,
               security: dict | None = None) -> dict:
    """``xet_hash``: the file's Xet hash when its object was uploaded through Xet; clients then
    download it through Xet without a HEAD first (spec §8.4). ``security``: its scan status. A
    ``damaged`` entry (its git object cannot be read back) says so, with size 0 and no ``lfs``."""
    out: dict = {"type": entry.type, "oid": entry.oid, "size": entry.size, "path": entry.path}
    if entry.damaged:
        out["damaged"] = True
    if entry.lfs is not None:
        out["lfs"] = {"oid": entry.lfs.oid, "size": entry.lfs.size, "pointerSize": entry.lfs.pointer_size}
    if xet_hash is not None:
        out["xetHash"] = xet_hash
    if last_commit is not None:
        out["lastCommit"] = {"id": last_commit.id, "title": last_commit.title,
                             "date": format_timestamp(last_commit.timestamp)}
    if security is not None:
        out["securityFileStatus"] = security
    return out


def commit_json(info: CommitInfo, formatted: bool = False) -> dict:
    body = info.message.split("\n", 1)[1].strip() if "\n" in info.message.strip() else ""
    out = {
        "id": info.id,
        "authors": [{"user": info.author_name, "avatar": None}],
        "date": format_timestamp(info.timestamp),
        "title": info.title,
        "message": body,
    }
    if formatted:
        out["formatted"] = {"title": info.title, "message": body}
    return out


def sibling_from_row(row: list, blobs: bool) -> dict:
    """A sibling from a stored head row ``[path, size, blob id, lfs sha256, pointer size]``."""
    out: dict = {"rfilename": row[0]}
    if blobs:
        out["size"] = row[1]
        out["blobId"] = row[2]
        if row[3] is not None:
            out["lfs"] = {"sha256": row[3], "size": row[1], "pointerSize": row[4]}
    return out


def repo_info(repo: RepoRow, card: Card, head: RepoHead, *, blobs: bool = False,
              with_siblings: bool = True, expand: list[str] | None = None, used_storage: int | None = None) -> dict:
    """``GET /api/{types}/{id}[/revision/{rev}]`` and the ``full`` listing entries, from a commit's
    card and files (``RepoService.describe`` / ``heads``: stored, not walked, for the head of main)."""
    info: dict = {
        "_id": f"{repo.id:024x}",
        "id": repo.full_id,
        "author": repo.namespace,
        "sha": head.sha,
        "lastModified": format_date(repo.last_modified),
        "createdAt": format_date(repo.created_at),
        "private": repo.private,
        "gated": repo.gated or False,
        "disabled": repo.disabled,
        "downloads": repo.downloads,
        "downloadsAllTime": repo.downloads,
        "likes": repo.likes,
        "tags": list(card.tags),
    }
    if repo.type == "model":
        info["modelId"] = repo.full_id
        if card.library_name:
            info["library_name"] = card.library_name
        if card.pipeline_tag:
            info["pipeline_tag"] = card.pipeline_tag
    if card.data is not None:
        info["cardData"] = card.data
        if repo.type == "model" and "model-index" in card.data:
            info["model-index"] = card.data["model-index"]
    if repo.type == "space":  # what its card says it runs on and uses (``sdk``, ``models``, ``datasets``)
        data = card.data or {}
        if isinstance(data.get("sdk"), str):
            info["sdk"] = data["sdk"]
        for key in ("models", "datasets"):
            if names := as_list(data.get(key)):
                info[key] = names
    if with_siblings or (expand and "siblings" in expand) or blobs:
        info["siblings"] = [sibling_from_row(row, blobs) for row in head.siblings]
    if blobs or (expand and "usedStorage" in expand):
        # The repo's logical bytes (git folder + every LFS object of its history) as the storage
        # accounting job last measured them (hub/storage_usage.py); before its first run, the files of the head.
        info["usedStorage"] = used_storage if used_storage is not None else head.used_storage
    if expand and "trendingScore" in expand:  # recent downloads and likes, decayed (hub/listings.py)
        info["trendingScore"] = round(repo.trending_score / 1000)
    if expand:
        keep = set(expand) | {"_id", "id"}
        info = {k: v for k, v in info.items() if k in keep}
    return info


def already_created(repo: RepoRow) -> str:
    """The Hub's 409 text for a repo that exists (scripts match it: "You already created this model repo")."""
    return f"You already created this {repo.type} repo"


def listing_entry(repo: RepoRow) -> dict:
    """A repo in ``GET /api/models`` without ``full``: from the database only, no git access."""
    out = {
        "_id": f"{repo.id:024x}",
        "id": repo.full_id,
        "author": repo.namespace,
        "private": repo.private,
        "gated": repo.gated or False,
        "downloads": repo.downloads,
        "likes": repo.likes,
        "tags": repo.tags,
        "createdAt": format_date(repo.created_at),
        "lastModified": format_date(repo.last_modified),
    }
    if repo.type == "model":
        out["modelId"] = repo.full_id
        if repo.library_name:
            out["library_name"] = repo.library_name
        if repo.pipeline_tag:
            out["pipeline_tag"] = repo.pipeline_tag
    return out
