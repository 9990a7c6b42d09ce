"""pid-bench: which multimodal interactions does a learned representation capture?

`pid_bench.evaluate(...)` scores a learner or an embedding function of your own (see
`pid_bench.api`); it is imported on first use, so `import pid_bench` stays light.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["evaluate", "save_embeddings"]


def __getattr__(name: str) -> Any:
    # torch-heavy: imported when first used, not by `import pid_bench`
    if name == "evaluate":
        from pid_bench.api import evaluate

        return evaluate
    if name == "save_embeddings":
        from pid_bench.embeddings import save_embeddings

        return save_embeddings
    raise AttributeError(f"module 'pid_bench' has no attribute {name!r}")
