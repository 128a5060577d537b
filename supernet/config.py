"""Experiment configuration: which space, strategy, data and budgets a run uses.

A config is YAML or JSON with the sections of :class:`RunConfig`. Unknown keys are errors
that name the key (and the closest known one), so a typo never silently falls back to a
default.

Examples:
    >>> cfg = RunConfig.from_dict({"space": {"name": "darts1d", "C": 8}, "search": {"epochs": 3}})
    >>> cfg.space.name, cfg.space.options, cfg.search.epochs
    ('darts1d', {'C': 8}, 3)
    >>> RunConfig.from_dict({"serach": {}})
    Traceback (most recent call last):
    ...
    supernet.errors.ConfigError: config key 'serach' is unknown. Did you mean 'search'? ...
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any

from supernet.errors import ConfigError, did_you_mean
from supernet.train.data import resolve_device
from supernet.train.retrain import train_module

__all__ = [
    "Named",
    "SearchBudget",
    "TrainBudget",
    "RunConfig",
    "load_config",
    "apply_overrides",
    "default_config_path",
]


@dataclass
class Named:
    """A registry entry and its options: ``{name: darts1d, C: 8}``."""

    name: str = ""
    options: dict = field(default_factory=dict)

    @classmethod
    def from_value(cls, value, where: str) -> "Named":
        if isinstance(value, str):
            return cls(value, {})
        if not isinstance(value, dict) or "name" not in value:
            raise ConfigError(f"config key {where!r} needs a 'name' (e.g. {where}: {{name: ...}})")
        opts = dict(value)
        return cls(str(opts.pop("name")), opts)

    def to_value(self) -> dict:
        return {"name": self.name, **self.options}


@dataclass
class SearchBudget:
    """Search budget: epochs over the training split (``None``: the strategy's own, e.g. the
    sum of P-DARTS stages), batch size, and how often to save."""

    epochs: int | None = 10
    batch_size: int = 64
    checkpoint_every: int = 1
    max_steps_per_epoch: int | None = None


@dataclass
class TrainBudget:
    """Final training of the discretized architecture.

    ``mode``: ``"retrain"`` (from scratch), ``"finetune"`` (inherited weights) or ``"none"``.
    ``split``: ``"train"`` (the validation split stays held out, so its accuracy is reported)
    or ``"train+val"`` (more data; the validation accuracy is then not reported).
    """

    mode: str = "retrain"
    epochs: int = 20
    batch_size: int = 128
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    split: str = "train"
    options: dict = field(default_factory=dict)


@dataclass
class RunConfig:
    """A whole run: search a space with a strategy on a data set, then train the result.

    ``device``: ``"auto"`` (a GPU when there is one), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    ``pictures``: draw the found cells and the architecture weights over the epochs.
    ``tensorboard``: log losses, accuracies and architecture weights for TensorBoard (needs
    the ``tensorboard`` package: ``pip install supernet[tensorboard]``).
    """

    space: Named = field(default_factory=lambda: Named("darts1d"))
    strategy: Named = field(default_factory=lambda: Named("darts"))
    data: Named = field(default_factory=lambda: Named("mnist1d"))
    search: SearchBudget = field(default_factory=SearchBudget)
    train: TrainBudget = field(default_factory=TrainBudget)
    seed: int = 0
    out: str = "runs/search"
    progress: bool = True
    device: str = "auto"
    pictures: bool = True
    tensorboard: bool = False

    @classmethod
    def from_dict(cls, data: dict) -> "RunConfig":
        if not isinstance(data, dict):
            raise ConfigError(f"a config is a mapping of sections, got {type(data).__name__}")
        _check_keys(data, cls, "")
        kw: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name not in data:
                continue
            value = data[f.name]
            if f.name in ("space", "strategy", "data"):
                kw[f.name] = Named.from_value(value, f.name)
            elif f.name in ("search", "train"):
                sub = SearchBudget if f.name == "search" else TrainBudget
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

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        for k in ("space", "strategy", "data"):
            out[k] = getattr(self, k).to_value()
        return out


def _check_keys(data: dict, cls, prefix: str) -> None:
    known = [f.name for f in dataclasses.fields(cls)]
    for key in data:
        if key not in known:
            raise ConfigError(
                f"config key {prefix + str(key)!r} is unknown.{did_you_mean(key, known)} "
                f"Known keys{' of ' + prefix[:-1] if prefix else ''}: {known}"
            )


_TYPES = {"int": int, "float": float, "str": str, "bool": bool}

# (lowest accepted, whether the lowest is excluded, highest excluded or None); ``None``
# values of the ``| None`` keys are accepted as they are
_RANGES = {
    "search.epochs": (1, False, None), "search.batch_size": (1, False, None),
    "search.checkpoint_every": (1, False, None), "search.max_steps_per_epoch": (1, False, None),
    "train.epochs": (1, False, None), "train.batch_size": (1, False, None),
    "train.lr": (0, True, None), "train.momentum": (0, False, 1),
    "train.weight_decay": (0, False, None), "train.grad_clip": (0, True, None),
}
_CHOICES = {"train.mode": ("retrain", "finetune", "none"), "train.split": ("train", "train+val")}


def _check_values(cfg: "RunConfig") -> None:
    """Budgets and choices out of range fail here, before any data is loaded or any epoch
    runs (a negative ``train.lr`` would otherwise stop the run only after the search)."""
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


def _check_train_options(options: dict) -> None:
    import inspect


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
        return float(value)
    if want is int and isinstance(value, bool) or not isinstance(value, want):
        raise ConfigError(f"config key {where!r} must be {kind}, got {value!r}")
    return value


def default_config_path() -> str:
    return os.path.join(os.path.dirname(__file__), "configs", "default.yaml")


def load_config(path: str | None = None) -> RunConfig:
    """Read a YAML or JSON config (the packaged default when ``path`` is None)."""
    path = path or default_config_path()
    try:
        with open(path) as f:
            text = f.read()
    except OSError as exc:
        raise ConfigError(f"cannot read config {path!r}: {exc}") from exc
    try:
        if path.endswith(".json"):
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text) or {}
    except Exception as exc:  # the YAML and JSON parsers raise their own types
        raise ConfigError(f"{path}: cannot parse the config: {exc}") from exc
    try:
        return RunConfig.from_dict(data)
    except ConfigError as exc:  # say which file holds the bad key
        raise ConfigError(f"{path}: {exc}") from exc


def apply_overrides(cfg: RunConfig, overrides: list[str]) -> RunConfig:
    """Apply ``section.key=value`` strings (values parsed as YAML scalars)."""
    import yaml

    data = cfg.to_dict()
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value (e.g. search.epochs=3)")
        key, raw = item.split("=", 1)
        value = yaml.safe_load(raw)
        node = data
        parts = key.split(".")
        for depth, p in enumerate(parts[:-1]):
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
        node[parts[-1]] = value
    return RunConfig.from_dict(data)
