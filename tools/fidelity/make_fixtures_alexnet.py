"""Fixture for `tests/test_fidelity_alexnet.py`: the authors' AlexNet image encoder and patch
adapter, run on fixed images with fixed weights.

    python tools/fidelity/make_fixtures_alexnet.py --comm PATH/TO/CoMM --out tests/fixtures/fidelity

Imports, from the CoMM checkout given (Duplums/CoMM), `models.alexnet.AlexNetEncoder` with
`global_pool=""` (the feature map) and `models.input_adapters.PatchedInputAdapter`, built as
`configs/train_trifeatures.yaml` builds them (256 channels, stride level 1, patch 1, a 6 x 6
reference map) but with tokens of width D_MODEL, loads the weights of the recipe in
`alexnet_weights.py` (beside this script), and saves for each case the tokens, the gradient of a
fixed linear function of the tokens with respect to the input (and, at 224 pixels, to the first
conv's and the projection's weights) in `alexnet.npz`, with `alexnet.json` naming the
repository, its commit, the versions and this command. Not run by CI. Needs numpy, torch, einops and
torchvision (`pip install --no-deps torchvision`; its compiled ops need not load).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import torch

# alexnet_weights.py sits beside this script, so it imports as a top-level module.
from alexnet_weights import (
    CONVS,
    alexnet_weights,
    checksum,
    hashed_uniform,
    image_bytes,
    to_float,
)

#: token width of the fixture (CoMM's Trifeature config uses 512; any multiple of 4 works)
D_MODEL = 64
#: case -> input shape: a 1 x 1 map (the smallest size), a non-square 2 x 3 map (the position
#: embedding resized along each axis), the published 224 x 224 (6 x 6, no resizing)
CASES: dict[str, tuple[int, int, int, int]] = {
    "s64": (2, 3, 64, 64),
    "s95x127": (1, 3, 95, 127),
    "s224": (1, 3, 224, 224),
}
#: index of each conv of the recipe in torchvision's `AlexNet.features`
FEATURE_INDEX = {"conv1": 0, "conv2": 3, "conv3": 6, "conv4": 8, "conv5": 10}


def import_torchvision_models() -> None:
    """Import torchvision's model classes even where its compiled ops do not load.

    torchvision registers fake kernels for its C++ ops at import; where its binary does not
    match torch, that fails, though the pure-Python models need none of them. Stub the
    registrations module and import again.
    """
    try:
        import torchvision.models  # noqa: F401
    except (RuntimeError, OSError):
        for name in [m for m in sys.modules if m.startswith("torchvision")]:
            del sys.modules[name]
        sys.modules["torchvision._meta_registrations"] = types.ModuleType(
            "torchvision._meta_registrations"
        )
        import torchvision.models  # noqa: F401


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--comm", required=True, help="path to a checkout of Duplums/CoMM")
    ap.add_argument("--out", required=True, help="folder for alexnet.npz and alexnet.json")
    args = ap.parse_args()
    comm = Path(args.comm).resolve()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    torch.set_num_threads(1)
    import_torchvision_models()
    import torchvision

    sys.path.insert(0, str(comm))
    from models.alexnet import AlexNetEncoder
    from models.input_adapters import PatchedInputAdapter

    # As configs/train_trifeatures.yaml builds them (encoders, adapters), width D_MODEL.
    enc = AlexNetEncoder(latent_dim=256, dropout=0.5, global_pool="")
    adapter = PatchedInputAdapter(
        num_channels=256, stride_level=1, patch_size_full=1, dim_tokens=D_MODEL, image_size=6
    )
    weights = alexnet_weights(D_MODEL)
    with torch.no_grad():
        for name, *_ in CONVS:
            conv = enc.features[FEATURE_INDEX[name]]
            conv.weight.copy_(torch.from_numpy(weights[f"{name}.weight"]))
            conv.bias.copy_(torch.from_numpy(weights[f"{name}.bias"]))
        adapter.proj.weight.copy_(torch.from_numpy(weights["proj.weight"]))
        adapter.proj.bias.copy_(torch.from_numpy(weights["proj.bias"]))
    enc.eval()  # no dropout or batch statistics are used with global_pool="" anyway
    adapter.eval()

    arrays: dict[str, np.ndarray] = {}
    cases = {}
    for case, shape in CASES.items():
        images = image_bytes(f"{case}.images", shape)
        x = torch.from_numpy(to_float(images)).requires_grad_(True)
        tokens = adapter(enc(x))
        probe = torch.from_numpy(
            hashed_uniform(f"{case}.probe", tuple(tokens.shape)).astype(np.float32)
        )
        enc.zero_grad()
        adapter.zero_grad()
        (tokens * probe).sum().backward()
        arrays[f"{case}_images"] = images
        arrays[f"{case}_tokens"] = tokens.detach().numpy()
        if case == "s224":
            # the published size: weight gradients instead of the 600 kB input gradient
            arrays[f"{case}_grad_conv1_weight"] = enc.features[0].weight.grad.numpy().copy()
            arrays[f"{case}_grad_proj_weight"] = adapter.proj.weight.grad.numpy()[:, :, 0, 0]
        else:
            arrays[f"{case}_grad_images"] = x.grad.numpy()
        cases[case] = {"input_shape": list(shape), "token_shape": list(tokens.shape)}
        print(f"{case}: input {tuple(shape)} -> tokens {tuple(tokens.shape)}")

    np.savez_compressed(out / "alexnet.npz", **arrays)
    commit = subprocess.run(
        ["git", "-C", str(comm), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    meta = {
        "repository": "Duplums/CoMM",
        "commit": commit,
        "modules": [
            "models/alexnet.py: AlexNetEncoder(latent_dim=256, dropout=0.5, global_pool='')",
            "models/input_adapters.py: PatchedInputAdapter(num_channels=256, stride_level=1, "
            f"patch_size_full=1, dim_tokens={D_MODEL}, image_size=6)",
        ],
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": np.__version__,
        "command": "python tools/fidelity/make_fixtures_alexnet.py --comm "
        f"{args.comm} --out {args.out}",
        "d_model": D_MODEL,
        "weights": "tools/fidelity/alexnet_weights.py alexnet_weights(d_model, seed=0); images: "
        "image_bytes(f'{case}.images', shape) / 255; loss: sum(tokens * "
        "hashed_uniform(f'{case}.probe', tokens.shape))",
        "weight_sha256": {k: checksum(v) for k, v in weights.items()},
        "cases": cases,
    }
    (out / "alexnet.json").write_text(json.dumps(meta, indent=2) + "\n")
    size = (out / "alexnet.npz").stat().st_size
    print(f"wrote {out / 'alexnet.npz'} ({size / 1e3:.0f} kB) and {out / 'alexnet.json'}")


if __name__ == "__main__":
    main()
