"""Embeddings computed elsewhere, in the `.npz` layout that `pid-bench score` reads.

One file holds the representation of one trained model (one seed) of the rows of one dataset
file written by `pid-bench generate`. Entries (plain arrays; `np.savez(path, **entries)`):

- `fingerprint` (string, required): the dataset's fingerprint, `meta["fingerprint"]` of the
  dataset file (or `generators.fingerprint(ds)`); `score` refuses embeddings of other data;
- `z_train` `(n_train, D)`: the fused representation of every row of the dataset's `train`
  split, in file order; `z_test` `(n_test, D)`: the same for `test`;
- `z1_test`, `z2_test` `(n_test, D1)`, `(n_test, D2)`, optional, both or neither: unimodal
  embeddings of the test rows (each a function of one modality), for the clustered PID probe;
- `z_train_<task>`, `z_test_<task>`, `z1_test_<task>`, `z2_test_<task>`, optional: the
  representation scored on that task only (a model trained per task: a supervised one, or a
  self-supervised one trained on `pretrain_<task>`); they replace the plain entries for it;
- `epoch` (integer, optional): the training epoch the embeddings were read at, recorded in the
  results' `epoch` column (default 0).

Rows must be finite numbers; a file with missing or extra entries, other row counts, NaN or
another dataset's fingerprint is a clear error.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from generators.base import BimodalDataset
from generators.io import fingerprint as dataset_fingerprint
from generators.io import open_atomic, read_npz

#: The per-representation entries; each may also carry a `_<task>` suffix.
ARRAY_KEYS: tuple[str, ...] = ("z_train", "z_test", "z1_test", "z2_test")
#: Entries that are not arrays of embeddings.
META_KEYS: tuple[str, ...] = ("fingerprint", "epoch")


@dataclass(frozen=True)
class TaskEmbeddings:
    """The arrays scored on one task: train and test rows, optional unimodal test rows."""

    z_train: np.ndarray
    z_test: np.ndarray
    z1_test: np.ndarray | None = None
    z2_test: np.ndarray | None = None

    @property
    def unimodal(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(z1_test, z2_test), or None without unimodal embeddings."""
        return None if self.z1_test is None else (self.z1_test, self.z2_test)


def save_embeddings(
    path: str | os.PathLike[str],
    data: BimodalDataset | str,
    *,
    z_train: np.ndarray | None = None,
    z_test: np.ndarray | None = None,
    z1_test: np.ndarray | None = None,
    z2_test: np.ndarray | None = None,
    per_task: dict[str, dict[str, np.ndarray]] | None = None,
    epoch: int | None = None,
) -> Path:
    """Write embeddings in the layout above; `data` is the dataset or its fingerprint.

    `per_task[task]` holds the entries of a task scored on its own model (keys as above,
    without the suffix). The file is written as given (atomically: a failed write leaves
    nothing at `path`); `score` validates it.
    """
    fp = data if isinstance(data, str) else dataset_fingerprint(data)
    entries: dict[str, np.ndarray] = {"fingerprint": np.array(fp)}
    plain = {"z_train": z_train, "z_test": z_test, "z1_test": z1_test, "z2_test": z2_test}
    entries.update({k: np.asarray(v) for k, v in plain.items() if v is not None})
    for task, arrays in (per_task or {}).items():
        entries.update({f"{k}_{task}": np.asarray(v) for k, v in arrays.items() if v is not None})
    if epoch is not None:
        entries["epoch"] = np.array(int(epoch))
    path = Path(path)
    with open_atomic(path) as f:
        np.savez(f, **entries)
    return path


def load_embeddings(
    path: str | os.PathLike[str],
    ds: BimodalDataset,
    tasks: tuple[str, ...],
    data_name: str = "the dataset",
) -> tuple[dict[str, TaskEmbeddings], int]:
    """The embeddings scored on each of `tasks`, and the recorded epoch, checked against `ds`.

    ValueError with one line saying what is wrong: not a readable `.npz` (missing, empty,
    text, truncated: `generators.io.read_npz`), no or another
    fingerprint, unknown entries, a task without embeddings, wrong row counts or shapes,
    NaN or inf.
    """
    path = Path(path)
    entries = read_npz(path, "embeddings file")
    _check_fingerprint(path, entries, dataset_fingerprint(ds), data_name)
    suffixes = {f"_{t}" for t in ds.tasks}
    allowed = set(META_KEYS) | set(ARRAY_KEYS)
    allowed |= {k + s for k in ARRAY_KEYS for s in suffixes}
    unknown = sorted(set(entries) - allowed)
    if unknown:
        raise ValueError(
            f"{path}: unknown entries {unknown}; accepted: fingerprint, epoch, "
            f"{', '.join(ARRAY_KEYS)}, each z entry optionally with a suffix _TASK "
            f"(tasks: {', '.join(ds.tasks)})"
        )
    epoch = _epoch(path, entries.get("epoch"))
    out = {}
    for task in tasks:
        out[task] = _task_arrays(path, entries, task, ds, data_name)
    return out, epoch


def _check_fingerprint(path: Path, entries: dict, expected: str, data_name: str) -> None:
    if "fingerprint" not in entries:
        raise ValueError(
            f"{path} has no 'fingerprint' entry; save the dataset's fingerprint with the "
            "embeddings (meta['fingerprint'] of the dataset file, see the README)"
        )
    value = entries["fingerprint"]
    got = value.item() if value.ndim == 0 else None
    if isinstance(got, bytes):
        got = got.decode(errors="replace")
    if not isinstance(got, str):
        raise ValueError(f"{path}: 'fingerprint' must be a string, got an array of {value.shape}")
    if got != expected:
        raise ValueError(
            f"{path} was computed on other data: its fingerprint {got} is not the one of "
            f"{data_name} ({expected}); embed the rows of the dataset file you score against "
            "(same generator, parameters and seed)"
        )


def _epoch(path: Path, value: np.ndarray | None) -> int:
    if value is None:
        return 0
    if value.ndim != 0 or not np.issubdtype(value.dtype, np.integer) or int(value) < 0:
        raise ValueError(f"{path}: 'epoch' must be one integer >= 0, got {value!r}")
    return int(value)


def _task_arrays(
    path: Path, entries: dict, task: str, ds: BimodalDataset, data_name: str
) -> TaskEmbeddings:
    def pick(key: str) -> tuple[str, np.ndarray | None]:
        own = f"{key}_{task}"
        if own in entries:
            return own, entries[own]
        return key, entries.get(key)

    (k_tr, z_tr), (k_te, z_te) = pick("z_train"), pick("z_test")
    if z_tr is None and z_te is None:
        raise ValueError(
            f"{path} has no embeddings for task {task!r}: expected z_train and z_test "
            f"(or z_train_{task} and z_test_{task})"
        )
    if z_tr is None or z_te is None:
        have, need = (k_tr, "z_test") if z_te is None else (k_te, "z_train")
        raise ValueError(f"{path} has {have} but no {need} (or {need}_{task}) for task {task!r}")
    z_tr = _matrix(path, k_tr, z_tr, len(ds.train), "train", data_name)
    z_te = _matrix(path, k_te, z_te, len(ds.test), "test", data_name)
    if z_tr.shape[1] != z_te.shape[1]:
        raise ValueError(
            f"{path}: {k_tr} has {z_tr.shape[1]} columns but {k_te} has {z_te.shape[1]}; "
            "train and test rows must come from the same representation"
        )
    (k1, z1), (k2, z2) = pick("z1_test"), pick("z2_test")
    if (z1 is None) != (z2 is None):
        have, need = (k1, "z2_test") if z2 is None else (k2, "z1_test")
        raise ValueError(f"{path} has {have} but no {need}: give both unimodal embeddings or none")
    if z1 is not None:
        z1 = _matrix(path, k1, z1, len(ds.test), "test", data_name)
        z2 = _matrix(path, k2, z2, len(ds.test), "test", data_name)
    return TaskEmbeddings(z_tr, z_te, z1, z2)


def _matrix(path: Path, key: str, z: np.ndarray, rows: int, split: str, data_name: str):
    if not (np.issubdtype(z.dtype, np.number) or z.dtype == bool) or np.iscomplexobj(z):
        raise ValueError(f"{path}: {key} has dtype {z.dtype}; expected real numbers")
    if z.ndim != 2 or z.shape[1] == 0:
        raise ValueError(f"{path}: {key} must be a 2-D array (rows, dims), got shape {z.shape}")
    if z.shape[0] != rows:
        raise ValueError(
            f"{path}: {key} has {z.shape[0]} rows but the {split} split of {data_name} has "
            f"{rows}; embed every row of the split, in file order"
        )
    z = z.astype(np.float64)
    bad = int((~np.isfinite(z)).sum())
    if bad:
        raise ValueError(f"{path}: {key} holds {bad} NaN or inf values (of {z.size})")
    return z
