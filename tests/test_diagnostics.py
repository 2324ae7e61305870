"""titans.diagnostics: divergence of the memory is reported with its position, not as a NaN."""

from __future__ import annotations

import math

import numpy as np
import pytest

import titans  # noqa: F401
import mlx.core as mx

from titans.diagnostics import MemoryDivergedError, check_state, guarded_memory_scan, state_norms
from titans.ops.memory import MemoryState, memory_scan


def _stream(T=256, d=8, seed=0, normalize=True):
    rng = np.random.default_rng(seed)
    k = rng.standard_normal((T, d)).astype(np.float32)
    if normalize:
        k /= np.linalg.norm(k, axis=-1, keepdims=True)
    v = (rng.standard_normal((T, d)) / math.sqrt(d)).astype(np.float32)
    return mx.array(k), mx.array(v)


def _gates(T, theta, eta=0.9, alpha=0.0):
    g = mx.ones((T,))
    return theta * g, eta * g, alpha * g


def test_guarded_equals_memory_scan_when_stable():
    k, v = _stream()
    w = (mx.zeros((8, 8)),)
    y_ref, s_ref = memory_scan(w, k, k, v, *_gates(256, 0.05), 16)
    y, s = guarded_memory_scan(w, k, k, v, *_gates(256, 0.05), 16, piece=40)  # off the chunk grid
    # float32: pieces off the grid run partial chunks uncompiled, so rounding differs (float64
    # exactness of splits is tested in test_memory.py)
    np.testing.assert_allclose(np.array(y), np.array(y_ref), rtol=1e-5, atol=1e-5)  # |y| up to ~5
    np.testing.assert_allclose(np.array(s.weights[0]), np.array(s_ref.weights[0]), rtol=1e-5, atol=1e-5)
    assert s.position == 256


def test_divergence_is_reported_at_the_first_failing_chunk():
    k, v = _stream(T=512, normalize=False, seed=1)  # |k|^2 ~ 8: theta 2 overshoots
    w = (mx.zeros((8, 8)),)
    with pytest.raises(MemoryDivergedError) as info:
        guarded_memory_scan(w, k, k, v, *_gates(512, 2.0), 16, max_norm=1e3)
    err = info.value
    assert isinstance(err, ValueError)
    assert err.start % 16 == 0 and err.stop == err.start + 16
    assert f"[{err.start}, {err.stop})" in str(err) and "θ" in str(err)
    # the state is fine before the named chunk and broken after it
    if err.start:
        _, before = memory_scan(w, k[: err.start], k[: err.start], v[: err.start], *_gates(err.start, 2.0), 16)
        check_state(before, max_norm=1e3)
    _, after = memory_scan(w, k[: err.stop], k[: err.stop], v[: err.stop], *_gates(err.stop, 2.0), 16)
    with pytest.raises(MemoryDivergedError):
        check_state(after, max_norm=1e3)


def test_positions_are_absolute_with_a_carried_state():
    k, v = _stream(T=512, normalize=False, seed=2)
    w = (mx.zeros((8, 8)),)
    _, state = memory_scan(w, k[:8], k[:8], v[:8], *_gates(8, 0.0), 16)  # 8 harmless tokens
    with pytest.raises(MemoryDivergedError) as info:
        guarded_memory_scan(w, k[8:], k[8:], v[8:], *_gates(504, 2.0), 16, state, max_norm=1e3)
    assert info.value.start >= 8 and (info.value.start % 16 == 0 or info.value.start == 8)


def test_check_state_reasons_and_robust_norm():
    big = mx.full((4, 4), 1e30)  # sum of squares overflows float32, the norm does not
    state = MemoryState((big,), (mx.zeros((4, 4)),), (big,), 5)
    assert math.isclose(state_norms(state)[0], 4e30, rel_tol=1e-5)
    check_state(state, max_norm=1e31)
    with pytest.raises(MemoryDivergedError) as info:
        check_state(state, max_norm=1e29)
    assert info.value.reason == "norm" and info.value.layer == 0
    bad = MemoryState((mx.array([[math.nan]]),), (mx.zeros((1, 1)),), (mx.zeros((1, 1)),), 3)
    with pytest.raises(MemoryDivergedError) as info:
        check_state(bad)
    assert info.value.reason == "non-finite" and math.isinf(info.value.norm)
    with pytest.raises(ValueError):
        check_state(state, max_norm=0)


def test_non_finite_outputs_are_reported():
    state = MemoryState((mx.zeros((2, 2)),), (mx.zeros((2, 2)),), (mx.zeros((2, 2)),), 0)
    with pytest.raises(MemoryDivergedError) as info:
        check_state(state, outputs=mx.array([math.inf]))
    assert info.value.which == "outputs"
