"""Neural long-term memory of Titans (paper §3.1-3.2, eq. 12-18).

The memory is an MLP ``M(x) = W_L σ(W_{L-1} ... σ(W_1 x))`` (σ = SiLU, no biases; ``L = 1`` is the
matrix memory ``M(x) = W_1 x``) trained at test time on the loss ``ℓ(M; k, v) = ‖M(k) − v‖²``
(eq. 12, summed over features) by gradient descent with momentum and a forgetting gate (eq. 13-14):

    S_t = η_t S_{t-1} − θ_t ∇ℓ(M_{t0}; k_t, v_t)
    M_t = (1 − α_t) M_{t-1} + S_t
    y_t = M_t(q_t)                       (the memory after token t's own update)

Chunks of ``chunk_size`` tokens lie on the absolute position grid; inside the chunk that starts at
``t0`` every gradient is taken at the chunk-start weights ``M_{t0}`` (eq. 16). Within a chunk the
momentum and decay recurrences are linear with scalar gates, so every per-token state is a fixed
combination of the chunk-start state and the per-token gradients (reference §2.2):

    W_t = β_t W_s + f_t S_s − Σ_{i≤t} G_{t,i} u_i,        S_t = m_t S_s − Σ_{i≤t} n_{i,t} u_i

For a bias-free layer every ``u_i = g_i a_iᵀ`` is rank one (``g`` the backprop signal at the layer
output, ``a`` its input, both at ``M_{t0}``), so ``W_t h`` is computed without materializing ``W_t``
(the dual form, reference §2.3): matmuls over the chunk, ``O(b²d + bd·h)`` per chunk.

``memory_scan`` is that chunked-parallel form; ``memory_scan_reference`` is the token-by-token
recurrence with autograd gradients, kept beside it as the definition the tests compare against.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import mlx.core as mx

from titans import _checks
from titans._lazy import eval_unless_traced
from titans.ops.activations import sigmoid, silu

__all__ = [
    "MemoryState",
    "chunk_coefficients",
    "l2_normalize",
    "memory_loss",
    "memory_read",
    "memory_scan",
    "memory_scan_reference",
]


# --------------------------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemoryState:
    """Everything needed to continue a scan exactly where the previous call stopped.

    ``weights`` (M_t) and ``momentum`` (S_t) are tuples with one array per layer, shaped
    ``(*leading, d_out_l, d_in_l)``. ``anchor`` holds the weights at the start of the current chunk
    (the point where the remaining tokens of a chunk split across calls take their gradients), and
    ``position`` counts the tokens consumed so far, which places the chunk grid.
    """

    weights: tuple
    momentum: tuple
    anchor: tuple
    position: int

    @property
    def arrays(self) -> list:
        """All arrays of the state (for ``mx.eval``)."""
        return [*self.weights, *self.momentum, *self.anchor]

    @property
    def nbytes(self) -> int:
        """Bytes held by the state; independent of how many tokens were consumed."""
        return sum(a.nbytes for a in self.arrays)


# --------------------------------------------------------------------------------------------
# The memory MLP, its loss and hand-written backprop
# --------------------------------------------------------------------------------------------


def _mT(x: mx.array) -> mx.array:
    return mx.swapaxes(x, -1, -2)


# Added under the square root of ‖z‖² when the memory's output is normalized (``normalize_output``).
_NORM_EPS = 1e-6


def _unit(z: mx.array) -> tuple[mx.array, mx.array]:
    """``(z / ‖z‖, ‖z‖)`` along the last axis, with ``_NORM_EPS`` under the root."""
    norm = mx.sqrt(mx.sum(mx.square(z), axis=-1, keepdims=True) + _NORM_EPS)
    return z / norm, norm


def memory_read(weights, x: mx.array, *, normalize_output: bool = False) -> mx.array:
    """``M*(x)``: apply the memory MLP to rows of ``x`` (..., T, d_in) without updating it.

    ``normalize_output`` returns ``MLP(x) / ‖MLP(x)‖``: the memory predicts unit vectors, so the
    loss of eq. 12 no longer grows with the weights (see ``memory_scan``)."""
    h = x
    for layer, w in enumerate(weights):
        h = h @ _mT(w)
        if layer < len(weights) - 1:
            h = silu(h)
    return _unit(h)[0] if normalize_output else h


def memory_loss(weights, k: mx.array, v: mx.array, *, normalize_output: bool = False) -> mx.array:
    """Eq. 12 summed over tokens and features: ``Σ_t ‖M(k_t) − v_t‖²``."""
    return mx.sum(mx.square(memory_read(weights, k, normalize_output=normalize_output) - v))


def _forward_backward(weights, k: mx.array, v: mx.array, normalize_output: bool = False):
    """Per-token layer inputs ``a`` and output gradients ``g`` of eq. 12 at ``weights``.

    The gradient of ``‖M(k_i) − v_i‖²`` w.r.t. layer ``l`` is ``g_i^{(l)} a_i^{(l)ᵀ}``. Each
    sigmoid is computed once and reused for SiLU'(z) = s (1 + z (1 − s)): on CPU the
    transcendental ops, not the matmuls, dominate this step. With ``normalize_output`` the error
    ``e = 2(n − v)`` at ``n = z/‖z‖`` is carried back through the normalization:
    ``(e − n (n·e)) / ‖z‖``.
    """
    n_layers = len(weights)
    inputs, slopes = [k], []
    h = k
    for layer, w in enumerate(weights):
        z = h @ _mT(w)
        if layer < n_layers - 1:
            s = sigmoid(z)
            h = z * s
            inputs.append(h)
            slopes.append(s * (1 + z * (1 - s)))
    out_grads = [None] * n_layers
    if normalize_output:
        n, norm = _unit(z)
        e = 2 * (n - v)
        g = (e - n * mx.sum(n * e, axis=-1, keepdims=True)) / norm
    else:
        g = 2 * (z - v)
    for layer in range(n_layers - 1, -1, -1):
        out_grads[layer] = g
        if layer > 0:
            g = (g @ weights[layer]) * slopes[layer - 1]
    return inputs, out_grads


# --------------------------------------------------------------------------------------------
# Chunk coefficients (reference §2.2): products of the gates, no exp/log (exact in float64)
# --------------------------------------------------------------------------------------------


def _segment_products_reference(x: mx.array) -> mx.array:
    """``P[..., t, s] = Π_{j=s+1}^{t} x_j`` for ``t ≥ s`` and 0 above the diagonal (autodiff
    through ``mx.cumprod``; the definition ``_segment_products`` is tested against)."""
    b = x.shape[-1]
    idx = mx.arange(b)
    after = (idx[None, :] > idx[:, None]).astype(x.dtype)  # [s, j]: j > s
    upto = 1 - after  # [a, b]: b ≤ a
    # masks by arithmetic, not mx.where (which costs ~20x a multiply on the CPU)
    factors = x[..., None, :] * after + upto  # x_j where j > s, else 1
    prods = _mT(mx.cumprod(factors, axis=-1))  # [t, s] = Π_{s<j≤t} x_j
    return prods * upto  # [t, s]: zero above the diagonal (s > t)


@mx.custom_function
def _segment_products(x: mx.array) -> mx.array:
    """``_segment_products_reference`` with a hand-written, division-free gradient."""
    return _segment_products_reference(x)


@_segment_products.vjp
def _segment_products_vjp(primals, cotangent, output):
    """``∂/∂x_j = Σ_{s<j≤t} C[t, s] P[j−1, s] P[t, j]``: the product without ``x_j`` splits at
    ``j`` into ``P[j−1, s]`` and ``P[t, j]``, so no division (the gates may be 0). With
    ``D = Cᵀ P`` this is the diagonal of ``P_shift D`` (``P_shift[j] = P[j − 1]``): one batched
    matmul instead of the backward pass of a cumulative product over the ``(b, b)`` factors."""
    P, C = output[0] if isinstance(output, (list, tuple)) else output, cotangent
    C = C[0] if isinstance(C, (list, tuple)) else C
    shifted = mx.concatenate([mx.zeros_like(P[..., :1, :]), P[..., :-1, :]], axis=-2)  # [j, s] = P[j−1, s]
    return (mx.sum(shifted * _mT(_mT(C) @ P), axis=-1),)


def chunk_coefficients(lr: mx.array, momentum: mx.array, decay: mx.array):
    """Scalar coefficients of one chunk (gates shaped ``(..., b)``).

    Returns ``(beta, f, G, m_end, n_end)``:
    ``beta_t = Π_{j≤t}(1−α_j)``, ``f_t = Σ_{s≤t} (β_t/β_s) m_s`` with ``m_s = Π_{j≤s} η_j``,
    ``G[t, i] = θ_i Σ_{s=i}^{t} (β_t/β_s) Π_{j=i+1}^{s} η_j`` (lower triangular),
    ``m_end = m_b`` and ``n_end[i] = θ_i Π_{j=i+1}^{b} η_j`` (eq. 16-18 combined).
    """
    keep = 1 - decay
    decay_ratios = _segment_products(keep)  # β_t / β_s
    momentum_ratios = _segment_products(momentum)  # Π_{j=s+1}^{t} η_j
    beta = mx.cumprod(keep, axis=-1)
    m = mx.cumprod(momentum, axis=-1)
    f = (decay_ratios @ m[..., None])[..., 0]
    G = (decay_ratios @ momentum_ratios) * lr[..., None, :]
    n_end = lr * momentum_ratios[..., -1, :]
    return beta, f, G, m[..., -1], n_end


def _scan_chunk(start_w, start_s, anchor, q, k, v, coefficients, normalize_output=False):
    """One chunk (or part of one) in the dual form; returns outputs and the chunk-end state."""
    beta, f, G, m_end, n_end = coefficients
    inputs, out_grads = _forward_backward(anchor, k, v, normalize_output)
    h = q
    n_layers = len(start_w)
    for layer in range(n_layers):
        z = (
            beta[..., None] * (h @ _mT(start_w[layer]))
            + f[..., None] * (h @ _mT(start_s[layer]))
            - ((h @ _mT(inputs[layer])) * G) @ out_grads[layer]
        )
        h = silu(z) if layer < n_layers - 1 else (_unit(z)[0] if normalize_output else z)
    g_end = G[..., -1, :, None]
    new_w, new_s = [], []
    for layer in range(n_layers):
        a, g = inputs[layer], out_grads[layer]
        new_w.append(
            beta[..., -1, None, None] * start_w[layer]
            + f[..., -1, None, None] * start_s[layer]
            - _mT(g * g_end) @ a
        )
        new_s.append(m_end[..., None, None] * start_s[layer] - _mT(g * n_end[..., None]) @ a)
    return h, tuple(new_w), tuple(new_s)


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def _validate(weights, q, k, v, lr, momentum, decay, chunk_size, state, normalize_output=False):
    _checks.positive_int("chunk_size", chunk_size)
    if not isinstance(normalize_output, bool):
        raise TypeError(f"normalize_output must be a bool, got {type(normalize_output).__name__} {normalize_output!r}")
    if not isinstance(weights, (tuple, list)) or len(weights) == 0:
        raise TypeError("weights must be a non-empty tuple of arrays (one per memory layer)")
    for name, x in (("q", q), ("k", k), ("v", v)):
        _checks.float_array(name, x, min_ndim=2)
    for layer, w in enumerate(weights):
        _checks.float_array(f"weights[{layer}]", w, min_ndim=2)
    for name, x in (("lr", lr), ("momentum", momentum), ("decay", decay)):
        _checks.float_array(name, x, min_ndim=1)
    dtype = _checks.same_dtype(
        q=q, k=k, v=v, lr=lr, momentum=momentum, decay=decay,
        **{f"weights[{i}]": w for i, w in enumerate(weights)},
    )
    if q.shape != k.shape:
        raise ValueError(f"q and k must have the same shape, got q {q.shape} and k {k.shape}")
    if v.shape[:-1] != q.shape[:-1]:
        raise ValueError(f"v must have shape (..., T, d_v) with the leading dims of q {q.shape[:-1]}, got {v.shape}")
    if q.shape[-2] == 0:
        raise ValueError("q, k, v are empty: the sequence length T is 0")
    if q.shape[-1] == 0 or v.shape[-1] == 0:
        raise ValueError("q, k, v must have non-zero feature dimensions")
    for name, g in (("lr", lr), ("momentum", momentum), ("decay", decay)):
        if g.shape != q.shape[:-1]:
            raise ValueError(f"{name} must have shape {q.shape[:-1]} (one value per token), got {g.shape}")
    d_in = q.shape[-1]
    for layer, w in enumerate(weights):
        if w.shape[-1] != d_in:
            what = "d_k (the last dim of q and k)" if layer == 0 else f"the output dim of weights[{layer - 1}]"
            raise ValueError(f"weights[{layer}] has input dim {w.shape[-1]}, expected {d_in}, {what}")
        d_in = w.shape[-2]
        try:
            mx.broadcast_shapes(w.shape[:-2], q.shape[:-2])
        except ValueError:
            raise ValueError(
                f"weights[{layer}] leading dims {w.shape[:-2]} do not broadcast to q's leading dims {q.shape[:-2]}"
            ) from None
    if d_in != v.shape[-1]:
        raise ValueError(f"the last memory layer outputs {d_in} features but v has d_v = {v.shape[-1]}")
    if state is not None:
        _validate_state(state, weights, q.shape[:-2], _checks.compute_dtype(dtype))
    _checks.finite_and_bounded(
        dict(q=q, k=k, v=v, lr=lr, momentum=momentum, decay=decay,
             **{f"weights[{i}]": w for i, w in enumerate(weights)}),
        dict(lr=(0.0, None), momentum=(0.0, 1.0), decay=(0.0, 1.0)),
    )


def _validate_state(state, weights, leading, dtype):
    if not isinstance(state, MemoryState):
        raise TypeError(f"state must be a MemoryState or None, got {type(state).__name__}")
    _checks.nonnegative_int("state.position", state.position)
    for field_name in ("weights", "momentum", "anchor"):
        arrays = getattr(state, field_name)
        if len(arrays) != len(weights):
            raise ValueError(f"state.{field_name} has {len(arrays)} layers, weights has {len(weights)}")
        for layer, (a, w) in enumerate(zip(arrays, weights)):
            expected = (*leading, *w.shape[-2:])
            if tuple(a.shape) != expected:
                raise ValueError(f"state.{field_name}[{layer}] has shape {a.shape}, expected {expected}")
            if a.dtype != dtype:
                raise TypeError(f"state.{field_name}[{layer}] has dtype {a.dtype}, expected {dtype}")


# --------------------------------------------------------------------------------------------
# The scans
# --------------------------------------------------------------------------------------------


def _initial_state(weights, leading, dtype) -> MemoryState:
    w0 = tuple(mx.contiguous(mx.broadcast_to(w.astype(dtype), (*leading, *w.shape[-2:]))) for w in weights)
    return MemoryState(w0, tuple(mx.zeros_like(w) for w in w0), w0, 0)


def _prepare(weights, sequences, state):
    """Cast the six sequences to the compute dtype and start from ``state`` (or the weights)."""
    dtype = _checks.compute_dtype(sequences[0].dtype)
    sequences = tuple(x.astype(dtype) for x in sequences)
    if state is None:
        state = _initial_state(weights, sequences[0].shape[:-2], dtype)
    return sequences, state


# Chunks whose coefficients are computed together and then evaluated together (unless traced):
# bounds the (n, b, b) coefficient buffers and the lazy graph to a block, so memory stays flat in T.
_CHUNKS_PER_BLOCK = 16

# Full chunks all have one shape, so the compiled step is traced once per configuration; partial
# chunks (call boundaries off the grid) run uncompiled rather than trigger a new trace each.
_scan_full_chunk = {
    flag: mx.compile(functools.partial(_scan_chunk, normalize_output=flag)) for flag in (False, True)
}


def memory_scan(weights, q, k, v, lr, momentum, decay, chunk_size, state=None, *, normalize_output=False,
                validate=True):
    """Run the memory over a sequence in the chunked-parallel form (eq. 16-18).

    Args:
        weights: tuple of ``L ≥ 1`` arrays, layer ``l`` shaped ``(..., d_out_l, d_in_l)`` with
            leading dims broadcastable to q's (batch, heads); the initial weights when ``state`` is
            None (otherwise they only fix the architecture).
        q, k: ``(..., T, d_k)``; v: ``(..., T, d_v)``.
        lr (θ_t ≥ 0), momentum (η_t ∈ [0, 1]), decay (α_t ∈ [0, 1]): ``(..., T)``.
        chunk_size: tokens per chunk on the absolute position grid.
        state: a ``MemoryState`` from a previous call, or None (weights as given, momentum zero).
        normalize_output: the memory is ``M(x) = MLP(x) / ‖MLP(x)‖`` instead of ``MLP(x)``. With
            unit values the loss is then ``2 − 2 cos(MLP(k), v)``: invariant to the scale of the
            last layer, whose gradient shrinks as its weights grow, so the inner loop cannot
            run away by growing weights (the failure of the plain MLP under chunked updates).
            Not in the paper, which leaves normalization inside the memory open (TTT normalizes
            the inner model's output).
        validate: check shapes, dtypes, ranges and NaN/Inf (one host sync). Layers that build
            valid inputs by construction, or code traced by ``mx.compile``/``mx.vmap``, pass False.

    The scan is evaluated every ``_CHUNKS_PER_BLOCK`` chunks (except while traced), so memory stays
    flat in T.

    Returns:
        ``(y, state)``: ``y_t = M_t(q_t)`` shaped ``(..., T, d_v)`` and the state after the last
        token. Splitting a sequence into consecutive calls of any lengths gives the same result.
    """
    if validate:
        _validate(weights, q, k, v, lr, momentum, decay, chunk_size, state, normalize_output)
    out_dtype = q.dtype
    (q, k, v, lr, momentum, decay), state = _prepare(weights, (q, k, v, lr, momentum, decay), state)
    leading, T = q.shape[:-2], q.shape[-2]
    w, s, anchor, position = state.weights, state.momentum, state.anchor, state.position
    outputs = []
    evaluate = True

    def run(start: int, length: int, n_chunks: int, w, s, anchor):
        """Scan ``n_chunks`` consecutive chunks of ``length`` tokens from ``start``; the first
        takes its gradients at ``anchor``, every later one at its own start weights."""
        stop = start + n_chunks * length

        def split(x, features: bool):
            x = x[..., start:stop, :] if features else x[..., start:stop]
            shape = (*leading, n_chunks, length) + ((x.shape[-1],) if features else ())
            return mx.moveaxis(x.reshape(shape), len(leading), 0)  # x[c] is chunk c

        qs, ks, vs = (split(x, True) for x in (q, k, v))
        coefficients = chunk_coefficients(*(split(x, False) for x in (lr, momentum, decay)))
        if length == chunk_size:
            step = _scan_full_chunk[bool(normalize_output)]
        else:
            step = functools.partial(_scan_chunk, normalize_output=bool(normalize_output))
        for c in range(n_chunks):
            y, new_w, s = step(w, s, anchor, qs[c], ks[c], vs[c], tuple(x[c] for x in coefficients))
            outputs.append(y)
            anchor = w = new_w
        nonlocal evaluate
        evaluate = evaluate and eval_unless_traced(outputs[-n_chunks:], w, s)
        return w, s

    start = 0
    offset = position % chunk_size
    if offset:  # finish the chunk that the previous call left open
        start = min(T, chunk_size - offset)
        new_w, s = run(0, start, 1, w, s, anchor)
        anchor = new_w if offset + start == chunk_size else anchor
        w = new_w
    else:
        anchor = w
    while (n_full := min((T - start) // chunk_size, _CHUNKS_PER_BLOCK)) > 0:
        w, s = run(start, chunk_size, n_full, w, s, w)
        anchor = w
        start += n_full * chunk_size
    if start < T:  # a partial chunk at the end stays open for the next call
        anchor = w
        w, s = run(start, T - start, 1, w, s, w)

    y = (outputs[0] if len(outputs) == 1 else mx.concatenate(outputs, axis=-2)).astype(out_dtype)
    return y, MemoryState(tuple(w), tuple(s), tuple(anchor), position + T)


def memory_scan_reference(weights, q, k, v, lr, momentum, decay, chunk_size, state=None, *,
                          normalize_output=False):
    """Token-by-token definition of ``memory_scan`` (eq. 13-14 with eq. 16's chunk-start gradients).

    Gradients come from ``mx.grad`` of eq. 12, independent of the hand-written backprop of the
    fast path. Slow; for tests and small inputs only.
    """
    _validate(weights, q, k, v, lr, momentum, decay, chunk_size, state, normalize_output)
    out_dtype = q.dtype
    (q, k, v, lr, momentum, decay), state = _prepare(weights, (q, k, v, lr, momentum, decay), state)
    T = q.shape[-2]
    w, s, anchor, position = list(state.weights), list(state.momentum), list(state.anchor), state.position
    loss_grad = mx.grad(lambda ws, kt, vt: memory_loss(ws, kt, vt, normalize_output=normalize_output))
    ys = []
    for t in range(T):
        if (position + t) % chunk_size == 0:
            anchor = list(w)
        grads = loss_grad(anchor, k[..., t : t + 1, :], v[..., t : t + 1, :])
        theta, eta, alpha = (g[..., t, None, None] for g in (lr, momentum, decay))
        s = [eta * s_l - theta * g_l for s_l, g_l in zip(s, grads)]
        w = [(1 - alpha) * w_l + s_l for w_l, s_l in zip(w, s)]
        ys.append(memory_read(w, q[..., t : t + 1, :], normalize_output=normalize_output))
    if (position + T) % chunk_size == 0:  # canonical: on the grid the anchor is the current weights
        anchor = list(w)
    y = mx.concatenate(ys, axis=-2).astype(out_dtype)
    return y, MemoryState(tuple(w), tuple(s), tuple(anchor), position + T)


def l2_normalize(x: mx.array, eps: float = 1e-6) -> mx.array:
    """Scale the last axis to unit ℓ2 norm (§4.4: normalized queries and keys)."""
    return x * mx.rsqrt(mx.sum(mx.square(x), axis=-1, keepdims=True) + eps)
