"""Input validation shared by every public function: clear errors that name the argument."""

from __future__ import annotations

import numbers

import mlx.core as mx
import numpy as np

FLOAT_DTYPES = (mx.float16, mx.bfloat16, mx.float32, mx.float64)


def compute_dtype(dtype: mx.Dtype) -> mx.Dtype:
    """The dtype arithmetic runs in: float64 stays float64 (CPU only); half precision is computed in
    float32 (scans and softmax accumulate)."""
    return mx.float64 if dtype == mx.float64 else mx.float32


def positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a positive int, got {type(value).__name__} {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value}")
    return int(value)


def nonnegative_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a non-negative int, got {type(value).__name__} {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value}")
    return int(value)


def float_array(name: str, x, *, ndim: int | None = None, min_ndim: int | None = None) -> mx.array:
    """``x`` must be a floating-point ``mx.array`` of the given rank."""
    if not isinstance(x, mx.array):
        raise TypeError(f"{name} must be an mx.array, got {type(x).__name__}")
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must have a floating dtype, got {x.dtype}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name} must have rank {ndim}, got shape {tuple(x.shape)}")
    if min_ndim is not None and x.ndim < min_ndim:
        raise ValueError(f"{name} must have rank >= {min_ndim}, got shape {tuple(x.shape)}")
    return x


def same_dtype(**arrays: mx.array) -> mx.Dtype:
    """All arrays share one dtype; the error lists them."""
    dtypes = {name: a.dtype for name, a in arrays.items()}
    if len(set(dtypes.values())) > 1:
        listing = ", ".join(f"{n}={d}" for n, d in dtypes.items())
        raise TypeError(f"mixed dtypes: {listing}; cast them to one floating dtype")
    return next(iter(dtypes.values()))


def finite_and_bounded(arrays: dict, bounds: dict) -> None:
    """No NaN or Inf in any of ``arrays``, and ``low <= x <= high`` for every
    ``bounds[name] = (low, high)`` (either bound may be None). All reductions are evaluated
    together: one host sync, which matters for short inputs."""
    names = list(arrays)
    flags = mx.stack([mx.all(mx.isfinite(arrays[n])) for n in names])
    extremes = [(mx.min(arrays[n]), mx.max(arrays[n])) for n in bounds]
    mx.eval(flags, extremes)
    bad = [n for n, good in zip(names, flags.tolist()) if not good]
    if bad:
        raise ValueError(f"{', '.join(bad)} contain NaN or Inf")
    for (name, (low, high)), (lo, hi) in zip(bounds.items(), extremes):
        lo, hi = lo.item(), hi.item()
        if (low is not None and lo < low) or (high is not None and hi > high):
            interval = f"[{low if low is not None else '-inf'}, {high if high is not None else 'inf'}]"
            found = f"min {lo}" if (low is not None and lo < low) else f"max {hi}"
            raise ValueError(f"{name} must lie in {interval}, found {found}")


def token_shape(name: str, tokens) -> mx.array:
    """An integer ``mx.array`` of shape (batch, time), both non-empty. No host sync (it runs inside
    every forward, also under ``mx.compile``); the id range is checked where data enters
    (``token_ids``)."""
    if not isinstance(tokens, mx.array):
        raise TypeError(f"{name} must be an mx.array of integer token ids, got {type(tokens).__name__}")
    if not mx.issubdtype(tokens.dtype, mx.integer):
        raise TypeError(f"{name} must have an integer dtype, got {tokens.dtype}")
    if tokens.ndim != 2:
        raise ValueError(f"{name} must have shape (batch, time), got {tuple(tokens.shape)}")
    if tokens.shape[1] == 0 or tokens.shape[0] == 0:
        raise ValueError(f"{name} is empty: shape {tuple(tokens.shape)}")
    return tokens


def token_ids(name: str, tokens, vocab_size: int):
    """``token_shape`` plus every id in [0, vocab_size); takes NumPy arrays (no device sync) or
    ``mx.array`` (one host sync). For data entering training, evaluation or the CLI."""
    if isinstance(tokens, np.ndarray):
        if not np.issubdtype(tokens.dtype, np.integer):
            raise TypeError(f"{name} must have an integer dtype, got {tokens.dtype}")
        if tokens.ndim != 2 or tokens.size == 0:
            raise ValueError(f"{name} must have a non-empty shape (batch, time), got {tokens.shape}")
        lo, hi = int(tokens.min()), int(tokens.max())
    else:
        token_shape(name, tokens)
        lo, hi = mx.min(tokens).item(), mx.max(tokens).item()
    if lo < 0 or hi >= vocab_size:
        raise ValueError(f"{name} must lie in [0, {vocab_size}), found values in [{lo}, {hi}]")
    return tokens
