"""Pieces shared by every model: arguments, SwiGLU, attention with RoPE and caches, persistent
tokens, and the language-model shell (embedding → blocks → norm → head), mlx-lm style.

Every model file defines a ``ModelArgs`` dataclass (a subclass of ``BaseModelArgs``) and a
``Model(LanguageModel)`` whose blocks take ``(x, cache)``; ``Model.make_cache()`` returns one cache
per block. Recurrent caches have a size independent of the context length; attention caches grow
(full attention) or stay bounded by the window (sliding-window attention).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten

from titans import _checks
from titans.cache import Cache, describe, restore
from titans.layers.neural_memory import MemoryConfig, NeuralMemory
from titans.ops.activations import sigmoid, silu
from titans.ops.attention import KVCache, SlidingWindowKVCache, attention, blockwise_attention


@dataclass
class BaseModelArgs:
    """Sizes common to every model. ``mlp_hidden`` is the SwiGLU width; the registry sets it per
    model so that models of one named size have matching parameter counts."""

    vocab_size: int = 512
    dims: int = 64
    n_layers: int = 2
    n_heads: int = 2
    mlp_hidden: int = 176
    norm_eps: float = 1e-6

    def __post_init__(self):
        for name in ("vocab_size", "dims", "n_layers", "n_heads", "mlp_hidden"):
            _checks.positive_int(name, getattr(self, name))
        if self.dims % self.n_heads:
            raise ValueError(f"dims ({self.dims}) must be divisible by n_heads ({self.n_heads})")
        if not (self.norm_eps > 0):
            raise ValueError(f"norm_eps must be positive, got {self.norm_eps}")

    @property
    def head_dim(self) -> int:
        return self.dims // self.n_heads

    @classmethod
    def from_dict(cls, params: dict):
        """Build from a dict, ignoring unknown keys (mlx-lm convention)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in params.items() if k in names})


@dataclass
class WindowArgs:
    """Mixin: a sliding attention window (``None`` = full causal attention)."""

    window: int | None = 512

    def __post_init__(self):
        super().__post_init__()
        if self.window is not None:
            _checks.positive_int("window", self.window)


class SwiGLU(nn.Module):
    """``down(silu(gate(x)) * up(x))``, bias-free (Transformer++ MLP)."""

    def __init__(self, dims: int, hidden: int):
        super().__init__()
        self.gate_proj = nn.Linear(dims, hidden, bias=False)
        self.up_proj = nn.Linear(dims, hidden, bias=False)
        self.down_proj = nn.Linear(hidden, dims, bias=False)

    def __call__(self, x):
        return self.down_proj(silu(self.gate_proj(x)) * self.up_proj(x))


# Above this many keys the forward uses the blockwise (online-softmax) path: on CPU, MLX's own
# attention materializes the (T, T) scores (1.1 GiB at 8k per head group).
BLOCKWISE_FROM = 1024


def attend(q, k, v, *, window=None, n_prefix=0):
    """Causal attention, plain for short inputs and blockwise (O(T·block) memory) for long ones."""
    if k.shape[2] > BLOCKWISE_FROM:
        return blockwise_attention(q, k, v, window=window, n_prefix=n_prefix)
    return attention(q, k, v, window=window, n_prefix=n_prefix)


class Attention(nn.Module):
    """Multi-head causal self-attention with RoPE, optional sliding window and a persistent prefix.

    ``n_prefix`` leading positions (persistent tokens, §3.3) stay visible to every query even
    outside the window (Fig. 3b).
    """

    def __init__(self, dims: int, n_heads: int, *, window: int | None = None, n_prefix: int = 0,
                 rope_theta: float = 10000.0):
        super().__init__()
        self.n_heads, self.head_dim = n_heads, dims // n_heads
        self.window, self.n_prefix = window, n_prefix
        self.q_proj = nn.Linear(dims, dims, bias=False)
        self.k_proj = nn.Linear(dims, dims, bias=False)
        self.v_proj = nn.Linear(dims, dims, bias=False)
        self.o_proj = nn.Linear(dims, dims, bias=False)
        self.rope = nn.RoPE(self.head_dim, traditional=False, base=rope_theta)

    def make_cache(self):
        if self.window is None:
            return KVCache()
        return SlidingWindowKVCache(self.window, self.n_prefix)

    def heads(self, x):
        B, T, _ = x.shape
        return x.reshape(B, T, self.n_heads, self.head_dim).transpose(0, 2, 1, 3)

    def merge(self, x):
        B, _, T, _ = x.shape
        return x.transpose(0, 2, 1, 3).reshape(B, T, -1)

    def __call__(self, x, cache=None):
        offset = cache.offset if cache is not None else 0
        q = self.rope(self.heads(self.q_proj(x)), offset=offset)
        k = self.rope(self.heads(self.k_proj(x)), offset=offset)
        v = self.heads(self.v_proj(x))
        if cache is not None:
            k, v = cache.update_and_fetch(k, v)
        out = attend(q, k, v, window=self.window, n_prefix=self.n_prefix)
        return self.o_proj(self.merge(out))


class PersistentTokens(nn.Module):
    """``N_p`` learnable, input-independent tokens prepended to a layer's input (§3.3, eq. 19).

    They enter once, at the start of the sequence (for a cached decode: on the first call), and
    their outputs are dropped. ``n_tokens = 0`` switches them off (the Table 5 ablation).
    """

    def __init__(self, n_tokens: int, dims: int):
        super().__init__()
        self.n_tokens = n_tokens
        if n_tokens:
            self.tokens = 0.02 * mx.random.normal((n_tokens, dims))

    def prepend(self, x, starting: bool):
        if not (self.n_tokens and starting):
            return x, 0
        p = mx.broadcast_to(self.tokens.astype(x.dtype), (x.shape[0], *self.tokens.shape))
        return mx.concatenate([p, x], axis=1), self.n_tokens


class LanguageModel(nn.Module):
    """Embedding → blocks → RMSNorm → untied head; ``__call__(tokens, cache=None)`` → logits."""

    model_type = "base"

    def __init__(self, args: BaseModelArgs, blocks: list):
        super().__init__()
        self.args = args
        self.embed_tokens = nn.Embedding(args.vocab_size, args.dims)
        self.layers = blocks
        self.norm = nn.RMSNorm(args.dims, eps=args.norm_eps)
        self.lm_head = nn.Linear(args.dims, args.vocab_size, bias=False)

    def make_cache(self) -> list:
        return [layer.make_cache() for layer in self.layers]

    def __call__(self, tokens: mx.array, cache: list | None = None) -> mx.array:
        _checks.token_shape("tokens", tokens)  # ids are range-checked where data enters (no sync here)
        if cache is not None and (not isinstance(cache, list) or len(cache) != len(self.layers)):
            raise ValueError(f"cache must be a list of {len(self.layers)} layer caches from make_cache()")
        h = self.embed_tokens(tokens)
        for i, layer in enumerate(self.layers):
            h = layer(h, cache[i] if cache is not None else None)
        return self.lm_head(self.norm(h))

    def num_parameters(self, embeddings: bool = True) -> int:
        total = sum(p.size for _, p in tree_flatten(self.parameters()))
        if not embeddings:
            total -= self.embed_tokens.weight.size + self.lm_head.weight.size
        return total


def cache_nbytes(cache) -> int:
    """Bytes held by a model cache (a list of layer caches, each with ``nbytes``)."""
    return sum(c.nbytes for c in cache)


def cache_arrays(cache) -> list:
    """Every array of a model cache (a list of layer caches) or of one layer cache, e.g. for ``mx.eval``."""
    return cache.arrays if isinstance(cache, Cache) else [a for c in cache for a in c.arrays]


@dataclass
class TitansArgs(BaseModelArgs):
    """Options of the Titans variants: the neural memory (``memory``, a ``MemoryConfig``; a dict of
    overrides is accepted) and the number of persistent tokens ``N_p`` (§3.3; 0 switches them off)."""

    n_persistent: int = 4
    memory: MemoryConfig = field(default_factory=MemoryConfig)

    def __post_init__(self):
        super().__post_init__()
        _checks.nonnegative_int("n_persistent", self.n_persistent)
        self.memory = MemoryConfig.from_dict(self.memory)


def make_memory(args: TitansArgs) -> NeuralMemory:
    """The ``NeuralMemory`` layer configured from ``args``."""
    return NeuralMemory(args.dims, n_heads=args.n_heads, config=args.memory)


@dataclass
class BlockCache(Cache):
    """Caches of one block's mixers (``None`` for a mixer it lacks) and the positions seen so far
    (persistent tokens included); ``offset == 0`` means the persistent tokens are still to come."""

    attention: Cache | None = None
    memory: Cache | None = None
    offset: int = 0

    @property
    def state(self) -> dict:
        return {name: c.state for name, c in (("attention", self.attention), ("memory", self.memory)) if c is not None}

    @property
    def meta_state(self) -> dict:
        return {"offset": self.offset, "attention": describe(self.attention), "memory": describe(self.memory)}

    @classmethod
    def from_state(cls, state: dict, meta_state: dict) -> BlockCache:
        return cls(attention=restore(meta_state["attention"], state.get("attention")),
                   memory=restore(meta_state["memory"], state.get("memory")), offset=int(meta_state["offset"]))

    @property
    def nbytes(self) -> int:
        return sum(c.nbytes for c in (self.attention, self.memory) if c is not None)


class MemoryGate(nn.Module):
    """``y ⊗ m`` of MAG (eq. 28) and MAC (eq. 25): ``RMSNorm_γ1(y) ⊙ σ(RMSNorm_γ2(m))``, the paper's
    "normalize y and M(x̃) using learnable vector-valued weights, followed by a non-linearity σ"."""

    def __init__(self, dims: int, eps: float):
        super().__init__()
        self.y_norm = nn.RMSNorm(dims, eps=eps)
        self.memory_norm = nn.RMSNorm(dims, eps=eps)

    def __call__(self, y, m):
        return self.y_norm(y) * sigmoid(self.memory_norm(m))
