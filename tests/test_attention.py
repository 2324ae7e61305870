"""Attention: mask rule, blockwise == reference (values and gradients), caches, memory, inputs."""

import math

import mlx.core as mx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from titans.ops import (
    KVCache,
    SlidingWindowKVCache,
    attention,
    attention_mask,
    blockwise_attention,
    masked_attention,
)


def normal(shape, seed, dtype=mx.float32):
    return mx.random.normal(shape, key=mx.random.key(seed)).astype(dtype)


def qkv(batch, heads, n_queries, n_keys, dim, value_dim=None, seed=0, dtype=mx.float32):
    value_dim = dim if value_dim is None else value_dim
    return (
        normal((batch, heads, n_queries, dim), seed, dtype),
        normal((batch, heads, n_keys, dim), seed + 1, dtype),
        normal((batch, heads, n_keys, value_dim), seed + 2, dtype),
    )


def assert_close(actual, expected, tol):
    np.testing.assert_allclose(
        np.array(actual.astype(mx.float64)),
        np.array(expected.astype(mx.float64)),
        rtol=tol,
        atol=tol,
    )


def visible_by_rule(n_queries, n_keys, window, n_prefix, offset):
    """The mask rule written out as a Python loop."""
    rows = []
    for i in range(n_queries):
        p = offset + i
        rows.append(
            [j <= p and (window is None or p - j < window or j < n_prefix) for j in range(n_keys)]
        )
    return np.array(rows, dtype=bool)


# ------------------------------------------------------------------------------- mask


def test_mask_tiny_case_by_hand():
    # queries at positions 3, 4, 5; window 2; key 0 is persistent
    mask = attention_mask(3, 6, window=2, n_prefix=1)
    expected = [
        [1, 0, 1, 1, 0, 0],
        [1, 0, 0, 1, 1, 0],
        [1, 0, 0, 0, 1, 1],
    ]
    assert mask.dtype == mx.bool_
    np.testing.assert_array_equal(np.array(mask), np.array(expected, dtype=bool))


def test_mask_causal_is_lower_triangle():
    np.testing.assert_array_equal(np.array(attention_mask(5, 5)), np.tril(np.ones((5, 5), bool)))


@settings(max_examples=60, deadline=None)
@given(
    n_queries=st.integers(1, 12),
    extra_keys=st.integers(0, 12),
    window=st.one_of(st.none(), st.integers(1, 15)),
    n_prefix=st.integers(0, 6),
    shift=st.one_of(st.none(), st.integers(-3, 5)),
)
def test_mask_matches_rule(n_queries, extra_keys, window, n_prefix, shift):
    n_keys = n_queries + extra_keys
    offset = n_keys - n_queries if shift is None else shift
    mask = attention_mask(n_queries, n_keys, window=window, n_prefix=n_prefix, query_offset=shift)
    np.testing.assert_array_equal(
        np.array(mask), visible_by_rule(n_queries, n_keys, window, n_prefix, offset)
    )


# ------------------------------------------------------------------------------- reference


def test_reference_matches_mlx_sdpa_causal_and_masked():
    q, k, v = qkv(2, 3, 9, 20, 16, value_dim=8, seed=3)
    causal = mx.fast.scaled_dot_product_attention(q, k, v, scale=0.25, mask="causal")
    assert_close(attention(q, k, v, scale=0.25), causal, 1e-5)
    mask = attention_mask(9, 20, window=4, n_prefix=2)
    masked = mx.fast.scaled_dot_product_attention(q, k, v, scale=16**-0.5, mask=mask)
    assert_close(attention(q, k, v, window=4, n_prefix=2), masked, 1e-5)


def test_reference_matches_numpy_loop():
    q, k, v = qkv(1, 2, 5, 8, 4, value_dim=3, seed=11, dtype=mx.float64)
    window, n_prefix = 3, 2
    out = np.array(attention(q, k, v, window=window, n_prefix=n_prefix))
    qn, kn, vn = (np.array(a) for a in (q, k, v))
    rule = visible_by_rule(5, 8, window, n_prefix, 3)
    for h in range(2):
        for i in range(5):
            js = np.flatnonzero(rule[i])
            logits = kn[0, h, js] @ qn[0, h, i] / 2.0
            weights = np.exp(logits - logits.max())
            expected = (weights / weights.sum()) @ vn[0, h, js]
            np.testing.assert_allclose(out[0, h, i], expected, rtol=1e-12, atol=1e-12)


def test_masked_attention_matches_mlx_sdpa_for_an_arbitrary_mask():
    q, k, v = qkv(2, 3, 9, 20, 16, value_dim=8, seed=5)
    mask = mx.random.bernoulli(0.5, (9, 20), key=mx.random.key(6))
    mask[:, 0] = True  # every query sees a key
    expected = mx.fast.scaled_dot_product_attention(q, k, v, scale=16**-0.5, mask=mask)
    assert_close(masked_attention(q, k, v, mask), expected, 1e-5)
    per_head = mx.broadcast_to(mask, (2, 3, 9, 20))
    assert_close(masked_attention(q, k, v, per_head, scale=0.3),
                 mx.fast.scaled_dot_product_attention(q, k, v, scale=0.3, mask=mask), 1e-5)


def test_masked_attention_with_the_position_mask_is_attention():
    q, k, v = qkv(1, 2, 7, 12, 8, seed=8, dtype=mx.float64)
    mask = attention_mask(7, 12, window=3, n_prefix=2)
    assert_close(masked_attention(q, k, v, mask), attention(q, k, v, window=3, n_prefix=2), 1e-12)


def test_masked_attention_bad_inputs():
    q, k, v = qkv(1, 2, 5, 6, 8)
    with pytest.raises(TypeError, match="mask must be a boolean"):
        masked_attention(q, k, v, mx.ones((5, 6)))
    with pytest.raises(TypeError, match="mask must be a boolean"):
        masked_attention(q, k, v, np.ones((5, 6), dtype=bool))
    with pytest.raises(ValueError, match="does not broadcast"):
        masked_attention(q, k, v, mx.ones((5, 7), dtype=mx.bool_))
    with pytest.raises(ValueError, match="q must have rank 4"):
        masked_attention(q[0], k, v, mx.ones((5, 6), dtype=mx.bool_))


# ------------------------------------------------------------------------------- blockwise

CASES = [  # (n_queries, n_keys, window, n_prefix, block_size)
    (1, 1, None, 0, 4),
    (7, 7, None, 0, 4),
    (63, 63, None, 0, 16),
    (100, 100, None, 0, 32),
    (100, 100, 1, 0, 16),
    (100, 100, 10, 0, 16),
    (63, 63, 17, 5, 8),
    (100, 100, 20, 40, 16),  # prefix longer than the window
    (7, 30, None, 0, 4),  # Tq < Tk (continuation)
    (1, 63, 8, 3, 16),  # one decoding query
    (33, 100, 9, 4, 7),
    (64, 64, None, 0, 64),  # a single block
    (100, 100, None, 0, 512),  # block larger than T
    (100, 100, 1000, 3, 16),  # window larger than T
]


@pytest.mark.parametrize("n_queries,n_keys,window,n_prefix,block_size", CASES)
def test_blockwise_matches_reference(n_queries, n_keys, window, n_prefix, block_size):
    q, k, v = qkv(2, 3, n_queries, n_keys, 16, value_dim=12, seed=n_queries + n_keys)
    expected = attention(q, k, v, window=window, n_prefix=n_prefix)
    got = blockwise_attention(q, k, v, window=window, n_prefix=n_prefix, block_size=block_size)
    assert got.shape == (2, 3, n_queries, 12)
    assert_close(got, expected, 1e-5)


def test_blockwise_large_logits_stay_finite():
    q, k, v = qkv(1, 2, 50, 50, 8, seed=5)
    got = blockwise_attention(q * 30, k * 30, v, window=7, n_prefix=2, block_size=8)
    expected = attention(q * 30, k * 30, v, window=7, n_prefix=2)
    assert bool(mx.all(mx.isfinite(got)))
    assert_close(got, expected, 1e-5)


@pytest.mark.parametrize("dtype,tol", [(mx.float16, 2e-3), (mx.float64, 1e-12)])
def test_dtypes(dtype, tol):
    q, k, v = qkv(1, 2, 37, 45, 8, seed=7, dtype=dtype)
    expected = attention(q, k, v, window=9, n_prefix=2)
    got = blockwise_attention(q, k, v, window=9, n_prefix=2, block_size=8)
    assert expected.dtype == dtype and got.dtype == dtype
    assert_close(got, expected, tol)
    if dtype == mx.float64:  # float64 really is computed in float64 (the float32 result differs)
        as32 = attention(*(a.astype(mx.float32) for a in (q, k, v)), window=9, n_prefix=2)
        assert float(mx.max(mx.abs(as32.astype(mx.float64) - expected))) > 1e-12


@pytest.mark.parametrize("checkpoint", [False, True])
@pytest.mark.parametrize("window,n_prefix", [(None, 0), (9, 3)])
def test_blockwise_gradient_matches_reference(window, n_prefix, checkpoint):
    q, k, v = qkv(1, 2, 37, 50, 8, value_dim=6, seed=13)
    cotangent = normal((1, 2, 37, 6), 99)

    def loss(fn, **kw):
        def value(q, k, v):
            return mx.sum(fn(q, k, v, window=window, n_prefix=n_prefix, **kw) * cotangent)

        return mx.grad(value, argnums=(0, 1, 2))

    expected = loss(attention)(q, k, v)
    got = loss(blockwise_attention, block_size=8, checkpoint=checkpoint)(q, k, v)
    for g, e in zip(got, expected):
        assert_close(g, e, 1e-5)


def test_blockwise_under_compile_and_vmap():
    q, k, v = qkv(1, 2, 20, 20, 8, seed=17)
    expected = attention(q, k, v, window=5)
    compiled = mx.compile(lambda q, k, v: blockwise_attention(q, k, v, window=5, block_size=8))
    assert_close(compiled(q, k, v), expected, 1e-5)
    mapped = mx.vmap(lambda q, k, v: blockwise_attention(q, k, v, window=5, block_size=8))
    assert_close(mapped(q[None], k[None], v[None])[0], expected, 1e-5)


@pytest.mark.parametrize("fn", [attention, blockwise_attention])
def test_causality_and_window_locality(fn):
    q, k, v = qkv(1, 2, 40, 40, 8, seed=23)
    window, n_prefix, t = 6, 2, 20
    base = fn(q, k, v, window=window, n_prefix=n_prefix)
    # changing key/value t leaves every earlier query unchanged
    k2 = k.at[:, :, t].add(5.0)
    v2 = v.at[:, :, t].add(5.0)
    moved = fn(q, k2, v2, window=window, n_prefix=n_prefix)
    assert_close(moved[:, :, :t], base[:, :, :t], 0)
    # ... and every query more than window-1 later
    assert_close(moved[:, :, t + window :], base[:, :, t + window :], 0)
    assert float(mx.max(mx.abs(moved[:, :, t : t + window] - base[:, :, t : t + window]))) > 1e-3
    # a persistent key is seen by every query, however far
    v3 = v.at[:, :, 1].add(5.0)
    far = fn(q, k, v3, window=window, n_prefix=n_prefix)
    assert float(mx.min(mx.max(mx.abs(far - base), axis=-1)[:, :, 1:])) > 1e-6


def test_blockwise_peak_memory_is_linear_in_length():
    """16k tokens, one head: the reference would need >= 1 GiB of scores; blockwise stays small."""
    length, block = 16384, 512
    q, k, v = qkv(1, 1, length, length, 64, seed=29)
    mx.eval(q, k, v)
    mx.clear_cache()
    mx.reset_peak_memory()
    before = mx.get_active_memory()
    out = blockwise_attention(q, k, v, block_size=block)
    mx.eval(out)
    extra = mx.get_peak_memory() - before
    assert extra < 0.5 * 2**30, f"peak grew by {extra / 2**20:.0f} MiB"
    assert bool(mx.all(mx.isfinite(out[:, :, -1])))
    # the last row checked against a direct computation over all keys
    logits = (k[0, 0] @ q[0, 0, -1]) / 8.0
    expected = mx.softmax(logits) @ v[0, 0]
    assert_close(out[0, 0, -1], expected, 1e-5)


# ------------------------------------------------------------------------------- caches


def test_kv_cache_decode_matches_full_attention():
    total, prefill = 300, 5  # crosses the 256-step growth
    q, k, v = qkv(1, 2, total, total, 8, value_dim=4, seed=31)
    full = attention(q, k, v)
    cache = KVCache()
    keys, values = cache.update_and_fetch(k[:, :, :prefill], v[:, :, :prefill])
    outs = [attention(q[:, :, :prefill], keys, values)]
    assert cache.offset == prefill and cache.nbytes == 4 * 2 * 256 * (8 + 4)  # float32, B=1, H=2
    for t in range(prefill, total):
        keys, values = cache.update_and_fetch(k[:, :, t : t + 1], v[:, :, t : t + 1])
        outs.append(attention(q[:, :, t : t + 1], keys, values))
    assert cache.offset == total and keys.shape == (1, 2, total, 8)
    assert cache.nbytes == 4 * 2 * 512 * (8 + 4)  # capacity 512 after growing once
    assert_close(mx.concatenate(outs, axis=2), full, 1e-5)


@pytest.mark.parametrize("window,n_prefix", [(8, 0), (8, 3), (1, 2), (5, 12)])
def test_sliding_window_cache_matches_full_attention(window, n_prefix):
    total = 60
    q, k, v = qkv(1, 2, total, total, 8, value_dim=4, seed=37)
    full = attention(q, k, v, window=window, n_prefix=n_prefix)
    cache = SlidingWindowKVCache(window, n_prefix)
    pieces = [5, 1, 1, 1, 7, 1, 1, 1, 1, 1, 1, 1, 1, 1, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1]
    pieces.append(total - sum(pieces) - 10)
    pieces += [1] * 10
    outs, start = [], 0
    for i, size in enumerate(pieces):
        stop = start + size
        keys, values = cache.update_and_fetch(k[:, :, start:stop], v[:, :, start:stop])
        fn = attention if i % 2 else blockwise_attention
        outs.append(fn(q[:, :, start:stop], keys, values, window=window, n_prefix=n_prefix))
        assert cache.nbytes <= 4 * 2 * (n_prefix + window) * (8 + 4)
        start = stop
    assert start == total and cache.offset == total
    assert_close(mx.concatenate(outs, axis=2), full, 1e-5)


def test_cache_rejects_mismatched_updates():
    cache = KVCache()
    k = normal((1, 2, 3, 8), 0)
    v = normal((1, 2, 3, 4), 1)
    cache.update_and_fetch(k, v)
    with pytest.raises(ValueError, match="cache"):
        cache.update_and_fetch(normal((1, 3, 1, 8), 2), normal((1, 3, 1, 4), 3))
    with pytest.raises(ValueError, match="keys and values"):
        cache.update_and_fetch(k, normal((1, 2, 2, 4), 4))
    with pytest.raises(TypeError, match="mixed dtypes"):
        cache.update_and_fetch(k, v.astype(mx.float16))
    with pytest.raises(ValueError, match="window"):
        SlidingWindowKVCache(0)
    with pytest.raises(ValueError, match="n_prefix"):
        SlidingWindowKVCache(4, n_prefix=-1)


# ------------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize("fn", [attention, blockwise_attention])
def test_bad_inputs(fn):
    q, k, v = qkv(1, 2, 5, 6, 8)
    with pytest.raises(ValueError, match="q must have rank 4"):
        fn(q[0], k, v)
    with pytest.raises(TypeError, match="k must be an mx.array"):
        fn(q, np.array(k), v)
    with pytest.raises(TypeError, match="v must have a floating dtype"):
        fn(q, k, v.astype(mx.int32))
    with pytest.raises(TypeError, match="mixed dtypes"):
        fn(q, k.astype(mx.float16), v)
    with pytest.raises(ValueError, match="q and k"):
        fn(q, normal((1, 2, 6, 4), 5), v)
    with pytest.raises(ValueError, match="v must share"):
        fn(q, k, normal((1, 2, 7, 8), 5))
    with pytest.raises(ValueError, match="Tq <= Tk"):
        fn(normal((1, 2, 7, 8), 5), k, v)
    with pytest.raises(ValueError, match="q is empty"):
        fn(q[:, :, :0], k, v)
    with pytest.raises(ValueError, match="window"):
        fn(q, k, v, window=0)
    with pytest.raises(TypeError, match="window"):
        fn(q, k, v, window=2.5)
    with pytest.raises(ValueError, match="n_prefix"):
        fn(q, k, v, n_prefix=-1)
    with pytest.raises(ValueError, match="scale"):
        fn(q, k, v, scale=-1.0)
    with pytest.raises(ValueError, match="scale"):
        fn(q, k, v, scale=math.nan)
    if fn is blockwise_attention:
        with pytest.raises(ValueError, match="block_size"):
            fn(q, k, v, block_size=0)


def test_mask_bad_inputs():
    with pytest.raises(ValueError, match="n_queries"):
        attention_mask(0, 4)
    with pytest.raises(TypeError, match="n_keys"):
        attention_mask(2, 4.0)
    with pytest.raises(ValueError, match="window"):
        attention_mask(2, 4, window=-1)
    with pytest.raises(TypeError, match="query_offset"):
        attention_mask(2, 4, query_offset=1.5)
