"""Experiment configuration: which space, strategy, data and budgets a run uses.

A config is YAML or JSON with the sections of :class:`RunConfig`. Unknown keys are errors
that name the key (and the closest known one), so a typo never silently falls back to a
default.

One rule merges every form a user writes (a mapping, a YAML or JSON file, ``--set
key=value``): what the user gives is merged over the packaged defaults
(``supernet/configs/default.yaml``, equal to ``RunConfig()``) key by key, so a file with
``search: {epochs: 1}`` changes ``search.epochs`` and nothing else, and ``space: {C: 8}``
keeps the space's name. The keys the user set are recorded (:attr:`RunConfig.given`): they
win over the strategy's own loop settings (P-DARTS' batch of 96), which win over the
library's defaults (``search.batch_size: 128`` here, a default ``strategy.arch_lr``, and
:class:`~supernet.search.config.SearchConfig`'s).

Every number of a config, in every section and nested option (``strategy.target``,
``train.options``), must be finite: ``train.lr: .nan`` fails when the config is read,
naming the key, not after the search. Numbers in exponent form without a dot or an
exponent sign (``1e10``, ``1.5e3``), which YAML 1.1 reads as strings, are read as numbers,
in files and in ``--set`` values alike.

Examples:
    >>> cfg = RunConfig.from_dict({"space": {"name": "darts1d", "C": 8}, "search": {"epochs": 3}})
    >>> cfg.space.name, cfg.space.options, cfg.search.epochs, cfg.search.batch_size
    ('darts1d', {'C': 8}, 3, 128)
    >>> sorted(cfg.given)
    ['search.epochs', 'space.C', 'space.name']
    >>> RunConfig.from_dict({"serach": {}})
    Traceback (most recent call last):
    ...
    supernet.errors.ConfigError: config key 'serach' is unknown. Did you mean 'search'? ...
    >>> RunConfig.from_dict({"strategy": {"target": {"params": float("nan")}}})
    Traceback (most recent call last):
    ...
    supernet.errors.ConfigError: config key 'strategy.target.params' is nan; a config's numbers must be finite (no NaN or inf)
    >>> apply_overrides(RunConfig(), ["train.lr=1e-2"]).train.lr
    0.01
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import json
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from supernet.compiler.recompute import MEMORY_MODES
from supernet.errors import ConfigError, did_you_mean
from supernet.search.config import given_fields, set_given, track_given
from supernet.search.strategies import COMPONENTS
from supernet.train.data import resolve_device
from supernet.train.retrain import train_module

__all__ = [
    "Named",
    "SearchBudget",
    "TrainBudget",
    "TrialsBudget",
    "RunConfig",
    "load_config",
    "apply_overrides",
    "default_config_path",
]


@dataclass
class Named:
    """A registry entry and its options: ``{name: darts1d, C: 8}``. A strategy composed
    from parts has no name (``""``): ``{relaxation: gumbel_max, discretization: argmax}``."""

    name: str = ""
    options: dict = field(default_factory=dict)

    @classmethod
    def from_value(cls, value, where: str) -> "Named":
        value = _named_value(value, where)
        if "name" not in value:
            raise ConfigError(f"config key {where!r} needs a 'name' (e.g. {where}: {{name: ...}})")
        opts = dict(value)
        return cls(str(opts.pop("name")), opts)

    def to_value(self) -> dict:
        return {"name": self.name, **self.options} if self.name else dict(self.options)


def _named_value(value, where: str) -> dict:
    """A section of a registry entry as a mapping; a bare string is its name, and a
    strategy given by its parts without a name is composed (name ``""``)."""
    if isinstance(value, str):
        return {"name": value}
    if not isinstance(value, dict):
        raise ConfigError(f"config key {where!r} is a name or a mapping with a 'name' (e.g. "
                          f"{where}: {{name: ...}}), got {value!r}")
    if where == "strategy" and "name" not in value and any(p in value for p in COMPONENTS):
        return {"name": "", **value}
    return dict(value)


@track_given
@dataclass
class SearchBudget:
    """Search budget: epochs over the training split and batch size (``None`` epochs, or
    a key left unset: the strategy's own, e.g. the sum of P-DARTS stages, else these
    defaults), a cap on the steps of an epoch, and the memory mode (``"lean"``: the
    candidate ops are recomputed in backward, :mod:`supernet.compiler.recompute`)."""

    epochs: int | None = 3
    batch_size: int = 128
    max_steps_per_epoch: int | None = None
    memory: str = "normal"


@track_given
@dataclass
class TrainBudget:
    """Final training of the discretized architecture.

    ``mode``: ``"retrain"`` (from scratch), ``"finetune"`` (inherited weights) or ``"none"``.
    ``split``: ``"train"`` (the validation split stays held out, so its accuracy is reported)
    or ``"train+val"`` (more data; the validation accuracy is then not reported).
    """

    mode: str = "retrain"
    epochs: int = 15
    batch_size: int = 128
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    split: str = "train"
    options: dict = field(default_factory=dict)


@track_given
@dataclass
class TrialsBudget:
    """Multi-trial search (``supernet trials``): ``strategy`` (a name of
    :data:`supernet.trials.TRIAL_STRATEGIES`, with its own ``options``) asks ``budget``
    architectures of the space one after another and keeps the one of the best ``metric``.

    Each is evaluated by a tabular ``benchmark`` (``"nas-bench-graph:cora"``: a look-up,
    :func:`supernet.tabular.load_benchmark`) or, without one, by training it from scratch
    for ``epochs`` epochs with the ``train`` section's settings and measuring the validation
    split. ``engine``: ``"local"`` (in this process) or ``"ray"`` (``workers`` trials at
    once, on the Ray cluster at ``address`` when given, else a local one; needs
    ``pip install supernet[ray]``).
    """

    strategy: str = "evolution"
    budget: int = 100
    benchmark: str | None = None
    epochs: int = 3
    metric: str = "val_accuracy"
    engine: str = "local"
    workers: int = 1
    address: str | None = None
    options: dict = field(default_factory=dict)


@track_given
@dataclass
class RunConfig:
    """A whole run: search a space with a strategy on a data set, then train the result.

    Its defaults are the packaged configuration (``supernet/configs/default.yaml``).

    ``device``: ``"auto"`` (a GPU when there is one), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    ``pictures``: draw the found cells and the architecture weights over the epochs.
    ``tensorboard``: log losses, accuracies and architecture weights for TensorBoard (needs
    the ``tensorboard`` package: ``pip install supernet[tensorboard]``).
    ``imports``: modules (dotted names, or ``.py`` files) imported before the run, which
    register the data sets, spaces, ops, relaxations or strategies the config names
    (:func:`supernet.registry.import_modules`; importing runs their code).
    """

    space: Named = field(default_factory=lambda: Named("darts1d"))
    strategy: Named = field(default_factory=lambda: Named("darts", {"arch_lr": 0.003}))
    data: Named = field(default_factory=lambda: Named("mnist1d", {"val_fraction": 0.5}))
    search: SearchBudget = field(default_factory=SearchBudget)
    train: TrainBudget = field(default_factory=TrainBudget)
    trials: TrialsBudget = field(default_factory=TrialsBudget)
    seed: int = 0
    out: str = "runs/search"
    progress: bool = True
    device: str = "auto"
    pictures: bool = True
    tensorboard: bool = False
    imports: list = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict, base: "RunConfig | None" = None,
                  user: bool = True) -> "RunConfig":
        """``data`` merged over ``base`` (``RunConfig()``: the packaged defaults) key by key.

        A section of a registry entry (``space``, ``strategy``, ``data``) is merged option by
        option too; ``search`` and ``train`` key by key. The keys of ``data`` count as set by
        the user (:attr:`given`), with those ``base`` had, unless ``user`` is false (a file
        of defaults)."""
        base = cls() if base is None else base
        merged, keys = _merge(base.to_dict(), data)
        cfg = cls._build(merged)
        given = set(base.given) | (keys if user else set())
        for obj in (cfg, cfg.search, cfg.train, cfg.trials):  # the constructors saw every key
            set_given(obj, ())
        object.__setattr__(cfg, "_keys", frozenset(given))
        return cfg

    @classmethod
    def _build(cls, data: dict) -> "RunConfig":
        _check_keys(data, cls, "")
        kw: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name not in data:
                continue
            value = data[f.name]
            if f.name in _NAMED:
                kw[f.name] = Named.from_value(value, f.name)
            elif f.name in _SECTIONS:
                sub = _SECTIONS[f.name]
                if not isinstance(value, dict):
                    raise ConfigError(f"config key {f.name!r} is a section (a mapping)")
                _check_keys(value, sub, f.name + ".")
                kw[f.name] = sub(**{k: _typed(sub, k, v, f.name) for k, v in value.items()})
            else:
                kw[f.name] = _typed(cls, f.name, value, "")
        cfg = cls(**kw)

        resolve_device(cfg.device, "config key 'device'")
        _check_values(cfg)
        return cfg

    @property
    def given(self) -> frozenset:
        """The keys the user set, dotted (``"search.epochs"``, ``"strategy.arch_lr"``,
        ``"seed"``): by :meth:`from_dict`, :func:`load_config`, :func:`apply_overrides`,
        or by constructing or assigning fields (a :class:`Named` given so counts with all
        its options)."""
        keys = set(self.__dict__.get("_keys", ()))
        own = given_fields(self)
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in _SECTIONS:
                keys |= {f"{f.name}.{k}" for k in given_fields(value)}
            elif f.name in own and isinstance(value, Named):
                keys |= {f"{f.name}.name", *(f"{f.name}.{k}" for k in value.options)}
            elif f.name in own:
                keys.add(f.name)
        return frozenset(keys)

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        for k in _NAMED:
            out[k] = getattr(self, k).to_value()
        return out


_NAMED = ("space", "strategy", "data")
_SECTIONS = {"search": SearchBudget, "train": TrainBudget, "trials": TrialsBudget}


def _merge(base: dict, data) -> tuple[dict, set]:
    """``(data merged over base key by key, the dotted keys data set)``."""
    if not isinstance(data, dict):
        raise ConfigError(f"a config is a mapping of sections, got {type(data).__name__}")
    _check_keys(data, RunConfig, "")
    out, keys = copy.deepcopy(base), set()
    for key, value in data.items():
        if key in _NAMED:
            value = _named_value(value, key)
            section = _named_value(out[key], key)
            section.update(copy.deepcopy(value))
            out[key] = section
            keys |= {f"{key}.{k}" for k in value}
        elif key in _SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(f"config key {key!r} is a section (a mapping)")
            _check_keys(value, _SECTIONS[key], key + ".")
            out[key].update(copy.deepcopy(value))
            keys |= {f"{key}.{k}" for k in value}
        else:
            out[key] = value
            keys.add(key)
    return out, keys


def _check_keys(data: dict, cls, prefix: str) -> None:
    known = [f.name for f in dataclasses.fields(cls)]
    for key in data:
        if key not in known:
            raise ConfigError(
                f"config key {prefix + str(key)!r} is unknown.{did_you_mean(key, known)} "
                f"Known keys{' of ' + prefix[:-1] if prefix else ''}: {known}"
            )


_TYPES = {"int": int, "float": float, "str": str, "bool": bool, "dict": dict, "list": list}

# (lowest accepted, whether the lowest is excluded, highest excluded or None); ``None``
# values of the ``| None`` keys are accepted as they are
# budgets past these bounds are mistakes (and would run for ever or allocate without end)
_MAX_EPOCHS, _MAX_BATCH = 10 ** 6, 2 ** 24
_RANGES = {
    "search.epochs": (1, False, _MAX_EPOCHS + 1), "search.batch_size": (1, False, _MAX_BATCH + 1),
    "search.max_steps_per_epoch": (1, False, 2 ** 31),
    "train.epochs": (1, False, _MAX_EPOCHS + 1), "train.batch_size": (1, False, _MAX_BATCH + 1),
    "train.lr": (0, True, None), "train.momentum": (0, False, 1),
    "train.weight_decay": (0, False, None), "train.grad_clip": (0, True, None),
    "trials.budget": (1, False, _MAX_EPOCHS + 1), "trials.epochs": (1, False, _MAX_EPOCHS + 1),
    "trials.workers": (1, False, 4097),
}
_CHOICES = {"train.mode": ("retrain", "finetune", "none"), "train.split": ("train", "train+val"),
            "trials.engine": ("local", "ray"), "search.memory": MEMORY_MODES}


def _check_values(cfg: "RunConfig") -> None:
    """Budgets and choices out of range fail here, before any data is loaded or any epoch
    runs (a negative ``train.lr`` would otherwise stop the run only after the search)."""
    if cfg.seed < 0:
        raise ConfigError(f"config key 'seed' is {cfg.seed}; a seed is an integer >= 0")
    if not isinstance(cfg.imports, list) or not all(isinstance(m, str) and m
                                                    for m in cfg.imports):
        raise ConfigError(f"config key 'imports' is a list of module names or .py files "
                          f"(e.g. imports: [my_pkg.my_ops]), got {cfg.imports!r}")
    for key, (low, open_low, high) in _RANGES.items():
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        if value is None:
            continue
        bad = value <= low if open_low else value < low
        if bad or (high is not None and value >= high):
            want = (f"{'>' if open_low else '>='} {low}"
                    + (f" and < {high}" if high is not None else ""))
            raise ConfigError(f"config key {key!r} is {value!r}; it must be {want}")
    for key, choices in _CHOICES.items():
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        if value not in choices:
            raise ConfigError(
                f"config key {key!r} is {value!r}; expected one of {list(choices)}"
            )
    _check_train_options(cfg.train.options)
    _check_finite(cfg.to_dict(), "")


def _check_finite(value, where: str) -> None:
    """Every number in ``value`` (mappings and lists nested) is finite, else a ConfigError
    naming its dotted key."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"config key {where!r} is {value!r}; a config's numbers must be "
                          "finite (no NaN or inf)")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2 ** 63:
        raise ConfigError(f"config key {where!r} is an integer of {len(str(abs(value)))} "
                          "digits; a config's integers are below 2**63")
    if isinstance(value, dict):
        for k, v in value.items():
            _check_finite(v, f"{where}.{k}" if where else str(k))
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_finite(v, f"{where}[{i}]")


class _Loader(yaml.SafeLoader):
    """YAML's safe loader that also reads ``1e10``, ``-2.5E3``, ``1.0e10`` as floats (YAML
    1.2 and JSON do; PyYAML's 1.1 rules need a dot and a signed exponent)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."))


def _yaml(text: str, where: str):
    """``text`` parsed (a SafeLoader: builds no Python objects); a value that contains
    itself (YAML anchors: ``a: &x [*x]``) is refused, as nothing downstream could walk it."""
    data = yaml.load(text, Loader=_Loader)
    _acyclic(data, where, set())
    return data


def _acyclic(value, where: str, seen: set) -> None:
    if isinstance(value, (dict, list)):
        if id(value) in seen:
            raise ConfigError(f"{where}: a value contains itself (a YAML anchor used inside "
                              "its own definition); write the value out")
        seen.add(id(value))
        for v in value.values() if isinstance(value, dict) else value:
            _acyclic(v, where, seen)
        seen.discard(id(value))


def _check_train_options(options: dict) -> None:
    own = {f.name for f in dataclasses.fields(TrainBudget)} | {"seed"}
    accepted = [k for k, p in inspect.signature(train_module).parameters.items()
                if p.kind is p.KEYWORD_ONLY and k not in own and not k.endswith("_fn")
                and k not in ("device", "on_epoch_end")]  # the run's own, not options
    for key in options:
        if key not in accepted:
            raise ConfigError(
                f"config key 'train.options.{key}' is unknown.{did_you_mean(key, accepted)} "
                f"train.options takes {accepted} (the other settings are keys of train)"
            )


def _typed(cls, key, value, section):
    f = next(f for f in dataclasses.fields(cls) if f.name == key)
    where = f"{section + '.' if section else ''}{key}"
    kind = str(f.type).replace(" | None", "")
    if value is None and "None" in str(f.type):
        return None
    want = _TYPES.get(kind)
    if want is None:
        return value
    if want is float and isinstance(value, int) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            raise ConfigError(f"config key {where!r} is an integer of {len(str(value))} "
                              "digits: too large for a float number") from None
    if want is int and isinstance(value, bool) or not isinstance(value, want):
        raise ConfigError(f"config key {where!r} must be {kind}, got {value!r}")
    return value


def default_config_path() -> str:
    return os.path.join(os.path.dirname(__file__), "configs", "default.yaml")


def load_config(path: str | None = None) -> RunConfig:
    """Read a YAML or JSON config merged over the packaged defaults key by key (the
    packaged default itself when ``path`` is None); the keys of the file are the user's.

    Raises:
        ConfigError: the file cannot be read or parsed, is empty, its top level is not a
            mapping (``null``, ``false``, ``0``, ``[]``, a bare string), or a key or value
            is wrong (the message names the file and the key).
    """
    default = path is None
    path = path or default_config_path()
    try:
        with open(path) as f:
            text = f.read()
    except OSError as exc:
        raise ConfigError(f"cannot read config {path!r}: {exc}") from exc
    try:
        data = json.loads(text) if path.endswith(".json") else _yaml(text, path)
    except ConfigError:
        raise
    except Exception as exc:  # the YAML and JSON parsers raise their own types
        raise ConfigError(f"{path}: cannot parse the config: {exc}") from exc
    if data is None and not _has_content(text):
        raise ConfigError(f"{path}: the config file is empty (or only comments); a config is "
                          "a mapping of sections (e.g. 'search: {epochs: 1}'); give no file "
                          "for the packaged defaults")
    if not isinstance(data, dict):
        got = "null" if data is None else f"{type(data).__name__} {data!r}"
        raise ConfigError(f"{path}: a config is a mapping of sections, got {got}; write "
                          "one key per section (e.g. 'search: {epochs: 1}')")
    try:
        return RunConfig.from_dict(data, user=not default)
    except ConfigError as exc:  # say which file holds the bad key
        raise ConfigError(f"{path}: {exc}") from exc


def _has_content(text: str) -> bool:
    """Whether YAML ``text`` holds more than comments, blank lines and document markers."""
    return any(line.strip() and not line.lstrip().startswith("#")
               and line.strip() not in ("---", "...") for line in text.splitlines())


def apply_overrides(cfg: RunConfig, overrides: list[str]) -> RunConfig:
    """Apply ``section.key=value`` strings (values parsed as YAML scalars) over ``cfg``;
    the keys they name count as set by the user."""
    data = cfg.to_dict()
    user: dict = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value (e.g. search.epochs=3)")
        key, raw = item.split("=", 1)
        try:
            value = _yaml(raw, f"override {item!r}")
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {item!r}: its value is not valid YAML "
                              f"({str(exc).splitlines()[0]}); quote a string, e.g. "
                              f"{key}=\"'{raw}'\"") from None
        node, mine = data, user
        parts = key.split(".")
        for depth, p in enumerate(parts[:-1]):
            if depth == 1 and parts[0] == "strategy" and p not in node:
                node[p] = {}  # a strategy option that is a mapping: strategy.target.metric
            if p not in node or not isinstance(node[p], dict):
                where = ".".join(parts[:depth + 1])
                if depth:  # inside a section: its keys take values, not sub-keys
                    raise ConfigError(
                        f"override {item!r}: {where!r} is a key, not a section; set it with "
                        f"{where}=VALUE (a mapping as YAML: {where}={{a: 1}})"
                    )
                sections = [k for k, v in node.items() if isinstance(v, dict)]
                raise ConfigError(
                    f"override {item!r}: {p!r} is not a config section.{did_you_mean(p, sections)}"
                    f" Sections: {sections}"
                )
            node = node[p]
            if depth == 0 and p in _NAMED and isinstance(mine.get(p), str):
                mine[p] = {"name": mine[p]}
            mine = mine.setdefault(p, {})
        node[parts[-1]] = value
        mine[parts[-1]] = value
    return RunConfig.from_dict(user, base=cfg)
