"""Saving a `BimodalDataset` to one `.npz` file and loading it back.

Layout (every key a plain array; no pickles):

- `{split}_x1`, `{split}_x2`: the modalities;
- `{split}_y_{task}`: each task's labels;
- `{split}_latent_{factor}`: the latent factors;
- `true_pid_{task}`: float64 [redundancy, unique1, unique2, synergy, mutual_info] in bits;
- `meta`: a JSON string with the name, params, n_classes, the full true PID (measure included),
  the list of splits with their tasks and latents, and the dataset's `fingerprint`.

The fingerprint (`fingerprint(ds)`, 16 hex digits) is a SHA-256 of every split's x1, x2 and
labels (dtype, shape and bytes). Embeddings computed on the rows of a dataset carry its
fingerprint, so that `pid-bench score` can tell them from embeddings of other data (another
seed, size or noise level). `load_npz` checks a recorded fingerprint against the contents.

`{split}` is `train`, `test`, or `pretrain_{task}` for each entry of `BimodalDataset.pretrain`.

A generator that draws views (`BimodalDataset.views`, e.g. `content_style`) has no arrays for
them: `load_npz` rebuilds its view source from the recorded parameters (`VIEW_BUILDERS`), so
that training on the file uses the same views as training on the generated dataset.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from estimators._result import PIDResult
from estimators.lattice import LatticePIDResult

from .base import VIEW_BUILDERS, BimodalDataset, Split

FORMAT = "pid-bench-dataset"
VERSION = 1
_ATOMS = ("redundancy", "unique1", "unique2", "synergy", "mutual_info")


@contextlib.contextmanager
def open_atomic(path: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """A binary file to write `path` through: a temporary file in the same folder, renamed
    onto `path` once written and synced, so that `path` is either absent (or as it was) or
    whole, even on a full disk or a killed process. If the writing fails, the temporary file
    is removed and the error raised.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    # os.open rather than tempfile: the file gets the umask's permissions, as open() gives
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: str | os.PathLike[str], data: str | bytes) -> None:
    """Write `data` (text as UTF-8) to `path` atomically (`open_atomic`)."""
    with open_atomic(path) as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)


def read_npz(path: str | os.PathLike[str], what: str) -> dict[str, np.ndarray]:
    """Every array of the `.npz` file `path`, read whole; ValueError with one line naming the
    file and what is wrong: missing, empty, not an `.npz` (text, a `.npy`, another format),
    truncated or damaged, or holding Python objects. `what` names the file's role in the
    messages (e.g. "dataset file")."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no such {what}: {path}")
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError as e:
        raise ValueError(f"{path}: cannot read the {what}: {e.strerror or e}") from None
    if not head:
        raise ValueError(f"{path}: empty file (0 bytes); expected an .npz {what}")
    if not head.startswith(b"PK"):
        kind = (
            "a .npy file of one array"
            if head.startswith(b"\x93NUMPY")
            else "text"
            if _looks_like_text(head)
            else "another format (no zip archive)"
        )
        raise ValueError(f"{path}: not an .npz file but {kind}; expected an .npz {what}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except ValueError as e:
        if "pickle" in str(e):
            raise ValueError(
                f"{path}: holds Python objects (pickles); a {what} holds plain arrays only"
            ) from None
        raise ValueError(f"{path}: damaged {what} ({e})") from None
    except (zipfile.BadZipFile, EOFError, zlib.error, OSError, KeyError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(
            f"{path}: truncated or damaged .npz ({reason}); write the {what} again"
        ) from None


def _looks_like_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _split_keys(ds: BimodalDataset) -> dict[str, Split]:
    splits = {"train": ds.train, "test": ds.test}
    splits.update({f"pretrain_{task}": s for task, s in ds.pretrain.items()})
    return splits


def _json_default(obj: Any) -> Any:
    # Parameters may hold numpy scalars or arrays; JSON has no type for them.
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"dataset parameter of type {type(obj).__name__} is not JSON-serialisable")


def fingerprint(ds: BimodalDataset) -> str:
    """16 hex digits identifying the data of `ds`: every split's x1, x2 and labels.

    Two datasets have the same fingerprint exactly when these arrays are equal (same dtypes,
    shapes and values); latents and metadata do not enter, so a dataset and its `.npz` copy
    agree.
    """
    h = hashlib.sha256(b"pid-bench-dataset-fingerprint/1")
    for key, split in sorted(_split_keys(ds).items()):
        arrays = [(f"x{i}", x) for i, x in enumerate(split.modalities, start=1)]
        arrays += [(f"y_{t}", y) for t, y in sorted(split.labels.items())]
        for name, a in arrays:
            # little-endian and C order, so the bytes do not depend on how an array was stored
            a = np.ascontiguousarray(a, dtype=np.asarray(a).dtype.newbyteorder("<"))
            h.update(f"{key}/{name}/{a.dtype.str}/{a.shape}".encode())
            h.update(a.tobytes())
    return h.hexdigest()[:16]


def save_npz(ds: BimodalDataset, path: str | os.PathLike[str]) -> Path:
    """Write `ds` to `path` (exactly that name; no suffix is added) and return the path.

    The file is written atomically (`open_atomic`): a failed write leaves no file at `path`
    and no temporary file beside it."""
    path = Path(path)
    arrays: dict[str, np.ndarray] = {}
    splits_meta: dict[str, dict[str, Any]] = {}
    for key, split in _split_keys(ds).items():
        for i, x in enumerate(split.modalities, start=1):
            arrays[f"{key}_x{i}"] = x
        for task, y in split.labels.items():
            arrays[f"{key}_y_{task}"] = y
        for factor, z in split.latents.items():
            arrays[f"{key}_latent_{factor}"] = z
        splits_meta[key] = {"labels": list(split.labels), "latents": list(split.latents)}
    for task, res in ds.true_pid.items():
        # two modalities: the four atoms and I; three: the 18 lattice atoms (meta names them)
        values = (
            list(res.atoms.values())
            if isinstance(res, LatticePIDResult)
            else [getattr(res, a) for a in _ATOMS]
        )
        arrays[f"true_pid_{task}"] = np.array(values, dtype=np.float64)
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "name": ds.name,
        **({"modalities": ds.n_modalities} if ds.n_modalities != 2 else {}),
        "params": ds.params,
        "n_classes": ds.n_classes,
        "true_pid": {task: res.as_dict() for task, res in ds.true_pid.items()},
        "latent_gaussian_pid": {f: _plain(res) for f, res in ds.latent_gaussian_pid.items()},
        "splits": splits_meta,
        "pretrain": list(ds.pretrain),
        "fingerprint": fingerprint(ds),
    }
    arrays["meta"] = np.array(json.dumps(meta, default=_json_default))
    with open_atomic(path) as f:
        np.savez(f, **arrays)
    return path


def load_npz(path: str | os.PathLike[str]) -> BimodalDataset:
    """Read a dataset written by `save_npz`."""
    path = Path(path)
    npz = read_npz(path, "dataset file")
    meta = _meta(path, npz)
    try:
        n_modalities = _n_modalities(meta)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    missing = [k for k in _expected_keys(meta) if k not in npz]
    if missing:
        raise ValueError(f"{path}: dataset file is missing entries {', '.join(missing)}")
    splits = {
        key: Split(
            x1=npz[f"{key}_x1"],
            x2=npz[f"{key}_x2"],
            labels={t: npz[f"{key}_y_{t}"] for t in info["labels"]},
            latents={f: npz[f"{key}_latent_{f}"] for f in info["latents"]},
            x3=npz[f"{key}_x3"] if n_modalities == 3 else None,
        )
        for key, info in meta["splits"].items()
    }
    _check_splits(path, splits)
    try:
        ds = BimodalDataset(
            name=str(meta["name"]),
            params=meta["params"],
            train=splits["train"],
            test=splits["test"],
            true_pid={task: _pid_result(d) for task, d in meta["true_pid"].items()},
            n_classes={task: int(k) for task, k in meta["n_classes"].items()},
            pretrain={task: splits[f"pretrain_{task}"] for task in meta["pretrain"]},
            latent_gaussian_pid={
                f: PIDResult(**d) for f, d in meta.get("latent_gaussian_pid", {}).items()
            },
        )
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise ValueError(
            f"{path}: entry 'meta' does not describe the dataset ({type(e).__name__}: {e})"
        ) from None
    _check_labels(path, ds)
    if ds.name in VIEW_BUILDERS:
        # The view source is a deterministic function of the recorded parameters.
        try:
            ds.views = VIEW_BUILDERS[ds.name](ds.params)
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(
                f"{path}: cannot rebuild the {ds.name!r} view source from the recorded "
                f"parameters ({type(e).__name__}: {e})"
            ) from None
    recorded = meta.get("fingerprint")
    if recorded is not None and recorded != fingerprint(ds):
        raise ValueError(
            f"{path}: its arrays do not match the fingerprint {recorded} recorded when it was "
            f"written (they hash to {fingerprint(ds)}); the file was changed after "
            "`pid-bench generate` wrote it: generate it again"
        )
    return ds


def _meta(path: Path, npz: dict[str, np.ndarray]) -> dict[str, Any]:
    """The `meta` entry of a dataset file, checked: JSON, this format and version, splits."""
    if "meta" not in npz:
        raise ValueError(f"{path}: not a pid-bench dataset (no 'meta' entry)")
    raw = npz["meta"]
    if raw.ndim != 0 or raw.dtype.kind not in "US":
        raise ValueError(
            f"{path}: entry 'meta' must be one JSON string, got {raw.dtype} {raw.shape}"
        )
    try:
        meta = json.loads(str(raw.item().decode() if raw.dtype.kind == "S" else raw.item()))
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: entry 'meta' is not JSON ({e})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: entry 'meta' must be a JSON object, got {type(meta).__name__}")
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: not a pid-bench dataset (format {meta.get('format')!r})")
    if meta.get("version") != VERSION:
        raise ValueError(
            f"{path}: dataset file version {meta.get('version')!r}; this code reads "
            f"version {VERSION}"
        )
    splits = meta.get("splits")
    ok = isinstance(splits, dict) and {"train", "test"} <= set(splits)
    ok = ok and all(
        isinstance(i, dict)
        and isinstance(i.get("labels"), list)
        and isinstance(i.get("latents"), list)
        for i in splits.values()
    )
    if not ok:
        raise ValueError(
            f"{path}: entry 'meta' lacks a valid 'splits' (train and test, each with its "
            "labels and latents)"
        )
    return meta


def _check_splits(path: Path, splits: dict[str, Split]) -> None:
    """Each split's arrays have one row per sample (as many rows in x1, x2, every label and
    latent), labels are 1-D integers, and every split has the modalities' shapes of train.
    Checked whether or not the file records a fingerprint."""
    shapes = None
    for key, s in splits.items():
        for name, a in ((f"x{i}", x) for i, x in enumerate(s.modalities, start=1)):
            if a.ndim < 2 or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
                raise ValueError(
                    f"{path}: {key}_{name} must be numbers with one row per sample (2-D or "
                    f"more), got {a.dtype} {a.shape}"
                )
        n = len(s.x1)
        counts = {f"{key}_x{i}": len(x) for i, x in enumerate(s.modalities, start=1)}
        counts.update({f"{key}_y_{t}": len(y) if y.ndim else -1 for t, y in s.labels.items()})
        counts.update({f"{key}_latent_{f}": len(z) if z.ndim else -1 for f, z in s.latents.items()})
        if n == 0:
            raise ValueError(f"{path}: the {key} split has no rows")
        if len(set(counts.values())) > 1:
            shown = ", ".join(f"{k} {v}" for k, v in counts.items() if v != n)
            raise ValueError(
                f"{path}: the {key} split's arrays have unequal row counts ({key}_x1 {n}, "
                f"{shown}); each needs one row per sample"
            )
        for t, y in s.labels.items():
            if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
                raise ValueError(
                    f"{path}: {key}_y_{t} must be 1-D integer class labels, got {y.dtype} {y.shape}"
                )
        here = tuple(x.shape[1:] for x in s.modalities)
        if shapes is not None and here != shapes:
            raise ValueError(
                f"{path}: the {key} split's samples have shapes "
                f"{' and '.join(map(str, here))}, train's {' and '.join(map(str, shapes))}"
            )
        shapes = shapes or here


def _check_labels(path: Path, ds: BimodalDataset) -> None:
    """Every split's labels of a task lie in 0..n_classes-1."""
    for key, s in _split_keys(ds).items():
        for t, y in s.labels.items():
            k = ds.n_classes.get(t)
            if k is None:
                raise ValueError(f"{path}: task {t!r} of the {key} split has no n_classes in meta")
            if y.size and (y.min() < 0 or y.max() >= k):
                raise ValueError(
                    f"{path}: {key}_y_{t} holds labels outside 0..{k - 1} "
                    f"({int(y.min())}..{int(y.max())})"
                )


def _expected_keys(meta: dict[str, Any]) -> list[str]:
    keys = []
    for key, info in meta["splits"].items():
        keys += [f"{key}_x{i}" for i in range(1, _n_modalities(meta) + 1)]
        keys += [f"{key}_y_{t}" for t in info["labels"]]
        keys += [f"{key}_latent_{f}" for f in info["latents"]]
    return keys


def _n_modalities(meta: dict[str, Any]) -> int:
    """2, or the `modalities` a three-modality file records."""
    n = meta.get("modalities", 2)
    if n not in (2, 3):
        raise ValueError(f"entry 'meta' records {n!r} modalities; pid-bench reads 2 or 3")
    return int(n)


def _pid_result(d: dict[str, Any]) -> PIDResult | LatticePIDResult:
    """A true PID from its `as_dict` form: lattice atoms (three modalities) or the four."""
    return LatticePIDResult(**d) if "atoms" in d else PIDResult(**d)


def _plain(res: PIDResult) -> dict[str, Any]:
    """The five values and the measure of a result (subclasses' extra fields dropped)."""
    return {k: v for k, v in res.as_dict().items() if k in PIDResult.__dataclass_fields__}
