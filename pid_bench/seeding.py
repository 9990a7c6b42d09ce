"""Seed derivation: every component's seed is a hash of the run seed and its name."""

from __future__ import annotations

import hashlib


def derive_seed(seed: int, *names: object) -> int:
    """A 31-bit seed derived from `seed` and component names (stable across runs and machines).

    Adding a learner or a task never changes another component's seed, because each seed
    depends only on the run seed and that component's own names.
    """
    key = "/".join([str(int(seed)), *map(str, names)]).encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:4], "little") & 0x7FFFFFFF
