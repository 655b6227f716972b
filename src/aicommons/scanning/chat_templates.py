"""Chat templates (GGUF ``tokenizer.chat_template``, ``tokenizer_config.json`` ``chat_template``,
``*.jinja``): Jinja that inference servers render with the user's messages.

Rendered outside a sandbox, a template is code: the SSTI payloads behind CVE-2024-34359
(llama-cpp-python) and CVE-2026-5760 (SGLang) walk from any object to ``__class__``,
``__mro__``, ``__subclasses__`` or ``__globals__`` and on to ``os``. The hub itself only renders
in ``ImmutableSandboxedEnvironment``, but the file is downloaded and rendered by other software,
so the template is judged here. It is parsed (with the extensions transformers enables, so that
valid templates parse), never rendered, and its syntax tree is checked for:

- ``unsafe``: attribute or item access to a dunder name or a Python frame/function internal
  (also through ``|attr(...)``, string concatenation, or any string constant naming one, which
  covers ``map(attribute='__class__')`` and ``'{0.__class__}'.format``); the globals these
  payloads start from — ``self`` (``self._TemplateReference__context``), ``lipsum`` (a function,
  so ``lipsum.__globals__``), and Flask's ``config`` and ``request``, unless the template assigns
  them itself;
- ``suspicious``: other private (``_``) attributes, which the sandbox refuses and no template
  needs; ``|attr`` with a computed name; ``include``/``import``/``extends`` (they read other
  templates through whatever loader the renderer has); ``**`` (one ``9**9**9`` stalls a renderer).

A template that does not parse is an ``error``.
"""

from __future__ import annotations

import re
from functools import lru_cache

from jinja2 import nodes
from jinja2.exceptions import TemplateSyntaxError
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .limits import ScanLimits
from .results import Finding

INJECTION_GLOBALS = frozenset({"self", "lipsum", "config", "request"})
# Attributes of functions, frames, generators, tracebacks and code objects that lead to globals.
PYTHON_INTERNALS = frozenset({"mro", "func_globals", "func_code", "im_func", "im_class", "gi_frame", "gi_code",
                              "cr_frame", "cr_code", "ag_frame", "ag_code", "f_globals", "f_locals", "f_builtins",
                              "f_back", "f_code", "tb_frame", "tb_next", "co_code"})
_DUNDER = re.compile(r"__[A-Za-z0-9_]+__")
_MAX_FOLDED = 1000  # constant strings folded from pieces are cut here (the scan builds no large string)
_SHOWN = 100


class _GenerationTag(Extension):
    """transformers' ``{% generation %}...{% endgeneration %}`` (marks assistant tokens for
    training masks): parsed as a plain block so that templates using it are judged, not refused."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return nodes.Scope(body, lineno=lineno)


@lru_cache(maxsize=1)
def _environment() -> ImmutableSandboxedEnvironment:
    # As transformers builds it (loopcontrols: {% break %} / {% continue %}). Only parse() is used.
    return ImmutableSandboxedEnvironment(extensions=[_GenerationTag, "jinja2.ext.loopcontrols"])


def check_chat_template(source: str, where: str, limits: ScanLimits) -> list[Finding]:
    if len(source) > limits.max_template_bytes:
        return [Finding("chat-template", "error", f"{where}: {len(source)} characters, over the "
                                                  f"{limits.max_template_bytes} limit for templates")]
    try:
        tree = _environment().parse(source)
        findings = list(_judge(tree, where))
    except TemplateSyntaxError as exc:
        return [Finding("chat-template", "error", f"{where}: not valid Jinja (line {exc.lineno}: {exc.message})")]
    except RecursionError:
        return [Finding("chat-template", "error", f"{where}: nested too deeply to check")]
    unique = {f.message: f for f in findings}  # the same payload piece repeated is one finding
    return list(unique.values())


def _finding(severity: str, where: str, what: str, name: str) -> Finding:
    return Finding("chat-template", severity, f"{where}: {what}", {"name": name[:_SHOWN]})


def _judge(tree: nodes.Template, where: str):
    assigned = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    assigned |= {arg.name for macro in tree.find_all(nodes.Macro) for arg in macro.args}
    for node in tree.find_all(nodes.Node):
        if isinstance(node, nodes.Getattr):
            yield from _judge_attribute(node.attr, where)
        elif isinstance(node, nodes.Getitem):
            key = _fold(node.arg)
            if key is not None:
                yield from _judge_attribute(key, where)
        elif isinstance(node, nodes.Filter) and node.name == "attr":
            key = _fold(node.args[0]) if node.args else None
            if key is None:
                yield _finding("suspicious", where, "|attr() with a computed attribute name", "attr")
            else:
                yield from _judge_attribute(key, where)
        elif isinstance(node, nodes.Name) and node.ctx == "load" and node.name in INJECTION_GLOBALS \
                and node.name not in assigned:
            yield _finding("unsafe", where, f"uses the global {node.name!r}, where template-injection payloads "
                                            "start", node.name)
        elif isinstance(node, (nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)):
            yield _finding("suspicious", where, f"{type(node).__name__.lower()} of another template", "include")
        elif isinstance(node, nodes.Pow):
            yield _finding("suspicious", where, "uses ** (a tiny expression can stall the renderer)", "**")
        elif isinstance(node, (nodes.Const, nodes.Concat, nodes.Add)):
            text = _fold(node)
            match = _DUNDER.search(text) if text else None
            if match:
                yield _finding("unsafe", where, f"a string naming {match.group(0)!r:.{_SHOWN}}, a Python internal",
                               match.group(0))


def _judge_attribute(name: str, where: str):
    for part in name.split("."):  # map(attribute="a.b") and friends take dotted paths
        if part.startswith("__") or part in PYTHON_INTERNALS:
            yield _finding("unsafe", where, f"reaches for {part!r:.{_SHOWN}}, a Python internal "
                                            "(template-injection primitive)", part)
        elif part.startswith("_"):
            yield _finding("suspicious", where, f"reads the private attribute {part!r:.{_SHOWN}}", part)


def _fold(node: nodes.Node) -> str | None:
    """The string an expression always evaluates to, when it is built from string constants with
    ``~`` or ``+`` (how payloads hide ``'__cla' ~ 'ss__'``); None otherwise. Done by hand: jinja's
    own constant folding would evaluate arbitrary expressions (``'a' * 10**12``)."""
    if isinstance(node, nodes.Const):
        return node.value[:_MAX_FOLDED] if isinstance(node.value, str) else None
    if isinstance(node, nodes.Concat):
        parts = [_fold(n) for n in node.nodes]
        return None if None in parts else "".join(parts)[:_MAX_FOLDED]
    if isinstance(node, nodes.Add):
        left, right = _fold(node.left), _fold(node.right)
        return None if left is None or right is None else (left + right)[:_MAX_FOLDED]
    return None
