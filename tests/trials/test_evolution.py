from supernet.trials import neighbours, trial_strategy


def test_aging_removes_the_oldest_not_the_worst(gnn2):
    s = trial_strategy("evolution", gnn2, population=3, sample=2, seed=0)
    first = s.ask()
    s.tell(first, {"val_accuracy": 1.0})  # the best there will be
    for _ in range(2):
        s.tell(s.ask(), {"val_accuracy": 0.0})
    assert [t.id for t in s.population] == [0, 1, 2]
    for _ in range(3):
        members = list(s.population)
        child = s.ask()
        # the child is one decision away from a member of the population
        assert any(child.key in {s.space.encode(n) for n in neighbours(s.space, m.choice)}
                   for m in members)
        s.tell(child, {"val_accuracy": 0.5})
    assert [t.id for t in s.population] == [3, 4, 5]
    assert s.best().id == 0 and first not in s.population


def test_tournament_picks_the_best_of_the_sample(gnn2):
    # with sample = population every draw of 8 contains the best member with high
    # probability; a child of the best is its neighbour
    s = trial_strategy("evolution", gnn2, population=2, sample=8, seed=1)
    good, bad = s.ask(), s.ask()
    s.tell(good, {"val_accuracy": 1.0})
    s.tell(bad, {"val_accuracy": 0.0})
    near_good = {s.space.encode(n) for n in neighbours(s.space, good.choice)}
    child = s.ask()
    assert child.key in near_good
