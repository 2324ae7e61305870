"""Retention (RetNet, Sun et al. 2023, arXiv 2307.08621, Sec. 2.1, Eqs. 5-7): three exact forms.

Per head with decay ``gamma`` and positions n = 1..T (state ``S_0`` before the sequence):

    recurrent   S_n = gamma S_{n-1} + k_n^T v_n,   o_n = q_n S_n                        (Eq. 6)
    parallel    O = (Q K^T * D) V + gamma^n (Q S_0),  D[n, m] = gamma^(n-m), n >= m, else 0 (Eq. 5)
    chunkwise   R_i = K_[i]^T (V_[i] * zeta) + gamma^B R_{i-1},   zeta_j = gamma^(B-1-j)
                O_[i] = (Q_[i] K_[i]^T * D_B) V_[i] + (Q_[i] R_{i-1}) * xi,  xi_j = gamma^(j+1)
                                                                                       (Eq. 7)

These are the plain equations (no torchscale normalizations). Layout (B, H, T, d): ``q``, ``k``
are (B, H, T, dk), ``v`` is (B, H, T, dv), ``gamma`` is (H,) in (0, 1), ``state`` is
(B, H, dk, dv). Every form returns ``(out (B, H, T, dv), final state (B, H, dk, dv))``.
Decay powers are ``gamma^(n - m)`` with the exponent clamped at 0 and the upper triangle masked,
so nothing overflows (computed as ``mx.power``: on MLX 0.32 CPU, float64 ``mx.exp`` is only
float32-accurate, so ``exp((n - m) log gamma)`` would cap float64 agreement near 1e-7).
Half-precision inputs are computed in float32, float64 in float64; outputs have the input dtype.
``gamma`` may have any floating dtype (float16 cannot represent the slow RetNet decays).
"""

from __future__ import annotations

import mlx.core as mx

from titans import _checks
from titans._lazy import eval_unless_traced, is_trace_error

__all__ = [
    "retention_chunkwise",
    "retention_parallel",
    "retention_recurrent",
    "retnet_gammas",
]


def retnet_gammas(n_heads: int, dtype: mx.Dtype = mx.float32) -> mx.array:
    """Multi-scale decays ``gamma_h = 1 - 2^(-5-h)``, h = 0..H-1 (RetNet Sec. 2.2)."""
    n_heads = _checks.positive_int("n_heads", n_heads)
    exponents = -5.0 - mx.arange(n_heads, dtype=mx.float32)
    return (1.0 - mx.power(2.0, exponents)).astype(dtype)


def _check_gamma_values(gamma: mx.array) -> None:
    try:
        ok = mx.all((gamma > 0) & (gamma < 1)).item()
    except ValueError as error:  # traced inside mx.compile / mx.vmap: values are unknown
        if is_trace_error(error):
            return
        raise
    if not ok:
        raise ValueError(
            f"gamma must lie in the open interval (0, 1), found values in "
            f"[{mx.min(gamma).item()}, {mx.max(gamma).item()}]"
        )


def _check_retention(q, k, v, gamma, state) -> None:
    for name, x in (("q", q), ("k", k), ("v", v)):
        _checks.float_array(name, x, ndim=4)
        if 0 in x.shape:
            raise ValueError(f"{name} is empty: shape {tuple(x.shape)} (B, H, T, d must be > 0)")
    _checks.same_dtype(q=q, k=k, v=v)
    if q.shape != k.shape:
        raise ValueError(
            f"q and k must have the same shape, got {tuple(q.shape)} and {tuple(k.shape)}"
        )
    if v.shape[:3] != q.shape[:3]:
        raise ValueError(
            f"v must share (B, H, T) with q: q {tuple(q.shape)}, v {tuple(v.shape)}"
        )
    _checks.float_array("gamma", gamma, ndim=1)
    if gamma.shape[0] != q.shape[1]:
        raise ValueError(f"gamma must have shape (H,) = ({q.shape[1]},), got {tuple(gamma.shape)}")
    if state is not None:
        _checks.float_array("state", state, ndim=4)
        _checks.same_dtype(q=q, state=state)
        expected = (q.shape[0], q.shape[1], q.shape[3], v.shape[3])
        if tuple(state.shape) != expected:
            raise ValueError(
                f"state must have shape (B, H, dk, dv) = {expected}, got {tuple(state.shape)}"
            )
    _check_gamma_values(gamma)


def _prepare(q, k, v, gamma, state):
    dtype = _checks.compute_dtype(q.dtype)
    batch, heads, _, key_dim = q.shape
    if state is None:
        state = mx.zeros((batch, heads, key_dim, v.shape[3]), dtype)
    gamma = gamma.astype(dtype)
    return q.astype(dtype), k.astype(dtype), v.astype(dtype), gamma, state.astype(dtype)


def _decay_matrix(gamma: mx.array, length: int) -> mx.array:
    """(H, T, T) with D[n, m] = gamma^(n-m) for n >= m, else 0."""
    positions = mx.arange(length)
    distance = positions[:, None] - positions[None, :]
    exponent = mx.maximum(distance, 0).astype(gamma.dtype)
    powers = mx.power(gamma[:, None, None], exponent)
    return mx.where(distance >= 0, powers, mx.array(0.0, gamma.dtype))


def _powers(gamma: mx.array, exponents: mx.array) -> mx.array:
    """(1, H, T, 1) tensor gamma_h^e_t for non-negative e (broadcasts over (B, H, T, d))."""
    return mx.power(gamma[:, None], exponents.astype(gamma.dtype)[None, :])[None, :, :, None]


def retention_parallel(q, k, v, gamma, state=None) -> tuple[mx.array, mx.array]:
    """Parallel form: ``O = (Q K^T * D) V + gamma^n (Q S_0)``.

    Final state ``S_T = gamma^T S_0 + K^T (V * gamma^(T-m))``.

    Materializes the (B, H, T, T) decayed scores: training/test form for moderate T.
    """
    _check_retention(q, k, v, gamma, state)
    out_dtype = q.dtype
    q, k, v, gamma, state = _prepare(q, k, v, gamma, state)
    length = q.shape[2]
    steps = mx.arange(1, length + 1)  # n = 1..T

    out = ((q @ k.swapaxes(-1, -2)) * _decay_matrix(gamma, length)) @ v
    out = out + (q @ state) * _powers(gamma, steps)
    remaining = _powers(gamma, length - steps)  # gamma^(T-m)
    final = _powers(gamma, mx.array([length])) * state + k.swapaxes(-1, -2) @ (v * remaining)
    return out.astype(out_dtype), final.astype(out_dtype)


def retention_recurrent(q, k, v, gamma, state=None) -> tuple[mx.array, mx.array]:
    """Recurrent form, one token at a time: ``S_n = gamma S_{n-1} + k_n^T v_n``, ``o_n = q_n S_n``.

    The reference the other forms are tested against; also the decoding step (T = 1).
    """
    _check_retention(q, k, v, gamma, state)
    out_dtype = q.dtype
    q, k, v, gamma, state = _prepare(q, k, v, gamma, state)
    decay = gamma[None, :, None, None]
    outputs = []
    for n in range(q.shape[2]):
        state = decay * state + k[:, :, n, :, None] * v[:, :, n, None, :]
        outputs.append(q[:, :, n, None, :] @ state)
    out = mx.concatenate(outputs, axis=2)
    return out.astype(out_dtype), state.astype(out_dtype)


def _chunks(q, k, v, gamma, chunk, state):
    """Chunkwise form over T = N * chunk positions; intra-chunk work batched over all N chunks."""
    batch, heads, length, key_dim = q.shape
    value_dim = v.shape[3]
    n_chunks = length // chunk
    q = q.reshape(batch, heads, n_chunks, chunk, key_dim)
    k = k.reshape(batch, heads, n_chunks, chunk, key_dim)
    v = v.reshape(batch, heads, n_chunks, chunk, value_dim)
    within = mx.arange(chunk)
    as_chunk = lambda x: x[:, :, None]  # (1, H, T, 1) -> (1, H, 1, T, 1)

    decay = _decay_matrix(gamma, chunk)[None, :, None]  # (1, H, 1, B, B)
    out = ((q @ k.swapaxes(-1, -2)) * decay) @ v
    # each chunk's own contribution to the state at its end: (K * gamma^(B-1-j))^T V (the decay
    # scales K, the narrower operand: fewer multiplies than scaling V)
    local = (k * as_chunk(_powers(gamma, chunk - 1 - within))).swapaxes(-1, -2) @ v

    chunk_decay = _powers(gamma, mx.array([chunk]))  # (1, H, 1, 1)
    incoming = []  # R_{i-1}: the state entering chunk i
    for contribution in mx.split(local, n_chunks, axis=2):
        incoming.append(state)
        state = chunk_decay * state + contribution[:, :, 0]
    incoming = mx.stack(incoming, axis=2)  # (B, H, N, dk, dv)
    out = out + (q @ incoming) * as_chunk(_powers(gamma, within + 1))
    return out.reshape(batch, heads, length, value_dim), state


# Chunks computed together and then evaluated together (unless traced), as in memory_scan.
_CHUNKS_PER_BLOCK = 32


def retention_chunkwise(q, k, v, gamma, chunk_size=64, state=None) -> tuple[mx.array, mx.array]:
    """Chunkwise form (Eq. 7): parallel inside chunks of ``chunk_size``, recurrent across them.

    The intra-chunk products of a block of ``_CHUNKS_PER_BLOCK`` chunks are single batched
    matmuls; only the (dk, dv) state update ``R_i = gamma^B R_{i-1} + K_[i]^T (V_[i] * zeta)`` runs
    sequentially over chunks. Each block is evaluated before the next (except while traced), so
    memory and per-token time stay flat in T. A final partial chunk (T not a multiple of
    ``chunk_size``) is handled as one shorter chunk.
    """
    _check_retention(q, k, v, gamma, state)
    chunk_size = _checks.positive_int("chunk_size", chunk_size)
    out_dtype = q.dtype
    q, k, v, gamma, state = _prepare(q, k, v, gamma, state)
    length = q.shape[2]
    full = (length // chunk_size) * chunk_size
    outputs = []
    evaluate = True
    block = _CHUNKS_PER_BLOCK * chunk_size
    for start in range(0, full, block):
        stop = min(start + block, full)
        piece = (q[:, :, start:stop], k[:, :, start:stop], v[:, :, start:stop])
        out, state = _chunks(*piece, gamma, chunk_size, state)
        outputs.append(out)
        # bounded working set and memory, as in memory_scan
        evaluate = evaluate and eval_unless_traced(out, state)
    if full < length:
        tail = (q[:, :, full:], k[:, :, full:], v[:, :, full:])
        out, state = _chunks(*tail, gamma, length - full, state)
        outputs.append(out)
    out = outputs[0] if len(outputs) == 1 else mx.concatenate(outputs, axis=2)
    return out.astype(out_dtype), state.astype(out_dtype)
