"""The `published` profile: CoMM's published Trifeature protocol (GPU scale), resolved with the
authors' settings, refused on other generators, and run end to end on CPU at a tiny size."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from generators.trifeature import AUTHORS_TEXTURE_PERIOD
from pid_bench.cli import main
from pid_bench.config import PROFILES
from pid_bench.runner import resolve_config


def _check_published(cfg) -> None:
    """The settings of the published protocol that a run of the profile must carry."""
    m, t, a = cfg.model, cfg.train, cfg.aug.image
    assert m.image_encoder == "alexnet"
    assert (m.d_model, m.fusion_heads, m.fusion_layers, m.proj_dim) == (512, 8, 1, 256)
    assert m.temperature == 0.1
    # the authors' fusion and head (reports/fidelity/README.md, "The options")
    assert (m.fusion_ff_mult, m.fusion_activation, m.fusion_init) == (4, "quick_gelu", "comm")
    assert m.modality_embedding is False and (m.head, m.head_hidden) == ("comm_bn", 512)
    assert (t.lr, t.weight_decay, t.batch_size) == (3e-4, 1e-4, 64)
    assert a.crop_scale == (0.08, 1.0) and a.enabled
    assert cfg.probe.mlp is False
    assert cfg.generator_params["texture_period"] == AUTHORS_TEXTURE_PERIOD


def test_published_resolves_to_the_authors_protocol() -> None:
    cfg = resolve_config(generator="trifeature", profile="published", learners=["comm"])
    _check_published(cfg)
    assert cfg.train.epochs == 100 and cfg.seeds == (0, 1, 2)
    p = cfg.generator_params
    assert (p["size"], p["n_train"], p["n_test"]) == (224, 10000, 4096)
    assert cfg.probe.max_train == 10000  # the probe sees every training pair
    # the authors' 10-pixel texture period at 224 x 224
    assert math.isclose(p["texture_period"] * p["size"] / 2, 10.0)


@pytest.mark.parametrize("generator", ["bits", "content_style", "gaussian"])
def test_published_refuses_other_generators(generator) -> None:
    with pytest.raises(ValueError, match="defined for generator trifeature only.*quick, ci, paper"):
        resolve_config(generator=generator, profile="published")
    assert not PROFILES["paper"].only_generators  # the other profiles take every generator


def test_published_on_the_command_line(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert "published" in capsys.readouterr().out
    # without --generator the default generator (content_style) is refused, in one line (the
    # rest keeps the run short should the refusal ever go)
    small = ["--learners", "random", "--set", "n_train=64", "--set", "n_test=64", "--quiet"]
    assert main(["run", "--profile", "published", *small, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--generator trifeature" in err
    with pytest.raises(SystemExit) as e:
        main(["run", "--profile", "publish"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'published'" in err


def test_published_runs_at_a_tiny_size(tmp_path, capsys) -> None:
    """The whole protocol (AlexNet encoders, width 512, the authors' optimiser settings and
    crops) trains and probes on CPU, with only size, sample counts, batch, epochs and seeds
    cut (AlexNet's smallest size, two steps of 16 pairs)."""
    out = tmp_path / "pub"
    argv = ["run", "--profile", "published", "--generator", "trifeature", "--learners", "comm"]
    argv += ["--set", "size=64", "--set", "n_train=32", "--set", "n_test=32"]
    argv += ["--epochs", "1", "--batch-size", "16", "--seeds", "0", "--device", "cpu"]
    assert main([*argv, "--quiet", "--out", str(out)]) == 0
    written = json.loads((out / "config.json").read_text())
    assert written["profile"] == "published" and written["seeds"] == [0]
    assert written["train"]["epochs"] == 1 and written["generator_params"]["size"] == 64
    model, train = written["model"], written["train"]
    assert model["image_encoder"] == "alexnet" and model["d_model"] == 512
    assert (model["fusion_heads"], model["proj_dim"]) == (8, 256)
    assert (model["head"], model["fusion_activation"]) == ("comm_bn", "quick_gelu")
    assert (train["lr"], train["weight_decay"], train["batch_size"]) == (3e-4, 1e-4, 16)
    assert written["aug"]["image"]["crop_scale"] == [0.08, 1.0]
    assert written["generator_params"]["texture_period"] == AUTHORS_TEXTURE_PERIOD
    df = pd.read_csv(out / "results.csv")
    acc = df[(df["learner"] == "comm") & (df["metric"] == "balanced_accuracy")]
    assert set(acc["task"]) == {"synergy"} and acc["value"].between(0, 1).all()
    assert set(acc["probe"]) == {"linear"}
