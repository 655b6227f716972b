"""Untrusted text to safe HTML: model cards (Markdown with the HTML real cards use) and code.

Cards are rendered by markdown-it with raw HTML allowed, then everything goes through an allow-list
sanitizer (nh3, the Rust ``ammonia``): what real cards use stays — images, centring (``align``),
``<details>``, tables, ``<sup>``/``<sub>``, badges, links — and everything active goes: scripts,
event handlers, ``style``, forms, frames, ``javascript:`` URLs. ``class`` survives only with the
code highlighter's own names, so a card cannot dress itself as the site's notices. Relative links
and images are resolved against the repo (``blob``/``resolve`` at the card's revision), as on the
Hub. Fenced code blocks and text files are highlighted by Pygments into ``hl-*`` classes that the
stylesheet colours for both themes. Math (``$...$`` inline, ``$$...$$`` display) is converted on
the server by latex2mathml into MathML, which browsers render without JavaScript. Each formula is
sanitized on its own with an allow-list of MathML presentation elements and their layout attributes
(no ``href``, no ``annotation-xml``, ``maction`` or ``mglyph``, no colours), and a card's own HTML
never gets MathML through: raw ``<math>`` in a card is dropped like ``<svg>``.
"""

from __future__ import annotations

import posixpath
import re
import secrets
from html import escape
from urllib.parse import quote, unquote, urlsplit

import nh3
from latex2mathml.converter import convert as latex_to_mathml
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
# MathML from latex2mathml: presentation elements and the attributes that lay them out.
MATH_TAGS = {
    "math", "mi", "mn", "mo", "ms", "mspace", "mtext", "mrow", "mfrac", "msqrt", "mroot", "mstyle", "merror",
    "mpadded", "mphantom", "menclose", "msub", "msup", "msubsup", "munder", "mover", "munderover", "mmultiscripts",
    "mprescripts", "none", "mtable", "mtr", "mtd", "semantics",
}
_MATH_COMMON = {"mathvariant", "displaystyle", "scriptlevel"}
MATH_ATTRIBUTES = {tag: set(_MATH_COMMON) for tag in MATH_TAGS}
for _tag, _extra in {
    "math": {"display", "xmlns"},
    "mo": {"stretchy", "fence", "separator", "lspace", "rspace", "form", "largeop", "movablelimits", "accent",
           "minsize", "maxsize", "symmetric"},
    "mspace": {"width", "height", "depth", "linebreak"}, "mpadded": {"width", "height", "depth", "lspace", "voffset"},
    "mfrac": {"linethickness", "bevelled"}, "menclose": {"notation"}, "mover": {"accent"}, "munder": {"accentunder"},
    "munderover": {"accent", "accentunder"},
    "mtable": {"columnalign", "rowalign", "columnspacing", "rowspacing", "columnlines", "rowlines", "frame"},
    "mtr": {"columnalign", "rowalign"}, "mtd": {"columnalign", "rowalign", "columnspan", "rowspan"},
}.items():
    MATH_ATTRIBUTES[_tag] |= _extra
MATH_MAX = 2_000  # characters of one formula; a longer one is shown as its source
MATH_PER_CARD = 500  # formulas converted per card; the rest are shown as their source
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


def _math_inline(state, silent: bool) -> bool:
    """``$x$`` and ``$$x$$`` inside a paragraph. As in pandoc, a single ``$`` opens only before a
    non-space and closes only after one and not before a digit, so "$5 and $10" stays text, and
    never across a backtick. Code
    spans and backslash escapes (``\\$``) are taken by their own rules first."""
    src, start = state.src, state.pos
    if src[start] != "$":
        return False
    delim = "$$" if src.startswith("$$", start) else "$"
    end = src.find(delim, start + len(delim))
    while end != -1 and src[end - 1] == "\\":
        end = src.find(delim, end + 1)
    if end == -1:
        return False
    body = src[start + len(delim):end]
    if not body.strip():
        return False
    if delim == "$" and (body[0].isspace() or body[-1].isspace() or src[end + 1:end + 2].isdigit() or "`" in body):
        return False
    if not silent:
        token = state.push("math_inline" if delim == "$" else "math_block", "math", 0)
        token.content, token.markup = body, delim
    state.pos = end + len(delim)
    return True


def _math_block(state, start_line: int, end_line: int, silent: bool) -> bool:
    """A ``$$`` … ``$$`` block on lines of its own (Markdown inside it is not parsed)."""
    begin = state.bMarks[start_line] + state.tShift[start_line]
    first = state.src[begin:state.eMarks[start_line]].strip()
    if not first.startswith("$$") or state.sCount[start_line] - state.blkIndent >= 4:
        return False
    if len(first) > 4 and first.endswith("$$"):  # $$ x $$ on one line
        body, last = first[2:-2], start_line
    else:
        lines, last = [first[2:]], start_line + 1
        while last < end_line:
            text = state.src[state.bMarks[last] + state.tShift[last]:state.eMarks[last]].rstrip()
            if text.endswith("$$"):
                lines.append(text[:-2])
                break
            lines.append(text)
            last += 1
        else:
            return False
        body = "\n".join(lines)
    if not body.strip():
        return False
    if not silent:
        token = state.push("math_block", "math", 0)
        token.content, token.markup, token.block = body, "$$", True
        token.map = [start_line, last + 1]
    state.line = last + 1
    return True


def _render_math(_renderer, tokens, idx: int, _options, env) -> str:
    """A formula as a text marker that only this render knows (``env["nonce"]``); the sanitized
    MathML replaces it after the card's own HTML is sanitized (``markdown_to_safe_html``)."""
    token = tokens[idx]
    formulas = env.setdefault("formulas", [])
    source = token.content.strip()
    try:
        if len(source) > MATH_MAX or len(formulas) >= MATH_PER_CARD:
            raise ValueError("too long")
        mathml = latex_to_mathml(source, display="block" if token.type == "math_block" else "inline")
        html = nh3.clean(mathml, tags=MATH_TAGS, attributes=MATH_ATTRIBUTES, url_schemes=set(), strip_comments=True)
    except Exception:  # noqa: BLE001 - any formula latex2mathml cannot read is shown as its source
        html = f"<code>{escape(token.markup + source + token.markup)}</code>"
    formulas.append(html)
    marker = f"{env.get('nonce', '')}{len(formulas) - 1}:"
    return f"<p>{marker}</p>\n" if token.block else marker


_md = MarkdownIt("commonmark", {"html": True, "linkify": False, "highlight": _highlight_code}).enable("table") \
    .enable("strikethrough")
_md.inline.ruler.before("escape", "math_inline", _math_inline)
_md.block.ruler.before("fence", "math_block", _math_block, {"alt": ["paragraph"]})
_md.add_render_rule("math_inline", _render_math)
_md.add_render_rule("math_block", _render_math)


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
        path = posixpath.normpath(unquote(parts.path))  # markdown-it percent-encodes; quoted once below
        if path in (".", "") or path.startswith(".."):
            return None
        suffix = (f"?{parts.query}" if parts.query else "") + (f"#{parts.fragment}" if parts.fragment else "")
        return f"{self.repo_base}/{kind}/{self.revision}/{quote(path)}{suffix}"


_IMG = re.compile(r"<img\b[^>]*>")


def _attr(tag: str, name: str) -> str | None:
    found = re.search(rf'\s{name}="([^"]*)"', tag)
    return found.group(1) if found else None


def _repo_image(tag: str, links: RepoLinks) -> str | None:
    """The repo path an ``<img>`` of sanitized card HTML shows, if it is a file of this repo."""
    src = _attr(tag, "src") or ""
    prefix = f"{links.repo_base}/resolve/{links.revision}/"
    if not src.startswith(prefix):
        return None
    return unquote(src[len(prefix):].split("?", 1)[0].split("#", 1)[0])


def image_paths(html: str, links: RepoLinks) -> list[str]:
    """The repo files a card's images show, in order (for ``hub/image_sizes.py``)."""
    paths = (_repo_image(m.group(0), links) for m in _IMG.finditer(html))
    return list(dict.fromkeys(p for p in paths if p))


def add_image_sizes(html: str, links: RepoLinks, sizes: dict[str, tuple[int, int]]) -> str:
    """Give each of the card's own images the ``width`` and ``height`` it lacks, from its pixel size
    (keeping the author's width, scaling the height to it), so the browser reserves its box before
    the image arrives and nothing below moves."""

    def fix(match: re.Match) -> str:
        tag = match.group(0)
        path = _repo_image(tag, links)
        if path not in sizes:
            return tag
        w, h = sizes[path]
        width, height = _attr(tag, "width"), _attr(tag, "height")
        if width is not None and height is not None:
            return tag
        if width is not None:
            if not width.isdigit():
                return tag
            extra = f' height="{max(1, round(int(width) * h / w))}"'
        elif height is not None:
            if not height.isdigit():
                return tag
            extra = f' width="{max(1, round(int(height) * w / h))}"'
        else:
            extra = f' width="{w}" height="{h}"'
        return tag[:4] + extra + tag[4:]

    return _IMG.sub(fix, html)


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
    """The card as safe HTML. Its own HTML never gets MathML through the sanitizer: formulas are
    rendered apart, each sanitized alone with only MathML allowed, and put back in place of text
    markers that carry a random nonce (so a card cannot forge one)."""
    nonce = f"math{secrets.token_hex(8)}-"
    env: dict = {"nonce": nonce}
    html = sanitize(_md.render(markdown, env), links)
    formulas = env.get("formulas")
    if not formulas:
        return html
    return re.sub(re.escape(nonce) + r"(\d+):", lambda m: formulas[int(m.group(1))], html)
