"""A searched channel- or neuron-level network as a standalone module and exported files:
no search machinery, the same outputs, empty blocks left out."""

import pytest
import torch
from unit_search_helpers import cnn_data, mlp_data, tiny_cnn, tiny_mlp

from supernet.search import BilevelSearch, export, load_export, standalone


@pytest.mark.parametrize("build,data", [(tiny_mlp, mlp_data), (tiny_cnn, cnn_data)])
def test_searched_unit_network_exports_and_loads_back(build, data, tmp_path):
    graph = build(skip_density=0.0) if build is tiny_mlp else build()
    x, y = data()
    result = BilevelSearch(graph, (x, y), strategy="gdas",
                           config={"epochs": 1, "batch_size": 8, "steps_per_epoch": 2}).run()
    module = result.module.eval()
    net = standalone(graph, module)
    assert not any("arch" in k or "relaxation" in k for k in net.state_dict())
    with torch.no_grad():
        ref = module(x[:3])
        assert torch.allclose(net(x[:3]), ref, atol=1e-6)
    if build is tiny_mlp:  # the empty skip blocks add nothing and are left out
        assert "edges.x->y.weight" not in net.state_dict()
    paths = export(graph, module, str(tmp_path), (x[:2],), onnx=False)
    back = load_export(str(tmp_path), trusted=True)
    with torch.no_grad():
        for run in (back.module, back.torchscript, back.program):
            assert torch.allclose(run(x[:3]), ref, atol=1e-5)
    assert back.graph.same_as(graph) and "torchscript" in paths
