"""Malformed inputs: every damaged graph file, genotype, edit log, space option, config
file, ``--set`` override, checkpoint, weights file and run directory must end in a clear
supernet error (a :class:`supernet.errors.SupernetError`),
never a raw exception from inside python, numpy, networkx or torch, and never a hang.

Cases are made from valid inputs of every registered space, damaged at random (keys deleted
or replaced, wrong types, huge ints, NaN, deep nesting, duplicated nodes and edges, unicode,
broken sparse masks, cut and flipped bytes), and run in-process, one at a time, under a
time limit (a case over ``--limit`` seconds counts as a hang). Prints one markdown table by
input kind::

    python benchmarks/fuzz_inputs.py --quick          # a smoke run of seconds
    python benchmarks/fuzz_inputs.py --cases 20000    # the long fuzz (about 3 minutes)

A whole command of ``supernet`` (``--kinds cli``) gets ``--cli-limit`` seconds instead: the
export of a tiny run alone takes about 7 s.

Columns: ``clear`` (a SupernetError, or exit code 2 with a ``supernet: error:`` line for the
command line), ``valid`` (accepted and what the input said), ``raw`` (any other exception; its
first distinct messages are listed under the table), ``hang`` and ``wrong`` (accepted, but not
what the input said: a graph with a duplicate node or edge, fewer nodes or edges than the
document lists; a damaged checkpoint or weights file whose contents load other than saved).

The generators are plain functions of a :class:`random.Random` (``tests/test_fuzz_inputs.py``
drives them from hypothesis).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import io
import json
import logging
import os
import random
import re
import signal
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch

from supernet.errors import SupernetError

torch.set_num_threads(1)
logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # notes of every ONNX export

KINDS = ("node_link", "graphml", "text", "edit_log", "space_options", "config", "overrides",
         "tensor_file", "cli")


class Hang(BaseException):
    """Raised by the alarm in a case past its time limit (not an Exception: no handler of
    the code under test swallows it)."""


@contextlib.contextmanager
def time_limit(seconds: float):
    """Raise :class:`Hang` in the main thread after ``seconds`` (a signal alarm)."""
    def ring(signum, frame):
        raise Hang(f"over {seconds} s")

    old = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def write(path: str, text: str) -> str:
    """Write ``text`` to ``path`` as UTF-8 (lone surrogates kept, as a damaged file may
    hold them); returns ``path``."""
    Path(path).write_text(text, encoding="utf-8", errors="surrogatepass")
    return path


# ---------------------------------------------------------------------- valid inputs
_BASES: dict = {}


def _discretized(graph):
    """A copy of ``graph`` with the first candidate op of every layer-level gate kept."""
    g = graph.copy()
    for t in [g, *g.cells.values()]:
        for u, v in t.gate_edges():
            t.set_ops(u, v, t.edge(u, v)["ops"][:1])
    return g


def bundled_spaces() -> list:
    """The spaces the library ships (not ones a program or a test registered in this
    process, whose builders check what their authors chose to)."""
    from supernet.spaces import SPACES, list_spaces

    return [n for n in list_spaces()
            if getattr(SPACES.resolve(n).build, "__module__", "").startswith("search_spaces")]


def base_graphs() -> dict:
    """A small valid graph of every bundled space (searched and discretized), by name."""
    if "graphs" not in _BASES:
        from supernet.spaces import create_space, space_example

        graphs = {}
        for name in bundled_spaces():
            g = create_space(name, **space_example(name).kwargs)
            graphs[name] = g
            if g.level == "layer" and g.gate_edges() + [e for c in g.cells.values()
                                                       for e in c.gate_edges()]:
                graphs[name + ":discrete"] = _discretized(g)
        _BASES["graphs"] = graphs
    return _BASES["graphs"]


def base_documents() -> dict:
    """The node-link documents of :func:`base_graphs`."""
    if "docs" not in _BASES:
        from supernet.codec import to_node_link

        _BASES["docs"] = {k: json.loads(json.dumps(to_node_link(g)))
                          for k, g in base_graphs().items()}
    return _BASES["docs"]


def base_graphml() -> dict:
    """The GraphML texts of :func:`base_graphs`."""
    if "graphml" not in _BASES:
        from supernet.io import write_graphml

        out = {}
        with tempfile.TemporaryDirectory() as d:
            for k, g in base_graphs().items():
                path = os.path.join(d, "g.graphml")
                write_graphml(g, path)
                out[k] = Path(path).read_text(encoding="utf-8")
        _BASES["graphml"] = out
    return _BASES["graphml"]


def base_texts() -> dict:
    """A valid text form of every space that has one: ``{space: (text, decode kwargs)}``."""
    if "texts" not in _BASES:
        import inspect

        from search_spaces.darts.published import PUBLISHED
        from supernet.spaces import SPACES, encode, space_example

        texts = {}
        for name, entry in SPACES.items():
            if entry.decode is None:
                continue
            kwargs = space_example(name).kwargs
            params = inspect.signature(entry.decode).parameters
            if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
                kwargs = {k: v for k, v in kwargs.items() if k in params}
            if name.startswith("darts"):
                kwargs = {k: v for k, v in kwargs.items() if k in ("C", "layers", "num_classes")}
                text = PUBLISHED["DARTS_V2"]["genotype"]
            else:
                text = encode(base_graphs()[name + ":discrete"]
                              if name + ":discrete" in base_graphs() else base_graphs()[name])
            texts[name] = (text, kwargs)
        _BASES["texts"] = texts
    return _BASES["texts"]


# ---------------------------------------------------------------------- damage
_ODD_STRINGS = ["", " ", "x", "\x00", "é\u2603\U0001f600", "$C", "json:", "json:{", "none",
                "-1", "1e999", "NaN", "__sparse__", "__ndarray__", "layer", "channel", "units",
                "a" * 300, "\ud800"]
_ODD_INTS = [0, -1, 1, 2, 3, 7, -(2 ** 31), 2 ** 31, 2 ** 63, -(2 ** 63), 10 ** 30, 2 ** 64 + 1]
_ODD_FLOATS = [0.0, -0.0, 0.5, -1.5, 1e308, -1e308, float("nan"), float("inf"),
               float("-inf"), 2.0 ** 63]


def deep(rng: random.Random, depth: int | None = None) -> str:
    """A placeholder that :func:`dumps` writes as a list or dict nested ``depth`` deep
    (default: up to a few ten thousands; python's json module cannot write those)."""
    depth = depth or rng.choice([50, 900, 3000, 20000])
    return f"\x01deep{depth}{rng.choice('ld')}\x01"


_DEEP = re.compile(r'"\\u0001deep(\d+)([ld])\\u0001"')


def dumps(doc) -> str:
    """``json.dumps(doc)`` (NaN and infinities allowed), with the placeholders of
    :func:`deep` written out as nested lists or dicts."""
    def nested(m):
        n = int(m.group(1))
        return "[" * n + "1" + "]" * n if m.group(2) == "l" else '{"k": ' * n + "1" + "}" * n

    return _DEEP.sub(nested, json.dumps(doc, allow_nan=True))


def odd_value(rng: random.Random, like=None):
    """A value of the wrong type or range: huge ints, NaN, unicode, empty or deep containers,
    or a sibling value of another kind."""
    r = rng.random()
    if r < 0.22:
        return rng.choice(_ODD_INTS)
    if r < 0.34:
        return rng.choice(_ODD_FLOATS)
    if r < 0.50:
        return rng.choice(_ODD_STRINGS)
    if r < 0.58:
        return rng.choice([None, True, False])
    if r < 0.70:
        return rng.choice([[], {}, [None], [1, 2], {"x": 1}, ["a", "b"], [[1]]])
    if r < 0.74:
        return deep(rng)
    if r < 0.86 and like is not None:  # the right container, the wrong content
        if isinstance(like, list) and like:
            return [odd_value(rng) for _ in range(rng.randint(0, 3))]
        if isinstance(like, dict) and like:
            out = dict(like)
            out[rng.choice(list(out))] = odd_value(rng)
            return out
        if isinstance(like, str):
            return like + rng.choice(["", "_", "~", "'", "é"])
        if isinstance(like, int) and not isinstance(like, bool):
            return like + rng.choice([-2, -1, 1, 10 ** 6])
    return {"__sparse__": "coo", "shape": [2], "row": [0], "col": [5], "dtype": "bool",
            "data": None} if rng.random() < 0.5 else {"__tuple__": odd_value(rng)}


def _paths(tree, prefix=()):
    """Every path into a JSON tree (keys and indices), the root excluded."""
    out = []
    if isinstance(tree, dict):
        items = list(tree.items())
    elif isinstance(tree, list):
        items = list(enumerate(tree))
    else:
        return out
    for k, v in items:
        out.append(prefix + (k,))
        if len(out) < 4000 and len(prefix) < 12:
            out.extend(_paths(v, prefix + (k,)))
    return out


def _at(tree, path):
    for k in path:
        tree = tree[k]
    return tree


def mutate_tree(rng: random.Random, tree, n: int | None = None):
    """``tree`` (a JSON document) with ``n`` random changes: a key deleted, renamed or added,
    a value replaced by :func:`odd_value`, a list entry duplicated, dropped or reordered."""
    tree = copy.deepcopy(tree)
    for _ in range(n or rng.choice([1, 1, 1, 2, 3])):
        paths = _paths(tree)
        if not paths:
            return odd_value(rng)
        path = rng.choice(paths)
        parent, key = _at(tree, path[:-1]), path[-1]
        op = rng.random()
        if op < 0.25:
            del parent[key]
        elif op < 0.60:
            parent[key] = odd_value(rng, parent[key])
        elif op < 0.72 and isinstance(parent, list):
            parent.insert(key, copy.deepcopy(parent[key]))  # a duplicate entry
        elif op < 0.80 and isinstance(parent, dict):
            parent[rng.choice(_ODD_STRINGS)] = parent.pop(key)
        elif op < 0.88 and isinstance(parent[key], list):
            rng.shuffle(parent[key])
        elif isinstance(parent[key], dict):
            parent[key][rng.choice(_ODD_STRINGS)] = odd_value(rng)
        else:
            parent[key] = odd_value(rng)
    return tree


def targeted_damage(rng: random.Random, doc: dict) -> dict:
    """Damage that random changes rarely find: a duplicate edge or node, an unknown level, a
    call of a missing cell, a sparse mask whose indices or shape do not fit."""
    doc = copy.deepcopy(doc)
    graphs = [doc] + [c for c in doc.get("cells", {}).values()]
    g = rng.choice(graphs)
    choice = rng.randrange(7)
    if choice == 0 and g["edges"]:
        e = copy.deepcopy(rng.choice(g["edges"]))
        g["edges"].insert(rng.randrange(len(g["edges"]) + 1), e)
    elif choice == 1 and g["nodes"]:
        n = copy.deepcopy(rng.choice(g["nodes"]))
        g["nodes"].append(n)
    elif choice == 2:
        g["graph"]["level"] = rng.choice(["Layer", "neurons", "", None, 3, ["layer"]])
    elif choice == 3:
        calls = [n for n in g["nodes"] if n.get("kind") == "call"]
        if calls:
            rng.choice(calls)["cell"] = rng.choice(["missing", "", None, 5])
        elif doc.get("cells"):
            del doc["cells"][rng.choice(list(doc["cells"]))]
    elif choice == 4:
        masks = [e for e in g["edges"] if isinstance(e.get("mask"), dict)]
        if masks:
            m = rng.choice(masks)["mask"]
            key = rng.choice(["shape", "row", "col", "dtype", "data"])
            m[key] = rng.choice({
                "shape": [[1], [-1, 3], [2 ** 62, 2 ** 62], [0, 0], ["a", 1], [3.5, 2], None],
                "row": [[-1], [10 ** 9], [0, 0], [0.5], ["a"], None, list(range(50))],
                "col": [[-1], [10 ** 9], [], [True], None],
                "dtype": ["float64", "object", "int8", "nonsense", "", None, "V8"],
                "data": [[1.0], [None], ["a"], [1, 2, 3]],
            }[key])
    elif choice == 5:
        arrays = [(d, k) for d in g["nodes"] for k, v in d.items()
                  if isinstance(v, dict) and "__ndarray__" in v]
        if arrays:
            d, k = rng.choice(arrays)
            d[k] = rng.choice([{"__ndarray__": [[1, 2], [3]], "dtype": "int64"},
                               {"__ndarray__": [1, 2], "dtype": "object"},
                               {"__ndarray__": ["a"], "dtype": "int64"},
                               {"__ndarray__": [1], "dtype": "bogus"},
                               {"__ndarray__": [2 ** 70], "dtype": "int64"},
                               {"__ndarray__": [1, 1, 2], "dtype": "int64"}])
    else:
        key = rng.choice(["inputs", "outputs"])
        g["graph"][key] = rng.choice([["nope"], "x", [None], [[1]], {}, 7])
    return doc


def damage_text(rng: random.Random, text: str, n: int | None = None) -> str:
    """``text`` with random characters inserted, deleted or replaced, a span duplicated or
    cut, or the end cut off."""
    alphabet = "()[]{},:=~|+'\"0123456789 -_.aezN\n\\é\x00<>&/"
    for _ in range(n or rng.choice([1, 1, 2, 3, 6])):
        if not text:
            text = rng.choice(alphabet)
            continue
        i = rng.randrange(len(text))
        op = rng.random()
        if op < 0.25:
            text = text[:i] + text[i + 1:]
        elif op < 0.50:
            text = text[:i] + rng.choice(alphabet) + text[i + 1:]
        elif op < 0.70:
            text = text[:i] + rng.choice(alphabet) + text[i:]
        elif op < 0.80:
            j = min(len(text), i + rng.randint(1, 40))
            text = text[:j] + text[i:j] * rng.choice([1, 2, 50]) + text[j:]
        elif op < 0.90:
            text = text[:i]
        else:  # an odd number, or one past python's 4,300 digits of int(str)
            number = str(rng.choice(_ODD_INTS)) if rng.random() < 0.8 else "9" * 5000
            text = text[:i] + number + text[i:]
    return text


# ---------------------------------------------------------------------- cases by kind
def node_link_case(rng: random.Random):
    """``(text, doc)``: the JSON text of a damaged node-link document (``doc`` the damaged
    document, or None where the text itself is damaged)."""
    name = rng.choice(sorted(base_documents()))
    doc = base_documents()[name]
    r = rng.random()
    if r < 0.35:
        doc = targeted_damage(rng, doc)
    elif r < 0.9:
        doc = mutate_tree(rng, doc)
    else:
        doc = copy.deepcopy(doc)
    text = dumps(doc)
    if r >= 0.9:
        text, doc = damage_text(rng, text), None
    return text, doc


def check_node_link(text: str, doc, directory: str) -> str:
    """Load the text from a file; ``"valid"`` or ``"wrong"`` (a result not what the
    document said), or raise what loading raised."""
    from supernet.io import load_graph

    path = os.path.join(directory, "graph.json")
    write(path, text)
    g = load_graph(path)
    return verdict_graph(g, doc)


def _graph_counts(doc):
    """Node ids and ``(source, target)`` pairs of a node-link document, or None."""
    try:
        nodes = [n["id"] for n in doc["nodes"]]
        edges = [(e["source"], e["target"]) for e in doc["edges"]]
        return nodes, edges
    except (TypeError, KeyError):
        return None


def verdict_graph(g, doc) -> str:
    """``"valid"`` when graph ``g`` holds exactly the nodes and edges the document lists
    (and each of its cells those of its own document), else ``"wrong"``."""
    if doc is None:
        return "valid"
    counts = _graph_counts(doc)
    if counts is None:
        return "wrong"
    nodes, edges = counts
    if len(set(nodes)) != len(nodes) or len(set(edges)) != len(edges):
        return "wrong"  # a duplicate was accepted
    if list(g.nx.nodes) != nodes or sorted(map(str, g.nx.edges)) != sorted(map(str, edges)):
        return "wrong"
    cells = doc.get("cells") or {}
    if sorted(cells) != sorted(g.cells):
        return "wrong"
    for k, c in cells.items():
        if verdict_graph(g.cells[k], c) != "valid":
            return "wrong"
    return "valid"


def graphml_case(rng: random.Random):
    """``(text, expect)``: a damaged GraphML text; ``expect`` the node ids and edges it
    lists where it is well-formed XML, else None."""
    name = rng.choice(sorted(base_graphml()))
    text = base_graphml()[name]
    r = rng.random()
    if r < 0.12:
        return damage_text(rng, text, rng.choice([1, 3, 10])), None
    if r < 0.16:
        return rng.choice(["", "<graphml/>", "<a>" * 5000,
                           ("<?xml version='1.0'?><graphml><graph edgedefault='directed'>"
                            "<node id='a'/></graph></graphml>"),
                           ("<!DOCTYPE x [<!ENTITY a 'aaaaaaaaaa'><!ENTITY b '&a;&a;&a;&a;&a;"
                            "&a;&a;&a;&a;&a;'>]><graphml>&b;</graphml>"),
                           "\x00\xff\xfe"]), None
    root = ET.fromstring(text)
    ns = {"g": "http://graphml.graphdrawing.org/xmlns"}
    graph = root.find("g:graph", ns)
    nodes, edges = graph.findall("g:node", ns), graph.findall("g:edge", ns)
    datas = root.findall(".//g:data", ns)
    keys = root.findall("g:key", ns)
    for _ in range(rng.choice([1, 1, 2, 3])):
        op = rng.randrange(9)
        if op == 0 and nodes:  # a duplicate node id
            graph.append(copy.deepcopy(rng.choice(nodes)))
        elif op == 1 and edges:  # a duplicate edge
            graph.append(copy.deepcopy(rng.choice(edges)))
        elif op == 2 and datas:
            d = rng.choice(datas)
            raw = d.text or ""
            if raw.startswith("json:") and rng.random() < 0.7:
                try:
                    value = json.loads(raw[5:])
                    d.text = "json:" + dumps(mutate_tree(rng, [value])[0])
                except (ValueError, IndexError, RecursionError, KeyError, TypeError):
                    d.text = damage_text(rng, raw)
            else:
                d.text = dumps(odd_value(rng)) if rng.random() < 0.5 else damage_text(rng, raw)
        elif op == 3 and keys:
            k = rng.choice(keys)
            k.set(rng.choice(["attr.type", "for", "id", "attr.name"]),
                  rng.choice(["int", "double", "boolean", "long", "string", "blob", "node",
                              "", "edge"]))
        elif op == 4 and (nodes or edges):
            el = rng.choice(nodes + edges)
            el.set(rng.choice(["id", "source", "target"]), rng.choice(_ODD_STRINGS[:8]))
        elif op == 5 and (nodes or edges):
            el = rng.choice(nodes + edges)
            if el in graph:
                graph.remove(el)
        elif op == 6 and datas:
            d = rng.choice(datas)
            d.set("key", rng.choice(["nope", "level", "", "kind"]))
        elif op == 7:
            graph.set("edgedefault", rng.choice(["undirected", "", "x"]))
        else:
            el = rng.choice([graph, *nodes[:3]])
            extra = ET.SubElement(el, "{http://graphml.graphdrawing.org/xmlns}data")
            extra.set("key", rng.choice([k.get("id") for k in keys] or ["x"]))
            extra.text = rng.choice(["json:[", "json:" + dumps(deep(rng, 3000)), "7",
                                     "json:{\"__sparse__\": \"coo\"}"])
    text = ET.tostring(root, encoding="unicode")
    expect = ([n.get("id") for n in graph.findall("g:node", ns)],
              [(e.get("source"), e.get("target")) for e in graph.findall("g:edge", ns)])
    return text, expect


def check_graphml(text: str, expect, directory: str) -> str:
    from supernet.io import read_graphml

    path = os.path.join(directory, "graph.graphml")
    write(path, text)
    g = read_graphml(path)
    if expect is None:
        return "valid"
    nodes, edges = expect
    if len(set(nodes)) != len(nodes) or len(set(edges)) != len(edges):
        return "wrong"
    if sorted(g.nx.nodes) != sorted(nodes) or sorted(map(str, g.nx.edges)) != sorted(
            map(str, edges)):
        return "wrong"
    return "valid"


def text_case(rng: random.Random):
    """``(space, text, kwargs)``: a damaged or random text form of a space."""
    space = rng.choice(sorted(base_texts()))
    text, kwargs = base_texts()[space]
    r = rng.random()
    if r < 0.7:
        text = damage_text(rng, text)
    elif r < 0.8:
        text = "".join(rng.choice("()[],'=~|+ 0123456789abcnoreGtypmal_") for _ in
                       range(rng.randint(0, 80)))
    elif r < 0.9:  # deep nesting, long texts
        depth = rng.choice([100, 1000, 5000, 50000])
        text = rng.choice(["Genotype(normal=" + "[" * depth,
                           "Genotype(normal=" + "(" * depth + ")" * depth + ")",
                           "|" + "+" * depth, "~" * depth, "gcn~0 " * (depth // 10 + 1),
                           "Genotype(normal=[" + "('none', 0), " * depth + "])",
                           "Genotype(normal=range(0, 10**30))",
                           "Genotype(normal=[('none', 0)], normal_concat=range(2, "
                           + str(10 ** rng.choice([5, 9, 18])) + "), reduce=[('none', 0), "
                           "('none', 1)], reduce_concat=[2])"])
    else:
        space = rng.choice(sorted(base_texts()))  # a valid text of another space
    if rng.random() < 0.05:
        text = rng.choice([None, 5, b"abc", ["x"], 1.5])
    return space, text, kwargs


def check_text(space, text, kwargs) -> str:
    from supernet.spaces import decode, encode

    g = decode(space, text, **kwargs)
    # accepted: the graph's own text form reads back as the same graph
    return "valid" if decode(space, encode(g), **kwargs).same_as(g) else "wrong"


_LOG_BASES: dict = {}


def _log_bases():
    """Edit logs made on small graphs of the layer, channel and neuron levels:
    ``{name: (start graph, log document)}``."""
    if not _LOG_BASES:
        from supernet.edits import (
            AddConnections,
            AddEdge,
            AddNode,
            AddOp,
            AddUnits,
            Editor,
            RemoveConnections,
            RemoveEdge,
            RemoveOp,
            RemoveUnits,
            UngateConnections,
        )
        from supernet.spaces import create_space, space_example

        g = create_space("darts", **space_example("darts").kwargs)
        start = g.copy()
        ed = Editor(g, seed=0)
        cell = g.cells["normal"]
        (u, v), = [e for e in cell.gate_edges()][:1]
        ed.apply(RemoveOp(u, v, cell.edge(u, v)["ops"][1], cell="normal"))
        ed.apply(AddOp(u, v, "sep_conv_7x7", cell="normal"))
        ed.apply(AddNode("extra", channels=cell.node(v).get("channels"), cell="normal"))
        ed.apply(AddEdge(u, "extra", ["skip_connect"], cell="normal"))
        ed.apply(RemoveEdge(u, "extra", cell="normal"))
        _LOG_BASES["layer"] = (start, {"edits": ed.log.to_list()})
        for name in ("neuron_mlp", "channel_cnn"):
            g = create_space(name, **space_example(name).kwargs)
            start = g.copy()
            ed = Editor(g, seed=0)
            units = [n for n in g.nx.nodes if g.node(n).get("kind") == "units"]
            first = units[0]
            ed.apply(AddUnits(first, count=2, init="random"))
            ids = g.node(first)["units"]
            ed.apply(RemoveUnits({first: [int(ids[0])]}))
            a, b, d = next((a, b, d) for a, b, d in g.nx.edges(data=True)
                           if d.get("kind") in ("dense", "conv") and d["mask"].nnz)
            coo = d["mask"].tocoo()
            dst, src = [int(g.node(b)["units"][coo.row[0]])], [int(g.node(a)["units"][coo.col[0]])]
            ed.apply(RemoveConnections(a, b, dst=dst, src=src))
            ed.apply(AddConnections(a, b, dst=dst, src=src))
            if g.edge(a, b).get("gated"):
                ed.apply(UngateConnections([[a, b]]))
            _LOG_BASES[name] = (start, {"edits": ed.log.to_list()})
    return _LOG_BASES


def edit_log_case(rng: random.Random):
    """``(name, text)``: a damaged edit log of one of :func:`_log_bases`."""
    name = rng.choice(sorted(_log_bases()))
    doc = _log_bases()[name][1]
    r = rng.random()
    if r < 0.8:
        edits = doc["edits"]
        i = rng.randrange(len(edits))
        if rng.random() < 0.7:
            record = mutate_tree(rng, [edits[i]]) if rng.random() < 0.9 else [odd_value(rng)]
            doc = {"edits": edits[:i] + (record if isinstance(record, list) else [record])
                   + edits[i + 1:]}
        else:
            doc = mutate_tree(rng, doc)
        text = dumps(doc)
    else:
        text = damage_text(rng, json.dumps(doc))
    return name, text


def check_edit_log(name: str, text: str, directory: str) -> str:
    from supernet.edits import EditLog

    path = os.path.join(directory, "edits.json")
    write(path, text)
    log = EditLog.load(path)
    log.replay(_log_bases()[name][0].copy())
    return "valid"


def space_options_case(rng: random.Random):
    """``(space, kwargs)``: the example options of a space with one or two set to a bad
    value (huge, negative, zero, float, bool, string, a list of those)."""
    import inspect

    from supernet.spaces import SPACES, space_example

    space = rng.choice(bundled_spaces())
    kwargs = dict(space_example(space).kwargs)
    params = [p for p in inspect.signature(SPACES.resolve(space).build).parameters]
    for _ in range(rng.choice([1, 1, 2])):
        key = rng.choice(params)
        value = rng.choice([2 ** 63, 2 ** 31, 10 ** 9, -(2 ** 63), -1, 0, 0.5, 1e300,
                            float("nan"), float("inf"), True, False, "8", "", None, [],
                            [2 ** 63], (2 ** 40, 3), [-1], [0.5, 1], {"a": 1}, "relu", 10 ** 6,
                            100000])
        kwargs[key] = value
    return space, kwargs


def check_space_options(space, kwargs) -> str:
    from supernet.spaces import create_space

    create_space(space, **kwargs)
    return "valid"


# ---------------------------------------------------------------------- configs
def _config_bases() -> list:
    """Valid configs to damage: the packaged default and a few strategies, spaces, data
    sets and budgets."""
    from supernet.config import RunConfig

    base = RunConfig().to_dict()
    variants = [{}, {"strategy": {"name": "gdas", "tau_max": 5.0}},
                {"strategy": {"relaxation": {"name": "gumbel_max"}, "discretization": "argmax"}},
                {"space": {"name": "nasbench201", "C": 8, "N": 1}, "data": {"name": "digits"}},
                {"strategy": {"name": "unit_pdarts", "target": {"metric": "params",
                                                                "fraction": 0.5}},
                 "space": {"name": "neuron_mlp"}},
                {"train": {"mode": "finetune", "epochs": 3, "options": {"lr_min": 0.001}}},
                {"search": {"epochs": None, "max_steps_per_epoch": 5}, "imports": []}]
    out = []
    for v in variants:
        doc = json.loads(json.dumps(base))
        for k, val in v.items():
            if isinstance(val, dict) and isinstance(doc.get(k), dict) and k not in (
                    "strategy", "space", "data"):
                doc[k].update(val)
            else:
                doc[k] = val
        out.append(doc)
    return out


def config_case(rng: random.Random):
    """``(file name, text)``: a config file (YAML or JSON) with its tree or its text
    damaged."""
    import yaml

    doc = rng.choice(_config_bases())
    r = rng.random()
    if r < 0.6:
        doc = mutate_tree(rng, doc)
    as_json = rng.random() < 0.3
    try:
        text = json.dumps(doc) if as_json else yaml.safe_dump(doc)
    except (TypeError, ValueError, yaml.YAMLError):
        text = repr(doc)
    if r >= 0.6:
        text = damage_text(rng, text)
    if rng.random() < 0.05:
        text = rng.choice(["", "null\n", "false\n", "0\n", "[]\n", "- a\n", "\"x\"\n",
                           "seed: !!python/object/apply:os.getcwd []\n", "a: &x [*x]\n",
                           "train: {lr: .nan}\n", "search: {epochs: 2e100}\n"])
    return ("c.json" if as_json else "c.yaml"), text


def check_config(name: str, text: str, directory: str) -> str:
    from supernet.config import load_config

    load_config(write(os.path.join(directory, name), text))
    return "valid"


def overrides_case(rng: random.Random):
    """``--set key=value`` strings: known and unknown keys, odd YAML values."""
    keys = ["search.epochs", "search.batch_size", "train.lr", "train.mode", "seed", "space.C",
            "space.name", "strategy.name", "strategy.arch_lr", "strategy.target.fraction",
            "data.val_fraction", "data.name", "train.options.lr_min", "imports", "device",
            "out", "search", "train.epochs.x", "nope", "strategy.config.w_lr", ".", ""]
    values = ["1", "-1", "0", "1e10", "1e400", ".nan", "-.inf", "abc", "[1, 2]", "{a: 1}",
              "null", "true", "", "'", "[", "2**63", "9" * 400, "!!binary aGk=", "&a [*a]",
              "darts", "gdas", "0.5", "cuda:99"]
    return [f"{rng.choice(keys)}={rng.choice(values)}" if rng.random() < 0.95
            else rng.choice(keys) for _ in range(rng.randint(1, 3))]


def check_overrides(items) -> str:
    from supernet.config import RunConfig, apply_overrides

    apply_overrides(RunConfig(), list(items))
    return "valid"


# ---------------------------------------------------------------------- tensor files
_TENSORS: dict = {}


def _tensor_bases(directory: str) -> dict:
    """A search checkpoint and a weights file of a tiny search (made once)."""
    if not _TENSORS:
        import torch

        from supernet import compile
        from supernet.io import save_weights
        from supernet.search import BilevelSearch
        from supernet.spaces import create_space

        g = create_space("nasbench201", C=4, N=1)
        x, y = torch.randn(16, 3, 8, 8), torch.arange(16) % 10
        ckdir = os.path.join(directory, "ck")
        BilevelSearch(g, (x, y), (x, y), strategy="darts",
                      config={"epochs": 1, "batch_size": 8, "steps_per_epoch": 1,
                              "checkpoint_dir": ckdir, "eval_batches": 0}).run()
        weights = os.path.join(directory, "w.safetensors")
        save_weights(compile(create_space("nasbench201", C=4, N=1)), weights)
        for kind, path in (("checkpoint", os.path.join(ckdir, "last.safetensors")),
                           ("weights", weights)):
            with open(path, "rb") as f:
                _TENSORS[kind] = f.read()
    return _TENSORS


def tensor_file_case(rng: random.Random):
    """``(kind, seed)``: a checkpoint or a weights file with its bytes damaged."""
    return rng.choice(["checkpoint", "weights"]), rng.getrandbits(32)


def check_tensor_file(kind: str, seed: int, directory: str) -> str:
    import torch

    from supernet.io import load_tensors
    from supernet.search.checkpoint import load_checkpoint

    good = _tensor_bases(directory)[kind]
    bad = _damage_bytes(random.Random(seed), good)
    path = write_bytes(os.path.join(directory, f"{kind}.safetensors"), bad)
    loaded = load_checkpoint(path) if kind == "checkpoint" else load_tensors(path, "weights")
    original = write_bytes(os.path.join(directory, f"{kind}-good.safetensors"), good)
    want = load_checkpoint(original) if kind == "checkpoint" else load_tensors(original,
                                                                               "weights")

    def same(a, b):
        if torch.is_tensor(a):
            return torch.is_tensor(b) and a.dtype == b.dtype and torch.equal(a, b)
        if isinstance(a, dict):
            return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k])
                                                                        for k in a)
        if isinstance(a, (list, tuple)):
            return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
        return a == b or (a != a and b != b)

    return "valid" if same(loaded, want) else "wrong"  # bytes the checksums do not cover


def write_bytes(path: str, data: bytes) -> str:
    with open(path, "wb") as f:
        f.write(data)
    return path


# ---------------------------------------------------------------------- the command line
_RUN: dict = {}


def tiny_run(directory: str) -> str:
    """A finished run directory of the packaged search on a tiny budget (made once)."""
    if "dir" not in _RUN:
        from supernet.cli import main as cli

        out = os.path.join(directory, "run")
        args = ["search", "--out", out, "--quiet", "--set", "search.epochs=1",
                "--set", "search.max_steps_per_epoch=2", "--set", "search.batch_size=16",
                "--set", "train.epochs=1", "--set", "space.C=4", "--set", "space.layers=3",
                "--set", "space.steps=2", "--set", "space.multiplier=2",
                "--set", "data.num_samples=600", "--set", "pictures=false"]
        err = io.StringIO()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            code = cli(args)
        if code != 0:
            raise RuntimeError(f"the tiny search of the command-line fuzz failed: "
                               f"{err.getvalue()[-500:]}")
        _RUN["dir"] = out
    return _RUN["dir"]


def _damage_bytes(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return b"\x00"
    r = rng.random()
    i = rng.randrange(len(data))
    if r < 0.3:
        return data[:i]
    if r < 0.7:
        return data[:i] + bytes([data[i] ^ (1 << rng.randrange(8))]) + data[i + 1:]
    return data[:i] + os.urandom(rng.randint(1, 16)) + data[i:]


def cli_case(rng: random.Random, files_only: bool = False):
    """``(argv kind, damage)``: what to run (``show`` of a file, ``show``/``train``/``export``
    of a run directory, unless ``files_only``) and how to damage it; made concrete by
    :func:`check_cli`."""
    commands = ["show_json", "show_json", "show_graphml"]
    command = rng.choice(commands if files_only else commands + ["show_dir", "train",
                                                                 "export"])
    return command, rng.randrange(2 ** 31)


def check_cli(command: str, seed: int, directory: str) -> str:
    """Run ``supernet.cli.main`` on the damaged input; ``"clear"`` for exit code 2 with a
    ``supernet: error:`` line, ``"valid"`` for 0, else raise."""
    import shutil

    from supernet.cli import main as cli

    rng = random.Random(seed)
    work = os.path.join(directory, "case")
    if os.path.exists(work):
        shutil.rmtree(work)
    if command == "show_json":
        text, _ = node_link_case(rng)
        path = os.path.join(directory, "g.json")
        write(path, text)
        argv = ["show", path]
    elif command == "show_graphml":
        text, _ = graphml_case(rng)
        path = os.path.join(directory, "g.graphml")
        write(path, text)
        argv = ["show", path]
    else:
        run = tiny_run(os.path.dirname(directory.rstrip("/")) or directory)
        shutil.copytree(run, work, ignore=shutil.ignore_patterns("tensorboard", "pictures",
                                                                 "export"))
        names = ["architecture.json", "config.yaml", "report.json", "weights.safetensors",
                 "search_weights.safetensors"]
        name = rng.choice(names)
        path = os.path.join(work, name)
        r = rng.random()
        if r < 0.25:
            os.remove(path)
        elif r < 0.35:
            os.remove(path)
            os.mkdir(path)
        elif r < 0.7 and name.endswith(".json"):
            write(path, dumps(mutate_tree(rng, json.loads(Path(path).read_text()))))
        elif r < 0.8 and name == "config.yaml":
            lines = Path(path).read_text().splitlines()
            i = rng.randrange(len(lines))
            lines[i] = damage_text(rng, lines[i])
            write(path, "\n".join(lines))
        else:
            Path(path).write_bytes(_damage_bytes(rng, Path(path).read_bytes()))
        if command == "show_dir":
            argv = ["show", work]
        elif command == "train":
            argv = ["train", "--run", work, "--set", "train.epochs=1"]
        else:
            argv = ["export", "--run", work, "--to", os.path.join(directory, "export")]
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        try:
            code = cli(argv)
        except SystemExit as exc:  # argparse refused the command line itself
            raise RuntimeError(f"SystemExit {exc.code}: {err.getvalue()[-300:]}") from None
    if code == 2 and "supernet: error:" in err.getvalue():
        return "clear"
    if code == 0:
        return "valid"
    raise RuntimeError(f"exit code {code}: {err.getvalue()[-300:]}")


CASES = {
    "node_link": (node_link_case, check_node_link, True),
    "graphml": (graphml_case, check_graphml, True),
    "text": (text_case, check_text, False),
    "edit_log": (edit_log_case, check_edit_log, True),
    "space_options": (space_options_case, check_space_options, False),
    "config": (config_case, check_config, True),
    "overrides": (lambda rng: (overrides_case(rng),), check_overrides, False),
    "tensor_file": (tensor_file_case, check_tensor_file, True),
    "cli": (cli_case, check_cli, True),
}


def run_case(kind: str, case, directory: str, limit: float = 10.0):
    """``(outcome, detail, seconds)``: outcome one of ``clear``, ``valid``, ``wrong``, ``raw``,
    ``hang``; detail the exception's type and message for ``raw``."""
    _, check, needs_dir = CASES[kind]
    args = (*case, directory) if needs_dir else tuple(case)
    t = time.perf_counter()
    try:
        with time_limit(limit), warnings_quiet():
            outcome, detail = check(*args), ""
    except Hang:
        outcome, detail = "hang", ""
    except SupernetError as exc:
        outcome, detail = "clear", str(exc)
    except RecursionError as exc:  # before Exception: raw, never swallowed
        outcome, detail = "raw", f"RecursionError: {str(exc)[:200]}"
    except Exception as exc:  # noqa: BLE001 - counting what escapes is the point
        outcome, detail = "raw", f"{type(exc).__name__}: {str(exc)[:200]}"
    return outcome, detail, time.perf_counter() - t


@contextlib.contextmanager
def warnings_quiet():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# ---------------------------------------------------------------------- the table
def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of seconds")
    parser.add_argument("--cases", type=int, default=20000, help="cases in all")
    parser.add_argument("--limit", type=float, default=10.0,
                        help="seconds after which a case counts as a hang")
    parser.add_argument("--cli-limit", type=float, default=60.0,
                        help="the same for a whole command (an export of the tiny run "
                             "writes ONNX and TorchScript: about 7 s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kinds", default=",".join(KINDS),
                        help=f"comma-separated input kinds, of {', '.join(KINDS)}")
    args = parser.parse_args(argv)
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in CASES]
    if unknown:
        parser.error(f"unknown kind(s) {unknown}; choose from {list(KINDS)}")
    total = 60 if args.quick else args.cases
    # the command line runs whole commands: a smaller share of the cases
    weights = {k: (0.05 if k == "cli" else 1.0) for k in kinds}
    per = {k: max(1, round(total * w / sum(weights.values()))) for k, w in weights.items()}
    if args.quick and "cli" in per:
        per["cli"] = 4
    rng = random.Random(args.seed)
    rows, raws = {}, {}
    slowest = {}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as top:
        for kind in kinds:
            gen = CASES[kind][0]
            if kind == "cli" and args.quick:  # no tiny search to damage: graph files only
                gen = functools.partial(cli_case, files_only=True)
            counts = {"cases": 0, "clear": 0, "valid": 0, "raw": 0, "hang": 0, "wrong": 0}
            case_dir = os.path.join(top, kind)
            os.makedirs(case_dir)
            if kind == "cli" and not args.quick:  # the run directory to damage, untimed
                tiny_run(top)
            for _ in range(per[kind]):
                case = gen(rng)
                limit = args.cli_limit if kind == "cli" else args.limit
                outcome, detail, secs = run_case(kind, case, case_dir, limit)
                counts["cases"] += 1
                counts[outcome] += 1
                slowest[kind] = max(slowest.get(kind, 0.0), secs)
                if outcome in ("raw", "hang", "wrong"):
                    key = detail.split(":")[0] + ":" + detail[len(detail.split(":")[0]) + 1:][:90]
                    raws.setdefault(kind, {}).setdefault(f"{outcome} {key}", _short(case))
            rows[kind] = counts
    wall = time.perf_counter() - t0
    print(f"# Malformed inputs ({sum(r['cases'] for r in rows.values())} cases, seed "
          f"{args.seed}, limit {args.limit:g} s per case, {args.cli_limit:g} s per command, "
          f"{wall:.0f} s in all)\n")
    print("| input | cases | clear error | valid | raw exception | hang | accepted wrong "
          "| slowest case (s) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for kind, c in rows.items():
        print(f"| {kind} | {c['cases']} | {c['clear']} | {c['valid']} | {c['raw']} | "
              f"{c['hang']} | {c['wrong']} | {slowest[kind]:.2f} |")
    if raws:
        print("\nFirst distinct failures:\n")
        for kind, found in raws.items():
            for i, (msg, case) in enumerate(found.items()):
                if i >= 8:
                    print(f"- {kind}: ... ({len(found)} distinct in all)")
                    break
                print(f"- {kind}: `{msg}` from `{case}`")
    print(f"\nload average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return rows


def _short(case) -> str:
    text = repr(case)
    return text if len(text) < 160 else text[:160] + "..."


if __name__ == "__main__":
    main()
