"""Our AlexNet image encoder against the authors' (Duplums/CoMM `models/alexnet.py` with
`global_pool=""` and `models/input_adapters.py` `PatchedInputAdapter`), on the fixture that
`tools/fidelity/make_fixtures_alexnet.py` made by running their modules: same weights and
images, same tokens and gradients within float32 tolerance."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

from pid_bench.config import ModelConfig
from pid_bench.learners.encoders import build_encoder
from pid_bench.learners.image import AlexNetEncoder, alexnet_grid, sincos_2d

FIXTURES = Path(__file__).parent / "fixtures" / "fidelity"
#: The weights' recipe, shared with the script that made the fixture in the authors'
#: environment (numpy only, no pid_bench there): loaded from its file, as that script does.
RECIPE = Path(__file__).parents[1] / "tools" / "fidelity" / "alexnet_weights.py"


def _load_recipe() -> ModuleType:
    spec = importlib.util.spec_from_file_location("alexnet_weights", RECIPE)
    assert spec is not None and spec.loader is not None, RECIPE
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_recipe = _load_recipe()
CONVS = _recipe.CONVS
alexnet_weights, checksum = _recipe.alexnet_weights, _recipe.checksum
hashed_uniform, to_float = _recipe.hashed_uniform, _recipe.to_float
META = json.loads((FIXTURES / "alexnet.json").read_text())
D_MODEL = META["d_model"]


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray]:
    with np.load(FIXTURES / "alexnet.npz") as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def weights() -> dict[str, np.ndarray]:
    return alexnet_weights(D_MODEL)


def _ours(shape: tuple[int, ...], weights: dict[str, np.ndarray]) -> AlexNetEncoder:
    """Our encoder as the run builds it, with the fixture's weights."""
    torch.manual_seed(0)
    enc = build_encoder("image", shape, ModelConfig(image_encoder="alexnet", d_model=D_MODEL))
    assert isinstance(enc, AlexNetEncoder)
    convs = [m for m in enc.features if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == len(CONVS)
    with torch.no_grad():
        for conv, (name, *_) in zip(convs, CONVS, strict=True):
            conv.weight.copy_(torch.from_numpy(weights[f"{name}.weight"]))
            conv.bias.copy_(torch.from_numpy(weights[f"{name}.bias"]))
        # the authors project with a 1 x 1 conv, (d, 256, 1, 1); ours is the same map as a Linear
        enc.proj.weight.copy_(torch.from_numpy(weights["proj.weight"][:, :, 0, 0]))
        enc.proj.bias.copy_(torch.from_numpy(weights["proj.bias"]))
    return enc


def test_fixture_metadata_and_recipe(weights) -> None:
    assert META["repository"] == "Duplums/CoMM" and len(META["commit"]) == 40
    assert META["torch"] and META["command"].startswith("python tools/fidelity/")
    # the recipe still makes the weights the authors' modules were run with
    assert {k: checksum(v) for k, v in weights.items()} == META["weight_sha256"]


@pytest.mark.parametrize("case", sorted(META["cases"]))
def test_tokens_and_gradients_equal_the_authors(case, data, weights) -> None:
    torch.set_num_threads(1)
    images = data[f"{case}_images"]
    enc = _ours(images.shape[1:], weights)
    x = torch.from_numpy(to_float(images)).requires_grad_(True)
    tokens = enc(x)
    ref = data[f"{case}_tokens"]
    assert tuple(tokens.shape) == ref.shape == tuple(META["cases"][case]["token_shape"])
    scale = float(np.abs(ref).max())
    np.testing.assert_allclose(tokens.detach().numpy(), ref, rtol=1e-4, atol=1e-5 * scale)
    probe = torch.from_numpy(hashed_uniform(f"{case}.probe", ref.shape).astype(np.float32))
    (tokens * probe).sum().backward()
    grads = {
        "grad_images": x.grad,
        "grad_conv1_weight": enc.features[0].weight.grad,
        "grad_proj_weight": enc.proj.weight.grad,
    }
    checked = 0
    for key, ours in grads.items():
        if f"{case}_{key}" in data:
            ref = data[f"{case}_{key}"]
            scale = float(np.abs(ref).max())
            np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-4, atol=1e-5 * scale)
            checked += 1
    assert checked >= 1


def test_grid_sizes_and_smallest_input() -> None:
    assert [alexnet_grid(s) for s in (62, 63, 64, 94, 95, 127, 224)] == [0, 1, 1, 1, 2, 3, 6]
    assert AlexNetEncoder((3, 64, 64), d_model=8).n_tokens == 1
    assert AlexNetEncoder((3, 224, 224), d_model=8).n_tokens == 36
    with pytest.raises(ValueError, match="at least 63 x 63 pixels.*image_encoder=cnn"):
        build_encoder("image", (3, 32, 32), ModelConfig(image_encoder="alexnet"))
    with pytest.raises(ValueError, match="divisible by 4"):
        AlexNetEncoder((3, 64, 64), d_model=30)
    with pytest.raises(ValueError, match="image_encoder must be one of cnn, alexnet"):
        ModelConfig(image_encoder="vgg")


def test_position_embedding_is_fixed_and_2d() -> None:
    table = sincos_2d(6, 6, 8)[0]  # (8, rows, cols)
    # first half varies along rows only, second half along columns only
    assert torch.allclose(table[:4, :, :1].expand(4, 6, 6), table[:4])
    assert torch.allclose(table[4:, :1, :].expand(4, 6, 6), table[4:])
    assert torch.allclose(table[0, 2, 0], torch.sin(torch.tensor(2.0)))
    enc = AlexNetEncoder((3, 224, 224), d_model=8)
    # not a parameter: nothing trains or decays it, and the state dict does not carry it
    assert "pos" not in dict(enc.named_parameters()) and "pos" not in enc.state_dict()
    torch.testing.assert_close(enc.pos[0], table.flatten(1).T)  # no resizing at 224 px


def test_default_image_encoder_unchanged() -> None:
    """`cnn` stays the default: same modules, same parameters from the same seed."""
    from pid_bench.learners.image import CNNEncoder

    torch.manual_seed(0)
    a = build_encoder("image", (3, 32, 32), ModelConfig())
    torch.manual_seed(0)
    b = CNNEncoder((3, 32, 32), d_model=64, width=32)
    assert isinstance(a, CNNEncoder)
    for (na, pa), (nb, pb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert na == nb and torch.equal(pa, pb)
