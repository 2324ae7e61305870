"""Tests of ``titans.analysis``: memory write strength / norms, model utilization, kv recall."""

from __future__ import annotations

import math

import mlx.core as mx
import numpy as np
import pytest

from titans import analysis
from titans.ops.memory import memory_loss, memory_scan
from titans.layers.neural_memory import NeuralMemory
from titans.models import create_model


def _inputs(leading=(2, 3), T=20, d=4, hidden=8, depth=2, seed=0):
    rng = np.random.default_rng(seed)
    widths = [d] + [hidden] * (depth - 1) + [d]
    weights = tuple(
        mx.array(rng.standard_normal((o, i)) / math.sqrt(i), dtype=mx.float32) for i, o in zip(widths[:-1], widths[1:])
    )
    k = rng.standard_normal((*leading, T, d))
    k /= np.linalg.norm(k, axis=-1, keepdims=True)
    v = rng.standard_normal((*leading, T, d)) / math.sqrt(d)
    gates = rng.uniform(size=(3, *leading, T))
    lr, momentum, decay = 0.3 * gates[0], 0.9 * gates[1], 0.1 * gates[2]
    return weights, *(mx.array(x, dtype=mx.float32) for x in (k, v, lr, momentum, decay))


def test_trace_shapes_and_chunk_grid():
    weights, k, v, lr, momentum, decay = _inputs()
    tr = analysis.memory_trace(weights, k, v, lr, momentum, decay, chunk_size=8)
    assert tr["write_strength"].shape == (2, 3, 20)
    assert tr["grad_norm"].shape == tr["loss"].shape == (2, 3, 20)
    assert tr["layer_grad_norm"].shape == (2, 3, 2, 20)
    assert tr["weight_norm"].shape == tr["momentum_norm"].shape == (2, 3, 3)
    assert tr["layer_weight_norm"].shape == (2, 3, 2, 3)
    assert tr["weight_norm_initial"].shape == (2, 3)
    assert tr["chunk_end"].tolist() == [7, 15, 19]
    for key, arr in tr.items():
        assert isinstance(arr, np.ndarray) and np.all(np.isfinite(arr)), key
    np.testing.assert_allclose(tr["write_strength"], np.array(lr) * tr["grad_norm"], rtol=1e-6)


def test_zero_learning_rate_writes_nothing_and_keeps_weights():
    weights, k, v, lr, momentum, _ = _inputs()
    tr = analysis.memory_trace(weights, k, v, mx.zeros_like(lr), momentum, mx.zeros_like(lr), chunk_size=8)
    assert np.all(tr["write_strength"] == 0.0)
    assert np.all(tr["grad_norm"] > 0)  # there is something to write, θ = 0 just does not
    np.testing.assert_allclose(tr["weight_norm"], tr["weight_norm_initial"][..., None] * np.ones(3), rtol=1e-6)
    assert np.all(tr["momentum_norm"] == 0.0)


def test_hand_checked_linear_memory():
    # M_0 = 0, k = e_1, v = 2 e_2: ℓ = ‖v‖² = 4, ∇ℓ = 2 (M k − v) kᵀ = −2 v kᵀ with ‖∇ℓ‖ = 2‖v‖‖k‖ = 4;
    # θ = 0.1 writes 0.4; with η = α = 0 the memory after the token is 2θ v kᵀ, ‖M_1‖ = 0.4.
    k = mx.array([[[1.0, 0.0]]])
    v = mx.array([[[0.0, 2.0]]])
    lr, zero = mx.array([[0.1]]), mx.array([[0.0]])
    tr = analysis.memory_trace((mx.zeros((2, 2)),), k, v, lr, zero, zero, chunk_size=1)
    np.testing.assert_allclose(tr["loss"], [[4.0]], rtol=1e-6)
    np.testing.assert_allclose(tr["grad_norm"], [[4.0]], rtol=1e-6)
    np.testing.assert_allclose(tr["write_strength"], [[0.4]], rtol=1e-6)
    np.testing.assert_allclose(tr["weight_norm"], [[0.4]], rtol=1e-6)
    np.testing.assert_allclose(tr["weight_norm_initial"], [0.0], atol=0)
    # A second token with the same pair: M_1 k = 0.2 v, so ‖∇ℓ‖ shrinks to 2·0.8·‖v‖‖k‖ = 3.2.
    tr2 = analysis.memory_trace((mx.zeros((2, 2)),), mx.concatenate([k, k], 1), mx.concatenate([v, v], 1),
                                mx.array([[0.1, 0.1]]), mx.zeros((1, 2)), mx.zeros((1, 2)), chunk_size=1)
    np.testing.assert_allclose(tr2["grad_norm"], [[4.0, 3.2]], rtol=1e-6)


def test_gradient_norm_matches_autograd_at_chunk_start():
    weights, k, v, lr, momentum, decay = _inputs(leading=(), T=6, depth=3)
    tr = analysis.memory_trace(weights, k, v, lr, momentum, decay, chunk_size=6)  # one chunk: all at M_0
    grad = mx.grad(memory_loss)
    for t in range(6):
        g = grad(list(weights), k[t : t + 1], v[t : t + 1])
        expected = math.sqrt(sum(float(mx.sum(x * x)) for x in g))
        assert tr["grad_norm"][t] == pytest.approx(expected, rel=1e-4)
        per_layer = [math.sqrt(float(mx.sum(x * x))) for x in g]
        np.testing.assert_allclose(tr["layer_grad_norm"][:, t], per_layer, rtol=1e-4)


def test_weight_norms_match_memory_scan_states():
    weights, k, v, lr, momentum, decay = _inputs(leading=(2,), T=13, depth=2)
    tr = analysis.memory_trace(weights, k, v, lr, momentum, decay, chunk_size=4)
    for c, end in enumerate(tr["chunk_end"]):
        n = int(end) + 1
        _, state = memory_scan(weights, k[:, :n], k[:, :n], v[:, :n], lr[:, :n], momentum[:, :n], decay[:, :n], 4)
        norm = np.sqrt(sum(np.sum(np.array(w) ** 2, axis=(-2, -1)) for w in state.weights))
        np.testing.assert_allclose(tr["weight_norm"][:, c], norm, rtol=1e-5)


def test_trace_rejects_bad_input():
    weights, k, v, lr, momentum, decay = _inputs()
    with pytest.raises(ValueError, match="chunk_size"):
        analysis.memory_trace(weights, k, v, lr, momentum, decay, chunk_size=0)
    with pytest.raises(ValueError, match="empty"):
        analysis.memory_trace(weights, k[..., :0, :], v[..., :0, :], lr[..., :0], momentum[..., :0], decay[..., :0], 4)


@pytest.mark.parametrize("name", ["lmm", "mag", "mac"])
def test_model_memory_utilization(name):
    model = create_model(name, "tiny", seed=0)
    tokens = np.random.default_rng(0).integers(0, model.args.vocab_size, size=(2, 48))
    before = np.array(model(mx.array(tokens)))
    r = analysis.model_memory_utilization(model, tokens, marks={"needle": 5})
    n_layers, heads, chunk = model.args.n_layers, model.args.n_heads, model.args.memory.chunk_size
    assert r["write_strength"].shape == r["grad_norm"].shape == r["loss"].shape == (2, n_layers, heads, 48)
    C = len(r["chunk_end"])
    assert r["weight_norm"].shape == (2, n_layers, heads, C) and r["weight_norm_initial"].shape == (2, n_layers, heads)
    # chunk ends lie on the memory's grid (persistent tokens first), shifted to token positions
    assert r["chunk_end"][-1] == 47
    assert np.all((r["chunk_end"][:-1] + r["n_prefix"] + 1) % chunk == 0)
    assert r["chunk_size"] == chunk and r["marks"] == {"needle": 5}
    assert np.all(np.isfinite(r["write_strength"])) and np.all(r["write_strength"] > 0)
    if name == "lmm":
        assert r["n_prefix"] == model.args.n_persistent
        assert r["attention_norm"] is None and r["gate_mean"] is None
    else:
        assert r["attention_norm"].shape == r["memory_norm"].shape == r["gate_mean"].shape == (2, n_layers, 48)
        assert np.all(r["attention_norm"] > 0) and np.all((r["gate_mean"] > 0) & (r["gate_mean"] < 1))
    # the recording is undone and changed nothing
    for block in model.layers:
        assert type(block.memory) is NeuralMemory
    np.testing.assert_array_equal(np.array(model(mx.array(tokens))), before)


def test_mac_trace_equals_one_scan_over_its_segments():
    # MAC calls its memory once per segment with a cache; the trace over the concatenated inputs
    # must give the memory state the model ends with.
    model = create_model("mac", "tiny", seed=1)
    tokens = mx.array(np.random.default_rng(1).integers(0, model.args.vocab_size, size=(1, 70)))
    cache = model.make_cache()
    model(tokens, cache)
    r = analysis.model_memory_utilization(model, tokens)
    for layer, c in enumerate(cache):
        final = np.sqrt(sum(np.sum(np.array(w) ** 2, axis=(-2, -1)) for w in c.memory.memory.weights))
        np.testing.assert_allclose(r["weight_norm"][:, layer, :, -1], final, rtol=1e-4)


def test_model_without_memory_is_rejected():
    with pytest.raises(ValueError, match="no NeuralMemory"):
        analysis.model_memory_utilization(create_model("transformer", "tiny", seed=0), np.zeros((1, 8), np.int32))


def test_default_memory_utilization_marks_the_needle():
    (r,) = analysis.default_memory_utilization(("lmm",), seq_len=64)
    assert r["model"] == "LMM" and r["train_steps"] == 0
    assert 0 <= r["marks"]["needle"] < r["marks"]["query"] == 63
    assert r["write_strength"].shape[-1] == 64
