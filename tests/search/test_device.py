"""Where searches run: the ``device`` setting, batches moved to it, and modules that grow
new tensors where their existing ones live.

There is no GPU here, so placement is checked on PyTorch's ``meta`` device, which refuses
to mix with CPU tensors exactly as a GPU does: a module moved to ``meta`` that builds a new
op on the CPU fails its next forward.
"""

from collections import namedtuple

import pytest
import torch
from search_graphs import darts_like, data, small_config

import supernet
from search_spaces import create_space
from supernet.config import RunConfig
from supernet.edits import Editor
from supernet.edits.layer import AddEdge, AddNode, AddOp
from supernet.edits.units import AddUnits
from supernet.errors import ConfigError
from supernet.search import BilevelSearch, SearchConfig
from supernet.search.relaxations import PartialChannels, Sigmoid, mark_partial, use_relaxation
from supernet.train.data import resolve_device, to_device

META = torch.device("meta")


def _devices(module) -> set[str]:
    return {t.device.type for t in (*module.parameters(), *module.buffers())}


def _on_meta(graph):
    torch.manual_seed(0)
    return supernet.compile(graph).to(META)


# ---------------------------------------------------------------------- settings
def test_device_settings_name_the_key_and_what_is_accepted():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ConfigError, match=r"search config: device='gpu0' is not a device; "
                                          r"use 'auto', 'cpu', 'cuda' or 'cuda:N'"):
        SearchConfig(device="gpu0")
    with pytest.raises(ConfigError, match=r"search config: device=3: must be a string"):
        SearchConfig(device=3)
    with pytest.raises(ConfigError, match=r"config key 'device'='tpu' is not a device"):
        RunConfig.from_dict({"device": "tpu"})
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match=r"device='cuda:0': CUDA is not available here"):
            SearchConfig(device="cuda:0")


def test_to_device_moves_every_tensor_of_a_batch():
    Pair = namedtuple("Pair", "a b")

    class Graphs:  # a PyG-like batch object
        def __init__(self, x):
            self.x = x

        def to(self, device):
            return Graphs(self.x.to(device))

    batch = ((torch.ones(2), [torch.zeros(1)]), {"edge_index": torch.zeros(2, 3)},
             Pair(torch.ones(1), 7), Graphs(torch.ones(3)))
    out = to_device(batch, META)
    (x, (z,)), ctx, pair, graphs = out
    assert {x.device, z.device, ctx["edge_index"].device, pair.a.device,
            graphs.x.device} == {META}
    assert isinstance(pair, Pair) and pair.b == 7


def test_search_runs_on_the_configured_device():
    search = BilevelSearch(darts_like(), data(), strategy="darts",
                           config=small_config(device="cpu"))
    assert search.device == torch.device("cpu")
    result = search.run()
    assert _devices(result.module) == {"cpu"} and len(result.history) == 1


# ---------------------------------------------------------------------- placement
@pytest.mark.parametrize("init", ["random", "zero", "split"])
def test_an_op_grown_on_a_moved_module_is_built_on_its_device(init):
    g = darts_like()
    net = _on_meta(g)
    ed = Editor(g, net)
    ed.apply(AddOp(u="c0", v="n0", op="sep_conv_5x5", init=init, seed=1, cell="normal",
                   source="sep_conv_3x3" if init == "split" else None))
    assert _devices(net) == {"meta"}
    assert net(torch.randn(2, 3, 8, 8, device=META)).device == META


def test_a_node_grown_on_a_moved_module_is_built_on_its_device():
    g = darts_like()
    net = _on_meta(g)
    ed = Editor(g, net)
    ed.apply(AddNode(name="m", channels="$C", cell="normal"))
    ed.apply(AddEdge(u="c0", v="m", ops=["sep_conv_3x3", "none"], init="zero",
                     args={"affine": False}, cell="normal", seed=1))
    ed.apply(AddEdge(u="m", v="n1", ops=["sep_conv_3x3", "none"], init="zero",
                     args={"affine": False}, cell="normal", seed=2))
    assert _devices(net) == {"meta"}
    assert net(torch.randn(2, 3, 8, 8, device=META)).device == META


@pytest.mark.parametrize("relaxation", ["sigmoid", "partial"])
def test_a_relaxation_attached_to_a_moved_module_puts_its_parameters_there(relaxation):
    g = darts_like()
    if relaxation == "partial":
        mark_partial(g, 2)
    net = _on_meta(g)
    use_relaxation(net, PartialChannels(2) if relaxation == "partial" else Sigmoid())
    assert _devices(net) == {"meta"}
    assert net(torch.randn(2, 3, 8, 8, device=META)).device == META


def test_units_grown_on_a_moved_channel_module_are_built_on_its_device():
    g = create_space("channel_cnn", widths=(4, 8), depths=(2, 1), num_classes=3, input_size=8)
    net = _on_meta(g)
    Editor(g, net).apply(AddUnits("s1b1", count=2, init="zero", seed=1))
    assert _devices(net) == {"meta"}
    assert net(torch.randn(2, 3, 8, 8, device=META)).device == META
