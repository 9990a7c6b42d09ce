"""The estimator registry and the base class every PID estimator shares."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import numpy as np
from sklearn.base import BaseEstimator

from estimators._result import PIDResult
from estimators._validate import ParamCheck

#: Estimator name -> class, filled by `register`.
ESTIMATORS: dict[str, type[PIDEstimator]] = {}

_E = TypeVar("_E", bound="type[PIDEstimator]")


class SmallSampleWarning(UserWarning):
    """An estimate rests on too few samples per cell of its plug-in joint to be trusted."""


def register(name: str) -> Callable[[_E], _E]:
    """Class decorator adding an estimator to `ESTIMATORS` under `name`."""

    def decorate(cls: _E) -> _E:
        if name in ESTIMATORS and ESTIMATORS[name] is not cls:
            raise ValueError(f"estimator name {name!r} is already registered")
        ESTIMATORS[name] = cls
        return cls

    return decorate


def get_estimator(name: str) -> type[PIDEstimator]:
    """The estimator class registered as `name`; ValueError listing valid names otherwise."""
    try:
        return ESTIMATORS[name]
    except (KeyError, TypeError):
        valid = ", ".join(sorted(ESTIMATORS))
        raise ValueError(f"unknown estimator {name!r}; valid estimators: {valid}") from None


class PIDEstimator(BaseEstimator):
    """Base of the scikit-learn style PID estimators.

    `__init__` only stores parameters (so `get_params`, `set_params` and `sklearn.base.clone`
    work as in scikit-learn, and a bad value is accepted until `fit`); `fit(x1, x2, y)` first
    checks every parameter (`_validated_params`), then returns self having set, all in bits:
    `redundancy_`, `unique1_`, `unique2_`, `synergy_`, `mutual_info_` and `pid_` (the
    `PIDResult`), plus `joint_`, the plug-in joint p[x1, x2, y] the PID was computed on. Every
    attribute `fit` sets ends in `_`. A stochastic estimator takes `random_state` (None, an int
    seed or a `np.random.RandomState`), as scikit-learn's do.
    """

    #: parameter name -> its check (`estimators._validate`): every parameter of `__init__` has
    #: one, run in this order by `_validated_params`
    _parameter_checks: ClassVar[dict[str, ParamCheck]] = {}

    pid_: PIDResult
    joint_: np.ndarray

    def _validated_params(self) -> dict[str, Any]:
        """The parameters, each checked and normalised by its entry in `_parameter_checks`.

        Raises ValueError naming the first bad parameter and what it accepts. Called at the start
        of `fit`, before the data is looked at.
        """
        params = self.get_params(deep=False)
        unchecked = set(params) - set(self._parameter_checks)
        if unchecked:  # a programming error of the estimator, not bad input
            raise TypeError(f"{type(self).__name__} has no check for {sorted(unchecked)}")
        return {name: check(params[name], name) for name, check in self._parameter_checks.items()}

    def _set_result(self, result: PIDResult, joint: np.ndarray) -> None:
        self.pid_ = result
        self.joint_ = joint
        self.redundancy_ = result.redundancy
        self.unique1_ = result.unique1
        self.unique2_ = result.unique2
        self.synergy_ = result.synergy
        self.mutual_info_ = result.mutual_info
