"""Image augmentations, the CNN token encoder, and the dataset picture."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from generators.base import BimodalDataset, Split
from pid_bench.learners.image import CNNEncoder, ImageAugConfig, ImageAugment
from pid_bench.show import show_dataset

OFF = ImageAugConfig(crop_p=0.0, flip_p=0.0, jitter_p=0.0, grayscale_p=0.0, blur_p=0.0)


def _images(b: int = 16, c: int = 3, size: int = 32, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    # Smooth random images, so that crops and blur visibly change them.
    low = torch.rand(b, c, 8, 8, generator=g)
    return torch.nn.functional.interpolate(low, size=(size, size), mode="bilinear")


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_augment_keeps_shape_dtype_device_and_range() -> None:
    aug = ImageAugment()
    for x in (_images(), _images(size=64), _images(c=1), _images().double()):
        y = aug(x, _gen())
        assert y.shape == x.shape and y.dtype == x.dtype and y.device == x.device
        assert y.min() >= 0.0 and y.max() <= 1.0


def test_augment_deterministic_under_seeded_generator() -> None:
    aug = ImageAugment()
    x = _images()
    torch.testing.assert_close(aug(x, _gen(1)), aug(x, _gen(1)), rtol=0, atol=0)
    assert not torch.equal(aug(x, _gen(1)), aug(x, _gen(2)))


def test_augment_differs_across_samples() -> None:
    x = _images(b=1).expand(32, -1, -1, -1).contiguous()
    y = ImageAugment()(x, _gen())
    flat = y.flatten(1)
    dist = torch.cdist(flat, flat)
    assert dist[~torch.eye(32, dtype=torch.bool)].min() > 0


def test_augment_off_is_identity() -> None:
    x = _images()
    assert ImageAugment(replace(ImageAugConfig(), enabled=False))(x, _gen()) is x
    torch.testing.assert_close(ImageAugment(OFF)(x, _gen()), x, rtol=0, atol=1e-5)


def test_each_component() -> None:
    x = _images()
    flipped = ImageAugment(replace(OFF, flip_p=1.0))(x, _gen())
    torch.testing.assert_close(flipped, x.flip(-1), rtol=0, atol=1e-5)
    gray = ImageAugment(replace(OFF, grayscale_p=1.0))(x, _gen())
    assert torch.allclose(gray[:, 0], gray[:, 1]) and torch.allclose(gray[:, 1], gray[:, 2])
    # Sigma in pixels of this image (by default it scales from a 224-pixel reference).
    cfg = replace(OFF, blur_p=1.0, blur_sigma=(1.0, 2.0), blur_reference_size=None)
    blurred = ImageAugment(cfg)(x, _gen())

    def roughness(t: torch.Tensor) -> torch.Tensor:
        return (t[..., 1:, :] - t[..., :-1, :]).abs().mean((1, 2, 3))

    assert torch.all(roughness(blurred) < roughness(x))
    torch.testing.assert_close(blurred.mean((2, 3)), x.mean((2, 3)), rtol=0, atol=0.02)
    cropped = ImageAugment(replace(OFF, crop_p=1.0, crop_scale=(0.1, 0.2)))(x, _gen())
    assert not torch.allclose(cropped, x)
    jittered = ImageAugment(replace(OFF, jitter_p=1.0))(x, _gen())
    assert (jittered - x).abs().mean((1, 2, 3)).min() > 1e-3


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="probability"):
        ImageAugConfig(blur_p=1.5)
    with pytest.raises(ValueError, match="crop_scale"):
        ImageAugConfig(crop_scale=(0.0, 1.0))
    with pytest.raises(ValueError, match="hue"):
        ImageAugConfig(hue=0.7)
    with pytest.raises(ValueError, match="B, C, H, W"):
        ImageAugment()(torch.zeros(3, 8, 8))


@pytest.mark.parametrize("size", [32, 64])
def test_encoder_tokens(size: int) -> None:
    enc = CNNEncoder((3, size, size), d_model=24, width=8)
    x = torch.rand(4, 3, size, size)
    z = enc(x)
    assert z.shape == (4, enc.n_tokens, 24) and enc.n_tokens == 16
    z.square().mean().backward()
    assert all(p.grad is not None for p in enc.parameters())


def test_encoder_group_norm_and_errors() -> None:
    enc = CNNEncoder((1, 20, 20), d_model=16, width=8, grid=2, norm="group")
    assert enc(torch.rand(2, 1, 20, 20)).shape == (2, 4, 16)
    with pytest.raises(ValueError, match="inputs"):
        enc(torch.rand(2, 3, 20, 20))
    with pytest.raises(ValueError, match="norm"):
        CNNEncoder((3, 32, 32), norm="layer")


def _image_dataset(n: int = 6) -> BimodalDataset:
    rng = np.random.default_rng(0)
    split = Split(
        x1=rng.random((n, 3, 16, 16), dtype=np.float32),
        x2=rng.random((n, 1, 16, 16), dtype=np.float32),
        labels={"redundancy": np.arange(n) % 3, "synergy": np.arange(n) % 2},
        latents={"colour1": np.arange(n) % 2},
    )
    return BimodalDataset(
        name="toy",
        params={
            "label_names": {"redundancy": ("a", "b", "c")},
            "latent_names": {"colour1": ("x", "y")},
        },
        train=split,
        test=split,
        true_pid={},
        n_classes={"redundancy": 3, "synergy": 2},
    )


def test_show_dataset_writes_png(tmp_path) -> None:
    out = show_dataset(_image_dataset(), tmp_path / "sub" / "toy.png", n=5)
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000


def test_show_vector_data_needs_synergy_factors(tmp_path) -> None:
    split = Split(x1=np.zeros((4, 5), np.float32), x2=np.zeros((4, 5), np.float32), labels={})
    ds = BimodalDataset(name="vec", params={}, train=split, test=split, true_pid={}, n_classes={})
    with pytest.raises(ValueError, match="synergy factors s1, s2"):
        show_dataset(ds, tmp_path / "x.png")
    with pytest.raises(ValueError, match="unknown split"):
        show_dataset(_image_dataset(), tmp_path / "x.png", split="validation")
