"""Titans LMM: the neural memory as the token mixer, no attention (§4.3 "Memory Without Attention").

Block: ``x + Memory([p ‖ RMSNorm(x)])`` (persistent tokens ``p`` enter once, at the start), then
``x + SwiGLU(RMSNorm(x))``. The memory layer carries the §4.4 details (short conv, SiLU, ℓ2-normalized
q/k, output norm and gate).
"""

from __future__ import annotations

from dataclasses import dataclass

import mlx.nn as nn

from titans.models.base import BlockCache, LanguageModel, PersistentTokens, SwiGLU, TitansArgs, make_memory


@dataclass
class ModelArgs(TitansArgs):
    pass


class Block(nn.Module):
    def __init__(self, args: ModelArgs):
        super().__init__()
        self.memory_norm = nn.RMSNorm(args.dims, eps=args.norm_eps)
        self.persistent = PersistentTokens(args.n_persistent, args.dims)
        self.memory = make_memory(args)
        self.mlp_norm = nn.RMSNorm(args.dims, eps=args.norm_eps)
        self.mlp = SwiGLU(args.dims, args.mlp_hidden)

    def make_cache(self) -> BlockCache:
        return BlockCache(memory=self.memory.make_cache())

    def __call__(self, x, cache: BlockCache | None = None):
        h, n_p = self.persistent.prepend(self.memory_norm(x), cache is None or cache.offset == 0)
        x = x + self.memory(h, cache.memory if cache else None)[:, n_p:]
        if cache is not None:
            cache.offset += h.shape[1]
        return x + self.mlp(self.mlp_norm(x))


class Model(LanguageModel):
    model_type = "lmm"

    def __init__(self, args: ModelArgs):
        super().__init__(args, [Block(args) for _ in range(args.n_layers)])
