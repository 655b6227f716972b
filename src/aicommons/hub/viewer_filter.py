"""The dataset viewer's ``where`` and ``orderby`` (datasets-server's ``/filter``): the gate in front
of every engine. The text is parsed here into a tree, and the tree is re-emitted, never the text:
as pyarrow compute expressions (the preview of main's files) or as DuckDB SQL whose columns are
quoted names checked against the split's schema and whose values are bound parameters
(``to_sql``; the converted Parquet files, ``hub/viewer_query.py``). Whatever a caller writes can
only compare columns with literals: no function calls, sub-queries, statements or comments.

Grammar (case-insensitive keywords)::

    where      := or
    or         := and ("OR" and)*
    and        := not ("AND" not)*
    not        := "NOT" not | "(" or ")" | comparison
    comparison := column op literal
                | column "IS" ["NOT"] "NULL"
                | column ["NOT"] ("LIKE" | "ILIKE" | "GLOB") string
                | column ["NOT"] "IN" "(" literal ("," literal)* ")"
                | column ["NOT"] "BETWEEN" literal "AND" literal
    column     := '"' name '"'            ("" inside a name is one ")
    literal    := string | number | TRUE | FALSE
    string     := "'" text "'"            ('' inside a string is one ')
    op         := = | <> | != | > | >= | < | <=
    orderby    := column ["ASC" | "DESC"] ("," column ["ASC" | "DESC"])*

``;``, ``--``, ``/*`` and ``*/`` anywhere are refused, as datasets-server does; so is anything else
outside the grammar, an unknown column, or more than ``MAX_LENGTH`` characters or ``MAX_DEPTH``
levels of nesting. Outside quotes only ASCII is read (keywords, digits, spaces): look-alike
letters, full-width quotes, other scripts' digits and unusual spaces are refused; control
characters are refused anywhere.
"""

from __future__ import annotations

import re

MAX_LENGTH = 4000
MAX_DEPTH = 32
FORBIDDEN = (";", "--", "/*", "*/")
TOKEN = re.compile(r"""
    [ \t\r\n]*(?:
      (?P<column>"(?:[^"]|"")*")
    | (?P<string>'(?:[^']|'')*')
    | (?P<number>-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)
    | (?P<op><>|!=|>=|<=|=|>|<)
    | (?P<paren>[(),])
    | (?P<word>[A-Za-z_]+)
    )""", re.VERBOSE)
KEYWORDS = {"and", "or", "not", "is", "null", "like", "ilike", "glob", "in", "between", "true", "false", "asc",
            "desc"}


class FilterError(ValueError):
    """The expression is not one the viewer accepts; the message says where."""


def _tokens(text: str) -> list[tuple[str, str]]:
    if len(text) > MAX_LENGTH:
        raise FilterError(f"the expression is longer than {MAX_LENGTH} characters")
    for bad in FORBIDDEN:
        if bad in text:
            raise FilterError(f"{bad!r} is not allowed")
    if any(ord(c) < 32 and c not in "\t\r\n" or 127 <= ord(c) < 160 or c in "\u2028\u2029\ufeff" for c in text):
        raise FilterError("control characters are not allowed")
    tokens, position = [], 0
    text = text.rstrip(" \t\r\n")
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
    """Builds a tree of tuples: ``("or", a, b)``, ``("and", a, b)``, ``("not", a)``,
    ``("null", column, negate)``, ``("match", like|ilike|glob, column, pattern, negate)``,
    ``("in", column, [values], negate)``, ``("between", column, low, high, negate)``,
    ``("cmp", op, column, value)``."""

    def __init__(self, text: str, columns):
        self.tokens = _tokens(text)
        self.i = 0
        self.columns = columns  # the split's column names
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

    def nest(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise FilterError(f"more than {MAX_DEPTH} levels of nesting")

    def where(self) -> tuple:
        self.nest()
        left = self.conjunction()
        while self.peek("kw", "or"):
            self.take("kw", "or")
            left = ("or", left, self.conjunction())
        self.depth -= 1
        return left

    def conjunction(self) -> tuple:
        left = self.negation()
        while self.peek("kw", "and"):
            self.take("kw", "and")
            left = ("and", left, self.negation())
        return left

    def negation(self) -> tuple:
        if self.peek("kw", "not"):
            self.take("kw", "not")
            self.nest()
            inner = self.negation()
            self.depth -= 1
            return ("not", inner)
        if self.peek("paren", "("):
            self.take("paren", "(")
            inner = self.where()
            self.take("paren", ")")
            return inner
        return self.comparison()

    def comparison(self) -> tuple:
        name = self.column()
        if self.peek("kw", "is"):
            self.take("kw", "is")
            negate = self.peek("kw", "not") and bool(self.take("kw", "not"))
            self.take("kw", "null")
            return ("null", name, negate)
        negate = self.peek("kw", "not") and bool(self.take("kw", "not"))
        for word in ("like", "ilike", "glob"):
            if self.peek("kw", word):
                self.take("kw", word)
                return ("match", word, name, self.string(), negate)
        if self.peek("kw", "in"):
            self.take("kw", "in")
            self.take("paren", "(")
            values = [self.literal()]
            while self.peek("paren", ","):
                self.take("paren", ",")
                values.append(self.literal())
            self.take("paren", ")")
            return ("in", name, values, negate)
        if self.peek("kw", "between"):
            self.take("kw", "between")
            low = self.literal()
            self.take("kw", "and")
            return ("between", name, low, self.literal(), negate)
        if negate:
            raise FilterError("NOT here must be followed by LIKE, ILIKE, GLOB, IN or BETWEEN")
        op = self.take("op")
        return ("cmp", "<>" if op == "!=" else op, name, self.literal())

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


def parse_where(where: str, columns) -> tuple:
    """The tree of a ``where`` over ``columns`` (names); FilterError for anything refused."""
    parser = _Parser(where, columns)
    try:
        tree = parser.where()
    except RecursionError:
        raise FilterError("the expression is nested too deeply") from None
    parser.done()
    return tree


def parse_orderby(orderby: str, columns) -> list[tuple[str, str]]:
    """``[(column, "ascending"|"descending")]``; FilterError for anything refused."""
    return _Parser(orderby, columns).order()


def _glob_regex(pattern: str) -> str:
    out = []
    for c in pattern:
        out.append(".*" if c == "*" else "." if c == "?" else re.escape(c))
    return "".join(out)


def _arrow(tree: tuple):
    import pyarrow.compute as pc

    kind = tree[0]
    if kind == "or":
        return _arrow(tree[1]) | _arrow(tree[2])
    if kind == "and":
        return _arrow(tree[1]) & _arrow(tree[2])
    if kind == "not":
        return pc.invert(_arrow(tree[1]))
    if kind == "null":
        test = pc.is_null(pc.field(tree[1]))
        return pc.invert(test) if tree[2] else test
    if kind == "match":
        _, word, name, pattern, negate = tree
        if word == "glob":
            test = pc.match_substring_regex(pc.field(name), "^" + _glob_regex(pattern) + "$")
        else:
            test = pc.match_like(pc.field(name), pattern, ignore_case=word == "ilike")
        return pc.invert(test) if negate else test
    if kind == "in":
        _, name, values, negate = tree
        field = pc.field(name)
        test = field.isin(values)  # a null cell is in no list, and (as in SQL) not in none either
        return (pc.invert(test) & field.is_valid()) if negate else test
    if kind == "between":
        _, name, low, high, negate = tree
        field = pc.field(name)
        test = (field >= low) & (field <= high)
        return pc.invert(test) if negate else test
    _, op, name, value = tree
    field = pc.field(name)
    return {"=": field == value, "<>": field != value, ">": field > value, ">=": field >= value,
            "<": field < value, "<=": field <= value}[op]


def quote_name(name: str) -> str:
    """A column name as a DuckDB identifier (only names of the split's schema get here)."""
    return '"' + name.replace('"', '""') + '"'


def _sql(tree: tuple, params: list) -> str:
    kind = tree[0]
    if kind in ("or", "and"):
        return f"({_sql(tree[1], params)} {kind.upper()} {_sql(tree[2], params)})"
    if kind == "not":
        return f"(NOT {_sql(tree[1], params)})"
    if kind == "null":
        return f"({quote_name(tree[1])} IS {'NOT ' if tree[2] else ''}NULL)"
    if kind == "match":
        _, word, name, pattern, negate = tree
        params.append(pattern)
        return f"({quote_name(name)} {'NOT ' if negate else ''}{word.upper()} ?)"
    if kind == "in":
        _, name, values, negate = tree
        params.extend(values)
        return f"({quote_name(name)} {'NOT ' if negate else ''}IN ({', '.join('?' for _ in values)}))"
    if kind == "between":
        _, name, low, high, negate = tree
        params.extend((low, high))
        return f"({quote_name(name)} {'NOT ' if negate else ''}BETWEEN ? AND ?)"
    _, op, name, value = tree
    params.append(value)
    return f"({quote_name(name)} {op} ?)"


def to_sql(where: str, columns) -> tuple[str, list]:
    """``where`` re-emitted as a DuckDB boolean expression with ``?`` for every value, and the values."""
    params: list = []
    return _sql(parse_where(where, columns), params), params


def orderby_sql(orderby: str, columns) -> str:
    return ", ".join(f"{quote_name(name)} {'DESC' if direction == 'descending' else 'ASC'}"
                     for name, direction in parse_orderby(orderby, columns))


def filter_table(table, where: str | None, orderby: str | None):
    """The rows of ``table`` matching ``where``, sorted by ``orderby``, with their original row index in
    a last column ``__row_idx`` (FilterError for anything refused, including a comparison the
    column's type cannot make)."""
    import pyarrow as pa

    columns = set(table.schema.names)
    indexed = table.append_column("__row_idx", pa.array(range(table.num_rows), type=pa.int64()))
    try:
        if where and where.strip():
            indexed = indexed.filter(_arrow(parse_where(where, columns)))
        if orderby and orderby.strip():
            indexed = indexed.sort_by(parse_orderby(orderby, columns))
    except (pa.ArrowException, TypeError) as exc:
        raise FilterError(f"the expression cannot be evaluated on these columns: {exc}") from None
    except RecursionError:
        raise FilterError("the expression is nested too deeply") from None
    return indexed
