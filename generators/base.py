"""The dataset type every generator returns, and the generator registry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from estimators._result import PIDResult
from estimators.lattice import LatticePIDResult

#: The interaction tasks every generator provides, and the PID atom each one isolates.
TASKS: tuple[str, ...] = ("redundancy", "unique1", "unique2", "synergy")
TASK_ATOM: dict[str, str] = {
    "redundancy": "redundancy",
    "unique1": "unique1",
    "unique2": "unique2",
    "synergy": "synergy",
}
#: The tasks of a three-modality dataset, and the node of the Williams-Beer lattice each one
#: isolates (`estimators.lattice`: "1|2|3" what all three carry, "12" what only modalities 1
#: and 2 together carry, ...).
TASKS3: tuple[str, ...] = (
    "redundancy",
    "unique1",
    "unique2",
    "unique3",
    "synergy12",
    "synergy13",
    "synergy23",
    "synergy123",
)
TASK_ATOM3: dict[str, str] = {
    "redundancy": "1|2|3",
    "unique1": "1",
    "unique2": "2",
    "unique3": "3",
    "synergy12": "12",
    "synergy13": "13",
    "synergy23": "23",
    "synergy123": "123",
}
#: Every task name of two- and three-modality datasets, in display order.
ALL_TASKS: tuple[str, ...] = TASKS + tuple(t for t in TASKS3 if t not in TASKS)

#: Values of the vector generators' `synergy_pretrain` parameter: a synergy pretraining split
#: biased by a permutation (s2 := pi(s1)), or none.
SYNERGY_PRETRAIN: tuple[str, ...] = ("permutation", "none")


@dataclass
class Split:
    """One split of a dataset of two (or three) modalities.

    x1, x2: float32 arrays, (n, d) for vector modalities or (n, C, H, W) for images.
    labels: task name -> int64 array (n,) of class indices 0..K-1.
    latents: factor name -> array with first dimension n (the factors the labels derive from).
    x3: the third modality of a three-modality dataset; None for two.
    """

    x1: np.ndarray
    x2: np.ndarray
    labels: dict[str, np.ndarray]
    latents: dict[str, np.ndarray] = field(default_factory=dict)
    x3: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.x1.shape[0])

    @property
    def modalities(self) -> tuple[np.ndarray, ...]:
        """(x1, x2), or (x1, x2, x3) with three modalities."""
        return (self.x1, self.x2) if self.x3 is None else (self.x1, self.x2, self.x3)

    def subset(self, idx: np.ndarray) -> Split:
        """Rows `idx` of every array."""
        return Split(
            x1=self.x1[idx],
            x2=self.x2[idx],
            labels={k: v[idx] for k, v in self.labels.items()},
            latents={k: v[idx] for k, v in self.latents.items()},
            x3=None if self.x3 is None else self.x3[idx],
        )


@runtime_checkable
class ViewSource(Protocol):
    """A generative process that draws new views of samples (`BimodalDataset.views`)."""

    def draw(
        self, latents: dict[str, np.ndarray], rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """A new view (x1, x2) of each row whose latents (factor -> array with the rows
        first, as `Split.latents` holds them) are given, drawn with `rng`."""
        ...


@dataclass
class BimodalDataset:
    """Bimodal data (x1, x2) with one label per interaction task and its exact PID; or, with
    `Split.x3` set, three modalities (x1, x2, x3), the tasks `TASKS3` and the exact I_min
    lattice PID of each (`LatticePIDResult`).

    `true_pid[task]` is computed by the exact discrete estimator on the latent joint
    distribution of the task's label and the latent factors each modality holds.
    `pretrain` optionally overrides the split a learner trains on for a given task
    (Trifeature's synergy run trains on pairs biased to satisfy the mapping, while the
    probes still read the unbiased `train`/`test` splits). `views`, where the generator has one,
    draws new views of any split's rows from their latents (same content, new style); training
    uses them as its augmentation (`AugConfig.views`).
    """

    name: str
    params: dict[str, Any]
    train: Split
    test: Split
    true_pid: dict[str, PIDResult | LatticePIDResult]
    n_classes: dict[str, int]
    pretrain: dict[str, Split] = field(default_factory=dict)
    views: ViewSource | None = None
    #: latent factor -> exact Gaussian PID of (x1, x2; z_f), where every modality is a
    #: linear-Gaussian function of continuous latents (`gaussian`); empty otherwise.
    latent_gaussian_pid: dict[str, PIDResult] = field(default_factory=dict)

    @property
    def n_modalities(self) -> int:
        """2, or 3 for a three-modality dataset (`Split.x3` set)."""
        return len(self.train.modalities)

    @property
    def tasks(self) -> tuple[str, ...]:
        order = TASKS if self.n_modalities == 2 else TASKS3
        return tuple(t for t in order if t in self.train.labels)

    def task_atom(self, task: str) -> str:
        """The atom `task` isolates: a `PIDResult` field with two modalities, a lattice node
        (`"1|2|3"`, `"12"`, ...) of the `LatticePIDResult` with three."""
        return (TASK_ATOM if self.n_modalities == 2 else TASK_ATOM3)[task]

    @property
    def modality_kinds(self) -> tuple[str, ...]:
        """`vector` for (n, d) arrays, `image` for (n, C, H, W)."""
        return tuple(_kind(x) for x in self.train.modalities)

    @property
    def modality_shapes(self) -> tuple[tuple[int, ...], ...]:
        """Per-sample shape of each modality."""
        return tuple(tuple(x.shape[1:]) for x in self.train.modalities)

    def pretrain_split(self, task: str) -> Split:
        """The split a self-supervised learner trains on when it is scored on `task`."""
        return self.pretrain.get(task, self.train)


def _kind(x: np.ndarray) -> str:
    if x.ndim == 2:
        return "vector"
    if x.ndim == 4:
        return "image"
    raise ValueError(f"modality array must be (n, d) or (n, C, H, W), got shape {x.shape}")


GENERATORS: dict[str, Callable[..., BimodalDataset]] = {}
#: generator name -> builder of its view source from the dataset's recorded `params` (used to
#: restore `views` on a dataset read back from a file); a generator with views registers one.
VIEW_BUILDERS: dict[str, Callable[[dict[str, Any]], ViewSource]] = {}


def register(name: str) -> Callable[[Callable[..., BimodalDataset]], Callable[..., BimodalDataset]]:
    """Register a generator function `f(**params) -> BimodalDataset` under `name`."""

    def deco(fn: Callable[..., BimodalDataset]) -> Callable[..., BimodalDataset]:
        if name in GENERATORS:
            raise ValueError(f"generator {name!r} registered twice")
        GENERATORS[name] = fn
        return fn

    return deco


def get(name: str) -> Callable[..., BimodalDataset]:
    """The registered generator `name`; a clear error listing valid names otherwise."""
    try:
        return GENERATORS[name]
    except KeyError:
        raise ValueError(
            f"unknown generator {name!r}; available: {', '.join(sorted(GENERATORS))}"
        ) from None
