"""DARTS genotypes: the text form of a discretized DARTS cell pair, read and written exactly.

A genotype lists, for each cell type, two ``(op, input)`` pairs per intermediate node (input
0 and 1 are the cell's two preprocessed inputs, input ``k >= 2`` is intermediate node
``k``), and the nodes whose outputs are concatenated. The text is the one printed by the
DARTS code (``str`` of its ``Genotype`` namedtuple)::

    Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=[2, 3, 4, 5],
             reduce=[...], reduce_concat=range(2, 6))

:func:`parse_genotype` reads it without ``eval`` (a small tokenizer and recursive-descent
parser), accepting both the list and the ``range`` forms of the concat, keyword or
positional fields, either quote style, tuples or lists, trailing commas and line breaks;
``str(genotype)`` writes the reference's form back, so text round-trips exactly.

Examples:
    >>> from search_spaces.darts import parse_genotype
    >>> g = parse_genotype("Genotype(normal=[('sep_conv_3x3', 0), ('skip_connect', 1)], "
    ...                    "normal_concat=range(2, 3), reduce=[('max_pool_3x3', 0), "
    ...                    "('max_pool_3x3', 1)], reduce_concat=[2])")
    >>> g.normal
    [('sep_conv_3x3', 0), ('skip_connect', 1)]
    >>> g.steps("normal"), list(g.normal_concat)
    (1, [2])
    >>> str(g)
    "Genotype(normal=[('sep_conv_3x3', 0), ('skip_connect', 1)], normal_concat=range(2, 3), reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1)], reduce_concat=[2])"
    >>> parse_genotype("Genotype(normal=[('sep_conv_9x9', 0), ('skip_connect', 1)], "
    ...                "normal_concat=[2], reduce=[('max_pool_3x3', 0), ('none', 1)], "
    ...                "reduce_concat=[2])")
    Traceback (most recent call last):
    ...
    supernet.errors.GenotypeError: genotype normal[0] ('sep_conv_9x9', 0): unknown op 'sep_conv_9x9'...
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from supernet.errors import GenotypeError, UnknownNameError
from supernet.ops import list_ops, resolve_op

__all__ = ["Genotype", "parse_genotype", "PRIMITIVES", "CELL_OPS", "FIELDS"]

#: The eight candidate operations of the DARTS CNN search space, in the reference's order.
PRIMITIVES = [
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
]

#: Ops of the DARTS family accepted in genotypes (any op registered with a ``stride``
#: argument is accepted too).
CELL_OPS = PRIMITIVES + ["sep_conv_7x7", "conv_7x1_1x7"]

FIELDS = ("normal", "normal_concat", "reduce", "reduce_concat")


def _accepted_ops() -> list[str]:
    extra = [n for n in list_ops() if n not in CELL_OPS and "stride" in resolve_op(n).params]
    return CELL_OPS + extra


@dataclass(frozen=True)
class Genotype:
    """A DARTS genotype (normal and reduction cells), validated on construction.

    Attributes:
        normal: ``[(op, input), ...]``, two pairs per intermediate node.
        normal_concat: the concatenated nodes, a ``list`` or a ``range`` (kept as given,
            so that ``str`` reproduces the text it was read from).
        reduce: pairs of the reduction cell.
        reduce_concat: concatenated nodes of the reduction cell.
    """

    normal: list
    normal_concat: list | range
    reduce: list
    reduce_concat: list | range

    def __post_init__(self):
        for kind in ("normal", "reduce"):
            pairs = getattr(self, kind)
            if not isinstance(pairs, (list, tuple)):
                raise GenotypeError(f"genotype {kind}: expected a list of (op, input) pairs, "
                                    f"got {pairs!r}")
            pairs = [tuple(p) if isinstance(p, (list, tuple)) else p for p in pairs]
            object.__setattr__(self, kind, pairs)
            concat = getattr(self, kind + "_concat")
            if not isinstance(concat, range):
                concat = list(concat)
            object.__setattr__(self, kind + "_concat", concat)
            _check_cell(kind, pairs, concat)

    def steps(self, kind: str) -> int:
        """Number of intermediate nodes of cell ``kind`` (``"normal"`` or ``"reduce"``)."""
        return len(getattr(self, kind)) // 2

    def concat(self, kind: str) -> list[int]:
        """The concatenated node indices of cell ``kind``, as a list."""
        return list(getattr(self, kind + "_concat"))

    def __str__(self) -> str:
        return (
            f"Genotype(normal={self.normal!r}, normal_concat={self.normal_concat!r}, "
            f"reduce={self.reduce!r}, reduce_concat={self.reduce_concat!r})"
        )

    __repr__ = __str__


def _check_cell(kind: str, pairs: list, concat) -> None:
    accepted = None
    if not pairs or len(pairs) % 2:
        raise GenotypeError(
            f"genotype {kind}: {len(pairs)} (op, input) pair(s); a DARTS cell lists exactly "
            "two per intermediate node, so a non-zero even number is accepted"
        )
    for k, pair in enumerate(pairs):
        where = f"genotype {kind}[{k}] {pair!r}"
        if (not isinstance(pair, tuple) or len(pair) != 2 or not isinstance(pair[0], str)
                or not isinstance(pair[1], int) or isinstance(pair[1], bool)):
            raise GenotypeError(
                f"{where}: expected a pair (op name, input index) such as ('sep_conv_3x3', 0)"
            )
        op, j = pair
        node = 2 + k // 2
        if not 0 <= j < node:
            raise GenotypeError(
                f"{where}: node {node} cannot take input {j}; accepted inputs are "
                f"{list(range(node))} (0 and 1 are the cell inputs, then earlier nodes)"
            )
        try:
            spec = resolve_op(op)
        except UnknownNameError:
            spec = None
        if spec is None or "stride" not in spec.params:
            accepted = accepted or _accepted_ops()
            raise GenotypeError(
                f"{where}: unknown op {op!r}; accepted: {accepted} (or an op registered "
                "with supernet.register_op that takes a stride)"
            )
    nodes = 2 + len(pairs) // 2
    if isinstance(concat, range) and _length(concat) > nodes:  # listing it could take ages
        raise GenotypeError(f"genotype {kind}_concat {concat!r}: lists more nodes than the "
                            f"cell's {nodes}; accepted: {list(range(nodes))}")
    items = list(concat)
    if not items:
        raise GenotypeError(f"genotype {kind}_concat {concat!r}: empty; list at least one node")
    for c in items:
        if isinstance(c, bool) or not isinstance(c, int) or not 0 <= c < nodes:
            raise GenotypeError(
                f"genotype {kind}_concat {concat!r}: {c!r} is not a node of the cell; "
                f"accepted: {list(range(nodes))}"
            )
    dup = sorted(c for c, n in Counter(items).items() if n > 1)
    if dup:
        raise GenotypeError(f"genotype {kind}_concat {concat!r}: lists {dup} twice; list each once")


def _length(r: range) -> int:
    """``len(r)``, also of a range too long for ``len``."""
    try:
        return len(r)
    except OverflowError:
        return 2 ** 63


# ---------------------------------------------------------------------- parser
_TOKEN = re.compile(
    r"\s*(?:(?P<name>[A-Za-z_][A-Za-z_0-9]*)|(?P<int>[-+]?\d+)"
    r"|(?P<str>'[^'\\\n]*'|\"[^\"\\\n]*\")|(?P<punct>[()\[\],=])|(?P<other>\S))"
)


#: How deep lists and tuples may nest (a genotype nests 2 deep: a list of pairs), and how
#: many digits an integer may have (python refuses to read an int of more than 4,300).
_MAX_DEPTH, _MAX_DIGITS = 8, 18


class _Parser:
    def __init__(self, text: str):
        self.text = text
        # one pass over the text: every character but white space is a token or part of one
        self.tokens: list[tuple[str, str, int]] = [
            (m.lastgroup, m.group(m.lastgroup), m.start(m.lastgroup))
            for m in _TOKEN.finditer(text)]
        self.tokens.append(("end", "end of text", len(text)))  # never consumed
        self.depth = 0
        self.i = 0

    def error_at(self, pos: int, token: str, expected: str) -> GenotypeError:
        return GenotypeError(
            f"genotype text: unexpected {token!r} at character {pos}; expected {expected}. "
            "The accepted form is Genotype(normal=[('op', input), ...], normal_concat=[...] "
            "or range(a, b), reduce=[...], reduce_concat=[...])"
        )

    def peek(self):
        return self.tokens[self.i]

    def take(self, value: str | None = None, kind: str | None = None, expected: str = ""):
        tok = self.peek()
        if (value is not None and tok[1] != value) or (kind is not None and tok[0] != kind):
            raise self.error_at(tok[2], tok[1], expected or repr(value))
        self.i += 1
        return tok

    def value(self):
        kind, text, pos = self.peek()
        if kind == "str":
            self.i += 1
            return text[1:-1]
        if kind == "int":
            if len(text.lstrip("+-")) > _MAX_DIGITS:
                raise self.error_at(pos, text[:20] + "...", f"an integer of at most "
                                                            f"{_MAX_DIGITS} digits")
            self.i += 1
            return int(text)
        if text in ("[", "("):
            if self.depth >= _MAX_DEPTH:
                raise GenotypeError(
                    f"genotype text: {text!r} at character {pos} opens a list or tuple nested "
                    f"{self.depth + 1} deep; a genotype nests {_MAX_DEPTH} deep at most")
            self.i += 1
            self.depth += 1
            close = "]" if text == "[" else ")"
            items, tokens = [], self.tokens
            while tokens[self.i][1] != close:
                items.append(self.value())
                _, after, at = tokens[self.i]
                if after == ",":
                    self.i += 1
                elif after != close:
                    raise self.error_at(at, after, f"',' or {close!r}")
            self.i += 1
            self.depth -= 1
            return items if close == "]" else tuple(items)
        if kind == "name" and text == "range":
            self.i += 1
            self.take("(")
            args = [self.integer()]
            while self.peek()[1] == ",":
                self.i += 1
                if self.peek()[1] == ")":
                    break
                args.append(self.integer())
            self.take(")", expected="')'")
            if len(args) > 3:
                raise self.error_at(args[3][1], str(args[3][0]), "range(start, stop[, step])")
            if len(args) == 3 and args[2][0] == 0:
                raise self.error_at(args[2][1], "0", "a step that is not 0")
            return range(*(a for a, _ in args))
        raise self.error_at(pos, text, "a list [...], a tuple (...), range(...), a quoted op "
                                       "name or an integer")

    def integer(self) -> tuple[int, int]:
        """The integer token here and its position."""
        kind, text, pos = self.peek()
        if kind != "int":
            raise self.error_at(pos, text, "an integer")
        return self.value(), pos

    def genotype(self) -> dict:
        self.take("Genotype", kind="name", expected="'Genotype('")
        self.take("(", expected="'('")
        fields: dict = {}
        positional = 0
        while self.peek()[1] != ")":
            kind, text, pos = self.peek()
            if kind == "name" and text != "range" and self.tokens[self.i + 1:self.i + 2] and \
                    self.tokens[self.i + 1][1] == "=":
                if text not in FIELDS:
                    raise GenotypeError(
                        f"genotype text: unknown field {text!r} at character {pos}; "
                        f"accepted fields: {list(FIELDS)}"
                    )
                if text in fields:
                    raise GenotypeError(f"genotype text: field {text!r} given twice "
                                        f"(character {pos})")
                self.i += 2
                fields[text] = self.value()
            else:
                if len(fields) > positional or positional >= len(FIELDS):
                    raise self.error_at(pos, text, "a keyword field such as normal=[...]")
                fields[FIELDS[positional]] = self.value()
                positional += 1
            if self.peek()[1] != ")":
                self.take(",", expected="',' or ')'")
        self.take(")", expected="')'")
        kind, text, pos = self.peek()
        if kind != "end":
            raise self.error_at(pos, text, "the end of the text")
        missing = [f for f in FIELDS if f not in fields]
        if missing:
            raise GenotypeError(f"genotype text: missing field(s) {missing}; a genotype has "
                                f"{list(FIELDS)}")
        return fields


def parse_genotype(text: "str | Genotype") -> Genotype:
    """Read a genotype from the DARTS text form (no ``eval``).

    Raises:
        GenotypeError: the text is malformed (the message quotes the offending token and its
            position), names an unknown op, or describes an impossible cell (an odd number
            of pairs, an input that is not an earlier node, a concat of unknown nodes).
    """
    if isinstance(text, Genotype):
        return text
    if not isinstance(text, str):
        raise GenotypeError(f"a genotype is given as text, got a {type(text).__name__}")
    fields = _Parser(text).genotype()
    for kind in ("normal", "reduce"):
        concat = fields[kind + "_concat"]
        if not isinstance(concat, (list, tuple, range)):
            raise GenotypeError(f"genotype {kind}_concat: expected a list of node indices or "
                                f"range(a, b), got {concat!r}")
        if isinstance(concat, tuple):
            fields[kind + "_concat"] = list(concat)
    return Genotype(**fields)
