"""Titans MAL, memory as a layer (§4.3, eq. 29-31; Fig. 5).

``x̃ = [p ‖ x]``, ``y = M(x̃)``, ``o = SW-Attn(y)``: a memory sublayer followed by a sliding-window
attention sublayer (the persistent prefix stays visible to the attention), each pre-norm residual,
then the SwiGLU MLP. The persistent positions are dropped after the attention.
"""

from __future__ import annotations

from dataclasses import dataclass

import mlx.nn as nn

from titans.models.base import (
    Attention, BlockCache, LanguageModel, PersistentTokens, SwiGLU, TitansArgs, WindowArgs, make_memory,
)


@dataclass
class ModelArgs(WindowArgs, TitansArgs):
    pass


class Block(nn.Module):
    def __init__(self, args: ModelArgs):
        super().__init__()
        self.persistent = PersistentTokens(args.n_persistent, args.dims)
        self.memory_norm = nn.RMSNorm(args.dims, eps=args.norm_eps)
        self.memory = make_memory(args)
        self.attention_norm = nn.RMSNorm(args.dims, eps=args.norm_eps)
        self.attention = Attention(args.dims, args.n_heads, window=args.window, n_prefix=args.n_persistent)
        self.mlp_norm = nn.RMSNorm(args.dims, eps=args.norm_eps)
        self.mlp = SwiGLU(args.dims, args.mlp_hidden)

    def make_cache(self) -> BlockCache:
        return BlockCache(attention=self.attention.make_cache(), memory=self.memory.make_cache())

    def __call__(self, x, cache: BlockCache | None = None):
        h, n_p = self.persistent.prepend(x, cache is None or cache.offset == 0)
        h = h + self.memory(self.memory_norm(h), cache.memory if cache else None)
        h = h + self.attention(self.attention_norm(h), cache.attention if cache else None)
        if cache is not None:
            cache.offset += h.shape[1]
        x = h[:, n_p:]
        return x + self.mlp(self.mlp_norm(x))


class Model(LanguageModel):
    model_type = "mal"

    def __init__(self, args: ModelArgs):
        super().__init__(args, [Block(args) for _ in range(args.n_layers)])
