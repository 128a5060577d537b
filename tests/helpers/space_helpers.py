"""Helpers shared by the search-space tests: oracle comparison and file round trips."""

import supernet


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def type_counts(module, types):
    """How many submodules are instances of each of ``types`` (by class name)."""
    return {t.__name__: sum(isinstance(m, t) for m in module.modules()) for t in types}


def load_by_position(dst, src):
    """Copy ``src``'s parameters and buffers into ``dst`` in enumeration order (the two must
    enumerate tensors of the same shapes in the same order)."""
    d, s = dst.state_dict(), src.state_dict()
    assert [tuple(v.shape) for v in d.values()] == [tuple(v.shape) for v in s.values()]
    dst.load_state_dict(dict(zip(d.keys(), s.values())))


def assert_files_round_trip(graph, tmp_path):
    """The graph saves to node-link JSON and GraphML and loads back identical."""
    supernet.save_graph(graph, tmp_path / "g.json")
    supernet.write_graphml(graph, tmp_path / "g.graphml")
    assert supernet.load_graph(tmp_path / "g.json").same_as(graph)
    assert supernet.read_graphml(tmp_path / "g.graphml").same_as(graph)
