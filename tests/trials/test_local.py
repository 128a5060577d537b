from trial_helpers import matches, tiny_gnn

from supernet.trials import neighbours, run_trials, trial_strategy


def test_reaches_the_optimum_of_a_unimodal_score():
    g = tiny_gnn(nodes=3)  # 3 * 6 * 9 = 162 choices
    target = {"n1": ("pre1", "gin"), "n2": ("n1", "linear"), "n3": ("pre1", "gcn")}
    for seed in range(3):
        s = trial_strategy("local", g, seed=seed)
        h = run_trials(s, matches(target), 60)
        assert h.best().metrics["val_accuracy"] == 1.0
        # the first local optimum is the global one (no other on a unimodal score)
        assert s.optima and s.optima[0].metrics["val_accuracy"] == 1.0


def test_best_move_evaluates_the_whole_neighbourhood_then_restarts(gnn2):
    s = trial_strategy("local", gnn2, seed=0)
    start = s.ask()
    s.tell(start, {"val_accuracy": 0.9})
    near = {s.space.encode(n) for n in neighbours(s.space, start.choice)}
    asked = []
    for _ in range(len(near)):
        t = s.ask()
        asked.append(t.key)
        assert not s.optima
        s.tell(t, {"val_accuracy": 0.1})
    assert set(asked) == near  # the whole neighbourhood, each once
    assert [t.id for t in s.optima] == [start.id] and s.current is None
    # a random architecture starts the next climb (one asked already starts it untold)
    s.tell(s.ask(), {"val_accuracy": 0.0})
    assert s.current is not None and s.current.id != start.id


def test_best_and_first_improvement(gnn2):
    results = {}
    for move in ("best", "first"):
        s = trial_strategy("local", gnn2, seed=0, move=move)
        start = s.ask()
        s.tell(start, {"val_accuracy": 0.5})
        values = iter([0.6, 0.9, 0.7, 0.8, 0.1])  # 5 neighbours
        told = []
        while s.current is not None and s.current.id == start.id:
            t = s.ask()
            told.append(t)
            s.tell(t, {"val_accuracy": next(values)})
        results[move] = (len(told), s.current.id, told)
    n, cur, told = results["best"]
    assert n == 5 and cur == told[1].id  # the best of all 5
    n, cur, told = results["first"]
    assert n == 1 and cur == told[0].id  # the first that improves


def test_climbs_at_the_neuron_level():
    from supernet.search.discretize.units import set_gated
    from supernet.units import mlp

    g = mlp([4, 6, 3], seed=0)
    set_gated(g, units=["h1"])  # 63 choices: keep any non-empty subset of 6 units

    def kept(graph):
        return {"val_accuracy": float(len(graph.nx.nodes["h1"]["units"]))}

    s = trial_strategy("local", g, seed=0)
    h = run_trials(s, kept, 40)
    assert h.best().metrics["val_accuracy"] == 6.0  # every unit kept: the one optimum
    assert s.optima and s.optima[0].metrics["val_accuracy"] == 6.0
