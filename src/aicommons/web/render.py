"""Templates and the small formatting helpers they use. Cards are rendered and sanitized by
``web/markup.py``, so a model card cannot inject script into the page."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse

from aicommons.hub.cards import CardError, split_card
from aicommons.hub.names import REPO_TYPE_PREFIX
from aicommons.times import utcnow
from aicommons.web.charts import bar_chart, line_chart
from aicommons.web.markup import RepoLinks, markdown_to_safe_html

env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
)


def card_html(readme: str | None, links: RepoLinks | None = None) -> str:
    """The README without its YAML front matter, as sanitized HTML; relative links and images point
    into the repo when ``links`` says where."""
    if not readme:
        return ""
    try:
        _, body = split_card(readme)
    except CardError:
        body = readme
    return markdown_to_safe_html(body, links)


def human_size(size: int | None) -> str:
    if size is None:
        return ""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"


_UNITS = (("year", 31536000), ("month", 2592000), ("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))


def ago(value: datetime | int | None) -> str:
    """"3 days ago" for a naive UTC datetime or a unix timestamp."""
    if value is None:
        return ""
    if isinstance(value, int):
        value = datetime.fromtimestamp(value, UTC).replace(tzinfo=None)
    seconds = max(0, (utcnow() - value).total_seconds())
    unit, length = next((u, n) for u, n in _UNITS if seconds >= n or n == 1)
    count = int(seconds // length)
    return f"{count} {unit}{'' if count == 1 else 's'} ago"


def repo_path(repo_type: str, full_id: str) -> str:
    return f"/{REPO_TYPE_PREFIX[repo_type]}{full_id}"


def seg(value: str) -> str:
    """One URL path segment: a revision such as ``refs/pr/1`` travels as ``refs%2Fpr%2F1`` (the
    routes read the raw path, api/middleware.py)."""
    return quote(str(value), safe="")


def pathq(value: str) -> str:
    """A file path in a URL: each segment quoted, the slashes kept."""
    return quote(str(value), safe="/")


env.filters.update(human_size=human_size, ago=ago, seg=seg, pathq=pathq)
env.globals.update(repo_path=repo_path, line_chart=line_chart, bar_chart=bar_chart)


def page(request: Request, template: str, status: int = 200, **context) -> HTMLResponse:
    web = request.state.web
    html = env.get_template(template).render(request=request, me=web.principal.account, csrf=web.csrf,
                                             **context)
    return HTMLResponse(html, status_code=status)
