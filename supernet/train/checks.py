"""The data of a search or a training, checked against the network once, before the first
step: :func:`check_data` runs the network on two samples of each data set (in eval mode,
without gradients, leaving the random state, the module's mode and its relaxation's phase
as they were), so that samples the graph cannot take are refused naming its input node and
the shapes, and checks class labels against the network's outputs (integers, from 0, below
the number of outputs; over every sample of a data set of tensors, else over the samples
read). It costs one forward pass of two samples and one pass over the labels.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset, Subset, TensorDataset

from supernet.errors import SearchError, SupernetError
from supernet.train.data import check_batch, module_device, module_dtype
from supernet.train.training import IGNORE_INDEX, default_loss

__all__ = ["check_data"]


def check_data(graph, module, ds: Dataset, batch_fn, what: str = "train data",
               loss_fn=None) -> None:
    """Fail before training if ``ds`` does not fit ``module``: no sample, inputs the graph
    cannot take (:func:`check_batch`, then one forward pass of two samples), or, for the
    default loss (cross-entropy over class scores), labels that are no class of the
    network's outputs.

    The forward pass runs in eval mode without gradients and leaves the random state, the
    module's mode and its relaxation's phase as they were. Labels are checked over every
    sample of a data set of tensors (a ``TensorDataset`` or a ``Subset`` of one, whose sample
    numbers are those of the whole set), else over the two samples.

    Examples:
        >>> import torch
        >>> from supernet import Graph, compile
        >>> from supernet.train.data import as_dataset, default_batch_fn
        >>> g = Graph("layer", name="toy"); g.add_input("x", channels=3)
        >>> g.add_node("y", channels=10); g.add_edge("x", "y", "classifier"); g.set_outputs(["y"])
        >>> ds = as_dataset((torch.randn(8, 3), torch.arange(8) + 3))
        >>> check_data(g, compile(g), ds, default_batch_fn)
        Traceback (most recent call last):
        ...
        supernet.errors.SearchError: train data: labels go up to 10 but the network has 10 outputs (classes 0..9); sample 7 is the first beyond them; give the graph's output 11 or more classes (a space's num_classes) or fix the labels

    Raises:
        SearchError: naming ``what``, the input node or the sample, and the fix.
    """
    n = len(ds)
    if n == 0:
        raise SearchError(f"{what}: the data set is empty; give it samples")
    items = [_item(ds, i, what) for i in range(min(2, n))]  # one: a whole-graph item
    _item(ds, n - 1, what)  # a data set longer than what it holds fails here, not mid-epoch
    try:
        inputs, ctx, y = batch_fn(torch.utils.data.default_collate(items))
    except SupernetError:
        raise
    except (TypeError, RuntimeError, ValueError) as exc:
        raise SearchError(f"{what}: its first two samples do not make a batch ({exc}); give "
                          "samples of one shape, as tensors") from exc
    names = list(graph.inputs) if graph is not None else [f"input {i}" for i in
                                                          range(len(inputs))]
    if graph is not None:
        check_batch(graph, inputs, what)
    dtype = module_dtype(module)
    for name, x in zip(names, inputs):
        if torch.is_tensor(x) and x.is_floating_point() and x.dtype != dtype:
            raise SearchError(
                f"{what}: input {name!r} is {_dtype(x)}, but the network computes in "
                f"{_dtype(dtype)}; return {_dtype(dtype)} tensors from the data set "
                f"(x.to(torch.{_dtype(dtype)})), or pass tensors, which are converted")
    out = _probe(graph, module, names, inputs, ctx, what)
    if loss_fn is None or loss_fn is default_loss:
        _check_labels(ds, y, out, what)


def _item(ds: Dataset, i: int, what: str):
    """Item ``i`` of ``ds``, or a SearchError naming it."""
    try:
        return ds[i]
    except (IndexError, KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise SearchError(f"{what}: reading sample {i} of its {len(ds)} failed "
                          f"({type(exc).__name__}: {exc}); a data set gives every sample "
                          f"0..{len(ds) - 1} its __len__ counts") from exc


def _dtype(t) -> str:
    return str(t.dtype if torch.is_tensor(t) else t).replace("torch.", "")


def _probe(graph, module, names, inputs, ctx, what: str):
    """The first output of one forward pass of ``inputs`` (eval mode, no gradients, the
    random state, mode and relaxation phase kept), or a SearchError naming the inputs."""
    relax = getattr(module, "relaxation", None)
    phase = getattr(relax, "phase", None)
    device = module_device(module)
    was = module.training
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            module.eval()
            if phase is not None:
                relax.set_phase("eval")
            with torch.no_grad():
                out = module(*inputs, **ctx)
    except (SupernetError, RuntimeError, ValueError, TypeError, IndexError) as exc:
        given = ", ".join(
            f"{n!r}: per-sample shape {list(x.shape[1:])} of {_dtype(x)}"
            + (f" (it takes {_takes(graph, n)})" if _takes(graph, n) else "")
            for n, x in zip(names, inputs) if torch.is_tensor(x))
        fix = "give samples of the shape and dtype the graph's inputs take"
        if any(torch.is_tensor(x) and not x.is_floating_point() for x in inputs):
            fix += "; integer inputs: pass x.float() (scaled as you need)"
        if any(torch.is_tensor(x) and x.dim() == 2 for x in inputs) and _takes(graph, names[0]):
            fix += ("; flat features: reshape each sample to (channels, length) or (channels, "
                    "height, width), e.g. x.reshape(len(x), 1, -1), or search a space of "
                    "features (neuron_mlp)")
        name = f"graph {graph.name!r}" if graph is not None else "the module"
        raise SearchError(f"{what}: {name} cannot run on its samples ({given}): "
                          f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}; "
                          f"{fix}") from exc
    finally:
        module.train(was)
        if phase is not None:
            relax.set_phase(phase)
    return out[0] if isinstance(out, (tuple, list)) else out


def _takes(graph, name) -> str:
    """What input ``name`` of ``graph`` declares: its per-sample shape, or channels."""
    if graph is None or name not in graph.nx:
        return ""
    d = graph.nx.nodes[name]
    if d.get("shape") is not None:
        return f"per-sample shape {list(d['shape'])}"
    width = d.get("width", d.get("channels"))
    return f"{width} channels at dim 1" if isinstance(width, int) else ""


def _labels_of(ds: Dataset, y: torch.Tensor):
    """``(every target of ds, its sample numbers or None)`` for a data set of tensors, else
    ``(y, None)``: the targets of the first batch."""
    base, index = ds, None
    if isinstance(ds, Subset):
        base, index = ds.dataset, torch.as_tensor(list(ds.indices), dtype=torch.long)
    if isinstance(base, TensorDataset) and torch.is_tensor(base.tensors[-1]):
        target = base.tensors[-1]
        return (target if index is None else target[index]), index
    return y, (index[:len(y)] if index is not None else None)


def _check_labels(ds: Dataset, y, out, what: str) -> None:
    """Class labels of ``ds`` against the class scores ``out`` of the default loss."""
    if not (torch.is_tensor(out) and torch.is_tensor(y) and out.dim() >= 2
            and out.is_floating_point()):
        return
    k = out.shape[1]
    if y.is_floating_point() and y.shape == out.shape:
        return  # class probabilities, which cross-entropy takes
    labels, index = _labels_of(ds, y)

    def sample(mask) -> str:
        i = int(mask.reshape(len(mask), -1).any(1).nonzero()[0, 0])
        return f"sample {int(index[i]) if index is not None else i}"

    if y.dim() != out.dim() - 1:
        raise SearchError(
            f"{what}: targets of per-sample shape {list(y.shape[1:])} for outputs of shape "
            f"{list(out.shape[1:])}: cross-entropy takes one class index per sample (shape "
            f"(n,); y.reshape(-1) for a column, y.argmax(1) for one-hot rows), or class "
            "probabilities of the outputs' shape; pass loss_fn=... for other targets")
    if y.is_floating_point() or y.is_complex():
        frac = labels != labels.round()
        kind = (f"{sample(frac)} has {float(labels[frac][0]):g}, which is no class" if frac.any()
                else "give them as integers: y.long()")
        raise SearchError(
            f"{what}: labels are {_dtype(y)}, but the loss (cross-entropy over the network's "
            f"{k} outputs) needs integer class indices; {kind} (or pass loss_fn=... for "
            "other targets)")
    real = labels != IGNORE_INDEX
    low = real & (labels < 0)
    if low.any():
        raise SearchError(
            f"{what}: labels must be class indices from 0, but {sample(low)} has "
            f"{int(labels[low][0])}; number the classes 0..{k - 1} ({IGNORE_INDEX} marks a "
            "sample to ignore)")
    high = real & (labels >= k)
    if high.any():
        top = int(labels[real].max())
        raise SearchError(
            f"{what}: labels go up to {top} but the network has {k} outputs (classes "
            f"0..{k - 1}); {sample(high)} is the first beyond them; give the graph's output "
            f"{top + 1} or more classes (a space's num_classes) or fix the labels")
