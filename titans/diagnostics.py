"""Divergence detection for the neural memory: a clear error instead of a silent NaN.

The memory's inner loop is gradient descent with momentum on ``‖M(k) − v‖²``; with unnormalized
keys (or a large θ, or keys repeated inside a chunk of the parallel form) it can diverge. The
scan itself stays silent (NaN/Inf simply propagate), so long streams use :func:`guarded_memory_scan`,
which scans in pieces and checks the carried state after each piece; when a piece fails it re-scans
that piece chunk by chunk from the last good state (any split gives the same result) and raises
:class:`MemoryDivergedError` naming the first chunk whose state is non-finite or too large.

    >>> y, state = guarded_memory_scan(weights, q, k, v, lr, momentum, decay, 16, max_norm=1e4)
    MemoryDivergedError: memory diverged at tokens [4096, 4112) (absolute): layer 0 weight norm
    3.1e+04 exceeds max_norm 1e+04 ...

:func:`state_norms` computes Frobenius norms without overflowing (scaled by the max entry), so a
state of huge but finite weights is not mistaken for an infinite one.
"""

from __future__ import annotations

import math

import mlx.core as mx

from titans import _checks
from titans.ops.memory import MemoryState, memory_scan

__all__ = ["MemoryDivergedError", "check_state", "guarded_memory_scan", "state_norms"]


class MemoryDivergedError(ValueError):
    """The memory state became non-finite or exceeded ``max_norm``.

    Attributes: ``start``, ``stop`` (absolute token positions of the first failing chunk),
    ``layer``, ``norm`` (that layer's weight norm, ``inf`` if non-finite), ``max_norm``,
    ``reason`` (``"non-finite"`` or ``"norm"``), ``which`` (``"weights"``, ``"momentum"`` or
    ``"outputs"``).
    """

    def __init__(self, message: str, *, start: int, stop: int, layer: int | None, norm: float,
                 max_norm: float, reason: str, which: str):
        super().__init__(message)
        self.start, self.stop, self.layer, self.norm = start, stop, layer, norm
        self.max_norm, self.reason, self.which = max_norm, reason, which


def _robust_norms(arrays) -> list[tuple[float, bool]]:
    """``(‖a‖_F, finite)`` per array, computed as ``m·sqrt(Σ (a/m)²)`` with ``m = max|a|`` (no
    overflow); all arrays reduced together, one host sync."""
    parts = []
    for a in arrays:
        a = a.astype(mx.float32) if a.dtype in (mx.float16, mx.bfloat16) else a
        if a.size == 0:
            parts.append((mx.array(True), mx.array(0.0), mx.array(0.0)))
            continue
        m = mx.max(mx.abs(a))
        scaled = mx.sum(mx.square(a / mx.where(m > 0, m, mx.array(1, m.dtype))))
        parts.append((mx.all(mx.isfinite(a)), m, scaled))
    mx.eval(parts)
    norms = []
    for finite, m, scaled in parts:
        if not finite.item():
            norms.append((math.inf, False))
        else:
            m = float(m.item())
            norms.append((m * math.sqrt(float(scaled.item())) if m > 0 else 0.0, True))
    return norms


def state_norms(state_or_weights) -> list[float]:
    """Per-layer Frobenius norm of the weights (``inf`` for a non-finite layer); batch dims summed."""
    weights = state_or_weights.weights if isinstance(state_or_weights, MemoryState) else state_or_weights
    return [norm for norm, _ in _robust_norms(weights)]


def _problem(state: MemoryState, max_norm: float, outputs: mx.array | None):
    weight_norms = _robust_norms(state.weights)
    checked = [*state.momentum, *([outputs] if outputs is not None else [])]
    finite = mx.stack([mx.all(mx.isfinite(a)) for a in checked]).tolist()
    for layer, (norm, ok) in enumerate(weight_norms):
        if not ok:
            return layer, math.inf, "non-finite", "weights"
        if norm > max_norm:
            return layer, norm, "norm", "weights"
    for layer, ok in enumerate(finite[: len(state.momentum)]):
        if not ok:
            return layer, math.inf, "non-finite", "momentum"
    if outputs is not None and not finite[-1]:
        return None, math.inf, "non-finite", "outputs"
    return None


def check_state(state: MemoryState, *, max_norm: float = 1e6, start: int | None = None,
                stop: int | None = None, outputs: mx.array | None = None) -> None:
    """Raise :class:`MemoryDivergedError` if ``state`` (or ``outputs``) is non-finite or a layer's
    weight norm exceeds ``max_norm``; ``start``/``stop`` name the tokens just scanned."""
    _check_max_norm(max_norm)
    found = _problem(state, max_norm, outputs)
    if found is None:
        return
    stop = state.position if stop is None else stop
    start = stop if start is None else start
    raise _error(found, start, stop, max_norm)


def _check_max_norm(max_norm) -> None:
    if isinstance(max_norm, bool) or not isinstance(max_norm, (int, float)) or not max_norm > 0:
        raise ValueError(f"max_norm must be a positive number, got {max_norm!r}")


def _error(found, start: int, stop: int, max_norm: float) -> MemoryDivergedError:
    layer, norm, reason, which = found
    where = f"layer {layer} {which}" if layer is not None else which
    detail = (f"{where} contain NaN or Inf" if reason == "non-finite"
              else f"{where} norm {norm:.3g} exceeds max_norm {max_norm:.3g}")
    message = (f"memory diverged at tokens [{start}, {stop}) (absolute positions): {detail}. "
               "Lower θ (lr), l2-normalize the keys, or use a smaller chunk_size (keys repeated "
               "inside a chunk add their gradients coherently).")
    return MemoryDivergedError(message, start=start, stop=stop, layer=layer, norm=norm,
                               max_norm=max_norm, reason=reason, which=which)


def guarded_memory_scan(weights, q, k, v, lr, momentum, decay, chunk_size, state=None, *,
                        piece: int | None = None, max_norm: float = 1e6, validate: bool = True):
    """``memory_scan`` in pieces with a divergence check after each; same results as one call.

    ``piece`` defaults to ``16 * chunk_size`` tokens. On failure the failing piece is re-scanned
    chunk by chunk (on the absolute chunk grid) from the last good state to name the first chunk
    whose state is non-finite, exceeds ``max_norm``, or whose outputs are non-finite. Returns
    ``(y, state)`` like ``memory_scan``; raises :class:`MemoryDivergedError`.
    """
    _check_max_norm(max_norm)
    chunk_size = _checks.positive_int("chunk_size", chunk_size)
    piece = 16 * chunk_size if piece is None else _checks.positive_int("piece", piece)
    T = q.shape[-2]
    position = 0 if state is None else state.position
    outputs, start = [], 0
    while start < T:
        stop = min(T, start + piece)
        sl = lambda x, feat=True: x[..., start:stop, :] if feat else x[..., start:stop]
        y, new_state = memory_scan(weights, sl(q), sl(k), sl(v), sl(lr, False), sl(momentum, False),
                                   sl(decay, False), chunk_size, state, validate=validate)
        mx.eval(y, *new_state.arrays)
        if _problem(new_state, max_norm, y) is not None:
            _localize(weights, q, k, v, lr, momentum, decay, chunk_size, state, start, stop,
                      position, max_norm)
        outputs.append(y)
        state, start = new_state, stop
    y = outputs[0] if len(outputs) == 1 else mx.concatenate(outputs, axis=-2)
    return y, state


def _localize(weights, q, k, v, lr, momentum, decay, chunk_size, state, start, stop, position, max_norm):
    """Re-scan tokens [start, stop) chunk by chunk and raise at the first failing one."""
    t = start
    while t < stop:
        absolute = position + t
        end = min(stop, t + chunk_size - absolute % chunk_size)  # up to the next grid boundary
        sl = lambda x, feat=True: x[..., t:end, :] if feat else x[..., t:end]
        y, state = memory_scan(weights, sl(q), sl(k), sl(v), sl(lr, False), sl(momentum, False),
                               sl(decay, False), chunk_size, state, validate=False)
        mx.eval(y, *state.arrays)
        found = _problem(state, max_norm, y)
        if found is not None:
            raise _error(found, position + t, position + end, max_norm)
        t = end
    # the whole piece failed but no chunk did: report the piece (should not happen: splits agree)
    raise _error((None, math.inf, "non-finite", "weights"), position + start, position + stop, max_norm)
