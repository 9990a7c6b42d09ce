"""Every registered estimator follows scikit-learn's conventions, checked as scikit-learn's
`check_estimator` checks its own: `__init__` only stores its arguments, `fit` validates every
parameter, the fitted attributes end in `_`, `get_params`/`set_params`/`clone` round-trip, and
`random_state` makes a fit reproducible."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from sklearn.base import clone

from estimators import ESTIMATORS

pytest.importorskip("torch")  # BatchPID trains torch networks


def _discrete(n: int = 300) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(0)
    x1, x2 = rng.integers(0, 3, n), rng.integers(0, 2, n)
    return x1, x2, (x1 + x2) % 2


def _continuous(n: int = 400) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(1)
    s, u = rng.integers(0, 2, n), rng.integers(0, 2, n)
    x1 = np.stack([4.0 * s, 4.0 * u], axis=1) + rng.normal(scale=0.5, size=(n, 2))
    x2 = np.stack([4.0 * s, rng.normal(size=n)], axis=1) + rng.normal(scale=0.5, size=(n, 2))
    return x1, x2, s ^ u


def _gaussian(n: int = 200) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(2)
    m = rng.normal(size=(n, 2))
    x = m @ rng.normal(size=(2, 3)) + rng.normal(size=(n, 3))
    return m, x, m[:, :1] + rng.normal(size=(n, 1))


#: name -> (parameters that make a fit quick and exercise its randomness, data to fit on)
CASES: dict[str, tuple[dict[str, Any], Callable[[], tuple[np.ndarray, ...]]]] = {
    "discrete": ({}, _discrete),
    "clustered": ({"n_clusters": 4, "bias_correction": "shuffle", "n_shuffles": 3}, _continuous),
    "batch": ({"classifier_epochs": 2, "align_epochs": 1, "batch_size": 64}, _continuous),
    "gaussian": ({"n_bootstrap": 4}, _gaussian),
}
PARAMETERS = [
    (name, param)
    for name, cls in sorted(ESTIMATORS.items())
    for param in inspect.signature(cls.__init__).parameters
    if param != "self"
]


def _fitted(name: str, **params: Any) -> Any:
    kwargs, data = CASES[name]
    return ESTIMATORS[name](**{**kwargs, **params}).fit(*data())


def _numbers(est: Any) -> tuple[Any, ...]:
    """What a fit found (not how long it took)."""
    atoms = (est.redundancy_, est.unique1_, est.unique2_, est.synergy_, est.mutual_info_)
    return (*atoms, getattr(est, "ci_", None), getattr(est, "accuracy_", None))


def test_every_registered_estimator_is_checked() -> None:
    assert set(CASES) == set(ESTIMATORS)


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_init_only_stores_its_arguments(name: str) -> None:
    """Any value is stored as given, without a check, and nothing else is set."""
    cls = ESTIMATORS[name]
    names = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    values = {p: object() for p in names}
    est = cls(**values)
    assert all(est.get_params()[p] is v for p, v in values.items())
    assert set(vars(est)) == set(names)


@pytest.mark.parametrize(("name", "param"), PARAMETERS)
def test_fit_validates_every_parameter(name: str, param: str) -> None:
    """A parameter no estimator accepts is refused by fit, with a ValueError naming it."""
    kwargs, data = CASES[name]
    est = ESTIMATORS[name](**kwargs).set_params(**{param: object()})
    with pytest.raises(ValueError, match=param.split("_")[0]):
        est.fit(*data())
    assert not [a for a in vars(est) if a.endswith("_")]  # refused before fitting anything


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_get_params_set_params_clone_round_trip(name: str) -> None:
    kwargs, _ = CASES[name]
    est = ESTIMATORS[name](**kwargs)
    params = est.get_params()
    assert params == {**ESTIMATORS[name]().get_params(), **kwargs}
    twin = clone(est)
    assert twin is not est and twin.get_params() == params
    other = next(iter(params))
    assert twin.set_params(**{other: params[other]}) is twin
    with pytest.raises(ValueError, match="Invalid parameter"):
        twin.set_params(no_such_parameter=1)
    fitted = _fitted(name)
    fresh = clone(fitted)
    assert fresh.get_params() == fitted.get_params()
    assert not [a for a in vars(fresh) if a.endswith("_")]  # a clone is unfitted


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_fit_returns_self_sets_trailing_underscore_attributes_keeps_params(name: str) -> None:
    kwargs, data = CASES[name]
    est = ESTIMATORS[name](**kwargs)
    before = dict(vars(est))
    assert est.fit(*data()) is est
    added = set(vars(est)) - set(before)
    assert added and all(a.endswith("_") or a.startswith("_") for a in added), added
    assert {"pid_", "redundancy_", "unique1_", "unique2_", "synergy_", "mutual_info_"} <= added
    assert all(vars(est)[k] is v for k, v in before.items())  # parameters untouched


STOCHASTIC = sorted(n for n, c in ESTIMATORS.items() if "random_state" in c().get_params())


def test_the_stochastic_estimators_take_random_state() -> None:
    assert STOCHASTIC == ["batch", "clustered", "gaussian"]
    assert all("seed" not in ESTIMATORS[n]().get_params() or n == "batch" for n in ESTIMATORS)


@pytest.mark.parametrize("name", STOCHASTIC)
def test_random_state_makes_a_fit_reproducible(name: str) -> None:
    """The same int seed or an equal RandomState gives the same numbers; a clone too."""
    first = _fitted(name, random_state=3)
    assert _numbers(_fitted(name, random_state=3)) == _numbers(first)
    kwargs, data = CASES[name]
    assert _numbers(clone(first).fit(*data())) == _numbers(first)
    a = _fitted(name, random_state=np.random.RandomState(5))
    assert _numbers(_fitted(name, random_state=np.random.RandomState(5))) == _numbers(a)
