"""Short causal depthwise conv: formula, fast == loop, split == whole, decoding, causality."""

import mlx.core as mx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from titans.ops import short_conv, short_conv_reference


def normal(shape, seed, dtype=mx.float32):
    return mx.random.normal(shape, key=mx.random.key(seed)).astype(dtype)


def assert_close(actual, expected, tol=1e-6):
    np.testing.assert_allclose(
        np.array(actual.astype(mx.float64)),
        np.array(expected.astype(mx.float64)),
        rtol=tol,
        atol=tol,
    )


def test_formula_by_hand():
    x = mx.array([[[1.0], [2.0], [3.0]]])  # (B=1, T=3, C=1)
    weight = mx.array([[10.0, 1.0]])  # last tap multiplies the current input
    y, state = short_conv(x, weight)
    np.testing.assert_array_equal(np.array(y)[0, :, 0], [1.0, 10 + 2.0, 20 + 3.0])
    np.testing.assert_array_equal(np.array(state)[0, :, 0], [3.0])


def test_matches_numpy_convolve():
    x = normal((2, 11, 3), 0, mx.float64)
    weight = normal((3, 4), 1, mx.float64)
    y, _ = short_conv(x, weight)
    xn, wn = np.array(x), np.array(weight)
    for b in range(2):
        for c in range(3):
            # full convolution with the flipped kernel = causal correlation with K-1 left zeros
            expected = np.convolve(xn[b, :, c], wn[c, ::-1])[:11]
            np.testing.assert_allclose(np.array(y[b, :, c]), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kernel", [1, 2, 4])
@pytest.mark.parametrize("length", [1, 7, 63])
def test_fast_matches_reference(kernel, length):
    x = normal((2, length, 5), length)
    weight = normal((5, kernel), kernel)
    state = normal((2, kernel - 1, 5), 99)
    for s in (None, state):
        y, new_state = short_conv(x, weight, s)
        y_ref, state_ref = short_conv_reference(x, weight, s)
        assert y.shape == (2, length, 5) and new_state.shape == (2, kernel - 1, 5)
        assert_close(y, y_ref)
        assert_close(new_state, state_ref)


@settings(max_examples=25, deadline=None)
@given(length=st.integers(2, 30), kernel=st.integers(1, 5), data=st.data())
def test_split_equals_whole(length, kernel, data):
    split = data.draw(st.integers(1, length - 1))
    x = normal((2, length, 3), length)
    weight = normal((3, kernel), kernel)
    whole, whole_state = short_conv(x, weight)
    first, mid = short_conv(x[:, :split], weight)
    second, last = short_conv(x[:, split:], weight, mid)
    assert_close(mx.concatenate([first, second], axis=1), whole)
    assert_close(last, whole_state)


@pytest.mark.parametrize("kernel", [1, 4])
def test_token_by_token_equals_whole(kernel):
    x = normal((2, 20, 6), 3)
    weight = normal((6, kernel), 4)
    whole, whole_state = short_conv(x, weight)
    state, outs = None, []
    for t in range(20):
        y, state = short_conv(x[:, t : t + 1], weight, state)
        outs.append(y)
    assert_close(mx.concatenate(outs, axis=1), whole)
    assert_close(state, whole_state)


def test_causality_and_receptive_field():
    x = normal((1, 30, 4), 5)
    weight = normal((4, 4), 6)
    base, _ = short_conv(x, weight)
    moved, _ = short_conv(x.at[:, 12].add(3.0), weight)
    diff = np.max(np.abs(np.array(moved - base)), axis=(0, 2))
    assert np.all(diff[:12] == 0) and np.all(diff[16:] == 0)  # only t = 12..15 can change
    assert np.all(diff[12:16] > 0)


@pytest.mark.parametrize("dtype", [mx.float16, mx.float64])
def test_dtypes(dtype):
    x = normal((2, 9, 3), 7, dtype)
    weight = normal((3, 4), 8, dtype)
    y, state = short_conv(x, weight)
    assert y.dtype == dtype and state.dtype == dtype
    assert_close(y, short_conv_reference(x, weight)[0], 1e-3 if dtype == mx.float16 else 1e-12)


def test_differentiable():
    x = normal((1, 8, 2), 9)
    weight = normal((2, 3), 10)
    grad_w = mx.grad(lambda w: mx.sum(short_conv(x, w)[0]))(weight)
    # d/dw[c, i] of sum_t y[t, c] = sum of the inputs tap i sees (zeros before the start)
    xn = np.array(x)[0]
    expected = np.stack([xn[: 8 - (2 - i)].sum(0) for i in range(3)], axis=1)
    assert_close(grad_w, mx.array(expected), 1e-5)


@pytest.mark.parametrize("fn", [short_conv, short_conv_reference])
def test_bad_inputs(fn):
    x = normal((2, 5, 3), 0)
    weight = normal((3, 4), 1)
    with pytest.raises(ValueError, match="x must have rank 3"):
        fn(x[0], weight)
    with pytest.raises(ValueError, match="weight must have rank 2"):
        fn(x, weight[0])
    with pytest.raises(ValueError, match=r"weight must have shape \(C, K\)"):
        fn(x, normal((4, 4), 2))
    with pytest.raises(ValueError, match="kernel size"):
        fn(x, weight[:, :0])
    with pytest.raises(ValueError, match="x is empty"):
        fn(x[:, :0], weight)
    with pytest.raises(TypeError, match="mixed dtypes"):
        fn(x, weight.astype(mx.float16))
    with pytest.raises(TypeError, match="x must have a floating dtype"):
        fn(x.astype(mx.int32), weight)
    with pytest.raises(ValueError, match=r"state must have shape \(B, K-1, C\)"):
        fn(x, weight, normal((2, 4, 3), 3))
    with pytest.raises(TypeError, match="mixed dtypes"):
        fn(x, weight, normal((2, 3, 3), 3, mx.float64))
    with pytest.raises(TypeError, match="state must be an mx.array"):
        fn(x, weight, np.zeros((2, 3, 3), np.float32))
