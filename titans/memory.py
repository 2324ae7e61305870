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

import math
from dataclasses import dataclass, field

import mlx.core as mx
import mlx.nn as nn

from titans import _checks
from titans._lazy import eval_unless_traced
from titans.ops.activations import sigmoid, silu
from titans.ops.conv import short_conv

__all__ = [
    "MemoryState",
    "NeuralMemory",
    "NeuralMemoryCache",
    "chunk_coefficients",
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


def memory_read(weights, x: mx.array) -> mx.array:
    """``M*(x)``: apply the memory MLP to rows of ``x`` (..., T, d_in) without updating it."""
    h = x
    for layer, w in enumerate(weights):
        h = h @ _mT(w)
        if layer < len(weights) - 1:
            h = silu(h)
    return h


def memory_loss(weights, k: mx.array, v: mx.array) -> mx.array:
    """Eq. 12 summed over tokens and features: ``Σ_t ‖M(k_t) − v_t‖²``."""
    return mx.sum(mx.square(memory_read(weights, k) - v))


def _forward_backward(weights, k: mx.array, v: mx.array):
    """Per-token layer inputs ``a`` and output gradients ``g`` of eq. 12 at ``weights``.

    The gradient of ``‖M(k_i) − v_i‖²`` w.r.t. layer ``l`` is ``g_i^{(l)} a_i^{(l)ᵀ}``. Each
    sigmoid is computed once and reused for SiLU'(z) = s (1 + z (1 − s)): on CPU the
    transcendental ops, not the matmuls, dominate this step.
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
    g = 2 * (z - v)
    for layer in range(n_layers - 1, -1, -1):
        out_grads[layer] = g
        if layer > 0:
            g = (g @ weights[layer]) * slopes[layer - 1]
    return inputs, out_grads


# --------------------------------------------------------------------------------------------
# Chunk coefficients (reference §2.2): products of the gates, no exp/log (exact in float64)
# --------------------------------------------------------------------------------------------


def _segment_products(x: mx.array) -> mx.array:
    """``P[..., t, s] = Π_{j=s+1}^{t} x_j`` for ``t ≥ s`` and 0 above the diagonal."""
    b = x.shape[-1]
    idx = mx.arange(b)
    after = (idx[None, :] > idx[:, None]).astype(x.dtype)  # [s, j]: j > s
    upto = 1 - after  # [a, b]: b ≤ a
    # masks by arithmetic, not mx.where (which costs ~20x a multiply on the CPU)
    factors = x[..., None, :] * after + upto  # x_j where j > s, else 1
    prods = _mT(mx.cumprod(factors, axis=-1))  # [t, s] = Π_{s<j≤t} x_j
    return prods * upto  # [t, s]: zero above the diagonal (s > t)


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


def _scan_chunk(start_w, start_s, anchor, q, k, v, coefficients):
    """One chunk (or part of one) in the dual form; returns outputs and the chunk-end state."""
    beta, f, G, m_end, n_end = coefficients
    inputs, out_grads = _forward_backward(anchor, k, v)
    h = q
    n_layers = len(start_w)
    for layer in range(n_layers):
        z = (
            beta[..., None] * (h @ _mT(start_w[layer]))
            + f[..., None] * (h @ _mT(start_s[layer]))
            - ((h @ _mT(inputs[layer])) * G) @ out_grads[layer]
        )
        h = silu(z) if layer < n_layers - 1 else z
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


def _validate(weights, q, k, v, lr, momentum, decay, chunk_size, state):
    _checks.positive_int("chunk_size", chunk_size)
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
_scan_full_chunk = mx.compile(_scan_chunk)


def memory_scan(weights, q, k, v, lr, momentum, decay, chunk_size, state=None, *, validate=True):
    """Run the memory over a sequence in the chunked-parallel form (eq. 16-18).

    Args:
        weights: tuple of ``L ≥ 1`` arrays, layer ``l`` shaped ``(..., d_out_l, d_in_l)`` with
            leading dims broadcastable to q's (batch, heads); the initial weights when ``state`` is
            None (otherwise they only fix the architecture).
        q, k: ``(..., T, d_k)``; v: ``(..., T, d_v)``.
        lr (θ_t ≥ 0), momentum (η_t ∈ [0, 1]), decay (α_t ∈ [0, 1]): ``(..., T)``.
        chunk_size: tokens per chunk on the absolute position grid.
        state: a ``MemoryState`` from a previous call, or None (weights as given, momentum zero).
        validate: check shapes, dtypes, ranges and NaN/Inf (one host sync). Layers that build
            valid inputs by construction, or code traced by ``mx.compile``/``mx.vmap``, pass False.

    The scan is evaluated every ``_CHUNKS_PER_BLOCK`` chunks (except while traced), so memory stays
    flat in T.

    Returns:
        ``(y, state)``: ``y_t = M_t(q_t)`` shaped ``(..., T, d_v)`` and the state after the last
        token. Splitting a sequence into consecutive calls of any lengths gives the same result.
    """
    if validate:
        _validate(weights, q, k, v, lr, momentum, decay, chunk_size, state)
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
        step = _scan_full_chunk if length == chunk_size else _scan_chunk
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


def memory_scan_reference(weights, q, k, v, lr, momentum, decay, chunk_size, state=None):
    """Token-by-token definition of ``memory_scan`` (eq. 13-14 with eq. 16's chunk-start gradients).

    Gradients come from ``mx.grad`` of eq. 12, independent of the hand-written backprop of the
    fast path. Slow; for tests and small inputs only.
    """
    _validate(weights, q, k, v, lr, momentum, decay, chunk_size, state)
    out_dtype = q.dtype
    (q, k, v, lr, momentum, decay), state = _prepare(weights, (q, k, v, lr, momentum, decay), state)
    T = q.shape[-2]
    w, s, anchor, position = list(state.weights), list(state.momentum), list(state.anchor), state.position
    loss_grad = mx.grad(lambda ws, kt, vt: memory_loss(ws, kt, vt))
    ys = []
    for t in range(T):
        if (position + t) % chunk_size == 0:
            anchor = list(w)
        grads = loss_grad(anchor, k[..., t : t + 1, :], v[..., t : t + 1, :])
        theta, eta, alpha = (g[..., t, None, None] for g in (lr, momentum, decay))
        s = [eta * s_l - theta * g_l for s_l, g_l in zip(s, grads)]
        w = [(1 - alpha) * w_l + s_l for w_l, s_l in zip(w, s)]
        ys.append(memory_read(w, q[..., t : t + 1, :]))
    if (position + T) % chunk_size == 0:  # canonical: on the grid the anchor is the current weights
        anchor = list(w)
    y = mx.concatenate(ys, axis=-2).astype(out_dtype)
    return y, MemoryState(tuple(w), tuple(s), tuple(anchor), position + T)


# --------------------------------------------------------------------------------------------
# The layer
# --------------------------------------------------------------------------------------------


@dataclass
class NeuralMemoryCache:
    """Recurrent state of a ``NeuralMemory`` layer: short-conv tails and the memory state."""

    conv: list = field(default_factory=lambda: [None, None, None])
    memory: MemoryState | None = None

    @property
    def nbytes(self) -> int:
        conv = sum(c.nbytes for c in self.conv if c is not None)
        return conv + (self.memory.nbytes if self.memory is not None else 0)


def l2_normalize(x: mx.array, eps: float = 1e-6) -> mx.array:
    """Scale the last axis to unit ℓ2 norm (§4.4: normalized queries and keys)."""
    return x * mx.rsqrt(mx.sum(mx.square(x), axis=-1, keepdims=True) + eps)


class NeuralMemory(nn.Module):
    """Multi-head neural long-term memory layer (paper §3.1, §4.4), a thin shell around ``memory_scan``.

    ``x → q, k, v`` by bias-free projections, each followed by a depthwise causal short convolution
    and SiLU (§4.4); q and k are ℓ2-normalized per head. Per-token, per-head gates
    ``θ_t = lr_scale·σ(x W_θ)``, ``η_t = σ(x W_η)``, ``α_t = σ(x W_α)`` (the paper says only that
    they are functions of x_t). Each head owns a memory MLP with learned initial weights. The read
    ``y_t = M_t(q_t)`` is RMS-normalized per head, gated by ``SiLU(x W_g)`` and projected back
    (§4.4, "normalization and gating before the final output projection").

    Options the paper leaves open, with the defaults chosen here:
        depth: memory MLP layers ``L_M`` (2; §5.5 studies 1-4).
        expansion: hidden width of a deep memory as a multiple of ``head_dim`` (4).
        chunk_size: tokens per chunk of the parallel form (64; not reported by the paper).
        conv_kernel: short convolution width (4, as Mamba2 / Gated DeltaNet); 0 switches it off.
        lr_scale: maximum of θ (0.02). With the summed loss of eq. 12, θ here equals
            titans-pytorch's ``max_lr / d`` (its loss is a mean over d features), so 0.02 matches
            its default ``max_lr = 1`` at head dims 32-64. Inside a chunk every gradient is taken
            at the chunk-start weights, so repeated keys add up coherently; measured on MQAR
            training (tiny models, 60 steps), θ scales of 0.5 (LMM, MAC) and 0.1 (MAC) diverge.
        gate_bias_init: initial biases of (θ, η, α) before the sigmoid: θ≈0.12·lr_scale, η≈0.9,
            α≈0.02.
        output_gate: the §4.4 norm + gate before ``o_proj``.
        use_momentum, use_decay: False fixes η = 0 (no past surprise) or α = 0 (no forgetting):
            the "w/o momentum" and "w/o weight decay" ablations of Table 5.
    """

    def __init__(
        self,
        dims: int,
        n_heads: int = 4,
        head_dim: int | None = None,
        depth: int = 2,
        expansion: int = 4,
        chunk_size: int = 64,
        conv_kernel: int = 4,
        lr_scale: float = 0.02,
        gate_bias_init: tuple = (-2.0, 2.2, -4.0),
        output_gate: bool = True,
        use_momentum: bool = True,
        use_decay: bool = True,
    ):
        super().__init__()
        _checks.positive_int("dims", dims)
        _checks.positive_int("n_heads", n_heads)
        head_dim = dims // n_heads if head_dim is None else head_dim
        _checks.positive_int("head_dim", head_dim)
        _checks.positive_int("depth", depth)
        _checks.positive_int("expansion", expansion)
        _checks.positive_int("chunk_size", chunk_size)
        _checks.nonnegative_int("conv_kernel", conv_kernel)
        if not (isinstance(lr_scale, (int, float)) and lr_scale > 0 and math.isfinite(lr_scale)):
            raise ValueError(f"lr_scale must be a positive finite number, got {lr_scale!r}")
        self.dims, self.n_heads, self.head_dim = dims, n_heads, head_dim
        self.depth, self.chunk_size, self.lr_scale = depth, chunk_size, float(lr_scale)
        self.conv_kernel, self.output_gate = conv_kernel, output_gate
        self.use_momentum, self.use_decay = use_momentum, use_decay
        inner = n_heads * head_dim
        self.q_proj = nn.Linear(dims, inner, bias=False)
        self.k_proj = nn.Linear(dims, inner, bias=False)
        self.v_proj = nn.Linear(dims, inner, bias=False)
        if conv_kernel:
            scale = 1 / math.sqrt(conv_kernel)
            self.conv_weights = [mx.random.uniform(-scale, scale, (inner, conv_kernel)) for _ in range(3)]
        self.gate_proj = nn.Linear(dims, 3 * n_heads, bias=True)
        self.gate_proj.bias = mx.repeat(mx.array(gate_bias_init, dtype=mx.float32), n_heads)
        widths = [head_dim] + [expansion * head_dim] * (depth - 1) + [head_dim]
        self.memory_weights = [
            mx.random.normal((n_heads, d_out, d_in)) / math.sqrt(d_in)
            for d_in, d_out in zip(widths[:-1], widths[1:])
        ]
        self.out_norm = nn.RMSNorm(head_dim)
        if output_gate:
            self.out_gate_proj = nn.Linear(dims, inner, bias=False)
        self.o_proj = nn.Linear(inner, dims, bias=False)

    def make_cache(self) -> NeuralMemoryCache:
        return NeuralMemoryCache()

    def split_heads(self, x: mx.array) -> mx.array:
        B, T, _ = x.shape
        return x.reshape(B, T, self.n_heads, self.head_dim).transpose(0, 2, 1, 3)

    def projections(self, x: mx.array, cache: NeuralMemoryCache | None = None):
        """``(q, k, v, lr, momentum, decay)`` in head layout, as fed to ``memory_scan``."""
        qkv = []
        for i, proj in enumerate((self.q_proj, self.k_proj, self.v_proj)):
            h = proj(x)
            if self.conv_kernel:
                h, tail = short_conv(h, self.conv_weights[i], cache.conv[i] if cache else None)
                if cache is not None:
                    cache.conv[i] = tail
            qkv.append(self.split_heads(silu(h)))
        q, k, v = qkv
        q, k = l2_normalize(q), l2_normalize(k)
        gates = sigmoid(self.gate_proj(x)).transpose(0, 2, 1)  # (B, 3H, T)
        H = self.n_heads
        lr = self.lr_scale * gates[:, :H]
        momentum = gates[:, H : 2 * H] if self.use_momentum else mx.zeros_like(lr)
        decay = gates[:, 2 * H :] if self.use_decay else mx.zeros_like(lr)
        return q, k, v, lr, momentum, decay

    def __call__(self, x: mx.array, cache: NeuralMemoryCache | None = None) -> mx.array:
        """``x`` (B, T, dims) → (B, T, dims). With a cache, continues from (and updates) it."""
        _checks.float_array("x", x, ndim=3)
        if x.shape[-1] != self.dims:
            raise ValueError(f"x must have {self.dims} features, got shape {x.shape}")
        if x.shape[1] == 0:
            raise ValueError("x is empty: the sequence length is 0")
        q, k, v, lr, momentum, decay = self.projections(x, cache)
        weights = tuple(w.astype(q.dtype) for w in self.memory_weights)
        y, state = memory_scan(
            weights, q, k, v, lr, momentum, decay, self.chunk_size,
            state=cache.memory if cache is not None else None, validate=False,
        )
        if cache is not None:
            cache.memory = state
        return self.output(y, x)

    def output(self, y: mx.array, x: mx.array) -> mx.array:
        """Per-head norm, gate and output projection of memory reads ``y`` (B, H, T, head_dim)."""
        B, _, T, _ = y.shape
        y = self.out_norm(y).transpose(0, 2, 1, 3).reshape(B, T, -1)
        if self.output_gate:
            y = y * silu(self.out_gate_proj(x))
        return self.o_proj(y)

    def step(self, x: mx.array, cache: NeuralMemoryCache) -> mx.array:
        """Decode one token: ``x`` (B, dims) or (B, 1, dims); updates ``cache`` in place."""
        if not isinstance(cache, NeuralMemoryCache):
            raise TypeError(f"cache must be a NeuralMemoryCache, got {type(cache).__name__}")
        squeeze = x.ndim == 2
        if squeeze:
            x = x[:, None, :]
        if x.ndim != 3 or x.shape[1] != 1:
            raise ValueError(f"step takes one token: x of shape (B, dims) or (B, 1, dims), got {x.shape}")
        out = self(x, cache)
        return out[:, 0] if squeeze else out
