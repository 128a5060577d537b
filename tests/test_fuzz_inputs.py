"""Malformed inputs end in a clear supernet error, fast: node-link JSON and GraphML graph
files, genotype and arch strings, edit logs, space options, config files and overrides,
checkpoints and weights files, damaged at random from valid
inputs of every registered space (the generators of benchmarks/fuzz_inputs.py, driven by
hypothesis). A case passes when it is refused with a SupernetError or accepted as what it
says; any other exception, a case over the time bound, or a wrong acceptance fails."""

import inspect
import json
import math
import os
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import fuzz_inputs as fuzz

from supernet.errors import (
    ConfigError,
    GenotypeError,
    SerializationError,
    SupernetError,
)

#: Seconds a case may take (most take milliseconds); a case past LIMIT is stopped as a hang.
BOUND, LIMIT = 2.0, 10.0


def fuzz_settings(n: int):
    return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("fuzz"))


def check(kind: str, case, workdir: str) -> str:
    outcome, detail, seconds = fuzz.run_case(kind, case, workdir, LIMIT)
    assert outcome in ("clear", "valid"), f"{outcome}: {detail} from {fuzz._short(case)}"
    assert seconds < BOUND, f"{seconds:.2f} s for {fuzz._short(case)}"
    return outcome


# ---------------------------------------------------------------------- 2,960 cases
@fuzz_settings(600)
@given(rng=st.randoms(use_true_random=False))
def test_damaged_node_link_documents(rng, workdir):
    check("node_link", fuzz.node_link_case(rng), workdir)


@fuzz_settings(500)
@given(rng=st.randoms(use_true_random=False))
def test_damaged_graphml_files(rng, workdir):
    check("graphml", fuzz.graphml_case(rng), workdir)


@fuzz_settings(100)
@given(text=st.text(alphabet="<>/=\"' agraphmlnodeidkyst:x&;#\n", max_size=200))
def test_random_xml(text, workdir):
    check("graphml", (text, None), workdir)


@fuzz_settings(300)
@given(rng=st.randoms(use_true_random=False))
def test_damaged_config_files(rng, workdir):
    check("config", fuzz.config_case(rng), workdir)


@fuzz_settings(200)
@given(rng=st.randoms(use_true_random=False))
def test_odd_overrides(rng, workdir):
    check("overrides", (fuzz.overrides_case(rng),), workdir)


@fuzz_settings(60)
@given(rng=st.randoms(use_true_random=False))
def test_damaged_checkpoints_and_weights_are_refused(rng, workdir):
    # valid only if what loads is exactly what was saved (bytes no checksum covers)
    check("tensor_file", fuzz.tensor_file_case(rng), workdir)


@fuzz_settings(400)
@given(rng=st.randoms(use_true_random=False))
def test_damaged_genotypes_and_arch_strings(rng, workdir):
    check("text", fuzz.text_case(rng), workdir)


@fuzz_settings(200)
@given(space=st.sampled_from(sorted(fuzz.base_texts())),
       text=st.text(alphabet="()[],'\"=~|+:p 0123456789-GenotypnormalcduxsknVgi_", max_size=120))
def test_random_texts(space, text, workdir):
    check("text", (space, text, fuzz.base_texts()[space][1]), workdir)


@fuzz_settings(300)
@given(rng=st.randoms(use_true_random=False))
def test_damaged_edit_logs(rng, workdir):
    check("edit_log", fuzz.edit_log_case(rng), workdir)


_NUMBERS = st.one_of(st.integers(-2 ** 70, 2 ** 70), st.sampled_from([0, -1, 2 ** 31, 2 ** 63]),
                     st.floats(allow_nan=True, allow_infinity=True), st.booleans())
_OPTION = st.one_of(_NUMBERS, st.text(max_size=6), st.none(),
                    st.lists(_NUMBERS, max_size=3), st.dictionaries(st.text(max_size=2), _NUMBERS,
                                                                    max_size=1))


def _params(space):
    from supernet.spaces import SPACES

    return sorted(inspect.signature(SPACES.resolve(space).build).parameters)


@fuzz_settings(300)
@given(data=st.data())
def test_space_options(data, workdir):
    from supernet.spaces import space_example

    space = data.draw(st.sampled_from(fuzz.bundled_spaces()))
    kwargs = dict(space_example(space).kwargs)
    kwargs[data.draw(st.sampled_from(_params(space)))] = data.draw(_OPTION)
    check("space_options", (space, kwargs), workdir)


# ---------------------------------------------------------------------- what is accepted
def test_the_undamaged_inputs_are_accepted_as_they_are(workdir):
    from supernet.io import from_node_link

    for name, doc in fuzz.base_documents().items():
        assert from_node_link(doc).same_as(fuzz.base_graphs()[name]), name
        assert check("node_link", (json.dumps(doc), doc), workdir) == "valid"
    for name, text in fuzz.base_graphml().items():
        assert check("graphml", (text, None), workdir) == "valid", name
    for space, (text, kwargs) in fuzz.base_texts().items():
        assert check("text", (space, text, kwargs), workdir) == "valid", space
    for name, (_, doc) in fuzz._log_bases().items():
        assert check("edit_log", (name, json.dumps(doc)), workdir) == "valid", name


def test_a_duplicate_edge_or_node_is_refused_not_merged(tmp_path):
    from supernet.io import from_node_link, read_graphml

    doc = fuzz.base_documents()["darts:discrete"]
    cell = json.loads(json.dumps(doc))
    edges = cell["cells"]["normal"]["edges"]
    edges.append(dict(edges[0]))
    u, v = edges[0]["source"], edges[0]["target"]
    with pytest.raises(SerializationError, match=rf"cells\['normal'\]: edges\[{len(edges) - 1}\]: "
                                                 rf"edge {u}->{v} appears twice"):
        from_node_link(cell)
    text = fuzz.base_graphml()["neuron_mlp"]
    node = text[text.index("<node "):text.index("</node>") + len("</node>")]
    path = tmp_path / "g.graphml"
    path.write_text(text.replace(node, node + node))
    with pytest.raises(SerializationError, match=r"g.graphml: node id 'x' appears twice"):
        read_graphml(path)
    edge = text[text.index("<edge "):text.index("</edge>") + len("</edge>")]
    path.write_text(text.replace(edge, edge + edge))
    with pytest.raises(SerializationError, match=r"edge x->h1 appears twice"):
        read_graphml(path)
    path.write_text(text.replace(node, ""))  # networkx would add the node its edges name
    with pytest.raises(SerializationError, match=r"edge x->h1 names node 'x', which the file "
                                                 "does not list"):
        read_graphml(path)


def test_a_document_of_a_newer_format_version_says_so():
    from supernet.io import from_node_link

    doc = dict(fuzz.base_documents()["gnn"], format_version=2)
    with pytest.raises(SerializationError, match="format_version 2; this supernet reads "
                                                 "versions 1 to 1; the file was written by a "
                                                 "newer supernet"):
        from_node_link(doc)


def test_a_sparse_mask_that_does_not_fit_its_shape_names_the_edge():
    from supernet.io import from_node_link

    doc = json.loads(json.dumps(fuzz.base_documents()["neuron_mlp"]))
    edge = doc["edges"][0]
    edge["mask"]["row"][0] = edge["mask"]["shape"][0]
    with pytest.raises(SerializationError, match=rf"edges\[0\] x->h1.mask: sparse row index "
                                                 rf"{edge['mask']['shape'][0]} is outside"):
        from_node_link(doc)
    edge["mask"]["row"][0] = 0.5
    with pytest.raises(SerializationError, match=r"sparse row index \[0\] is 0.5, not an int"):
        from_node_link(doc)


def test_huge_space_options_are_refused_at_once_naming_the_key_and_the_bound():
    from supernet.spaces import MAX_OPTION, create_space, decode

    for space, key in (("darts", "layers"), ("nasbench201", "N"), ("gnn", "nodes"),
                       ("neuron_mlp", "in_features")):
        t = time.perf_counter()
        with pytest.raises(ConfigError, match=rf"space '{space}': {key}=9223372036854775808 is "
                                              rf"past {MAX_OPTION}, the bound"):
            create_space(space, **{key: 2 ** 63})
        assert time.perf_counter() - t < 0.5
    with pytest.raises(ConfigError, match="darts: layers=2000 is past its bound 1024"):
        create_space("darts", layers=2000)
    with pytest.raises(ConfigError, match=r"neuron_mlp: its sizes make 4295032832 connections, "
                                          r"more than the 67108864"):
        create_space("neuron_mlp", in_features=65536, hidden=[65536], num_classes=1, skip=False)
    with pytest.raises(GenotypeError, match="channel_cnn: stage 2: token '4000000000p:8' is not"):
        decode("channel_cnn", "4 4:4 4000000000p:8")


def test_the_genotype_parser_takes_time_linear_in_the_text():
    from search_spaces.darts import parse_genotype

    def seconds(n):
        pairs = "('sep_conv_3x3', 0), ('skip_connect', 1), " * n
        text = (f"Genotype(normal=[{pairs}], normal_concat=[2], reduce=[('max_pool_3x3', 0), "
                "('max_pool_3x3', 1)], reduce_concat=[2])")
        best = math.inf
        for _ in range(2):
            t = time.perf_counter()
            assert parse_genotype(text).steps("normal") == n
            best = min(best, time.perf_counter() - t)
        return len(text), best

    size, small = seconds(3000)
    size8, large = seconds(24000)
    assert size8 > 1_000_000 and size8 > 7.9 * size
    assert large < 30 * small, (small, large)  # a quadratic parser takes 64 times as long


def test_deep_nesting_is_refused_naming_the_position():
    from search_spaces.darts import parse_genotype

    with pytest.raises(GenotypeError, match="'\\[' at character 24 opens a list or tuple "
                                            "nested 9 deep"):
        parse_genotype("Genotype(normal=" + "[" * 100000)
    text = ("Genotype(normal=[('none', 0), ('none', 1)], normal_concat=range(2, {}), "
            "reduce=[('none', 0), ('none', 1)], reduce_concat=[2])")
    with pytest.raises(GenotypeError, match=r"normal_concat range\(2, 10{17}\): lists more "
                                            "nodes than the cell's 3"):
        parse_genotype(text.format(10 ** 17))
    with pytest.raises(GenotypeError, match="at character 67; expected an integer of at most "
                                            "18 digits"):
        parse_genotype(text.format("1" + "0" * 5000))


def test_an_edit_log_names_the_file_the_record_and_the_field(tmp_path):
    from supernet.edits import EditLog

    start, doc = fuzz._log_bases()["neuron_mlp"]
    doc = json.loads(json.dumps(doc))
    doc["edits"][0]["count"] = 2 ** 40
    path = tmp_path / "edits.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(SerializationError, match=r"edits.json: edits\[0\] \(add_units\): field "
                                                 r"'count' is 1099511627776, outside"):
        EditLog.load(path)
    doc["edits"][0]["count"] = 2
    doc["edits"][1]["units"] = {"h1": [0.5]}
    path.write_text(json.dumps(doc))
    with pytest.raises(SupernetError, match=r"edits\[1\] \(remove_units\) cannot be replayed: "
                                            r"unit ids must be integers, got \[0.5\]"):
        EditLog.load(path).replay(start.copy())


def test_show_of_a_run_directory_without_its_architecture_says_so(tmp_path, capsys):
    from supernet.cli import main

    (tmp_path / "config.yaml").write_text("seed: 0\n")
    assert main(["show", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"supernet: error: {tmp_path}: a directory without architecture.json" in err
    path = tmp_path / "g.xml"  # GraphML by its content, whatever its name
    path.write_text(fuzz.base_graphml()["gnn"].replace("<node ", "<node foo='1' ", 1))
    assert main(["show", str(path)]) == 0
    assert "Graph(level='layer', name='gnn'" in capsys.readouterr().out
    assert os.path.exists(path)


def test_the_long_fuzz_prints_its_table(capsys):
    rows = fuzz.main(["--quick", "--kinds", "node_link,text,cli"])
    out = capsys.readouterr().out
    assert "| input | cases | clear error | valid | raw exception | hang |" in out
    assert "load average:" in out
    assert list(rows) == ["node_link", "text", "cli"] and rows["cli"]["cases"] == 4
    assert all(r["cases"] == r["clear"] + r["valid"] > 0 for r in rows.values()), rows
    assert all(r["raw"] == r["hang"] == r["wrong"] == 0 for r in rows.values()), rows
