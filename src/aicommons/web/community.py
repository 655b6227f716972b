"""Discussions pages, likes, and asking for access to gated repos."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from aicommons.errors import BadRequest, NotFound
from aicommons.hub.gating import gate_form
from aicommons.hub.policy import Action
from aicommons.web.browse import _repo_context, find_repo, path_param
from aicommons.web.context import hub_of, page_handler
from aicommons.web.render import page, repo_path


def _num(request: Request) -> int:
    raw = path_param(request, "num")
    if not raw.isdigit():
        raise BadRequest("Invalid discussion number")
    return int(raw)




@page_handler
def discussions(request: Request) -> Response:
    ctx = _repo_context(request)
    rows, _ = hub_of(request).discussions.page(ctx["repo"], limit=100)
    return page(request, "repo.html", tab="discussions", discussions=rows, **ctx)


@page_handler(sign_in=True)
def new_discussion(request: Request) -> Response:
    repo = find_repo(request)
    form = request.state.web.form
    d = hub_of(request).discussions.open(repo, request.state.web.principal, form.get("title", ""),
                                         form.get("description", "").replace("\r\n", "\n"), pull_request=False)
    return RedirectResponse(f"{repo_path(repo.type, repo.full_id)}/discussions/{d.num}", status_code=303)


@page_handler
def discussion(request: Request) -> Response:
    ctx = _repo_context(request)
    hub = hub_of(request)
    d = hub.discussions.get(ctx["repo"], _num(request))
    events = hub.discussions.events(d)
    # The diff is not part of the page: the browser fetches it (bounded, cached) when it is opened.
    diff_url = f"{repo_path(ctx['repo'].type, ctx['repo'].full_id)}/discussions/{d.num}/diff" \
        if d.is_pull_request and ctx["can_read_files"] else None
    return page(request, "repo.html", tab="discussion", discussion=d, events=events, diff_url=diff_url, **ctx)


@page_handler
def discussion_diff(request: Request) -> Response:
    """A pull request's diff as text (``hub/pr_diffs.py``: capped per file and in total), for the
    discussion page to load lazily; the same access as the files (``READ_CONTENT``)."""
    hub = hub_of(request)
    repo = find_repo(request)
    if not hub.policy.allows(request.state.web.principal, repo, Action.READ_CONTENT):
        raise NotFound("Ask for access to read the files of this repo")  # as the file pages answer
    d = hub.discussions.get(repo, _num(request))
    if not d.is_pull_request:
        raise NotFound(f"Discussion {d.num} is not a pull request")
    return PlainTextResponse(hub.discussions.diff(repo, d), headers={"Cache-Control": "private, no-cache",
                                                                     "X-Content-Type-Options": "nosniff"})


@page_handler(sign_in=True)
def comment(request: Request) -> Response:
    """A comment; with ``action`` (the form's other buttons) close or reopen the discussion, or merge
    the pull request, the comment (optional then) going with it. The hub decides who may."""
    repo = find_repo(request)
    num = _num(request)
    principal, form = request.state.web.principal, request.state.web.form
    discussions = hub_of(request).discussions
    comment = (form.get("comment") or "").replace("\r\n", "\n")  # a textarea sends CRLF; clients send LF
    action, text = form.get("action"), comment.strip() or None
    if action == "merge":
        discussions.merge(repo, principal, num, text)
    elif action in ("close", "reopen"):
        discussions.change_status(repo, principal, num, "closed" if action == "close" else "open", text)
    else:
        discussions.comment(repo, principal, num, comment)
    return RedirectResponse(f"{repo_path(repo.type, repo.full_id)}/discussions/{num}", status_code=303)


@page_handler(sign_in=True)
def like(request: Request) -> Response:
    repo = find_repo(request, Action.PARTICIPATE)
    hub_of(request).likes.set(request.state.web.principal, repo, request.state.web.form.get("like") == "1")
    return RedirectResponse(repo_path(repo.type, repo.full_id), status_code=303)


@page_handler(sign_in=True)
def ask_access(request: Request) -> Response:
    ctx = _repo_context(request)  # the card at main: its access form says which answers to keep
    repo, form = ctx["repo"], request.state.web.form
    answers = gate_form(ctx["card"].data).answers(form)
    hub_of(request).gating.ask(repo, request.state.web.principal, answers)
    return RedirectResponse(repo_path(repo.type, repo.full_id), status_code=303)
