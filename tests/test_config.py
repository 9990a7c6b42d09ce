"""Dotted-path settings (`--config-set`, profiles' per-generator settings)."""

from __future__ import annotations

import pytest
import torch

from pid_bench.config import (
    PROFILES,
    AugConfig,
    ImageAugConfig,
    ModelConfig,
    ProbeConfig,
    TrainConfig,
    apply_settings,
)
from pid_bench.learners.augment import build_augment

SECTIONS = {
    "train": TrainConfig(),
    "model": ModelConfig(),
    "aug": AugConfig(),
    "probe": ProbeConfig(),
}


def test_values_are_coerced_to_field_types() -> None:
    out = apply_settings(
        SECTIONS,
        {
            "train.epochs": "7",
            "train.lr": "3e-4",
            "model.cnn_width": 16,
            "probe.mlp": "false",
            "probe.c_grid": "0.1,1,10,100",
            "aug.image.crop_scale": "0.3,1",
            "aug.image.blur_reference_size": "none",
        },
    )
    assert out["train"].epochs == 7 and out["train"].lr == 3e-4
    assert out["model"].cnn_width == 16 and out["probe"].mlp is False
    assert out["probe"].c_grid == (0.1, 1.0, 10.0, 100.0)
    assert out["aug"].image.crop_scale == (0.3, 1.0)
    assert out["aug"].image.blur_reference_size is None
    # the inputs are frozen and untouched
    assert SECTIONS["aug"].image.crop_scale == (0.08, 1.0)


@pytest.mark.parametrize(
    "settings, match",
    [
        ({"nope.x": 1}, "SECTION.FIELD with SECTION one of train, model, aug, probe"),
        ({"train": 1}, "SECTION.FIELD"),
        ({"model.nope": 1}, "ModelConfig has no field 'nope'; accepted: cnn_width"),
        ({"aug.image": 1}, "names a section"),
        ({"train.epochs.x": 1}, "has no fields"),
        ({"train.epochs": "ten"}, "train.epochs takes int, got 'ten'"),
        ({"train.epochs": 2.5}, "takes int"),
        ({"probe.mlp": "maybe"}, "takes bool"),
        ({"aug.image.crop_scale": "0.3"}, "2 comma-separated numbers"),
        ({"aug.image.crop_p": "1.5"}, "probability in \\[0, 1\\]"),
    ],
)
def test_bad_settings_say_what_is_accepted(settings, match) -> None:
    with pytest.raises(ValueError, match=match):
        apply_settings(SECTIONS, settings)


def test_profile_generator_settings_are_valid() -> None:
    for prof in PROFILES.values():
        base = {"train": prof.train, "model": prof.model, "aug": prof.aug, "probe": prof.probe}
        for settings in prof.generator_settings.values():
            apply_settings(base, settings)


def test_image_augment_uses_the_configured_recipe() -> None:
    off = ImageAugConfig(enabled=False)
    aug = build_augment("image", AugConfig(image=off))
    x = torch.rand(4, 3, 8, 8)
    assert aug(x, torch.Generator().manual_seed(0)) is x
    on = build_augment("image", AugConfig())
    assert not torch.equal(on(x, torch.Generator().manual_seed(0)), x)


def test_model_architecture_options_are_coerced_and_checked() -> None:
    out = apply_settings(
        SECTIONS,
        {
            "model.fusion_ff_mult": "4",
            "model.fusion_activation": "quick_gelu",
            "model.fusion_init": "comm",
            "model.modality_embedding": "false",
            "model.head": "comm_bn",
            "model.head_hidden": "512",
        },
    )
    m = out["model"]
    assert (m.fusion_ff_mult, m.fusion_activation, m.fusion_init) == (4, "quick_gelu", "comm")
    assert m.modality_embedding is False and (m.head, m.head_hidden) == ("comm_bn", 512)
    back = apply_settings({"model": m}, {"model.head_hidden": "none"})["model"]
    assert back.head_hidden is None
    for settings, match in (
        ({"model.fusion_activation": "gelu"}, "fusion_activation must be one of relu, quick_gelu"),
        ({"model.fusion_init": "xavier"}, "fusion_init must be one of torch, comm"),
        ({"model.head": "mlp3"}, "head must be one of mlp2, comm_bn"),
        ({"model.fusion_ff_mult": "0"}, "fusion_ff_mult must be a positive int"),
        ({"model.head_hidden": "0"}, "head_hidden must be a positive int or None"),
    ):
        with pytest.raises(ValueError, match=match):
            apply_settings(SECTIONS, settings)
