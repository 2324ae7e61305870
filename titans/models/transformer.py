"""Transformer++ (the Mamba paper's strong baseline): RoPE, SwiGLU, RMSNorm, no biases; full causal
attention, or sliding-window attention when ``window`` is set. Long inputs use blockwise attention
with an online softmax (O(T·block) memory); decoding uses a growing (or window-bounded) KV cache."""

from __future__ import annotations

from dataclasses import dataclass

import mlx.nn as nn

from titans.models.base import Attention, BaseModelArgs, LanguageModel, SwiGLU, WindowArgs


@dataclass
class ModelArgs(WindowArgs, BaseModelArgs):
    window: int | None = None
    rope_theta: float = 10000.0


class Block(nn.Module):
    def __init__(self, args: ModelArgs):
        super().__init__()
        self.attention_norm = nn.RMSNorm(args.dims, eps=args.norm_eps)
        self.attention = Attention(args.dims, args.n_heads, window=args.window, rope_theta=args.rope_theta)
        self.mlp_norm = nn.RMSNorm(args.dims, eps=args.norm_eps)
        self.mlp = SwiGLU(args.dims, args.mlp_hidden)

    def make_cache(self):
        return self.attention.make_cache()

    def __call__(self, x, cache=None):
        x = x + self.attention(self.attention_norm(x), cache)
        return x + self.mlp(self.mlp_norm(x))


class Model(LanguageModel):
    model_type = "transformer"

    def __init__(self, args: ModelArgs):
        super().__init__(args, [Block(args) for _ in range(args.n_layers)])
