"""Changing files from the site: upload files (``/{repo}/upload/{rev}``) and edit a text file, the card
first of all (``/{repo}/edit/{rev}/{path}``; a missing file is created). Both commit as the signed-in
user through the same ``CommitService`` as the API: a writer to the branch (or, ticking the box, to a
new pull request), anyone else who may contribute to a new pull request, as ``create_pr=1`` does. An
uploaded file the API would send by LFS (its size, ``.gitattributes``, binary bytes) is stored as an
LFS object first and committed as a pointer."""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from aicommons.errors import BadRequest, HubError, NotFound, PreconditionFailed
from aicommons.hub import content
from aicommons.hub.commits import AddFile, AddLfsFile, CommitRequest
from aicommons.hub.gitattributes import LfsRules, looks_binary
from aicommons.hub.names import check_file_path
from aicommons.hub.policy import Action
from aicommons.web.browse import MAX_PREVIEW, find_repo, path_param
from aicommons.web.context import hub_of, page_handler
from aicommons.web.render import page, repo_path

# What one upload from the page may carry in all (it is read into memory); larger files go by the
# CLI or huggingface_hub, which stream them.
MAX_WEB_UPLOAD_BYTES = 100 * 1024 * 1024
CARD_TEMPLATE = {
    "model": "---\nlicense: apache-2.0\n---\n\n# {name}\n\nWhat this model does, how it was trained, and how to use it.\n",
    "dataset": "---\nlicense: cc-by-4.0\n---\n\n# {name}\n\nWhat this dataset holds, where it comes from, and how to use it.\n",
    "space": "---\ntitle: {name}\nsdk: gradio\n---\n\n# {name}\n",
}


def _target(request: Request, revision: str):
    """The repo (for a contributor: may open a pull request), whether the caller may write to it, and
    the revision's git repo and commit."""
    hub = hub_of(request)
    principal = request.state.web.principal
    repo = find_repo(request)
    # (An anonymous visitor was sent to sign in.) One who may not read the files of a gated repo gets
    # the file pages' "not found".
    if not hub.policy.allows(principal, repo, Action.READ_CONTENT):
        raise NotFound("Ask for access to read the files of this repo")
    repo = hub.repos.find(repo.type, repo.full_id, principal, action=Action.CONTRIBUTE)
    git_repo, commit = hub.refs.resolve(repo, revision)
    return repo, hub.policy.allows(principal, repo, Action.WRITE), git_repo, commit


def _commit(request: Request, repo, can_write: bool, revision: str, commit_request: CommitRequest) -> str:
    """Commit to the branch, or to a new pull request (a contributor; a writer who asked): where to go next."""
    hub = hub_of(request)
    principal = request.state.web.principal
    base = repo_path(repo.type, repo.full_id)
    if can_write and request.state.web.form.get("pr") != "on":
        hub.commits.commit(repo, principal, revision, commit_request)
        return ""

    def opener(start_sha: str) -> str:
        pr = hub.discussions.open(repo, principal, commit_request.summary, commit_request.description,
                                  pull_request=True, base=revision, status="open", start_sha=start_sha)
        return f"refs/pr/{pr.num}"

    result = hub.commits.commit(repo, principal, revision, commit_request, open_pull_request=opener)
    return f"{base}/discussions/{result.ref.rsplit('/', 1)[1]}"


def _summary(form: dict, default: str) -> tuple[str, str]:
    return (form.get("summary") or "").strip() or default, (form.get("description") or "").strip()


@page_handler(sign_in=True, uploads=lambda settings: MAX_WEB_UPLOAD_BYTES)
def upload(request: Request) -> Response:
    hub = hub_of(request)
    revision = path_param(request, "rev", "main")
    folder = path_param(request, "path").strip("/")
    repo, can_write, git_repo, commit = _target(request, revision)
    base = repo_path(repo.type, repo.full_id)
    form = request.state.web.form
    error = None
    if request.method == "POST":
        folder = (form.get("folder") or "").strip().strip("/")
        files = request.state.web.uploads
        try:
            if not files:
                raise BadRequest("Choose one or more files to upload")
            rules = LfsRules(content.read_text(git_repo, commit, ".gitattributes"))
            paths = [check_file_path(f"{folder}/{name}" if folder else name) for _, name, _ in files]
            lfs = [len(data) >= hub.settings.lfs_threshold_bytes or rules.matches(path) or looks_binary(data[:512])
                   for path, (_, _, data) in zip(paths, files, strict=True)]
            hub.storage.check_upload(repo.owner_id, sum(len(d) for (_, _, d), big in zip(files, lfs, strict=True)
                                                        if big))
            operations: list = []
            for path, (_, _, data), big in zip(paths, files, lfs, strict=True):
                operations.append(AddLfsFile(path, hub.lfs.store_bytes(repo, data), len(data)) if big
                                  else AddFile(path, data))
            names = ", ".join(p.rsplit("/", 1)[-1] for p in paths)
            summary, description = _summary(form, f"Upload {names}" if len(paths) <= 3 else f"Upload {len(paths)} files")
            pull_request = _commit(request, repo, can_write, revision,
                                   CommitRequest(summary, description, form.get("parent") or None, tuple(operations)))
        except HubError as exc:
            error = exc.message
        else:
            target = pull_request or f"{base}/tree/{quote(revision, safe='')}" + (f"/{quote(folder)}" if folder else "")
            return RedirectResponse(target, status_code=303)
    return page(request, "upload.html", status=400 if error else 200, repo=repo, revision=revision, folder=folder,
                parent=str(commit.id), error=error, limit=MAX_WEB_UPLOAD_BYTES, form=form, can_write=can_write)


@page_handler(sign_in=True)
def edit(request: Request) -> Response:
    revision = path_param(request, "rev", "main")
    path = check_file_path(path_param(request, "path"))
    repo, can_write, git_repo, commit = _target(request, revision)
    base = repo_path(repo.type, repo.full_id)
    entry = content.get_entry(git_repo, commit, path)
    if entry is not None and (entry.type != "file" or entry.lfs is not None or entry.size > MAX_PREVIEW):
        raise BadRequest(f"{path} is not a text file this page can edit: upload a new version instead")
    text = None
    if entry is not None:
        try:
            text = content.read_blob(git_repo, entry.oid).decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest(f"{path} is not a text file this page can edit: upload a new version instead") from None
    elif path == "README.md":
        text = CARD_TEMPLATE[repo.type].format(name=repo.name)
    form = request.state.web.form
    error = None
    if request.method == "POST":
        new_text = (form.get("content") or "").replace("\r\n", "\n")
        verb = "Update" if entry is not None else "Create"
        summary, description = _summary(form, f"{verb} {path}")
        try:
            pull_request = _commit(request, repo, can_write, revision,
                                   CommitRequest(summary, description, form.get("parent") or None,
                                                 (AddFile(path, new_text.encode()),)))
        except PreconditionFailed:
            error = "Someone changed this branch since you opened the page: copy your text, reload, and apply it again."
            text = new_text
        except HubError as exc:
            error, text = exc.message, new_text
        else:
            target = pull_request or (base if path == "README.md" else
                                      f"{base}/blob/{quote(revision, safe='')}/{quote(path)}")
            return RedirectResponse(target, status_code=303)
    return page(request, "edit.html", status=400 if error else 200, repo=repo, revision=revision, path=path,
                text=text or "", exists=entry is not None, parent=str(commit.id), error=error, can_write=can_write)
