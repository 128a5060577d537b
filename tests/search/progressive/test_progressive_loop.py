"""Progressive strategies run by name through the bilevel loop: P-DARTS stages rebuild a
deeper network with the pruned candidate sets, and a search killed mid-way resumes to the
same end."""

import torch

from search_spaces import create_space, encode
from supernet import lint
from supernet.search import BilevelSearch, create_strategy

STAGES = [
    {"cells": 3, "keep": 5, "dropout": 0.0, "epochs": 2, "warmup": 1},
    {"cells": 4, "keep": 3, "dropout": 0.4, "epochs": 2, "warmup": 1},
    {"cells": 5, "keep": 1, "dropout": 0.7, "epochs": 1, "warmup": 0},
]


def data(n=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 16, generator=g), torch.randint(0, 3, (n,), generator=g)


def pdarts():
    return create_strategy("pdarts", space="darts1d",
                           space_kwargs={"C": 4, "steps": 2, "multiplier": 2, "num_classes": 3},
                           stages=STAGES)


def test_pdarts_deepens_and_prunes_stage_by_stage(tmp_path):
    strategy = pdarts()
    graph = strategy.discretization.builder(STAGES[0]["cells"])
    cfg = {"epochs": 5, "batch_size": 8, "progress": False, "checkpoint_dir": str(tmp_path)}
    search = BilevelSearch(graph, data(), strategy=strategy, config=cfg)
    depths, widths = [], []
    for until in (2, 4):
        search.run(until=until)
        depths.append(sum(1 for _, d in search.graph.nx.nodes(data=True) if d.get("kind") == "call"))
        widths.append({len(ops) for _, ops in search.module.gates().items()})
    result = search.run()
    assert depths == [4, 5] and widths == [{5}, {3}]
    lint(result.graph)
    assert not result.module.gates()
    genotype = encode(result.graph)
    assert genotype.count("skip_connect") <= 2 * 2  # at most M=2 per normal cell (+ reduce)
    x = data(4)[0]
    assert result.module.eval()(x).shape == (4, 3)


def test_pdarts_resumes_across_a_stage_boundary(tmp_path):
    cfg = {"epochs": 5, "batch_size": 8, "progress": False}
    straight = BilevelSearch(pdarts().discretization.builder(3), data(), strategy=pdarts(),
                             config={**cfg, "checkpoint_dir": str(tmp_path / "a")}).run()
    s = BilevelSearch(pdarts().discretization.builder(3), data(), strategy=pdarts(),
                      config={**cfg, "checkpoint_dir": str(tmp_path / "b")})
    s.run(until=3)  # killed in the second stage
    resumed = BilevelSearch.resume(str(tmp_path / "b" / "last.safetensors"), data()).run()
    assert encode(resumed.graph) == encode(straight.graph)
    a, b = straight.module.state_dict(), resumed.module.state_dict()
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_sgas_and_darts_pt_run_by_name():
    for name, kw in (("sgas", {"warmup": 1, "interval": 1}),
                     ("darts_pt", {"start": 1, "interval": 1})):
        graph = create_space("darts1d", C=4, layers=3, steps=2, multiplier=2, num_classes=3)
        result = BilevelSearch(graph, data(), strategy=create_strategy(name, **kw),
                               config={"epochs": 8, "batch_size": 8, "progress": False}).run()
        lint(result.graph)
        assert not result.module.gates(), name
