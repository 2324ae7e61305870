"""exp / sigmoid / SiLU / softmax through the power kernel == MLX's own kernels and exact float64 math."""

import math

import mlx.core as mx
import numpy as np
import pytest

from titans.ops.activations import exp, sigmoid, silu, softmax

EXTREMES = [-math.inf, -1e4, -200.0, -88.0, -30.0, -1.0, -1e-8, 0.0, 1e-8, 1.0, 30.0, 88.0, 200.0, 1e4, math.inf]


def np_sigmoid(x):
    return np.where(x >= 0, 1 / (1 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1 + np.exp(-np.abs(x))))


def sample(seed, dtype=mx.float32, scale=8.0):
    x = scale * mx.random.normal((3, 257), key=mx.random.key(seed))
    return mx.concatenate([x, mx.repeat(mx.array(EXTREMES)[None].astype(x.dtype), 3, axis=0)], axis=1).astype(dtype)


@pytest.mark.parametrize(
    "ours, theirs",
    [(sigmoid, mx.sigmoid), (silu, lambda x: x * mx.sigmoid(x)), (lambda x: softmax(x, -1), lambda x: mx.softmax(x, -1))],
    ids=["sigmoid", "silu", "softmax"],
)
def test_float32_matches_mlx(ours, theirs):
    x = sample(0)
    a, b = np.array(ours(x)), np.array(theirs(x))
    finite = np.isfinite(b)
    np.testing.assert_array_equal(np.isfinite(a), finite)
    np.testing.assert_allclose(a[finite], b[finite], rtol=4e-6, atol=1e-30)


def test_exp_matches_mlx_in_float32_and_numpy_in_float64():
    x = mx.clip(sample(1), -87.0, 88.0)
    np.testing.assert_allclose(np.array(exp(x)), np.array(mx.exp(x)), rtol=1e-5)
    x64 = x.astype(mx.float64)
    np.testing.assert_allclose(np.array(exp(x64)), np.exp(np.array(x64)), rtol=1e-6)
    assert exp(x64).dtype == mx.float64 and exp(x.astype(mx.float16)).dtype == mx.float16


def test_float64_is_more_accurate_than_mlx_exp():
    """MLX's CPU float64 power kernel is float32-grade inside (relative ~1e-7, underflows below
    ~1e-38); its exp is worse (~3e-6)."""
    x = np.array(sample(2, mx.float64))
    x = x[np.isfinite(x)]
    xm = mx.array(x)
    np.testing.assert_allclose(np.array(sigmoid(xm)), np_sigmoid(x), rtol=1e-6, atol=1e-37)
    np.testing.assert_allclose(np.array(silu(xm)), x * np_sigmoid(x), rtol=1e-6, atol=1e-33)
    finite = np.array(sample(2, mx.float64))[:, :257]
    e = np.exp(finite - finite.max(-1, keepdims=True))
    np.testing.assert_allclose(np.array(softmax(mx.array(finite))), e / e.sum(-1, keepdims=True), rtol=1e-6, atol=1e-12)


def test_gradients_match_mlx_and_stay_finite_at_the_extremes():
    x = sample(3)
    for ours, theirs in [(sigmoid, mx.sigmoid), (silu, lambda z: z * mx.sigmoid(z))]:
        g_ours = np.array(mx.grad(lambda z: ours(z).sum())(x))
        g_theirs = np.array(mx.grad(lambda z: theirs(z).sum())(x))
        finite = np.isfinite(np.array(x))
        assert np.isfinite(g_ours[finite]).all()
        np.testing.assert_allclose(g_ours[finite], g_theirs[finite], rtol=1e-5, atol=1e-6)


def test_softmax_with_masked_entries_and_its_gradient():
    x = sample(4)[:, :257]
    mask = mx.random.bernoulli(0.3, x.shape, key=mx.random.key(5))
    mask[:, 0] = False  # every row keeps a visible entry
    masked = mx.where(mask, mx.array(-math.inf), x)
    weights = mx.random.normal(x.shape, key=mx.random.key(6))
    ours = mx.grad(lambda z: (softmax(mx.where(mask, mx.array(-math.inf), z)) * weights).sum())(x)
    theirs = mx.grad(lambda z: (mx.softmax(mx.where(mask, mx.array(-math.inf), z), -1) * weights).sum())(x)
    np.testing.assert_allclose(np.array(softmax(masked)), np.array(mx.softmax(masked, -1)), rtol=1e-5, atol=1e-7)
    assert np.isfinite(np.array(ours)).all()
    np.testing.assert_allclose(np.array(ours), np.array(theirs), rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(np.array(softmax(masked))[np.array(mask)], 0.0)


def test_softmax_along_another_axis():
    x = sample(7)[:, :257]
    np.testing.assert_allclose(np.array(softmax(x, axis=0)), np.array(mx.softmax(x, axis=0)), rtol=1e-5, atol=1e-7)


def test_compiles():
    x = sample(8)
    fused = mx.compile(lambda z: silu(z) + softmax(z))
    np.testing.assert_allclose(np.array(fused(x)), np.array(silu(x) + softmax(x)), rtol=1e-6, atol=1e-30)


def test_half_precision_keeps_its_dtype_and_matches_float32():
    x = sample(9)[:, :257]
    for dtype in (mx.float16, mx.bfloat16):
        xh = x.astype(dtype)
        for fn in (sigmoid, silu, softmax):
            out = fn(xh)
            assert out.dtype == dtype
            np.testing.assert_allclose(
                np.array(out.astype(mx.float32)), np.array(fn(xh.astype(mx.float32)).astype(dtype).astype(mx.float32)),
                rtol=1e-2, atol=1e-3,
            )
