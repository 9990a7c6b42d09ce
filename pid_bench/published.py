"""Published results that reports set next to this suite's numbers.

Only numbers printed in the cited papers (../shared/REFERENCES.md) belong here; they are
labelled as published wherever they are shown and never used as expected values in tests.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Published:
    """A published table: learner -> task -> value, in the units of `metric`."""

    source: str
    setting: str
    metric: str  # how the value reads, e.g. "balanced accuracy, %"
    scale: float  # multiply this suite's value by `scale` to compare (1 -> %: 100)
    values: dict[str, dict[str, float]]


#: Keyed by generator name. Trifeature: CoMM (Dufumier et al., ICLR 2025), bimodal Trifeature
#: table, linear probe. Their "uniqueness" is the texture of image 1, our `unique1`.
PUBLISHED: dict[str, Published] = {
    "trifeature": Published(
        source="CoMM (Dufumier, Castillo-Navarro, Tuia, Thiran; ICLR 2025), bimodal Trifeature",
        setting="224 x 224 images, AlexNet encoders, width 512, 100 epochs, 10,000 pairs",
        metric="linear-probe balanced accuracy, %",
        scale=100.0,
        values={
            "cross": {"redundancy": 100.0, "unique1": 11.6, "synergy": 50.0},
            "factorcl": {"redundancy": 99.8, "unique1": 62.5, "synergy": 46.5},
            "cross_self": {"redundancy": 99.7, "unique1": 86.9, "synergy": 50.0},
            "comm": {"redundancy": 99.9, "unique1": 87.8, "synergy": 71.9},
        },
    ),
}
