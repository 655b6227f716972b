"""Untrusted text to safe HTML: model cards (Markdown with the HTML real cards use) and code.

Cards are rendered by markdown-it with raw HTML allowed, then everything goes through an allow-list
sanitizer (nh3, the Rust ``ammonia``): what real cards use stays — images, centring (``align``),
``<details>``, tables, ``<sup>``/``<sub>``, badges, links — and everything active goes: scripts,
event handlers, ``style``, forms, frames, ``javascript:`` URLs. ``class`` survives only with the
code highlighter's own names, so a card cannot dress itself as the site's notices. Relative links
and images are resolved against the repo (``blob``/``resolve`` at the card's revision), as on the
Hub. Fenced code blocks and text files are highlighted by Pygments into ``hl-*`` classes that the
stylesheet colours for both themes.
"""

from __future__ import annotations

import posixpath
import re
from urllib.parse import quote, urlsplit

import nh3
from markdown_it import MarkdownIt
from pygments import highlight as pygments_highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name, guess_lexer_for_filename
from pygments.util import ClassNotFound

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "center", "code", "dd", "del", "details", "div", "dl", "dt",
    "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "mark",
    "ol", "p", "picture", "pre", "q", "s", "samp", "small", "source", "span", "strike", "strong", "sub", "summary",
    "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "tt", "u", "ul", "var",
}
_ALIGN = {"align"}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title", "name", "id"},
    "img": {"src", "alt", "title", "width", "height", "align", "loading"},
    "source": {"srcset", "media", "type"},
    "details": {"open"},
    "td": {"align", "colspan", "rowspan"}, "th": {"align", "colspan", "rowspan", "scope"},
    "ol": {"start", "type"},
    "p": _ALIGN, "div": _ALIGN, "h1": _ALIGN, "h2": _ALIGN, "h3": _ALIGN, "h4": _ALIGN, "h5": _ALIGN, "h6": _ALIGN,
    "table": _ALIGN, "tr": _ALIGN,
    "code": {"class"}, "span": {"class"}, "pre": {"class"},
}
URL_SCHEMES = {"http", "https", "mailto"}
_CLASS_RE = re.compile(r"^(hl|hl-[a-z0-9]{1,4}|language-[A-Za-z0-9_+-]{1,32})$")
_CODE_MAX = 200_000  # characters highlighted; longer blocks are shown plain

_formatter = HtmlFormatter(nowrap=True, classprefix="hl-")


def _highlight_code(code: str, lang: str, _attrs=None) -> str:
    """markdown-it's ``highlight`` hook: a highlighted ``<pre>`` for known languages, else "" (plain)."""
    if not lang or len(code) > _CODE_MAX:
        return ""
    try:
        lexer = get_lexer_by_name(lang.split()[0], stripnl=False)
    except ClassNotFound:
        return ""
    spans = pygments_highlight(code, lexer, _formatter)
    return f'<pre class="hl"><code class="language-{_safe_lang(lang)}">{spans}</code></pre>\n'


def _safe_lang(lang: str) -> str:
    return re.sub(r"[^A-Za-z0-9_+-]", "", lang.split()[0])[:32] or "text"


_md = MarkdownIt("commonmark", {"html": True, "linkify": False, "highlight": _highlight_code}).enable("table") \
    .enable("strikethrough")


def highlight_file(path: str, text: str) -> str | None:
    """A text file as highlighted HTML (spans only, escaped), or None when no lexer knows it."""
    if len(text) > _CODE_MAX:
        return None
    try:
        lexer = guess_lexer_for_filename(path, text[:4096], stripnl=False)
    except ClassNotFound:
        return None
    return pygments_highlight(text, lexer, _formatter)


class RepoLinks:
    """Where a card's relative links and images point: files of the repo at one revision."""

    def __init__(self, repo_base: str, revision: str):
        self.repo_base = repo_base.rstrip("/")
        self.revision = quote(revision, safe="")

    def resolve(self, url: str, kind: str) -> str | None:
        """``kind`` is "blob" (a link) or "resolve" (an image). Absolute URLs and anchors pass through."""
        parts = urlsplit(url)
        if parts.scheme or parts.netloc or url.startswith(("/", "#", "?")):
            return url
        path = posixpath.normpath(parts.path)
        if path in (".", "") or path.startswith(".."):
            return None
        suffix = (f"?{parts.query}" if parts.query else "") + (f"#{parts.fragment}" if parts.fragment else "")
        return f"{self.repo_base}/{kind}/{self.revision}/{quote(path)}{suffix}"


def sanitize(html: str, links: RepoLinks | None = None) -> str:
    def keep(tag: str, attribute: str, value: str) -> str | None:
        if attribute == "class":
            kept = [c for c in value.split() if _CLASS_RE.match(c)]
            return " ".join(kept) or None
        if links is not None and (tag, attribute) in (("a", "href"), ("img", "src")):
            return links.resolve(value, "blob" if tag == "a" else "resolve")
        return value

    return nh3.clean(html, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES, url_schemes=URL_SCHEMES,
                     link_rel="noopener noreferrer nofollow ugc", strip_comments=True, attribute_filter=keep,
                     id_prefix="user-content-",
                     # Wide code and tables scroll inside their box: reachable by keyboard too.
                     set_tag_attribute_values={"pre": {"tabindex": "0"}, "table": {"tabindex": "0"}})


def markdown_to_safe_html(markdown: str, links: RepoLinks | None = None) -> str:
    return sanitize(_md.render(markdown), links)
