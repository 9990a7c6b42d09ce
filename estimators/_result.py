"""The result type shared by every PID estimator."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class PIDResult:
    """Partial information decomposition of I(Y; X1, X2), every field in bits."""

    redundancy: float
    unique1: float
    unique2: float
    synergy: float
    mutual_info: float
    measure: str = "broja"

    ATOMS = ("redundancy", "unique1", "unique2", "synergy")

    def as_dict(self) -> dict[str, float | str]:
        """Plain dict (JSON-serialisable)."""
        return asdict(self)

    def atom(self, name: str) -> float:
        """The value of one atom by name (`redundancy`, `unique1`, `unique2`, `synergy`)."""
        if name not in self.ATOMS:
            raise ValueError(f"unknown PID atom {name!r}; expected one of {', '.join(self.ATOMS)}")
        return float(getattr(self, name))
