"""The neural long-term memory as a layer (paper §3.1, §4.4): a thin shell around ``memory_scan``.

``MemoryConfig`` is the one home of the memory's options; ``TitansArgs`` holds one, and
``NeuralMemory`` is built from it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import mlx.core as mx
import mlx.nn as nn

from titans import _checks
from titans.cache import Cache
from titans.ops.activations import sigmoid, silu
from titans.ops.conv import short_conv
from titans.ops.memory import MemoryState, l2_normalize, memory_read, memory_scan

__all__ = ["MemoryConfig", "NeuralMemory", "NeuralMemoryCache"]


@dataclass(frozen=True)
class MemoryConfig:
    """Options of the neural memory. The paper leaves each open unless an equation is cited.

    depth: memory MLP layers ``L_M`` (§5.5 studies 1-4).
    expansion: hidden width of a deep memory as a multiple of ``head_dim``.
    chunk_size: tokens per chunk of the parallel form (§3.2; not reported by the paper).
    conv_kernel: width of the depthwise causal short convolution after q/k/v (§4.4); 0 = none.
    lr_scale: the maximum of θ: ``θ_t = lr_scale·σ(x W_θ + b_θ)``.
    gate_bias: initial biases ``(b_θ, b_η, b_α)`` of the θ, η, α gates before the sigmoid.
    momentum, decay: False fixes η = 0 (no past surprise, eq. 9-10) or α = 0 (no forgetting,
        eq. 13): the "w/o momentum" and "w/o weight decay" ablations of Table 5.
    output_gate: the §4.4 normalization and gate before the output projection.

    The defaults were chosen by measurement (README, "Choices the paper leaves open"): the
    memory writes and keeps what it sees at initialization (θ ≈ lr_scale/2, α ≈ 1e-3, so a write
    survives ~1000 tokens) and the inner loop stays finite under outer training.
    ``MemoryConfig.paper()`` is the paper-literal memory with gates θ = 0.02·σ(−2), η = σ(2.2),
    α = σ(−4).

    Stabilizers of the inner loop (not in the paper; each switched off gives the literal form):
    normalize_values: ℓ2-normalize v per head as q and k are (§4.4 normalizes q, k only), so
        the error in eq. 12 cannot grow with the outer training.
    momentum_max: ``η_t = momentum_max·σ(x W_η + b_η)``: bounds the effective step
        ``θ/(1 − η)`` by ``lr_scale/(1 − momentum_max)``; 1 is the unbounded gate.
    normalize_output: the memory predicts unit vectors, ``M(x) = MLP(x)/‖MLP(x)‖`` (see
        ``memory_scan``).
    """

    depth: int = 2
    expansion: int = 2
    chunk_size: int = 64
    conv_kernel: int = 4
    lr_scale: float = 0.1
    gate_bias: tuple = (0.0, 2.2, -7.0)
    momentum: bool = True
    decay: bool = True
    output_gate: bool = True
    normalize_values: bool = True
    momentum_max: float = 0.9
    normalize_output: bool = True

    def __post_init__(self):
        for name in ("depth", "expansion", "chunk_size"):
            _checks.positive_int(f"memory.{name}", getattr(self, name))
        _checks.nonnegative_int("memory.conv_kernel", self.conv_kernel)
        for name in ("momentum", "decay", "output_gate", "normalize_values", "normalize_output"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"memory.{name} must be a bool, got {getattr(self, name)!r}")
        lr = self.lr_scale
        if isinstance(lr, bool) or not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
            raise ValueError(f"memory.lr_scale must be a positive finite number, got {lr!r}")
        m = self.momentum_max
        if isinstance(m, bool) or not (isinstance(m, (int, float)) and 0 < m <= 1):
            raise ValueError(f"memory.momentum_max must lie in (0, 1], got {m!r}")
        bias = self.gate_bias
        if not (isinstance(bias, (tuple, list)) and len(bias) == 3
                and all(isinstance(b, (int, float)) and not isinstance(b, bool) and math.isfinite(b) for b in bias)):
            raise ValueError(f"memory.gate_bias must be three finite numbers (θ, η, α), got {bias!r}")
        object.__setattr__(self, "gate_bias", tuple(float(b) for b in bias))

    @classmethod
    def from_dict(cls, params: dict | MemoryConfig | None) -> MemoryConfig:
        """A config from a dict of overrides (unknown keys are an error naming them)."""
        if params is None:
            return cls()
        if isinstance(params, cls):
            return params
        if not isinstance(params, dict):
            raise TypeError(f"memory must be a MemoryConfig or a dict, got {type(params).__name__}")
        unknown = set(params) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"memory has no option(s) {sorted(unknown)}; options: {sorted(cls.__dataclass_fields__)}")
        return cls(**params)

    @classmethod
    def paper(cls, **changes) -> MemoryConfig:
        """The literal memory of eq. 12-14 (no stabilizer; unbounded η) with the gate
        initialization θ = 0.02·σ(−2), η = σ(2.2), α = σ(−4)."""
        return cls.from_dict({"lr_scale": 0.02, "gate_bias": (-2.0, 2.2, -4.0), "normalize_values": False,
                              "momentum_max": 1.0, "normalize_output": False, **changes})



_CONV_NAMES = ("q", "k", "v")


@dataclass
class NeuralMemoryCache(Cache):
    """Recurrent state of a ``NeuralMemory`` layer: short-conv tails and the memory state."""

    conv: list = field(default_factory=lambda: [None, None, None])
    memory: MemoryState | None = None

    @property
    def state(self) -> dict:
        out = {}
        conv = {name: c for name, c in zip(_CONV_NAMES, self.conv) if c is not None}
        if conv:
            out["conv"] = conv
        if self.memory is not None:
            m = self.memory
            out["memory"] = {"weights": list(m.weights), "momentum": list(m.momentum), "anchor": list(m.anchor)}
        return out

    @property
    def meta_state(self) -> dict:
        return {} if self.memory is None else {"position": self.memory.position}

    @classmethod
    def from_state(cls, state: dict, meta_state: dict) -> NeuralMemoryCache:
        conv = state.get("conv", {})
        memory = state.get("memory")
        if memory is not None:
            memory = MemoryState(tuple(memory["weights"]), tuple(memory["momentum"]), tuple(memory["anchor"]),
                                 int(meta_state["position"]))
        return cls(conv=[conv.get(name) for name in _CONV_NAMES], memory=memory)


def init_memory_weights(n_heads: int, head_dim: int, config: MemoryConfig) -> list:
    """Initial memory MLP weights, one ``(n_heads, d_out, d_in)`` array per layer, N(0, 1/d_in)."""
    widths = [head_dim] + [config.expansion * head_dim] * (config.depth - 1) + [head_dim]
    return [mx.random.normal((n_heads, d_out, d_in)) / math.sqrt(d_in) for d_in, d_out in zip(widths[:-1], widths[1:])]


class NeuralMemory(nn.Module):
    """Multi-head neural long-term memory layer (paper §3.1, §4.4).

    ``x → q, k, v`` by bias-free projections, each followed by a depthwise causal short convolution
    and SiLU (§4.4); q and k are ℓ2-normalized per head. Per-token, per-head gates
    ``θ_t = lr_scale·σ(x W_θ)``, ``η_t = momentum_max·σ(x W_η)``, ``α_t = σ(x W_α)`` (the paper
    says only that they are functions of x_t). Each head owns a memory MLP with learned initial
    weights. The read ``y_t = M_t(q_t)`` is RMS-normalized per head, gated by ``SiLU(x W_g)`` and
    projected back (§4.4). Options: ``MemoryConfig``.
    """

    def __init__(self, dims: int, n_heads: int = 4, head_dim: int | None = None, config: MemoryConfig | None = None):
        super().__init__()
        _checks.positive_int("dims", dims)
        _checks.positive_int("n_heads", n_heads)
        head_dim = dims // n_heads if head_dim is None else head_dim
        _checks.positive_int("head_dim", head_dim)
        config = MemoryConfig.from_dict(config)
        self.dims, self.n_heads, self.head_dim, self.config = dims, n_heads, head_dim, config
        inner = n_heads * head_dim
        self.q_proj = nn.Linear(dims, inner, bias=False)
        self.k_proj = nn.Linear(dims, inner, bias=False)
        self.v_proj = nn.Linear(dims, inner, bias=False)
        if config.conv_kernel:
            scale = 1 / math.sqrt(config.conv_kernel)
            self.conv_weights = [mx.random.uniform(-scale, scale, (inner, config.conv_kernel)) for _ in range(3)]
        self.gate_proj = nn.Linear(dims, 3 * n_heads, bias=True)
        self.gate_proj.bias = mx.repeat(mx.array(config.gate_bias, dtype=mx.float32), n_heads)
        self.memory_weights = init_memory_weights(n_heads, head_dim, config)
        self.out_norm = nn.RMSNorm(head_dim)
        if config.output_gate:
            self.out_gate_proj = nn.Linear(dims, inner, bias=False)
        self.o_proj = nn.Linear(inner, dims, bias=False)

    def make_cache(self) -> NeuralMemoryCache:
        return NeuralMemoryCache()

    def split_heads(self, x: mx.array) -> mx.array:
        B, T, _ = x.shape
        return x.reshape(B, T, self.n_heads, self.head_dim).transpose(0, 2, 1, 3)

    def projections(self, x: mx.array, cache: NeuralMemoryCache | None = None):
        """``(q, k, v, lr, momentum, decay)`` in head layout, as fed to ``memory_scan``."""
        config = self.config
        qkv = []
        for i, proj in enumerate((self.q_proj, self.k_proj, self.v_proj)):
            h = proj(x)
            if config.conv_kernel:
                h, tail = short_conv(h, self.conv_weights[i], cache.conv[i] if cache else None)
                if cache is not None:
                    cache.conv[i] = tail
            qkv.append(self.split_heads(silu(h)))
        q, k, v = qkv
        q, k = l2_normalize(q), l2_normalize(k)
        if config.normalize_values:
            v = l2_normalize(v)
        gates = sigmoid(self.gate_proj(x)).transpose(0, 2, 1)  # (B, 3H, T)
        H = self.n_heads
        lr = config.lr_scale * gates[:, :H]
        momentum = config.momentum_max * gates[:, H : 2 * H] if config.momentum else mx.zeros_like(lr)
        decay = gates[:, 2 * H :] if config.decay else mx.zeros_like(lr)
        return q, k, v, lr, momentum, decay

    def read(self, weights, q: mx.array) -> mx.array:
        """``M*(q)`` with given memory ``weights`` (no update), e.g. MAC's pre-segment read (eq. 21)."""
        return memory_read(weights, q, normalize_output=self.config.normalize_output)

    def scan(self, x: mx.array, cache: NeuralMemoryCache | None = None):
        """Raw memory reads ``y`` (B, H, T, head_dim) and the new ``MemoryState`` (cache updated)."""
        q, k, v, lr, momentum, decay = self.projections(x, cache)
        weights = tuple(w.astype(q.dtype) for w in self.memory_weights)
        y, state = memory_scan(
            weights, q, k, v, lr, momentum, decay, self.config.chunk_size,
            state=cache.memory if cache is not None else None,
            normalize_output=self.config.normalize_output, validate=False,
        )
        if cache is not None:
            cache.memory = state
        return y, state

    def __call__(self, x: mx.array, cache: NeuralMemoryCache | None = None) -> mx.array:
        """``x`` (B, T, dims) → (B, T, dims). With a cache, continues from (and updates) it."""
        _checks.float_array("x", x, ndim=3)
        if x.shape[-1] != self.dims:
            raise ValueError(f"x must have {self.dims} features, got shape {x.shape}")
        if x.shape[1] == 0:
            raise ValueError("x is empty: the sequence length is 0")
        y, _ = self.scan(x, cache)
        return self.output(y, x)

    def output(self, y: mx.array, x: mx.array) -> mx.array:
        """Per-head norm, gate and output projection of memory reads ``y`` (B, H, T, head_dim)."""
        B, _, T, _ = y.shape
        y = self.out_norm(y).transpose(0, 2, 1, 3).reshape(B, T, -1)
        if self.config.output_gate:
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
