"""Probes of what a memory layer stores, run through the public layer API.

``memorization_probe`` writes N random pairs into a ``NeuralMemory`` (the sequence of their inputs,
repeated for several passes) and compares the memory's loss (eq. 12) on the stored pairs with its
loss on pairs it never saw. A memory that stores something has a lower loss on what it stored;
storing more with more passes is the "learning to memorize at test time" of §3.1.
"""

from __future__ import annotations

from dataclasses import dataclass

import mlx.core as mx
import numpy as np

from titans import _checks
from titans.layers.neural_memory import NeuralMemory
from titans.ops.memory import memory_read

__all__ = ["MemorizationResult", "memorization_probe"]


@dataclass(frozen=True)
class MemorizationResult:
    """Per number of passes: mean loss on the stored and on never-stored (control) pairs, and the
    relative gap ``(control − stored) / control`` (0: stores nothing; 1: perfect recall)."""

    passes: tuple
    stored_loss: tuple
    control_loss: tuple

    @property
    def gap(self) -> tuple:
        return tuple((c - s) / c if c > 0 else 0.0 for s, c in zip(self.stored_loss, self.control_loss))

    def as_dict(self) -> dict:
        return {"passes": list(self.passes), "stored_loss": list(self.stored_loss),
                "control_loss": list(self.control_loss), "gap": list(self.gap)}


def _pair_loss(layer: NeuralMemory, weights, x: mx.array) -> float:
    """Mean over pairs and heads of ``‖M(k) − v‖²`` for the pairs the layer makes of ``x``."""
    _, k, v, *_ = layer.projections(x)
    read = memory_read(weights, k.astype(mx.float32), normalize_output=layer.config.normalize_output)
    return float(mx.mean(mx.sum(mx.square(read - v.astype(mx.float32)), axis=-1)).item())


def memorization_probe(layer: NeuralMemory, n_pairs: int = 64, passes=(1, 2, 4, 8), *, batch: int = 8,
                       seed: int = 0) -> MemorizationResult:
    """Write ``n_pairs`` random inputs into ``layer``'s memory ``max(passes)`` times in a row (state
    carried through the layer's cache) and measure the stored-vs-control loss after each pass in
    ``passes``. Inputs are N(0, 1) vectors of the layer's width, ``batch`` independent memories;
    the pairs are the layer's own projections of them (its gates decide how strongly each is
    written). Returns a ``MemorizationResult``."""
    if not isinstance(layer, NeuralMemory):
        raise TypeError(f"layer must be a NeuralMemory, got {type(layer).__name__}")
    _checks.positive_int("n_pairs", n_pairs)
    _checks.positive_int("batch", batch)
    _checks.nonnegative_int("seed", seed)
    passes = tuple(passes)
    if not passes or any(isinstance(p, bool) or not isinstance(p, int) or p <= 0 for p in passes):
        raise ValueError(f"passes must be positive ints, got {passes!r}")
    if list(passes) != sorted(set(passes)):
        raise ValueError(f"passes must be strictly increasing, got {passes!r}")
    stored_key, control_key = mx.random.split(mx.random.key(seed))
    x = mx.random.normal((batch, n_pairs, layer.dims), key=stored_key)
    control = mx.random.normal((batch, n_pairs, layer.dims), key=control_key)
    cache = layer.make_cache()
    stored_loss, control_loss = [], []
    for p in range(1, passes[-1] + 1):
        _, state = layer.scan(x, cache)
        if p in passes:
            stored_loss.append(_pair_loss(layer, state.weights, x))
            control_loss.append(_pair_loss(layer, state.weights, control))
    if not all(np.isfinite(stored_loss + control_loss)):
        raise FloatingPointError(f"the memory diverged during the probe: stored losses {stored_loss}")
    return MemorizationResult(passes, tuple(stored_loss), tuple(control_loss))
