"""One derivation of data seeds from the parts that identify a row (claim seed, length, trial, ...)."""

from __future__ import annotations

import numpy as np

from titans.tasks._knobs import _nonneg_int


def derived_seed(*parts) -> int:
    """A 32-bit seed determined by ``parts`` (non-negative ints), independent across different parts
    (NumPy ``SeedSequence``), so every row of an experiment gets its own reproducible data."""
    if not parts:
        raise ValueError("parts must hold at least one non-negative int")
    values = [_nonneg_int(f"parts[{i}]", p) for i, p in enumerate(parts)]
    return int(np.random.SeedSequence(values).generate_state(1)[0])
