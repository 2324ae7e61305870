"""The NumPy twin of the memory recurrence in ``claims/mixers.py`` (used by the token-mixer claims)
agrees with ``memory_scan(chunk_size=1)``, also when a stream is fed in pieces."""

import numpy as np
import pytest

from claims import mixers as M


def stream(seed, rows=3, T=40, d=8):
    rng = np.random.default_rng(seed)
    keys = rng.standard_normal((rows, T, d)).astype(np.float32)
    keys /= np.linalg.norm(keys, axis=-1, keepdims=True)
    values = (rng.standard_normal((rows, T, d)) / np.sqrt(d)).astype(np.float32)
    return keys, values


@pytest.mark.parametrize("spec", [
    M.MemorySpec(depth=1, theta=0.3, eta=0.0, alpha=0.0),
    M.MemorySpec(depth=1, theta=0.05, eta=0.9, alpha=0.01),
    M.MemorySpec(depth=2, theta=0.1, eta=0.5, alpha=0.02, hidden=12),
    M.MemorySpec(depth=3, theta=0.02, eta=0.8, alpha=0.0, hidden=6),
])
def test_online_scan_matches_memory_scan(spec):
    keys, values = stream(1)
    assert M.check_online_against_memory_scan(spec, keys, values, steps=40, rows=3) <= 1e-5


def test_online_scan_with_per_token_gates_matches_memory_scan():
    keys, values = stream(2)
    rng = np.random.default_rng(3)
    lr, eta, alpha = (rng.uniform(0, hi, (3, 40)).astype(np.float32) for hi in (0.3, 0.95, 0.05))
    spec = M.MemorySpec(depth=2, hidden=10)
    assert M.check_online_against_memory_scan(spec, keys, values, steps=40, rows=3, lr=lr, momentum=eta,
                                              decay=alpha) <= 1e-5


def test_online_scan_in_pieces_equals_one_call():
    keys, values = stream(4)
    spec = M.MemorySpec(depth=2, theta=0.1, eta=0.9, alpha=0.01, hidden=8)
    w0 = M.init_weights(spec, 8, 8, 0)
    whole = M.online_scan(w0, keys, values, spec.theta, spec.eta, spec.alpha, [39], keys[:, :2])
    first = M.online_scan(w0, keys[:, :17], values[:, :17], spec.theta, spec.eta, spec.alpha, [16], keys[:, :2])
    second = M.online_scan(first.weights, keys[:, 17:], values[:, 17:], spec.theta, spec.eta, spec.alpha, [22],
                           keys[:, :2], momenta=first.extra["momenta"])
    np.testing.assert_allclose(second.reads, whole.reads, rtol=1e-5, atol=1e-6)
