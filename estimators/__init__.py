"""PID estimators: exact discrete (BROJA, MMI, I_min), clustered (CVX-style), Gaussian, in bits.

Usable on its own (numpy, scipy, scikit-learn only):

    from estimators import pid
    pid(p, measure="broja")          # p[x1, x2, y] -> PIDResult
    pid(p, measure="imin")           # p[x1, x2, x3, y] -> LatticePIDResult, 18 atoms
    DiscretePID().fit(x1, x2, y)     # discrete samples
    ClusteredPID(n_clusters=20, random_state=0).fit(x1, x2, y)  # continuous modalities
    ClusteredPID(bias_correction="shuffle")  # minus the label-permutation null (small n)
    BatchPID(random_state=0).fit(x1, x2, y)  # neural (BATCH), continuous x1, x2, discrete y
    GaussianPID().fit(m, x, y)       # jointly Gaussian target m and sources x, y
    GaussianPID().fit_covariance(cov, dims=(dm, dx, dy))

A fit with too few samples per cell for its plug-in joint warns with `SmallSampleWarning`.
"""

from estimators._broja import BrojaSolution, BrojaSolverError, solve_broja
from estimators._info import entropy_bits, joint_infos_bits, mutual_info_bits
from estimators._result import PIDResult
from estimators._validate import InsufficientMemoryError
from estimators.base import (
    ESTIMATORS,
    PIDEstimator,
    SmallSampleWarning,
    get_estimator,
    register,
)
from estimators.batch import BatchPID, BatchPIDResult
from estimators.clustered import BIAS_CORRECTIONS, ClusteredPID, ClusteredPIDResult
from estimators.discrete import MEASURES, DiscretePID, joint_from_samples, pid
from estimators.gaussian import GaussianPID, GaussianPIDResult, gaussian_pid
from estimators.lattice import LatticePIDResult, lattice_nodes, lattice_pid

__all__ = [
    "BIAS_CORRECTIONS",
    "BatchPID",
    "BatchPIDResult",
    "ESTIMATORS",
    "MEASURES",
    "BrojaSolution",
    "BrojaSolverError",
    "ClusteredPID",
    "ClusteredPIDResult",
    "DiscretePID",
    "GaussianPID",
    "GaussianPIDResult",
    "InsufficientMemoryError",
    "LatticePIDResult",
    "PIDEstimator",
    "PIDResult",
    "SmallSampleWarning",
    "entropy_bits",
    "gaussian_pid",
    "get_estimator",
    "joint_from_samples",
    "joint_infos_bits",
    "lattice_nodes",
    "lattice_pid",
    "mutual_info_bits",
    "pid",
    "register",
    "solve_broja",
]
