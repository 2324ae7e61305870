"""The ``NeuralMemory`` layer: decoding with its cache equals the parallel forward, causality,
outer-loop gradients reach every parameter, bad input."""

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from mlx.utils import tree_flatten

from titans.layers.neural_memory import MemoryConfig, NeuralMemory, NeuralMemoryCache


def layer(**kw):
    mx.random.seed(0)
    opts = dict(depth=2, expansion=2, chunk_size=4)
    opts.update(kw)
    return NeuralMemory(16, n_heads=2, config=MemoryConfig(**opts))


def tokens(T, B=2, dims=16, seed=1):
    return mx.array(np.random.default_rng(seed).standard_normal((B, T, dims)), dtype=mx.float32)


def max_err(a, b):
    return mx.abs(a - b).max().item()


@pytest.mark.parametrize("conv_kernel", [0, 4])
@pytest.mark.parametrize("depth", [1, 2])
def test_token_by_token_step_equals_parallel(depth, conv_kernel):
    mem, x = layer(depth=depth, conv_kernel=conv_kernel), tokens(11)
    full = mem(x)
    cache = mem.make_cache()
    steps = [mem.step(x[:, t], cache) for t in range(11)]
    assert max_err(mx.stack(steps, axis=1), full) <= 1e-4
    assert cache.memory.position == 11


def test_prefill_then_decode_equals_parallel():
    mem, x = layer(), tokens(13)
    full = mem(x)
    cache = mem.make_cache()
    prefill = mem(x[:, :6], cache)
    decoded = [mem.step(x[:, t : t + 1], cache) for t in range(6, 13)]
    assert max_err(mx.concatenate([prefill, *decoded], axis=1), full) <= 1e-4


def test_cache_size_is_independent_of_context_length():
    mem = layer()
    sizes = []
    for T in (8, 64):
        cache = mem.make_cache()
        mem(tokens(T), cache)
        sizes.append(cache.nbytes)
    assert sizes[0] == sizes[1] > 0


def test_causality():
    mem, x = layer(), tokens(12)
    y = mem(x)
    x2 = mx.concatenate([x[:, :7], x[:, 7:] + 1.0], axis=1)
    y2 = mem(x2)
    assert mx.array_equal(y[:, :7], y2[:, :7])
    assert not mx.array_equal(y[:, 7:], y2[:, 7:])


def test_outer_gradients_reach_every_parameter():
    mem, x = layer(), tokens(9)
    target = tokens(9, seed=5)

    def loss(model):
        return mx.mean(mx.square(model(x) - target))

    grads = nn.value_and_grad(mem, loss)(mem)[1]
    for name, g in tree_flatten(grads):
        assert mx.all(mx.isfinite(g)).item(), name
        assert mx.abs(g).max().item() > 0, f"no gradient reaches {name}"


def test_float16_forward():
    mem = layer()
    mem.set_dtype(mx.float16)
    y = mem(tokens(7).astype(mx.float16))
    assert y.dtype == mx.float16 and mx.all(mx.isfinite(y)).item()


def test_options_are_validated():
    with pytest.raises(ValueError, match="depth"):
        layer(depth=0)
    with pytest.raises(ValueError, match="lr_scale"):
        layer(lr_scale=-1.0)
    with pytest.raises(TypeError, match="n_heads"):
        NeuralMemory(16, n_heads=2.5)
    with pytest.raises(ValueError, match="momentum_max"):
        layer(momentum_max=1.5)
    with pytest.raises(ValueError, match="gate_bias"):
        layer(gate_bias=(0.0, 1.0))
    with pytest.raises(TypeError, match="normalize_output"):
        layer(normalize_output=1)
    with pytest.raises(ValueError, match=r"no option\(s\) \['depht'\]"):
        NeuralMemory(16, n_heads=2, config={"depht": 1})


def test_bad_inputs():
    mem = layer()
    with pytest.raises(ValueError, match="x must have rank 3"):
        mem(mx.zeros((4, 16)))
    with pytest.raises(ValueError, match="16 features"):
        mem(mx.zeros((1, 4, 8)))
    with pytest.raises(ValueError, match="empty"):
        mem(mx.zeros((1, 0, 16)))
    with pytest.raises(TypeError, match="floating"):
        mem(mx.zeros((1, 3, 16), dtype=mx.int32))
    with pytest.raises(TypeError, match="NeuralMemoryCache"):
        mem.step(mx.zeros((1, 16)), cache=None)
    with pytest.raises(ValueError, match="one token"):
        mem.step(mx.zeros((1, 2, 16)), NeuralMemoryCache())


def test_ablation_switches_zero_the_gates():
    x = tokens(5)
    _, _, _, lr, momentum, decay = layer(momentum=False, decay=False).projections(x)
    assert mx.all(momentum == 0).item() and mx.all(decay == 0).item() and mx.all(lr > 0).item()
