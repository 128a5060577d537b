"""Random search: uniform samples of the choice space.

The baseline every NAS benchmark reports (Li & Talwalkar, "Random Search and
Reproducibility for Neural Architecture Search", UAI 2019): each ask is a uniform sample of
the choice space (:meth:`~supernet.search.choices.base.ChoiceSpace.sample`), skipping
architectures asked already. Its asks do not depend on what is told, so a seed gives the
same sequence of architectures whatever the order results come back in.

Examples:
    >>> from supernet.spaces import create_space
    >>> g = create_space("gnn", in_channels=4, hidden=8, num_classes=2, nodes=2)
    >>> a, b = RandomSearch(g, seed=1), RandomSearch(g, seed=1)
    >>> [a.ask().key for _ in range(3)] == [b.ask().key for _ in range(3)]
    True
"""

from __future__ import annotations

from supernet.trials.base import TrialStrategy, register_trial_strategy

__all__ = ["RandomSearch"]


@register_trial_strategy("random")
class RandomSearch(TrialStrategy):
    """Uniform random architectures, never one twice (see the module docstring)."""

    def propose(self) -> dict:
        return self.space.sample(self.rng)
