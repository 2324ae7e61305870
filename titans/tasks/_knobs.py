"""Argument checks shared by the task generators: each error names the argument (pure Python and
NumPy, so the tasks never need MLX)."""

from __future__ import annotations

import math
import numbers

import numpy as np


def _int(name: str, value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be {what} int, got {type(value).__name__} {value!r}")
    return int(value)


def _pos_int(name: str, value) -> int:
    value = _int(name, value, "a positive")
    if value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value}")
    return value


def _nonneg_int(name: str, value) -> int:
    value = _int(name, value, "a non-negative")
    if value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value}")
    return value


def _seed(seed) -> int:
    return _nonneg_int("seed", seed)


def _real(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def _unit_interval(name: str, value) -> float:
    value = _real(name, value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {value}")
    return value


def _choice(name: str, value, options) -> str:
    if value not in options:
        raise ValueError(f"{name} must be one of {list(options)}, got {value!r}")
    return value


def _depths(depth, batch: int) -> np.ndarray | None:
    """``None`` (random per row), a float, or ``batch`` floats, all in [0, 1]."""
    if depth is None:
        return None
    if isinstance(depth, numbers.Real) and not isinstance(depth, bool):
        return np.full(batch, _unit_interval("depth", depth))
    if isinstance(depth, (str, bytes, bool)):
        raise TypeError(f"depth must be a float in [0, 1], None or an array of them, got {depth!r}")
    try:
        arr = np.asarray(depth, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise TypeError(f"depth must be a float in [0, 1], None or an array of them, got {depth!r}") from e
    if arr.shape != (batch,):
        raise ValueError(f"depth must be a float, None or an array of shape ({batch},), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or arr.min() < 0.0 or arr.max() > 1.0:
        raise ValueError(f"depth must lie in [0, 1], got values in [{arr.min()}, {arr.max()}]")
    return arr
