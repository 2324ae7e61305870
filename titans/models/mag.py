"""Titans MAG, memory as a gate (§4.2, eq. 26-28; Fig. 3b).

``x̃ = [p ‖ x]``, ``y = SW-Attn*(x̃)`` (sliding window, the persistent prefix always visible) and
the memory branch ``M(x̃)`` over the unsegmented input; ``o = y ⊗ M(x̃)``. The paper: "we normalize
y and M(x̃) using learnable vector-valued weights, followed by a non-linearity σ". Read here as
``o = RMSNorm_γ1(y) ⊙ σ(RMSNorm_γ2(M(x̃)))`` with σ = sigmoid (the form is otherwise unspecified).
"""

from __future__ import annotations

from dataclasses import dataclass

import mlx.nn as nn

from titans.models.base import (
    Attention, BlockCache, LanguageModel, MemoryGate, PersistentTokens, SwiGLU, TitansArgs, WindowArgs, make_memory,
)


@dataclass
class ModelArgs(WindowArgs, TitansArgs):
    pass


class Block(nn.Module):
    def __init__(self, args: ModelArgs):
        super().__init__()
        self.mixer_norm = nn.RMSNorm(args.dims, eps=args.norm_eps)
        self.persistent = PersistentTokens(args.n_persistent, args.dims)
        self.attention = Attention(args.dims, args.n_heads, window=args.window, n_prefix=args.n_persistent)
        self.memory = make_memory(args)
        self.gate = MemoryGate(args.dims, args.norm_eps)
        self.mlp_norm = nn.RMSNorm(args.dims, eps=args.norm_eps)
        self.mlp = SwiGLU(args.dims, args.mlp_hidden)

    def make_cache(self) -> BlockCache:
        return BlockCache(attention=self.attention.make_cache(), memory=self.memory.make_cache())

    def __call__(self, x, cache: BlockCache | None = None):
        h, n_p = self.persistent.prepend(self.mixer_norm(x), cache is None or cache.offset == 0)
        y = self.attention(h, cache.attention if cache else None)
        m = self.memory(h, cache.memory if cache else None)
        o = self.gate(y, m)
        if cache is not None:
            cache.offset += h.shape[1]
        x = x + o[:, n_p:]
        return x + self.mlp(self.mlp_norm(x))


class Model(LanguageModel):
    model_type = "mag"

    def __init__(self, args: ModelArgs):
        super().__init__(args, [Block(args) for _ in range(args.n_layers)])
