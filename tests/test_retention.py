"""Retention: parallel == recurrent == chunkwise (outputs, states, gradients), hand-off, inputs."""

import mlx.core as mx
import numpy as np
import pytest

from titans.ops import (
    retention_chunkwise,
    retention_parallel,
    retention_recurrent,
    retnet_gammas,
)

FORMS = {
    "parallel": retention_parallel,
    "recurrent": retention_recurrent,
    "chunkwise": lambda q, k, v, gamma, state=None: retention_chunkwise(q, k, v, gamma, 16, state),
}


def normal(shape, seed, dtype=mx.float32, scale=1.0):
    return (scale * mx.random.normal(shape, key=mx.random.key(seed))).astype(dtype)


def inputs(batch=2, heads=3, length=37, key_dim=8, value_dim=12, seed=0, dtype=mx.float32):
    """Keys/queries scaled like d^-1/2 projections so outputs stay O(1)."""
    q = normal((batch, heads, length, key_dim), seed, dtype, key_dim**-0.5)
    k = normal((batch, heads, length, key_dim), seed + 1, dtype, key_dim**-0.5)
    v = normal((batch, heads, length, value_dim), seed + 2, dtype)
    state = normal((batch, heads, key_dim, value_dim), seed + 3, dtype)
    return q, k, v, state


def assert_rel_close(actual, expected, rel):
    """max |actual - expected| <= rel * max |expected| (fla-style relative check)."""
    a = np.array(actual.astype(mx.float64))
    e = np.array(expected.astype(mx.float64))
    assert a.shape == e.shape
    err, size = np.max(np.abs(a - e)), np.max(np.abs(e))
    assert err <= rel * size, f"max error {err:.3e} > {rel:g} * {size:.3e}"


def test_retnet_gammas():
    gammas = np.array(retnet_gammas(8))
    np.testing.assert_allclose(gammas, 1 - 2.0 ** (-5 - np.arange(8)), rtol=0, atol=1e-7)
    assert gammas[0] == 0.96875
    assert retnet_gammas(2, mx.float64).dtype == mx.float64


@pytest.mark.parametrize("length", [1, 7, 63, 100])
@pytest.mark.parametrize("with_state", [False, True])
def test_forms_agree_float32(length, with_state):
    q, k, v, state = inputs(length=length, seed=length)
    state = state if with_state else None
    gamma = mx.array([0.5, 0.9, 0.99])
    ref_out, ref_state = retention_recurrent(q, k, v, gamma, state)
    for out, final in (
        retention_parallel(q, k, v, gamma, state),
        retention_chunkwise(q, k, v, gamma, 16, state),
        retention_chunkwise(q, k, v, gamma, 64, state),
    ):
        assert out.dtype == mx.float32 and final.shape == (2, 3, 8, 12)
        assert_rel_close(out, ref_out, 1e-4)
        assert_rel_close(final, ref_state, 1e-4)


@pytest.mark.parametrize("chunk_size", [1, 5, 16, 32, 64, 100, 1000])
def test_chunk_size_sweep_float64(chunk_size):
    q, k, v, state = inputs(length=100, seed=5, dtype=mx.float64)
    gamma = retnet_gammas(3, mx.float64)
    ref_out, ref_state = retention_recurrent(q, k, v, gamma, state)
    out, final = retention_chunkwise(q, k, v, gamma, chunk_size, state)
    assert out.dtype == mx.float64 and final.dtype == mx.float64
    assert_rel_close(out, ref_out, 1e-10)
    assert_rel_close(final, ref_state, 1e-10)


def test_parallel_float64_matches_numpy_recurrence():
    q, k, v, state = inputs(1, 2, 20, key_dim=3, value_dim=2, seed=9, dtype=mx.float64)
    gamma = mx.array([0.3, 0.95], dtype=mx.float64)
    out, final = retention_parallel(q, k, v, gamma, state)
    qn, kn, vn, sn = (np.array(a) for a in (q, k, v, state))
    for h, g in enumerate([0.3, 0.95]):
        s = sn[0, h].copy()
        for n in range(20):
            s = g * s + np.outer(kn[0, h, n], vn[0, h, n])
            expected = qn[0, h, n] @ s
            np.testing.assert_allclose(np.array(out[0, h, n]), expected, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(np.array(final[0, h]), s, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("form", sorted(FORMS))
@pytest.mark.parametrize("split", [1, 16, 30])
def test_state_hand_off(form, split):
    fn = FORMS[form]
    q, k, v, state = inputs(length=45, seed=21)
    gamma = retnet_gammas(3)
    whole, whole_state = fn(q, k, v, gamma, state)
    first, mid = fn(q[:, :, :split], k[:, :, :split], v[:, :, :split], gamma, state)
    second, last = fn(q[:, :, split:], k[:, :, split:], v[:, :, split:], gamma, mid)
    assert_rel_close(mx.concatenate([first, second], axis=2), whole, 1e-5)
    assert_rel_close(last, whole_state, 1e-5)


def test_gradients_agree():
    """fla-style: d/d(q, k, v, state, gamma) of <o, do> + <S_T, dS> for all three forms."""
    q, k, v, state = inputs(batch=1, length=41, seed=31)
    gamma = mx.array([0.6, 0.9, 0.97])
    d_out = normal((1, 3, 41, 12), 40)
    d_state = normal((1, 3, 8, 12), 41)

    def objective(fn):
        def loss(q, k, v, state, gamma):
            out, final = fn(q, k, v, gamma, state)
            return mx.sum(out * d_out) + mx.sum(final * d_state)

        return mx.grad(loss, argnums=(0, 1, 2, 3, 4))

    reference = objective(retention_recurrent)(q, k, v, state, gamma)
    for form in ("parallel", "chunkwise"):
        got = objective(FORMS[form])(q, k, v, state, gamma)
        for name, g, r in zip(("dq", "dk", "dv", "dstate", "dgamma"), got, reference):
            assert g.shape == r.shape, name
            assert_rel_close(g, r, 1e-4)


def test_float16_runs_and_tracks_float32():
    q, k, v, state = inputs(length=70, seed=41)
    gamma = retnet_gammas(3)  # float32 decays: float16 would round the slow heads to 1
    expected, _ = retention_recurrent(q, k, v, gamma, state)
    half = [a.astype(mx.float16) for a in (q, k, v, state)]
    for fn in (retention_parallel, retention_recurrent, retention_chunkwise):
        out, final = fn(*half[:3], gamma, state=half[3])
        assert out.dtype == mx.float16 and final.dtype == mx.float16
        assert_rel_close(out, expected, 1e-2)


def test_strong_decay_long_sequence_is_finite():
    q, k, v, _ = inputs(batch=1, heads=2, length=300, seed=51)
    gamma = mx.array([1e-3, 0.5])
    for out, final in (
        retention_parallel(q, k, v, gamma),
        retention_chunkwise(q, k, v, gamma, chunk_size=128),
    ):
        assert bool(mx.all(mx.isfinite(out))) and bool(mx.all(mx.isfinite(final)))
    chunked, _ = retention_chunkwise(q, k, v, gamma, 128)
    assert_rel_close(chunked, retention_recurrent(q, k, v, gamma)[0], 1e-4)


def test_chunkwise_under_compile():
    q, k, v, state = inputs(length=32, seed=61)  # two full chunks: one traced chunk pass
    gamma = retnet_gammas(3)
    compiled = mx.compile(lambda q, k, v, s: retention_chunkwise(q, k, v, gamma, 16, s))
    out, final = compiled(q, k, v, state)
    ref_out, ref_state = retention_recurrent(q, k, v, gamma, state)
    assert_rel_close(out, ref_out, 1e-4)
    assert_rel_close(final, ref_state, 1e-4)


@pytest.mark.parametrize("form", sorted(FORMS))
def test_bad_inputs(form):
    fn = FORMS[form]
    q, k, v, state = inputs(length=5)
    gamma = retnet_gammas(3)
    with pytest.raises(ValueError, match="q must have rank 4"):
        fn(q[0], k, v, gamma)
    with pytest.raises(TypeError, match="k must have a floating dtype"):
        fn(q, k.astype(mx.int32), v, gamma)
    with pytest.raises(TypeError, match="mixed dtypes"):
        fn(q, k, v.astype(mx.float16), gamma)
    with pytest.raises(ValueError, match="q and k"):
        fn(q, k[..., :4], v, gamma)
    with pytest.raises(ValueError, match="v must share"):
        fn(q, k, v[:, :, :3], gamma)
    with pytest.raises(ValueError, match="q is empty"):
        fn(q[:, :, :0], k[:, :, :0], v[:, :, :0], gamma)
    with pytest.raises(ValueError, match=r"gamma must have shape \(H,\)"):
        fn(q, k, v, retnet_gammas(2))
    with pytest.raises(ValueError, match="gamma must have rank 1"):
        fn(q, k, v, gamma[None])
    with pytest.raises(TypeError, match="gamma must be an mx.array"):
        fn(q, k, v, [0.9, 0.9, 0.9])
    for bad in ([0.9, 1.0, 0.9], [0.0, 0.5, 0.5], [0.9, 1.5, 0.9], [-0.1, 0.5, 0.5]):
        with pytest.raises(ValueError, match=r"gamma must lie in the open interval \(0, 1\)"):
            fn(q, k, v, mx.array(bad))
    with pytest.raises(ValueError, match="state must have shape"):
        fn(q, k, v, gamma, state[..., :5])
    with pytest.raises(TypeError, match="mixed dtypes"):
        fn(q, k, v, gamma, state.astype(mx.float64))


def test_chunk_size_must_be_positive():
    q, k, v, _ = inputs(length=5)
    with pytest.raises(ValueError, match="chunk_size"):
        retention_chunkwise(q, k, v, retnet_gammas(3), chunk_size=0)
    with pytest.raises(TypeError, match="chunk_size"):
        retention_chunkwise(q, k, v, retnet_gammas(3), chunk_size=8.0)
    with pytest.raises(ValueError, match="n_heads"):
        retnet_gammas(0)
