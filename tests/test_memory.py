"""Exactness of the chunked-parallel memory (``memory_scan``) against its definitions.

The token-by-token reference (autograd gradients) defines the chunked rule; an independent numpy
float64 loop defines the linear memory; special cases pin the paper's equations (online rule,
gated delta rule eq. 34, erase and freeze).
"""

import math

import mlx.core as mx
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from titans.ops.memory import (
    MemoryState,
    _segment_products,
    _segment_products_reference,
    chunk_coefficients,
    memory_read,
    memory_scan,
    memory_scan_reference,
)

HYPOTHESIS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
def no_compile():
    """Hypothesis draws many shapes; each would cost a C++ JIT compile of the chunk step. The
    compiled step is checked against the plain one on fixed shapes in ``test_compiled_step``."""
    mx.disable_compile()
    yield
    mx.enable_compile()


def make_inputs(seed, leading, T, widths, dtype=mx.float32, lr_max=0.5, weight_leading=None):
    """Random memory inputs; ``widths = [d_k, hidden..., d_v]``; unit-norm keys and queries."""
    rng = np.random.default_rng(seed)
    wl = leading if weight_leading is None else weight_leading
    weights = tuple(
        mx.array(rng.standard_normal((*wl, d_out, d_in)) / math.sqrt(d_in), dtype=dtype)
        for d_in, d_out in zip(widths[:-1], widths[1:])
    )

    def unit(shape):
        x = rng.standard_normal(shape)
        return mx.array(x / np.linalg.norm(x, axis=-1, keepdims=True), dtype=dtype)

    q, k = unit((*leading, T, widths[0])), unit((*leading, T, widths[0]))
    v = mx.array(rng.standard_normal((*leading, T, widths[-1])), dtype=dtype)
    lr = mx.array(lr_max * rng.uniform(size=(*leading, T)), dtype=dtype)
    momentum = mx.array(rng.uniform(size=(*leading, T)), dtype=dtype)
    decay = mx.array(0.3 * rng.uniform(size=(*leading, T)), dtype=dtype)
    return weights, q, k, v, lr, momentum, decay


def rel_err(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return np.abs(a - b).max() / max(np.abs(b).max(), 1e-30)


def assert_states_close(s1: MemoryState, s2: MemoryState, tol):
    assert s1.position == s2.position
    for name in ("weights", "momentum", "anchor"):
        for a, b in zip(getattr(s1, name), getattr(s2, name)):
            assert rel_err(a, b) <= tol, name


widths_strategy = st.integers(1, 3).flatmap(
    lambda depth: st.lists(st.integers(1, 9), min_size=depth + 1, max_size=depth + 1)
)
leading_strategy = st.sampled_from([(), (1,), (2,), (2, 3)])


@HYPOTHESIS
@given(
    seed=st.integers(0, 2**16),
    leading=leading_strategy,
    T=st.integers(1, 40),
    widths=widths_strategy,
    chunk=st.sampled_from([1, 2, 3, 7, 16, 40, 64]),
)
def test_chunked_matches_reference_float32(no_compile, seed, leading, T, widths, chunk):
    args = make_inputs(seed, leading, T, widths)
    y, state = memory_scan(*args, chunk)
    y_ref, state_ref = memory_scan_reference(*args, chunk)
    # Inner-loop divergence is the stability claims' subject. A diverging trajectory (outputs
    # growing from ~1 to 1e16 within a few tokens, found by hypothesis) amplifies float32 rounding
    # without bound: there the two forms agree to 1e-12 in float64 but only 1e-3 in float32.
    assume(np.abs(np.array(y_ref)).max() < 1e3)
    assert y.shape == (*leading, T, widths[-1]) and y.dtype == mx.float32
    assert rel_err(y, y_ref) <= 1e-4
    assert_states_close(state, state_ref, 1e-4)


def test_diverging_trajectory_agrees_in_float64(no_compile):
    """The case hypothesis found (outputs 1 → 1e16 in three tokens): ill-conditioned in float32,
    exact in float64."""
    args = make_inputs(0, (), 18, [2, 2, 8], dtype=mx.float64)
    y, state = memory_scan(*args, 1)
    y_ref, state_ref = memory_scan_reference(*args, 1)
    assert np.abs(np.array(y_ref)).max() > 1e15
    assert rel_err(y, y_ref) <= 1e-9
    assert_states_close(state, state_ref, 1e-9)


@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("chunk", [1, 5, 24, 31])
def test_chunked_matches_reference_float64(no_compile, depth, chunk):
    widths = [6, 10, 7, 5][: depth + 1]
    args = make_inputs(depth * 100 + chunk, (2, 2), 24, widths, dtype=mx.float64)
    y, state = memory_scan(*args, chunk)
    y_ref, state_ref = memory_scan_reference(*args, chunk)
    # MLX's float64 sigmoid is float32-accurate; both paths share it, so this bound is loose.
    tol = 1e-10 if depth == 1 else 1e-6
    assert rel_err(y, y_ref) <= tol
    assert_states_close(state, state_ref, tol)


@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("chunk", [1, 5, 24, 31])
def test_normalized_output_matches_reference_float64(no_compile, depth, chunk):
    """``normalize_output``: the dual form (with the backprop through ``z/‖z‖``) against the token
    loop with ``mx.grad`` gradients, odd widths and chunks, unit values as the layer feeds it."""
    widths = [6, 10, 7, 5][: depth + 1]
    weights, q, k, v, lr, momentum, decay = make_inputs(depth * 10 + chunk, (2, 3), 29, widths, dtype=mx.float64)
    v = v / mx.linalg.norm(v, axis=-1, keepdims=True, stream=mx.cpu)
    args = (weights, q, k, v, lr, momentum, decay, chunk)
    y, state = memory_scan(*args, normalize_output=True)
    y_ref, state_ref = memory_scan_reference(*args, normalize_output=True)
    tol = 1e-10 if depth == 1 else 1e-6
    assert rel_err(y, y_ref) <= tol
    norms = np.linalg.norm(np.array(y), axis=-1)  # unit up to the eps under the root
    assert (norms <= 1 + 1e-12).all() and np.median(norms) > 0.99
    assert_states_close(state, state_ref, tol)


def test_normalized_output_matches_numpy_float64():
    """Independent check of the gradient through the normalization: a NumPy token loop for the
    matrix memory, ``∇_W ‖Wk/‖Wk‖ − v‖² = (e − n (n·e)) kᵀ / ‖Wk‖`` with ``e = 2(n − v)``."""
    weights, q, k, v, lr, momentum, decay = make_inputs(5, (), 23, [4, 6], dtype=mx.float64)
    y, state = memory_scan(weights, q, k, v, lr, momentum, decay, 1, normalize_output=True)
    W, Q, K, V, th, et, al = (np.array(x) for x in (weights[0], q, k, v, lr, momentum, decay))
    S, ys = np.zeros_like(W), []
    for t in range(23):
        z = W @ K[t]
        r = np.sqrt(z @ z + 1e-6)
        n = z / r
        e = 2 * (n - V[t])
        S = et[t] * S - th[t] * np.outer((e - n * (n @ e)) / r, K[t])
        W = (1 - al[t]) * W + S
        z = W @ Q[t]
        ys.append(z / np.sqrt(z @ z + 1e-6))
    assert rel_err(y, np.stack(ys)) <= 1e-10
    assert rel_err(state.weights[0], W) <= 1e-10


@pytest.mark.parametrize("cuts", [(5,), (3, 11, 12), (17,)])
def test_normalized_output_split_equals_one_call(cuts):
    args = make_inputs(4, (2,), 21, [5, 9, 5], dtype=mx.float64)
    y, state = memory_scan(*args, 4, normalize_output=True)
    pieces, piece_state = [], None
    for a, b in zip([0, *cuts], [*cuts, 21]):
        sliced = [x[..., a:b, :] if x.ndim == 3 else x[..., a:b] for x in args[1:]]
        y_piece, piece_state = memory_scan(args[0], *sliced, 4, state=piece_state, normalize_output=True)
        pieces.append(y_piece)
    assert rel_err(mx.concatenate(pieces, axis=-2), y) <= 1e-9
    assert_states_close(piece_state, state, 1e-9)


def numpy_linear_memory(W0, q, k, v, lr, momentum, decay, chunk):
    """Independent float64 loop for the matrix memory: ∇ℓ = 2 (W_{t0} k − v) kᵀ (eq. 12-14, 16)."""
    W, S, ys = W0.copy(), np.zeros_like(W0), []
    anchor = W.copy()
    for t in range(q.shape[0]):
        if t % chunk == 0:
            anchor = W.copy()
        grad = 2 * np.outer(anchor @ k[t] - v[t], k[t])
        S = momentum[t] * S - lr[t] * grad
        W = (1 - decay[t]) * W + S
        ys.append(W @ q[t])
    return np.stack(ys), W, S


@pytest.mark.parametrize("chunk", [1, 4, 9, 33])
def test_linear_memory_matches_numpy_float64(chunk):
    weights, q, k, v, lr, momentum, decay = make_inputs(7, (), 33, [5, 4], dtype=mx.float64)
    y, state = memory_scan(weights, q, k, v, lr, momentum, decay, chunk)
    np_args = [np.array(x) for x in (weights[0], q, k, v, lr, momentum, decay)]
    y_np, W_np, S_np = numpy_linear_memory(*np_args, chunk)
    assert rel_err(y, y_np) <= 1e-10
    assert rel_err(state.weights[0], W_np) <= 1e-10
    assert rel_err(state.momentum[0], S_np) <= 1e-10


@HYPOTHESIS
@given(
    seed=st.integers(0, 2**16),
    T=st.integers(2, 48),
    widths=widths_strategy,
    chunk=st.sampled_from([1, 3, 8, 13]),
    data=st.data(),
)
def test_any_split_equals_one_call(no_compile, seed, T, widths, chunk, data):
    """float64: the split only changes the rounding of the chunk coefficients (float32 rounding is
    amplified by ill-conditioned inner loops; see the float32 case below)."""
    args = make_inputs(seed, (2,), T, widths, dtype=mx.float64)
    y, state = memory_scan(*args, chunk)
    assume(np.isfinite(np.array(y)).all())
    n_cuts = data.draw(st.integers(1, min(4, T - 1)))
    cuts = sorted(data.draw(st.lists(st.integers(1, T - 1), min_size=n_cuts, max_size=n_cuts, unique=True)))
    weights, rest = args[0], args[1:]
    pieces, piece_state = [], None
    for a, b in zip([0, *cuts], [*cuts, T]):
        sliced = [x[..., a:b, :] if x.ndim == 3 else x[..., a:b] for x in rest]
        y_piece, piece_state = memory_scan(weights, *sliced, chunk, state=piece_state)
        pieces.append(y_piece)
    assert rel_err(mx.concatenate(pieces, axis=-2), y) <= 1e-6
    assert_states_close(piece_state, state, 1e-6)


@pytest.mark.parametrize("cuts", [(20, 30), (3, 4, 43), (13, 26), (49,)])
def test_split_equals_one_call_float32(cuts):
    args = make_inputs(3, (2, 2), 50, [8, 16, 8], lr_max=0.1)
    y, state = memory_scan(*args, 7)
    assert np.isfinite(np.array(y)).all()
    pieces, piece_state = [], None
    for a, b in zip([0, *cuts], [*cuts, 50]):
        sliced = [x[..., a:b, :] if x.ndim == 4 else x[..., a:b] for x in args[1:]]
        y_piece, piece_state = memory_scan(args[0], *sliced, 7, state=piece_state)
        pieces.append(y_piece)
    assert rel_err(mx.concatenate(pieces, axis=-2), y) <= 1e-4
    assert_states_close(piece_state, state, 1e-4)


def test_weights_broadcast_over_batch():
    args = make_inputs(3, (2, 3), 12, [4, 8, 4], weight_leading=(3,))
    y, state = memory_scan(*args, 5)
    y_ref, _ = memory_scan_reference(*args, 5)
    assert rel_err(y, y_ref) <= 1e-5
    assert state.weights[0].shape == (2, 3, 8, 4)


def test_chunk_size_one_is_the_online_rule():
    """b = 1: every gradient at M_{t-1} (eq. 13-14), written out directly."""
    weights, q, k, v, lr, momentum, decay = make_inputs(11, (), 20, [4, 6, 3], dtype=mx.float64)
    y, _ = memory_scan(weights, q, k, v, lr, momentum, decay, 1)
    grad = mx.grad(lambda ws, kt, vt: mx.sum(mx.square(memory_read(ws, kt) - vt)))
    W, S, ys = list(weights), [mx.zeros_like(w) for w in weights], []
    for t in range(20):
        g = grad(W, k[t : t + 1], v[t : t + 1])
        S = [momentum[t] * s - lr[t] * gl for s, gl in zip(S, g)]
        W = [(1 - decay[t]) * w + s for w, s in zip(W, S)]
        ys.append(memory_read(W, q[t : t + 1]))
    assert rel_err(y, mx.concatenate(ys)) <= 1e-6


def test_zero_momentum_is_the_gated_delta_rule():
    """η = 0, b = 1 (eq. 34): W_t = W_{t-1}((1-α_t) I − 2θ_t k_t k_tᵀ) + 2θ_t v_t k_tᵀ."""
    weights, q, k, v, lr, _, decay = make_inputs(5, (), 30, [6, 6], dtype=mx.float64)
    y, state = memory_scan(weights, q, k, v, lr, mx.zeros_like(lr), decay, 1)
    W = np.array(weights[0])
    kn, vn, qn, lrn, an = (np.array(x) for x in (k, v, q, lr, decay))
    ys = []
    for t in range(30):
        W = W @ ((1 - an[t]) * np.eye(6) - 2 * lrn[t] * np.outer(kn[t], kn[t])) + 2 * lrn[t] * np.outer(vn[t], kn[t])
        ys.append(W @ qn[t])
    assert rel_err(y, np.stack(ys)) <= 1e-10
    assert rel_err(state.weights[0], W) <= 1e-10


@pytest.mark.parametrize("depth", [1, 2])
def test_full_decay_erases_the_memory(depth):
    """α = 1: M_t = S_t; with θ = 0 and η = 0 nothing of the past survives."""
    widths = [4, 8, 4][: depth + 1]
    weights, q, k, v, lr, momentum, decay = make_inputs(2, (2,), 10, widths)
    _, state = memory_scan(weights, q, k, v, lr, momentum, decay, 3)  # non-trivial W and S
    zeros, ones = mx.zeros_like(lr), mx.ones_like(lr)
    y, erased = memory_scan(weights, q, k, v, zeros, zeros, ones, 3, state=state)
    assert mx.all(y == 0).item()
    assert all(mx.all(w == 0).item() for w in erased.weights)


@pytest.mark.parametrize("depth", [1, 3])
def test_no_learning_no_decay_leaves_the_memory_unchanged(depth):
    widths = [5, 7, 6, 5][: depth + 1]
    weights, q, k, v, _, momentum, _ = make_inputs(4, (3,), 17, widths)
    zeros = mx.zeros((3, 17))
    y, state = memory_scan(weights, q, k, v, zeros, momentum, zeros, 4)
    assert rel_err(y, memory_read(weights, q)) <= 1e-6
    for w, w0 in zip(state.weights, weights):
        assert mx.array_equal(w, w0)


@pytest.mark.parametrize("t", [0, 6, 13, 22])
def test_causality(t):
    """Changing any input after position t never changes y at positions ≤ t."""
    args = make_inputs(9, (2,), 23, [4, 8, 4])
    y, _ = memory_scan(*args, 5)
    rng = np.random.default_rng(t)
    perturbed = list(args)
    for i in range(1, 7):
        x = args[i]
        noise = mx.array(rng.uniform(0.0, 0.3, size=x.shape), dtype=x.dtype)
        mask = (mx.arange(23) > t)[:, None] if x.ndim == 3 else mx.arange(23) > t
        perturbed[i] = mx.where(mask, mx.clip(x + noise, 0.0, 1.0) if i >= 5 else x + noise, x)
    y2, _ = memory_scan(*perturbed, 5)
    assert mx.array_equal(y[..., : t + 1, :], y2[..., : t + 1, :])
    if t < 22:
        assert not mx.array_equal(y[..., t + 1 :, :], y2[..., t + 1 :, :])


@pytest.mark.parametrize("normalize_output", [False, True])
@pytest.mark.parametrize("depth", [1, 2])
def test_outer_gradients_match_finite_differences(depth, normalize_output):
    """Outer-loop gradients reach q, k, v, the three gates and the initial weights (float64)."""
    widths = [3, 5, 3][: depth + 1]
    args = list(make_inputs(21, (2,), 9, widths, dtype=mx.float64))
    probe = mx.array(np.random.default_rng(0).standard_normal((2, 9, widths[-1])), dtype=mx.float64)

    def objective(weights, q, k, v, lr, momentum, decay):
        y, state = memory_scan(weights, q, k, v, lr, momentum, decay, 4, normalize_output=normalize_output)
        return mx.sum(y * probe) + mx.sum(state.weights[-1])

    grads = mx.grad(objective, argnums=tuple(range(7)))(tuple(args[0]), *args[1:])
    rng = np.random.default_rng(1)
    eps = 1e-6 if depth == 1 else 1e-4  # float64 sigmoid is float32-accurate in MLX
    for i, name in enumerate(["weights", "q", "k", "v", "lr", "momentum", "decay"]):
        if name == "weights":
            direction = tuple(mx.array(rng.standard_normal(w.shape), dtype=mx.float64) for w in args[0])
            shift = lambda e: tuple(w + e * d for w, d in zip(args[0], direction))  # noqa: E731
            analytic = sum(mx.sum(g * d).item() for g, d in zip(grads[0], direction))
        else:
            direction = mx.array(rng.standard_normal(args[i].shape), dtype=mx.float64)
            shift = lambda e: args[i] + e * direction  # noqa: E731
            analytic = mx.sum(grads[i] * direction).item()
        if name in ("momentum", "decay"):  # stay inside [0, 1]
            direction = direction * 0.01
            analytic *= 0.01
            shift = lambda e: args[i] + e * direction  # noqa: E731

        def at(e):
            shifted = list(args)
            shifted[i] = shift(e)
            return objective(tuple(shifted[0]), *shifted[1:]).item()

        numeric = (at(eps) - at(-eps)) / (2 * eps)
        assert abs(numeric - analytic) <= 1e-5 * max(1.0, abs(analytic)) * (1 if depth == 1 else 100), name


def test_compiled_step_matches_plain():
    """The compiled full-chunk step (the fast path) agrees with the same code run uncompiled."""
    args = make_inputs(1, (1, 4), 256, [16, 64, 16])
    y, state = memory_scan(*args, 64)
    mx.disable_compile()
    try:
        y_plain, state_plain = memory_scan(*args, 64)
    finally:
        mx.enable_compile()
    assert rel_err(y, y_plain) <= 1e-5
    assert_states_close(state, state_plain, 1e-5)


def test_coefficients_special_cases():
    """η = 0 gives G[t, i] = θ_i β_t/β_i and f = 0 (eq. 16-17)."""
    rng = np.random.default_rng(0)
    lr, decay = (mx.array(rng.uniform(size=6), dtype=mx.float64) for _ in range(2))
    beta, f, G, m_end, n_end = chunk_coefficients(lr, mx.zeros_like(lr), decay)
    b = np.cumprod(1 - np.array(decay))
    expected = np.tril(b[:, None] / b[None, :]) * np.array(lr)[None, :]
    assert rel_err(G, expected) <= 1e-12
    assert mx.all(f == 0).item() and m_end.item() == 0
    assert rel_err(beta, b) <= 1e-15


@pytest.mark.parametrize("b", [1, 2, 7, 64])
@pytest.mark.parametrize("zeros", [False, True])
def test_segment_products_gradient_matches_autodiff(b, zeros):
    """The hand-written gradient of the gate products equals autodiff through ``mx.cumprod``
    (float64, odd sizes, and gates that are exactly 0 as with momentum or decay switched off)."""
    rng = np.random.default_rng(b)
    x = rng.uniform(size=(3, b))
    if zeros:
        x[:, ::3] = 0.0
    x = mx.array(x, dtype=mx.float64)
    cotangent = mx.array(rng.standard_normal((3, b, b)), dtype=mx.float64)
    assert mx.array_equal(_segment_products(x), _segment_products_reference(x))
    fast = mx.grad(lambda x: mx.sum(_segment_products(x) * cotangent))(x)
    slow = mx.grad(lambda x: mx.sum(_segment_products_reference(x) * cotangent))(x)
    assert rel_err(fast, slow) <= 1e-12


def test_float16_inputs_scan_in_float32():
    args = make_inputs(0, (2,), 20, [4, 8, 4], dtype=mx.float16)
    y, state = memory_scan(*args, 8)
    assert y.dtype == mx.float16 and state.weights[0].dtype == mx.float32
    y32, _ = memory_scan(*(tuple(w.astype(mx.float32) for w in args[0]),) + tuple(x.astype(mx.float32) for x in args[1:]), 8)
    assert rel_err(y, y32) <= 1e-2


# ------------------------------------------------------------------------------------------
# Bad input
# ------------------------------------------------------------------------------------------


def good():
    return list(make_inputs(0, (2,), 6, [4, 4]))


def call(args, chunk=2, **kw):
    return memory_scan(tuple(args[0]), *args[1:], chunk, **kw)


@pytest.mark.parametrize(
    "mutate, error, match",
    [
        (lambda a: a.__setitem__(1, a[1][..., :3]), ValueError, "q and k"),
        (lambda a: a.__setitem__(3, a[3][..., :5, :]), ValueError, "v must"),
        (lambda a: a.__setitem__(1, a[1][0, 0]), ValueError, "q must have rank"),
        (lambda a: a.__setitem__(4, a[4][..., :5]), ValueError, "lr must have shape"),
        (lambda a: a.__setitem__(4, -a[4]), ValueError, "lr must lie"),
        (lambda a: a.__setitem__(5, a[5] + 1.5), ValueError, "momentum must lie"),
        (lambda a: a.__setitem__(6, -a[6] - 0.1), ValueError, "decay must lie"),
        (lambda a: a.__setitem__(2, a[2] * mx.array(float("nan"))), ValueError, "k contain NaN"),
        (lambda a: a.__setitem__(3, a[3].astype(mx.float16)), TypeError, "mixed dtypes"),
        (lambda a: a.__setitem__(1, a[1].astype(mx.int32)), TypeError, "q must have a floating dtype"),
        (lambda a: a.__setitem__(0, (a[0][0][..., :3],)), ValueError, r"weights\[0\] has input dim"),
        (lambda a: a.__setitem__(0, ()), TypeError, "weights must be"),
        (lambda a: a.__setitem__(0, (mx.zeros((5, 4, 4)),)), ValueError, "do not broadcast"),
        (lambda a: a.__setitem__(0, (mx.zeros((2, 3, 4)),)), ValueError, "last memory layer"),
    ],
)
def test_bad_inputs_name_the_argument(mutate, error, match):
    args = good()
    mutate(args)
    with pytest.raises(error, match=match):
        call(args)


@pytest.mark.parametrize("chunk, error", [(0, ValueError), (-3, ValueError), (2.0, TypeError), (True, TypeError)])
def test_bad_chunk_size(chunk, error):
    with pytest.raises(error, match="chunk_size"):
        call(good(), chunk)


def test_empty_sequence_rejected():
    args = good()
    sliced = [args[0]] + [x[..., :0, :] if x.ndim == 3 else x[..., :0] for x in args[1:]]
    with pytest.raises(ValueError, match="T is 0"):
        call(sliced)


def test_bad_state_rejected():
    args = good()
    _, state = call(args)
    with pytest.raises(TypeError, match="state must be a MemoryState"):
        call(args, state={"weights": state.weights})
    broken = MemoryState(state.weights, state.momentum[:0], state.anchor, state.position)
    with pytest.raises(ValueError, match="state.momentum"):
        call(args, state=broken)
    with pytest.raises(ValueError, match="state.position"):
        call(args, state=MemoryState(state.weights, state.momentum, state.anchor, -1))
