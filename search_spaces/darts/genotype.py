"""DARTS genotypes: the text form of a discretized DARTS cell pair, read and written exactly.

A genotype lists, for each cell type, two ``(op, input)`` pairs per intermediate node (input
0 and 1 are the cell's two preprocessed inputs, input ``k >= 2`` is intermediate node
``k``), and the nodes whose outputs are concatenated. The text is the one printed by the
DARTS code (``str`` of its ``Genotype`` namedtuple)::

    Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=[2, 3, 4, 5],
             reduce=[...], reduce_concat=range(2, 6))

FairDARTS (Chu et al., "Fair DARTS: Eliminating Unfair Advantages in Differentiable
Architecture Search", ECCV 2020) writes its cells as ``(op, node, input)`` triples instead
(xiaomi-automl/FairDARTS ``fairdarts/genotypes.py``, ``FairDARTS_a`` ... ``FairDARTS_g``):
its threshold discretization keeps any number of ops per node, none included, and on one
edge possibly more than one, so a node is named in each entry rather than implied by its
position. The two forms are told apart by the length of the entries (:attr:`Genotype.form`
is ``"darts"`` or ``"fair"``). In the FairDARTS form a node no entry names, or whose every
entry reads an absent node, is absent: the reference network (``model.DCOCell``) never
computes it, skips the ops that read it and leaves it out of the cell's output, which
concatenates the nodes present (its genotypes always write ``range(2, 2 + steps)``; here
the output concatenates the present nodes of the concat, the same set for those
genotypes). Entries list their nodes in increasing order, as the reference's parser writes
them and its cell computes them.

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

    The FairDARTS form, node 3 absent (nothing reaches it) and node 4 reading it:

    >>> f = parse_genotype("Genotype(normal=[('sep_conv_3x3', 2, 0), ('sep_conv_5x5', 2, 1), "
    ...                    "('skip_connect', 4, 3), ('max_pool_3x3', 4, 1)], "
    ...                    "normal_concat=range(2, 5), reduce=[('max_pool_3x3', 2, 0)], "
    ...                    "reduce_concat=range(2, 3))")
    >>> f.form, f.steps("normal"), f.present("normal")
    ('fair', 3, [2, 4])
    >>> f.inputs("normal", 4)
    [('skip_connect', 3), ('max_pool_3x3', 1)]
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from supernet.errors import GenotypeError, UnknownNameError
from supernet.ops import list_ops, resolve_op

__all__ = ["Genotype", "parse_genotype", "PRIMITIVES", "CELL_OPS", "FIELDS", "FAIR_PRIMITIVES"]

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

#: FairDARTS' candidates (its ``fairdarts/genotypes.py``): the DARTS ops without ``none``,
#: since sigmoid weights do not compete and a zero op would only mimic dropping the edge.
FAIR_PRIMITIVES = [op for op in PRIMITIVES if op != "none"]

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
        normal: ``[(op, input), ...]``, two pairs per intermediate node (DARTS form), or
            ``[(op, node, input), ...]`` (FairDARTS form, any number per node).
        normal_concat: the concatenated nodes, a ``list`` or a ``range`` (kept as given,
            so that ``str`` reproduces the text it was read from).
        reduce: pairs of the reduction cell.
        reduce_concat: concatenated nodes of the reduction cell.
        form: ``"darts"`` (pairs) or ``"fair"`` (triples), read from the entries.
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
        forms = {kind: _form(kind, getattr(self, kind)) for kind in ("normal", "reduce")}
        if forms["normal"] != forms["reduce"]:
            raise GenotypeError(
                f"genotype: normal is in the {forms['normal']} form and reduce in the "
                f"{forms['reduce']} form; write both as (op, input) pairs or both as "
                "(op, node, input) triples")
        object.__setattr__(self, "form", forms["normal"])
        for kind in ("normal", "reduce"):
            pairs = getattr(self, kind)
            concat = getattr(self, kind + "_concat")
            if not isinstance(concat, range):
                concat = list(concat)
            object.__setattr__(self, kind + "_concat", concat)
            if self.form == "fair":
                _check_fair_cell(kind, pairs, concat)
            else:
                _check_cell(kind, pairs, concat)

    def steps(self, kind: str) -> int:
        """Number of intermediate nodes of cell ``kind`` (``"normal"`` or ``"reduce"``):
        in the FairDARTS form, up to the last node an entry or the concat names."""
        entries = getattr(self, kind)
        if self.form == "fair":
            return max([e[1] for e in entries] + self.concat(kind) + [1]) - 1
        return len(entries) // 2

    def inputs(self, kind: str, node: int) -> list[tuple[str, int]]:
        """``[(op, input), ...]`` of intermediate ``node`` of cell ``kind``, in text order."""
        if self.form == "fair":
            return [(op, j) for op, i, j in getattr(self, kind) if i == node]
        pairs = getattr(self, kind)
        return [tuple(p) for p in pairs[2 * node - 4: 2 * node - 2]]

    def present(self, kind: str) -> list[int]:
        """The intermediate nodes of cell ``kind`` that are computed: in the FairDARTS form
        those with an entry reading input 0, 1 or a present node (every node in the DARTS
        form)."""
        have = {0, 1}
        for i in range(2, self.steps(kind) + 2):
            if any(j in have for _, j in self.inputs(kind, i)):
                have.add(i)
        return sorted(have - {0, 1})

    def concat(self, kind: str) -> list[int]:
        """The concatenated node indices of cell ``kind``, as a list."""
        return list(getattr(self, kind + "_concat"))

    def __str__(self) -> str:
        return (
            f"Genotype(normal={self.normal!r}, normal_concat={self.normal_concat!r}, "
            f"reduce={self.reduce!r}, reduce_concat={self.reduce_concat!r})"
        )

    __repr__ = __str__


def _form(kind: str, entries: list) -> str:
    """``"fair"`` when the first entry is an ``(op, node, input)`` triple, else ``"darts"``;
    an entry of the other length fails, naming it."""
    sizes = [len(e) if isinstance(e, tuple) else None for e in entries]
    fair = bool(sizes) and sizes[0] == 3
    for k, (n, entry) in enumerate(zip(sizes, entries)):
        if n == (2 if fair else 3):
            first = "triple (op, node, input) such as ('sep_conv_3x3', 2, 0)" if fair else \
                "pair (op name, input index) such as ('sep_conv_3x3', 0)"
            raise GenotypeError(
                f"genotype {kind}[{k}] {entry!r}: expected a {first}, as entry 0 is; write "
                "every entry of a genotype in one form (pairs: DARTS, triples: FairDARTS)")
    return "fair" if fair else "darts"


def _check_op(where: str, op: str) -> None:
    try:
        spec = resolve_op(op)
    except UnknownNameError:
        spec = None
    if spec is None or "stride" not in spec.params:
        raise GenotypeError(
            f"{where}: unknown op {op!r}; accepted: {_accepted_ops()} (or an op registered "
            "with supernet.register_op that takes a stride)"
        )


def _check_fair_cell(kind: str, entries: list, concat) -> None:
    """Check the ``(op, node, input)`` triples of a cell in the FairDARTS form."""
    if not entries:
        raise GenotypeError(f"genotype {kind}: no (op, node, input) entry; a cell keeps at "
                            "least one op")
    last = 2
    for k, entry in enumerate(entries):
        where = f"genotype {kind}[{k}] {entry!r}"
        if (not isinstance(entry, tuple) or not isinstance(entry[0], str)
                or any(not isinstance(x, int) or isinstance(x, bool) for x in entry[1:])):
            raise GenotypeError(f"{where}: expected a triple (op name, node, input) such as "
                                "('sep_conv_3x3', 2, 0)")
        op, i, j = entry
        if not 2 <= i <= MAX_NODE:
            raise GenotypeError(f"{where}: node {i} is not an intermediate node; nodes are "
                                f"2, 3, ... (0 and 1 are the cell inputs), at most {MAX_NODE}")
        if i < last:
            raise GenotypeError(f"{where}: node {i} comes after node {last}; list the entries "
                                "by node, in increasing order")
        last = i
        if not 0 <= j < i:
            raise GenotypeError(
                f"{where}: node {i} cannot take input {j}; accepted inputs are "
                f"{list(range(i))} (0 and 1 are the cell inputs, then earlier nodes)")
        _check_op(where, op)
    dup = sorted(e for e, n in Counter(entries).items() if n > 1)
    if dup:
        raise GenotypeError(f"genotype {kind}: lists {dup} twice; an op joins an input to a "
                            "node once")
    if isinstance(concat, range) and _length(concat) > MAX_NODE:
        raise GenotypeError(f"genotype {kind}_concat {concat!r}: lists more than {MAX_NODE} "
                            "nodes")
    items = list(concat)
    if not items:
        raise GenotypeError(f"genotype {kind}_concat {concat!r}: empty; list at least one node")
    for c in items:
        if isinstance(c, bool) or not isinstance(c, int) or not 2 <= c <= MAX_NODE:
            raise GenotypeError(f"genotype {kind}_concat {concat!r}: {c!r} is not an "
                                f"intermediate node (2 to {MAX_NODE})")
    dup = sorted(c for c, n in Counter(items).items() if n > 1)
    if dup:
        raise GenotypeError(f"genotype {kind}_concat {concat!r}: lists {dup} twice; list each once")


#: The last node index a FairDARTS-form genotype may name (DARTS cells have 5 or 6 nodes).
MAX_NODE = 65


def _check_cell(kind: str, pairs: list, concat) -> None:
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
        _check_op(where, op)
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
            "or range(a, b), reduce=[...], reduce_concat=[...]), or with (op, node, input) "
            "entries (FairDARTS)"
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
