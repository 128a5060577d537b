"""Small NAS-Bench-201 and NATS-Bench (topology) files in the official formats.

The files are built with the official API packages' own classes (``ResultsCount``,
``ArchResults``) and saved as their APIs read them: NAS-Bench-201 as a ``torch.save`` of
``{'meta_archs', 'arch2infos': {index: {'less': ..., 'full': ...}}, 'evaluated_indexes'}``,
NATS-Bench as a ``pickle.pbz2`` of ``{'meta_archs', 'arch2infos': {index: {'12': ...,
'200': ...}}, 'evaluated_indexes'}``. Every architecture is trained with two seeds on the
four data sets; :func:`write` returns the metrics a query must give (means over the seeds,
accuracies as fractions), computed from the numbers written, not through any API.
"""

import itertools

#: A handful of architectures (arch strings of the official API).
ARCHS = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
    "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
)
#: Evaluation sets of each data set, as the benchmarks record them.
SETS = {"cifar10-valid": ("x-valid", "ori-test"), "cifar10": ("ori-test",),
        "cifar100": ("x-valid", "x-test", "ori-test"),
        "ImageNet16-120": ("x-valid", "x-test", "ori-test")}
SEEDS = (777, 888)
EPOCHS = {"12": 12, "200": 200}


def _accuracy(a, d, s, name, hp):
    """A distinct accuracy (percent) for arch ``a``, data set ``d``, seed ``s``, set ``name``."""
    return 40.0 + 10 * a + 3 * d + (1.25 if s else -0.75) + 0.5 * len(name) + 0.01 * int(hp)


def _result(utils, a, arch, d, dataset, s, seed, hp):
    epochs = EPOCHS[hp]
    params, flops = 0.1 + 0.3 * a, 10.0 + 50 * a  # MB (millions of parameters), MFLOPs
    r = utils.ResultsCount(dataset, None, {e: 10.0 + e % 7 for e in range(epochs)},
                           {e: 2.0 / (e + 1) for e in range(epochs)}, params, flops,
                           {"arch_str": arch, "channel": 16, "num_cells": 5,
                            "class_num": 10}, seed, epochs, [0.01 + 0.001 * (a + s)])
    times = {e: 1.0 + 0.25 * a + 0.5 * s + 0.01 * e for e in range(epochs)}
    r.update_train_info({e: 20.0 + e for e in range(epochs)}, None,
                        {e: 1.0 / (e + 1) for e in range(epochs)}, times)
    accs, losses, etimes = {}, {}, {}
    for name in SETS[dataset]:
        for e in range(epochs):
            key = f"{name}@{e}"
            last = e == epochs - 1
            accs[key] = _accuracy(a, d, s, name, hp) if last else 10.0
            losses[key], etimes[key] = 1.0, 0.1
    r.update_eval(accs, losses, etimes)
    return r, sum(times.values()), params, flops


def _truth(rows, dataset, val_from, test_from):
    """The metrics a query of ``dataset`` must answer, from the seeds' numbers."""
    def mean(values):
        return sum(values) / len(values)

    val = mean([acc for (ds, name), acc in rows["acc"] if (ds, name) == val_from])
    test = mean([acc for (ds, name), acc in rows["acc"] if (ds, name) == test_from])
    t = mean([x for ds, x in rows["time"] if ds == dataset])
    params, flops = rows["cost"][dataset]
    return {"val_accuracy": val / 100, "test_accuracy": test / 100,
            "params": round(params * 1e6), "flops": flops, "train_time": t}


#: data set of a query -> (data set, set) of its validation and test accuracies.
SPLITS = {
    "cifar10": (("cifar10-valid", "x-valid"), ("cifar10", "ori-test")),
    "cifar10-valid": (("cifar10-valid", "x-valid"), ("cifar10-valid", "ori-test")),
    "cifar100": (("cifar100", "x-valid"), ("cifar100", "x-test")),
    "ImageNet16-120": (("ImageNet16-120", "x-valid"), ("ImageNet16-120", "x-test")),
}


def build(utils, hp_keys):
    """The official dict and the expected metrics ``{(hp, dataset, arch): metrics}``."""
    arch2infos, truth = {}, {}
    for a, arch in enumerate(ARCHS):
        arch2infos[a] = {}
        for hp, key in hp_keys.items():
            res = utils.ArchResults(a, arch)
            rows = {"acc": [], "time": [], "cost": {}}
            for (d, dataset), (s, seed) in itertools.product(enumerate(SETS),
                                                             enumerate(SEEDS)):
                r, t, params, flops = _result(utils, a, arch, d, dataset, s, seed, hp)
                res.update(dataset, seed, r)
                rows["acc"] += [((dataset, n), _accuracy(a, d, s, n, hp))
                                for n in SETS[dataset]]
                rows["time"].append((dataset, t))
                rows["cost"][dataset] = (params, flops)
            arch2infos[a][key] = res.state_dict()
            for dataset, (val_from, test_from) in SPLITS.items():
                truth[(hp, dataset, arch)] = _truth(rows, dataset, val_from, test_from)
    # one more architecture named in meta_archs but never evaluated
    meta = [*ARCHS, "|skip_connect~0|+|none~0|none~1|+|none~0|none~1|none~2|"]
    data = {"meta_archs": meta, "arch2infos": arch2infos,
            "evaluated_indexes": list(range(len(ARCHS)))}
    return data, truth


def write_nas_bench_201(path):
    """A NAS-Bench-201 ``.pth`` file (``torch.save``); returns the expected metrics."""
    import torch
    from nas_201_api import api_utils

    data, truth = build(api_utils, {"12": "less", "200": "full"})
    torch.save(data, path)
    return truth


def write_nats_tss(path):
    """A NATS-Bench topology ``.pickle.pbz2`` file at ``path`` (which ends with that
    suffix); returns the expected metrics."""
    from nats_bench import api_utils

    data, truth = build(api_utils, {"12": "12", "200": "200"})
    suffix = ".pickle.pbz2"
    assert str(path).endswith(suffix)
    api_utils.pickle_save(data, str(path)[: -len(".pbz2")])
    return truth
