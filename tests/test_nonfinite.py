"""NaN and inf: never saved as a good state, refused up front in data and configuration.

A search whose state turns non-finite stops without overwriting its last finite checkpoint
and says which one it keeps; final training returns no non-finite module; data splits and
config values with NaN or inf fail before anything runs, naming the split or the key.
"""

import os
import re

import pytest
import torch
from search_graphs import chain, darts_like, data, small_config

from supernet import compile
from supernet.config import RunConfig, apply_overrides, load_config
from supernet.data import DataSplits
from supernet.errors import ConfigError, SearchError
from supernet.search import BilevelSearch, DiscretizationPolicy, create_strategy
from supernet.search.checkpoint import STATE_KEYS, load_checkpoint, save_checkpoint
from supernet.train import fine_tune, train_module
from supernet.train.training import nonfinite_tensors

NAN = float("nan")

# these searches are a few steps long: their weights are not meant to learn
pytestmark = pytest.mark.filterwarnings("ignore::supernet.search.loop.SearchWarning")


def _poison(module):
    """The first weight of ``module`` set to NaN, as a diverging step leaves it."""
    with torch.no_grad():
        next(iter(module.weights())).view(-1)[0] = NAN


class FaultAt(BilevelSearch):
    """A search whose weights turn NaN at the last weight step of epoch ``fault_epoch``."""

    fault_epoch = None

    def _weight_step(self, inputs, ctx, y, step=0):
        out = super()._weight_step(inputs, ctx, y, step)
        if (self.state.epoch + 1 == self.fault_epoch
                and step == self.config.steps_per_epoch - 1):
            _poison(self.module)
        return out


def _finite_file(path) -> dict:
    ckpt = load_checkpoint(str(path))
    assert nonfinite_tensors({k: ckpt[k] for k in STATE_KEYS}) == []
    return ckpt


def test_a_nan_at_an_epochs_last_step_keeps_the_epoch_before_and_resumes(tmp_path):
    cfg = small_config(epochs=3, checkpoint_dir=str(tmp_path))
    s = FaultAt(darts_like(), data(), config=cfg)
    s.fault_epoch = 2
    last = os.path.join(str(tmp_path), "last.safetensors")
    message = (r"search stopped: the search state holds NaN or inf at the end of epoch 2: "
               r"module\.\S+ \(1 of \d+ values\)\. The last finite state \(the end of epoch 1\) "
               rf"is {re.escape(last)}; rerunning continues from it")
    with pytest.raises(SearchError, match=message):
        s.run()
    assert os.listdir(tmp_path) == ["last.safetensors"]  # no other file claims a state
    assert _finite_file(last)["epoch"] == 1  # the fault's epoch did not overwrite it
    back = BilevelSearch.resume(last, data())  # the fault removed
    result = back.run()
    assert len(result.history) == 3 and back.finalized
    assert nonfinite_tensors(result.module.state_dict()) == []
    assert _finite_file(last)["finalized"]


def test_nan_in_the_optimizer_state_is_named_and_nothing_is_kept_without_checkpoints():
    def poison_momentum(state, record):
        opt = state.weight_optimizer
        buf = opt.state[opt.param_groups[0]["params"][0]]["momentum_buffer"]
        buf.view(-1)[0] = float("inf")

    s = BilevelSearch(chain(), data(), config=small_config(), discretization=None,
                      callbacks=[poison_momentum])
    with pytest.raises(SearchError, match=r"at the end of epoch 1: w_opt\.\S+\.momentum_buffer "
                                          r"\(1 of \d+ values\)\. No state is kept: "
                                          r"checkpoints are off"):
        s.run()


class PoisonedFinalize(DiscretizationPolicy):
    """The strategy's own discretization, whose final step leaves a NaN weight."""

    def __init__(self, inner):
        self.inner = inner

    def on_epoch_end(self, state):
        self.inner.on_epoch_end(state)

    def finalize(self, state):
        self.inner.finalize(state)
        _poison(state.module)


def test_a_non_finite_result_is_never_returned_nor_saved(tmp_path):
    disc = PoisonedFinalize(create_strategy("darts").discretization)
    s = BilevelSearch(darts_like(), data(), discretization=disc,
                      config=small_config(checkpoint_dir=str(tmp_path)))
    with pytest.raises(SearchError, match=r"NaN or inf after the final discretization: .* "
                                          r"The last finite state \(the end of epoch 1\)"):
        s.run()  # so the run never writes search_weights.safetensors
    assert not _finite_file(tmp_path / "last.safetensors")["finalized"]


def test_resume_refuses_a_non_finite_checkpoint(tmp_path):
    s = BilevelSearch(chain(), data(), discretization=None,
                      config=small_config(epochs=2, checkpoint_dir=str(tmp_path)))
    s.run(until=1)
    path = str(tmp_path / "last.safetensors")
    ckpt = load_checkpoint(path)
    name = next(k for k, v in ckpt["module"].items() if v.is_floating_point())
    ckpt["module"][name].view(-1)[0] = NAN
    save_checkpoint(ckpt, path)
    with pytest.raises(SearchError, match=rf"the checkpoint holds NaN or inf \(module\.{re.escape(name)}"
                                          r" \(1 of \d+ values\)\), so no search can continue"):
        BilevelSearch.resume(path, data(), discretization=None)


class NaNGradientAfter:
    """Cross-entropy whose gradient is NaN (its value finite) once ``armed``."""

    def __init__(self):
        self.armed = False

    def __call__(self, out, y):
        loss = torch.nn.functional.cross_entropy(out, y)
        return _NaNGrad.apply(loss) if self.armed else loss


class _NaNGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, g):
        return g * NAN


def _plain_module():
    return compile(chain(ops=("conv_1x1",), n=1))


def test_final_training_returns_no_non_finite_module():
    loss = NaNGradientAfter()

    def arm(record):  # the step of epoch 2 leaves NaN weights behind a finite loss
        loss.armed = True

    with pytest.raises(SearchError, match=r"training stopped: the module holds NaN or inf at the "
                                          r"end of epoch 2: \S+ \(\d+ of \d+ values\)"):
        train_module(_plain_module(), data(), epochs=3, batch_size=8, steps_per_epoch=1,
                     grad_clip=None, loss_fn=loss, on_epoch_end=arm, device="cpu")
    module = _plain_module()
    _poison(module)
    with pytest.raises(SearchError, match=r"the module holds NaN or inf before training"):
        fine_tune(module, data(), epochs=1, device="cpu")
    with pytest.raises(SearchError, match=r"training setting lr=nan: must be a number >= 0"):
        fine_tune(_plain_module(), data(), lr=NAN, device="cpu")


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_a_split_with_nan_or_inf_is_refused_naming_it(split):
    parts = {k: (torch.zeros(20, 1, 8), torch.zeros(20, dtype=torch.long))
             for k in ("train", "val", "test")}
    parts[split][0][17, 0, :2] = NAN
    parts[split][0][19, 0, 5] = float("-inf")
    with pytest.raises(ConfigError, match=rf"data set 'toy': the {split} split has 3 non-finite "
                                          r"input values \(NaN or inf\) in 2 samples \(first: "
                                          r"sample 17\)"):
        DataSplits(parts["train"], parts["val"], parts["test"], 2, (1, 8), "toy")


def test_float_targets_and_given_tensors_are_checked_before_training():
    x = torch.zeros(10, 3)
    y = torch.zeros(10)
    y[4] = NAN
    with pytest.raises(ConfigError, match=r"the val split has 1 non-finite target value \(NaN "
                                          r"or inf\) in 1 sample \(first: sample 4\)"):
        DataSplits((x, y.nan_to_num()), (x, y), (x, y.nan_to_num()), 1, (3,), "regression")
    x, y = data()
    bad = x.clone()
    bad[6, 0, 0, 0] = float("inf")
    with pytest.raises(SearchError, match=r"val data: 1 non-finite input value \(NaN or inf\) "
                                          r"in 1 sample \(first: sample 6\)"):
        BilevelSearch(chain(), (x, y), (bad, y), config=small_config())
    with pytest.raises(SearchError, match=r"train data: 1 non-finite input value"):
        train_module(_plain_module(), torch.utils.data.TensorDataset(bad, y), device="cpu")


def _file(tmp_path, text, name="run.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("text,key", [
    ("train: {lr: .nan}\n", "train.lr"),
    ("strategy: {w_lr: .inf}\n", "strategy.w_lr"),
    ("space: {C: .nan}\n", "space.C"),
    ("data: {val_fraction: .nan}\n", "data.val_fraction"),
    ("train: {options: {lr_min: -.inf}}\n", "train.options.lr_min"),
    ("strategy: {target: {metric: params, value: .nan}}\n", "strategy.target.value"),
])
def test_every_config_number_must_be_finite(tmp_path, text, key):
    with pytest.raises(ConfigError, match=rf"run\.yaml: config key '{re.escape(key)}' is "
                                          r"-?(nan|inf); a config's numbers must be finite"):
        load_config(_file(tmp_path, text))
    with pytest.raises(ConfigError, match=rf"config key '{re.escape(key)}' is"):
        apply_overrides(RunConfig(), [f"{key}=.nan"])


def test_search_settings_must_be_finite():
    with pytest.raises(ConfigError, match=r"search config: w_lr=inf: must be a finite number"):
        BilevelSearch(chain(), data(), config=small_config(w_lr=float("inf")))


@pytest.mark.parametrize("text,got", [("null\n", "null"), ("false\n", "bool False"),
                                      ("0\n", "int 0"), ("[]\n", r"list \[\]"),
                                      ("darts\n", "str 'darts'")])
def test_a_config_file_that_is_not_a_mapping_is_refused(tmp_path, text, got):
    with pytest.raises(ConfigError, match=rf"run\.yaml: a config is a mapping of sections, got "
                                          rf"{got}; write one key per section"):
        load_config(_file(tmp_path, text))
    with pytest.raises(ConfigError, match=r"run\.json: a config is a mapping"):
        load_config(_file(tmp_path, "null", "run.json"))


def test_an_empty_config_file_is_refused(tmp_path):
    for text in ("", "# nothing yet\n\n"):
        with pytest.raises(ConfigError, match=r"run\.yaml: the config file is empty \(or only "
                                              r"comments\).*give no file for the packaged"):
            load_config(_file(tmp_path, text))


def test_numbers_without_a_dot_are_numbers(tmp_path):
    cfg = load_config(_file(tmp_path, "train: {lr: 1e-2, weight_decay: 3E-4}\n"
                                      "strategy: {arch_lr: 1e-3, w_lr: 2.5e2}\n"))
    assert cfg.train.lr == 0.01 and cfg.train.weight_decay == 3e-4
    assert cfg.strategy.options["arch_lr"] == 1e-3 and cfg.strategy.options["w_lr"] == 250.0
    cfg = apply_overrides(cfg, ["train.lr=1e10", "strategy.arch_lr=5e-4", "space.name=1e3x"])
    assert cfg.train.lr == 1e10 and cfg.strategy.options["arch_lr"] == 5e-4
    assert cfg.space.name == "1e3x"  # not a number: a string as before


def test_the_state_check_finds_a_value_in_any_chunk_dtype_and_nesting(monkeypatch):
    import supernet.train.training as training

    monkeypatch.setattr(training, "_CHUNK", 5)  # several chunks per dtype
    state = {"a": [torch.ones(3) for _ in range(4)], "h": torch.ones(2, dtype=torch.float16),
             "step": torch.tensor(3), "mask": torch.ones(4, dtype=torch.bool)}
    assert nonfinite_tensors(state) == []
    state["a"][2][1] = NAN
    state["h"][0] = float("inf")
    assert nonfinite_tensors(state) == ["a[2] (1 of 3 values)", "h (1 of 2 values)"]
