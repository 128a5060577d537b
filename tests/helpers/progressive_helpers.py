"""Small super-networks, data and a minimal bilevel loop for the tests of the progressive
policies and the creation policies.

The loop does what a search loop owes a policy (see ``supernet.search.base.SearchState``):
first-order DARTS steps (an Adam step on the architecture logits on a validation batch,
then an SGD step on the weights on a train batch), the ``arch_update`` and ``lr_cycle``
hooks, ``evaluate`` (validation accuracy in eval mode), ``train`` (weight-only epochs) and
``rebuild`` (compile a new graph, move the logits of surviving candidates, new optimizers,
the same edit log).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from supernet import Graph, compile
from supernet.compiler.module import module_key
from supernet.edits import EditLog, Editor
from supernet.search.base import SearchState

#: The eight DARTS candidates.
OPS = ["none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
       "dil_conv_3x3", "dil_conv_5x5"]
CONSTRAINTS = {"max_inputs": 2, "exclude": ["none"]}


def cell(name: str = "normal", steps: int = 3, ops=OPS, reduction: bool = False) -> Graph:
    """A DARTS-like cell template: inputs ``s0, s1``, preprocessed into ``p0, p1``; nodes
    ``n2 ...`` sum a gate from every earlier state; ``out`` concatenates the nodes."""
    t = Graph("layer", name=name)
    t.add_input("s0")
    t.add_input("s1")
    t.add_node("p0", channels="$C")
    t.add_edge("s0", "p0", "relu_conv_bn", affine=False)
    t.add_node("p1", channels="$C")
    t.add_edge("s1", "p1", "relu_conv_bn", affine=False)
    states = ["p0", "p1"]
    for i in range(steps):
        n = f"n{i + 2}"
        t.add_node(n, channels="$C")
        for j, s in enumerate(states):
            t.add_edge(s, n, list(ops), port=j, affine=False,
                       stride=2 if reduction and j < 2 else 1)
        states.append(n)
    t.add_node("out", merge="concat")
    for n in states[2:]:
        t.add_edge(n, "out", "identity")
    t.set_outputs(["out"])
    return t


def net(cells=("normal", "normal"), steps: int = 3, C: int = 4, ops=OPS, classes: int = 3,
        name: str = "tiny") -> Graph:
    """Stem, the given sequence of ``"normal"`` / ``"reduce"`` cells (each taking the two
    previous outputs), global pooling and a classifier; DARTS constraints on both cells."""
    g = Graph("layer", name=name)
    for kind in sorted(set(cells)):
        g.add_cell(kind, cell(kind, steps, ops, reduction=kind == "reduce"))
    g.add_input("x", channels=3)
    g.add_node("stem", channels=3 * C)
    g.add_edge("x", "stem", "stem_conv_bn")
    s0 = s1 = "stem"
    width, reduced = C, False
    for i, kind in enumerate(cells):
        if kind == "reduce":
            width *= 2
        if reduced:  # the cell before last reduced: bring s0 to the resolution of s1
            g.add_node(f"fr{i}", channels=width)
            g.add_edge(s0, f"fr{i}", "relu_conv_bn", stride=2, affine=False)
            s0 = f"fr{i}"
        g.add_call(f"cell{i}", kind, [s0, s1], bind={"C": width})
        s0, s1, reduced = s1, f"cell{i}", kind == "reduce"
    g.add_node("gap")
    g.add_edge(s1, "gap", "global_avg_pool")
    g.add_node("logits", channels=classes)
    g.add_edge("gap", "logits", "classifier")
    g.set_outputs(["logits"])
    g.meta["constraints"] = {kind: dict(CONSTRAINTS) for kind in set(cells)}
    return g


def builder(steps: int = 3, C: int = 4, ops=OPS, classes: int = 3):
    """``builder(cells) -> Graph``: networks of ``cells`` normal cells (P-DARTS deepening)."""
    return lambda cells: net(("normal",) * cells, steps, C, ops, classes)


def data(n: int = 48, classes: int = 3, seed: int = 0):
    """Learnable synthetic 8x8 images: one fixed pattern per class (the same for every
    seed) plus noise drawn from ``seed``."""
    patterns = torch.randn(classes, 3, 8, 8, generator=torch.Generator().manual_seed(1234))
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    x = patterns[y] + 0.8 * torch.randn(n, 3, 8, 8, generator=gen)
    return x, y


class MiniSearch:
    """A minimal bilevel search loop driving a discretization policy and creation policies."""

    def __init__(self, graph, discretization=None, creation=(), relaxation=None, epochs=2,
                 train=None, val=None, batch_size=16, w_lr=0.05, arch_lr=3e-3, seed=0):
        torch.manual_seed(seed)
        self.train_set = train if train is not None else data(48, seed=seed)
        self.val_set = val if val is not None else data(48, seed=seed + 1)
        self.batch_size, self.w_lr, self.arch_lr = batch_size, w_lr, arch_lr
        self.discretization = discretization
        self.creation = list(creation)
        self.rebuilds = []
        self.train_calls = []
        module = compile(graph)
        if relaxation is not None:
            module.relaxation = relaxation
        if module.relaxation is not None:
            module.relaxation.attach(module)
        w_opt, a_opt = self._optimizers(module)
        editor = Editor(graph, module, [w_opt, a_opt], log=EditLog(), seed=seed)
        self.state = SearchState(graph, module, editor, epoch=0, epochs=epochs,
                                 evaluate=self.evaluate, train=self.train, rebuild=self.rebuild)

    # ---------------------------------------------------------------- pieces
    def _optimizers(self, module):
        self.w_opt = torch.optim.SGD(module.weights(), lr=self.w_lr, momentum=0.9,
                                     weight_decay=3e-4)
        arch = module.arch_parameters()
        self.a_opt = torch.optim.Adam(arch or [torch.zeros(1, requires_grad=True)],
                                      lr=self.arch_lr, betas=(0.5, 0.999), weight_decay=1e-3)
        return self.w_opt, self.a_opt

    def batches(self, ds, shuffle=True):
        x, y = ds
        idx = torch.randperm(len(y)) if shuffle else torch.arange(len(y))
        for i in range(0, len(y), self.batch_size):
            j = idx[i:i + self.batch_size]
            yield x[j], y[j]

    def evaluate(self) -> float:
        m = self.state.module
        was = m.training
        m.eval()
        correct = 0
        with torch.no_grad():
            for x, y in self.batches(self.val_set, shuffle=False):
                correct += int((m(x).argmax(1) == y).sum())
        m.train(was)
        return correct / len(self.val_set[1])

    def weight_step(self, x, y):
        m = self.state.module
        m.train()
        self.w_opt.zero_grad()
        F.cross_entropy(m(x), y).backward()
        torch.nn.utils.clip_grad_norm_(m.weights(), 5.0)
        self.w_opt.step()

    def arch_step(self, x, y):
        m = self.state.module
        if not m.arch_parameters():
            return
        self.a_opt.zero_grad()
        loss = F.cross_entropy(m(x), y)
        torch.autograd.backward(loss, inputs=m.arch_parameters())
        self.a_opt.step()

    def train(self, epochs: int = 1) -> None:
        self.train_calls.append(epochs)
        for _ in range(epochs):
            for x, y in self.batches(self.train_set):
                self.weight_step(x, y)

    def rebuild(self, graph) -> None:
        st, old = self.state, self.state.module
        new = compile(graph)
        names = old.gates()
        with torch.no_grad():
            for key, ops in new.gates().items():
                k = module_key(key)
                if k in old.arch and names.get(key):
                    for j, op in enumerate(ops):
                        if op in names[key]:
                            new.arch[k][0, j] = old.arch[k][0, names[key].index(op)]
        new.relaxation = old.relaxation
        if new.relaxation is not None:
            new.relaxation.attach(new)
        opts = self._optimizers(new)
        st.graph, st.module = graph, new
        st.editor = Editor(graph, new, list(opts), log=st.editor.log)
        self.rebuilds.append(graph.copy())  # as handed over (it is edited afterwards)

    def lr(self, epoch):
        start, length = self.state.lr_cycle or (0, self.state.epochs)
        return 0.5 * self.w_lr * (1 + math.cos(math.pi * (epoch - start) / length))

    # ---------------------------------------------------------------- loop
    def epoch(self):
        st = self.state
        for g in self.w_opt.param_groups:
            g["lr"] = self.lr(st.epoch)
        relax = st.module.relaxation
        if hasattr(relax, "on_epoch_start"):
            relax.on_epoch_start(st.epoch, st.epochs)
        val = self.batches(self.val_set)
        for x, y in self.batches(self.train_set):
            if st.arch_update:
                try:
                    vx, vy = next(val)
                except StopIteration:
                    val = self.batches(self.val_set)
                    vx, vy = next(val)
                self.arch_step(vx, vy)
            self.weight_step(x, y)
        st.history.append({"epoch": st.epoch + 1, "arch_update": st.arch_update,
                           "lr": self.w_opt.param_groups[0]["lr"],
                           "dropout": getattr(relax, "p", None)})

    def policies(self):
        return [*self.creation, *([self.discretization] if self.discretization else [])]

    def run(self, until: int | None = None, finalize: bool = True) -> SearchState:
        st = self.state
        if st.epoch == 0:
            for p in self.policies():
                if hasattr(p, "on_search_start"):
                    p.on_search_start(st)
        stop = st.epochs if until is None else until
        while st.epoch < stop:
            self.epoch()
            st.epoch += 1
            for p in self.creation:
                p.on_epoch_end(st)
            if self.discretization is not None:
                self.discretization.on_epoch_end(st)
        if finalize and st.epoch >= st.epochs and self.discretization is not None:
            self.discretization.finalize(st)
        return st


def output(module, x):
    """The module's output in eval mode, without gradients."""
    was = module.training
    module.eval()
    with torch.no_grad():
        y = module(x)
    module.train(was)
    return y


def in_optimizer(opt, p) -> bool:
    return any(q is p for g in opt.param_groups for q in g["params"])
