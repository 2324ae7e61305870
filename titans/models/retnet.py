"""RetNet (Sun et al. 2023): multi-scale retention, ``γ_h = 1 − 2^(−5−h)``, interleaved rotation of
q and k, keys scaled by ``d_k^−½``, a per-head RMS norm (no affine), a swish gate and no biases;
values and gate are ``value_factor × dims`` wide (torchscale / fla layout)."""

from __future__ import annotations

from dataclasses import dataclass

import mlx.core as mx
import mlx.nn as nn

from titans import _checks
from titans.cache import Cache
from titans.models.base import BaseModelArgs, LanguageModel, SwiGLU
from titans.ops.activations import silu
from titans.ops.retention import retention_chunkwise, retention_parallel, retention_recurrent, retnet_gammas


@dataclass
class ModelArgs(BaseModelArgs):
    value_factor: int = 2
    chunk_size: int = 64

    def __post_init__(self):
        super().__post_init__()
        _checks.positive_int("value_factor", self.value_factor)
        _checks.positive_int("chunk_size", self.chunk_size)


@dataclass
class RetentionCache(Cache):
    """The (B, H, d_k, d_v) retention matrix and the tokens seen (for the rotation offset)."""

    matrix: mx.array | None = None
    offset: int = 0

    @property
    def state(self) -> dict:
        return {} if self.matrix is None else {"matrix": self.matrix}

    @property
    def meta_state(self) -> dict:
        return {"offset": self.offset}

    @classmethod
    def from_state(cls, state: dict, meta_state: dict) -> RetentionCache:
        return cls(matrix=state.get("matrix"), offset=int(meta_state.get("offset", 0)))


class MultiScaleRetention(nn.Module):
    def __init__(self, args: ModelArgs):
        super().__init__()
        d, dv = args.dims, args.value_factor * args.dims
        self.n_heads, self.chunk_size, self.eps = args.n_heads, args.chunk_size, args.norm_eps
        self.q_proj = nn.Linear(d, d, bias=False)
        self.k_proj = nn.Linear(d, d, bias=False)
        self.v_proj = nn.Linear(d, dv, bias=False)
        self.g_proj = nn.Linear(d, dv, bias=False)
        self.o_proj = nn.Linear(dv, d, bias=False)
        self.rope = nn.RoPE(d // args.n_heads, traditional=True)

    def heads(self, x):
        B, T, _ = x.shape
        return x.reshape(B, T, self.n_heads, -1).transpose(0, 2, 1, 3)

    def __call__(self, x, cache: RetentionCache | None = None):
        B, T, _ = x.shape
        offset = cache.offset if cache is not None else 0
        q = self.rope(self.heads(self.q_proj(x)), offset=offset)
        k = self.rope(self.heads(self.k_proj(x)), offset=offset)
        k = k * (k.shape[-1] ** -0.5)
        v = self.heads(self.v_proj(x))
        state = cache.matrix if cache is not None else None
        gamma = retnet_gammas(self.n_heads, mx.float64 if x.dtype == mx.float64 else mx.float32)
        if T == 1:
            o, state = retention_recurrent(q, k, v, gamma, state)
        elif T <= self.chunk_size:
            o, state = retention_parallel(q, k, v, gamma, state)
        else:
            o, state = retention_chunkwise(q, k, v, gamma, self.chunk_size, state)
        if cache is not None:
            cache.matrix, cache.offset = state, offset + T
        o = o * mx.rsqrt(mx.mean(mx.square(o), axis=-1, keepdims=True) + self.eps)  # per-head norm
        o = o.transpose(0, 2, 1, 3).reshape(B, T, -1)
        return self.o_proj(silu(self.g_proj(x)) * o)


class Block(nn.Module):
    def __init__(self, args: ModelArgs):
        super().__init__()
        self.retention_norm = nn.RMSNorm(args.dims, eps=args.norm_eps)
        self.retention = MultiScaleRetention(args)
        self.mlp_norm = nn.RMSNorm(args.dims, eps=args.norm_eps)
        self.mlp = SwiGLU(args.dims, args.mlp_hidden)

    def make_cache(self) -> RetentionCache:
        return RetentionCache()

    def __call__(self, x, cache=None):
        x = x + self.retention(self.retention_norm(x), cache)
        return x + self.mlp(self.mlp_norm(x))


class Model(LanguageModel):
    model_type = "retnet"

    def __init__(self, args: ModelArgs):
        super().__init__(args, [Block(args) for _ in range(args.n_layers)])
