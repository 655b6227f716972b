"""The dataset viewer's ``where`` and ``orderby`` (datasets-server's ``/filter``), parsed here into
pyarrow compute expressions, never handed to a SQL engine: whatever a caller writes can only
compare columns with literals.

Grammar (case-insensitive keywords)::

    where      := or
    or         := and ("OR" and)*
    and        := not ("AND" not)*
    not        := "NOT" not | "(" or ")" | comparison
    comparison := column op literal
                | column "IS" ["NOT"] "NULL"
                | column ["NOT"] ("LIKE" | "ILIKE" | "GLOB") string
    column     := '"' name '"'            ("" inside a name is one ")
    literal    := string | number | TRUE | FALSE
    string     := "'" text "'"            ('' inside a string is one ')
    op         := = | <> | != | > | >= | < | <=
    orderby    := column ["ASC" | "DESC"] ("," column ["ASC" | "DESC"])*

``;``, ``--``, ``/*`` and ``*/`` anywhere are refused, as datasets-server does; so is anything else
outside the grammar, an unknown column, or more than ``MAX_LENGTH`` characters or ``MAX_DEPTH``
levels of nesting.
"""

from __future__ import annotations

import re

MAX_LENGTH = 4000
MAX_DEPTH = 32
FORBIDDEN = (";", "--", "/*", "*/")
TOKEN = re.compile(r"""
    \s*(?:
      (?P<column>"(?:[^"]|"")*")
    | (?P<string>'(?:[^']|'')*')
    | (?P<number>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
    | (?P<op><>|!=|>=|<=|=|>|<)
    | (?P<paren>[(),])
    | (?P<word>[A-Za-z_]+)
    )""", re.VERBOSE)
KEYWORDS = {"and", "or", "not", "is", "null", "like", "ilike", "glob", "true", "false", "asc", "desc"}


class FilterError(ValueError):
    """The expression is not one the viewer accepts; the message says where."""


def _tokens(text: str) -> list[tuple[str, str]]:
    if len(text) > MAX_LENGTH:
        raise FilterError(f"the expression is longer than {MAX_LENGTH} characters")
    for bad in FORBIDDEN:
        if bad in text:
            raise FilterError(f"{bad!r} is not allowed")
    tokens, position = [], 0
    text = text.rstrip()
    while position < len(text):
        match = TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise FilterError(f"unexpected text at character {position + 1}: {text[position:position + 20]!r}")
        kind = match.lastgroup
        value = match.group(kind)
        if kind == "word":
            if value.lower() not in KEYWORDS:
                raise FilterError(f"unknown word {value!r} (columns are written in double quotes)")
            kind, value = "kw", value.lower()
        tokens.append((kind, value))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str, columns: dict):
        self.tokens = _tokens(text)
        self.i = 0
        self.columns = columns  # name -> pyarrow type
        self.depth = 0

    def peek(self, kind: str, value: str | None = None) -> bool:
        if self.i >= len(self.tokens):
            return False
        k, v = self.tokens[self.i]
        return k == kind and (value is None or v == value)

    def take(self, kind: str, value: str | None = None) -> str:
        if not self.peek(kind, value):
            found = self.tokens[self.i][1] if self.i < len(self.tokens) else "the end"
            raise FilterError(f"expected {value or kind}, found {found!r}")
        self.i += 1
        return self.tokens[self.i - 1][1]

    def done(self) -> None:
        if self.i != len(self.tokens):
            raise FilterError(f"unexpected {self.tokens[self.i][1]!r}")

    def column(self) -> str:
        name = self.take("column")[1:-1].replace('""', '"')
        if name not in self.columns:
            raise FilterError(f"no column {name!r}")
        return name

    def where(self):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise FilterError(f"more than {MAX_DEPTH} levels of nesting")
        left = self.conjunction()
        while self.peek("kw", "or"):
            self.take("kw", "or")
            left = left | self.conjunction()
        self.depth -= 1
        return left

    def conjunction(self):
        left = self.negation()
        while self.peek("kw", "and"):
            self.take("kw", "and")
            left = left & self.negation()
        return left

    def negation(self):
        import pyarrow.compute as pc

        if self.peek("kw", "not"):
            self.take("kw", "not")
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise FilterError(f"more than {MAX_DEPTH} levels of nesting")
            inner = self.negation()
            self.depth -= 1
            return pc.invert(inner)
        if self.peek("paren", "("):
            self.take("paren", "(")
            inner = self.where()
            self.take("paren", ")")
            return inner
        return self.comparison()

    def comparison(self):
        import pyarrow.compute as pc

        name = self.column()
        field = pc.field(name)
        if self.peek("kw", "is"):
            self.take("kw", "is")
            negate = self.peek("kw", "not") and bool(self.take("kw", "not"))
            self.take("kw", "null")
            return pc.invert(pc.is_null(field)) if negate else pc.is_null(field)
        negate = self.peek("kw", "not") and bool(self.take("kw", "not"))
        for word in ("like", "ilike", "glob"):
            if self.peek("kw", word):
                self.take("kw", word)
                pattern = self.string()
                if word == "glob":
                    test = pc.match_substring_regex(field, "^" + _glob_regex(pattern) + "$")
                else:
                    test = pc.match_like(field, pattern, ignore_case=word == "ilike")
                return pc.invert(test) if negate else test
        if negate:
            raise FilterError("NOT here must be followed by LIKE, ILIKE or GLOB")
        op = self.take("op")
        value = self.literal()
        return {"=": field == value, "<>": field != value, "!=": field != value, ">": field > value,
                ">=": field >= value, "<": field < value, "<=": field <= value}[op]

    def string(self) -> str:
        return self.take("string")[1:-1].replace("''", "'")

    def literal(self):
        if self.peek("string"):
            return self.string()
        if self.peek("number"):
            text = self.take("number")
            return float(text) if any(c in text for c in ".eE") else int(text)
        if self.peek("kw", "true") or self.peek("kw", "false"):
            return self.take("kw") == "true"
        found = self.tokens[self.i][1] if self.i < len(self.tokens) else "the end"
        raise FilterError(f"expected a value ('text', a number, true or false), found {found!r}")

    def order(self) -> list[tuple[str, str]]:
        keys = [self.order_key()]
        while self.peek("paren", ","):
            self.take("paren", ",")
            keys.append(self.order_key())
        self.done()
        return keys

    def order_key(self) -> tuple[str, str]:
        name = self.column()
        direction = "ascending"
        if self.peek("kw", "asc") or self.peek("kw", "desc"):
            direction = "descending" if self.take("kw") == "desc" else "ascending"
        return name, direction


def _glob_regex(pattern: str) -> str:
    out = []
    for c in pattern:
        out.append(".*" if c == "*" else "." if c == "?" else re.escape(c))
    return "".join(out)


def filter_table(table, where: str | None, orderby: str | None):
    """The rows of ``table`` matching ``where``, sorted by ``orderby``, with their original row index in
    a last column ``__row_idx`` (FilterError for anything refused, including a comparison the
    column's type cannot make)."""
    import pyarrow as pa

    columns = {f.name: f.type for f in table.schema}
    indexed = table.append_column("__row_idx", pa.array(range(table.num_rows), type=pa.int64()))
    try:
        if where and where.strip():
            parser = _Parser(where, columns)
            expression = parser.where()
            parser.done()
            indexed = indexed.filter(expression)
        if orderby and orderby.strip():
            indexed = indexed.sort_by(_Parser(orderby, columns).order())
    except (pa.ArrowException, TypeError) as exc:
        raise FilterError(f"the expression cannot be evaluated on these columns: {exc}") from None
    except RecursionError:
        raise FilterError("the expression is nested too deeply") from None
    return indexed
