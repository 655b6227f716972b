"""One search across the hub: models, datasets, spaces, users and organisations (the header's box).

Repos come from the same query as the listing pages (``RepoService.search``: only what the visitor
may see); people and organisations from ``AccountService.find_public`` (names and full names, never
e-mail addresses; suspended and pending accounts are not found)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from aicommons.hub.repos import RepoQuery
from aicommons.web.context import hub_of, page_handler
from aicommons.web.render import page

PER_SECTION = 8


@page_handler
def search(request: Request) -> Response:
    text = request.query_params.get("q", "").strip()[:200]
    hub, principal = hub_of(request), request.state.web.principal
    sections: list[dict] = []
    users: list = []
    orgs: list = []
    found = 0
    if text:
        for repo_type, plural in (("model", "models"), ("dataset", "datasets"), ("space", "spaces")):
            rows, more = hub.repos.search(principal, RepoQuery(type=repo_type, search=text, sort="downloads",
                                                               limit=PER_SECTION))
            sections.append({"type": repo_type, "plural": plural, "rows": rows, "more": more})
            found += len(rows)
        users, orgs = hub.accounts.find_public(text, PER_SECTION)
        found += len(users) + len(orgs)
    return page(request, "search.html", q=text, sections=sections, users=users, orgs=orgs, found=found)
