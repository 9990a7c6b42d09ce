"""Errors blame the right thing (issue 29, item 6): a NaN hyperparameter or setting is named as
such, not answered with "try a lower learning rate"; NaN in the data is the data's fault, not
the learner's."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import generators
from pid_bench.cli import main
from pid_bench.config import AugConfig, ModelConfig, TrainConfig
from pid_bench.learners import Learner
from pid_bench.learners.base import LearnerError
from pid_bench.training import train

RUN = ["run", "--generator", "bits", "--set", "n_train=200", "--set", "n_test=100"]
RUN += ["--epochs", "1", "--quiet", "--interaction", "redundancy"]


@pytest.mark.parametrize(
    "argv, match",
    [
        (
            ["--learners", "cross_self", "--learner-set", "cross_self.self_weight=nan"],
            "learner 'cross_self' hyperparameter 'self_weight' takes a finite float, got 'nan'",
        ),
        (
            ["--learners", "infmasking", "--learner-set", "infmasking.mask_lambda=inf"],
            "hyperparameter 'mask_lambda' takes a finite float, got 'inf'",
        ),
        (
            ["--learners", "cross", "--config-set", "model.temperature=nan"],
            "setting model.temperature takes a finite float, got 'nan'",
        ),
        (
            ["--learners", "cross", "--config-set", "aug.image.crop_scale=nan,1"],
            "setting aug.image.crop_scale takes finite comma-separated numbers, got 'nan,1'",
        ),
    ],
)
def test_nan_hyperparameters_and_settings_are_named(argv, match, tmp_path, capsys):
    out = tmp_path / "r"
    assert main([*RUN, *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pid-bench run: error: ") and match in err, err
    assert "learning rate" not in err and not out.exists()


def test_nan_in_the_data_is_the_datas_fault(tmp_path, capsys):
    """A dataset file with NaN in x1: refused before training, blaming the data."""
    from generators.io import save_npz

    ds = generators.make("bits", n_train=200, n_test=100)
    ds.train.x1[3, :2] = np.nan
    data = save_npz(ds, tmp_path / "nan.npz")
    out = tmp_path / "r"
    argv = ["run", "--data", str(data), "--learners", "random", "--epochs", "1", "--quiet"]
    assert main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "pid-bench run: error: the data hold NaN or inf: x1 of the train split has 2 NaN or "
        "inf values; no learner can be trained or probed on them (fix the dataset)"
    )
    assert not out.exists()


class _Scaled(Learner):
    """A linear map whose loss is scaled by a hyperparameter."""

    name = "scaled"
    hyperparams = ("scale",)
    scale = 1.0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.lin = torch.nn.Linear(4, 2)

    def embed(self, x1, x2):
        return self.lin(torch.cat([x1, x2], 1))

    def loss(self, x1, x2, y, idx, generator):
        return (self.embed(x1, x2) ** 2).mean() * self.scale, {}


def _train(learner, x1, lr=1e-3):
    x2 = np.ones((16, 2), np.float32)
    cfg = TrainConfig(epochs=1, batch_size=8, lr=lr)
    train(learner, x1, x2, None, cfg, device=torch.device("cpu"), seed=0, progress=False)


def _learner(scale=1.0):
    model = _Scaled(("vector", "vector"), ((2,), (2,)), ModelConfig(), AugConfig())
    model.scale = scale
    return model


def test_training_blames_the_data_then_the_hyperparameter_then_the_learning_rate():
    """The backstop inside the training loop, for data and values that reached it."""
    x1 = np.ones((16, 2), np.float32)
    bad = x1.copy()
    bad[:, 0] = np.nan
    with pytest.raises(LearnerError, match="the batch's x1 hold NaN or inf values; the data are"):
        _train(_learner(), bad)
    with pytest.raises(LearnerError, match=r"hyperparameter scale=nan is not a finite number$"):
        _train(_learner(float("nan")), x1)
    with pytest.raises(LearnerError, match="loss became inf at epoch 1, batch 0; try a lower"):
        _train(_learner(1e39), x1)  # finite, but the loss overflows float32
