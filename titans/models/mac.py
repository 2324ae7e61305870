"""Titans MAC, memory as context (§4.1, eq. 21-25; mask of Fig. 3a).

The sequence is cut into segments of ``segment_size`` tokens. For segment ``S``:

1. ``h = M*_{t-1}(q)``, ``q = S W_Q``: read the memory as it was before the segment (eq. 21), one
   retrieved token per segment token;
2. ``y = Attn([p ‖ h ‖ S])`` (eq. 22-23): attention inside the segment window, laid out as the
   paper writes it (RoPE positions ``0..N_p−1`` for ``p``, ``N_p + i`` for ``h_i``, ``N_p + C + i`` for
   ``S_i``), with ``p`` visible to all and ``h_i``, ``S_i`` visible to segment token ``j`` iff ``i ≤ j``
   (causal: ``h_i`` depends on token ``i``). The mask comes from each cached key's segment index, so
   it does not depend on the order keys arrive in while decoding. (An interleaved ``(h_i, S_i)``
   layout gives the same mask but other relative positions; tiny models then failed to learn even
   in-segment recall.)
3. the memory is updated **with the attention output** ``y`` (eq. 24); titans-pytorch stores the
   layer input instead, available as ``memory_input="layer_input"``;
4. ``o = y ⊗ M*_t(y)`` (eq. 25), where token ``t`` reads the memory after its own update (a read
   of the end-of-segment memory would leak later tokens), ``⊗`` as in MAG.

Open choices (named options): segment size C, per-token retrieval (eq. 21) rather than Fig. 3a's
fixed number of memory tokens, the form of ⊗, and what the memory stores.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import mlx.core as mx
import mlx.nn as nn

from titans.ops.memory import l2_normalize
from titans.cache import Cache, describe, restore
from titans.layers.neural_memory import NeuralMemoryCache
from titans.models.base import (
    Attention, LanguageModel, MemoryGate, SwiGLU, TitansArgs, make_memory,
)
from titans.ops.activations import silu
from titans.ops.attention import KVCache, masked_attention
from titans import _checks

MEMORY_INPUTS = ("attention_output", "layer_input")


@dataclass
class ModelArgs(TitansArgs):
    segment_size: int = 128
    memory_input: str = "attention_output"

    def __post_init__(self):
        super().__post_init__()
        _checks.positive_int("segment_size", self.segment_size)
        if self.memory_input not in MEMORY_INPUTS:
            raise ValueError(f"memory_input must be one of {MEMORY_INPUTS}, got {self.memory_input!r}")
        if self.segment_size % self.memory.chunk_size:
            raise ValueError(f"segment_size ({self.segment_size}) must be a multiple of memory.chunk_size "
                             f"({self.memory.chunk_size}): eq. 21 reads the memory at segment starts")


@dataclass
class MACCache(Cache):
    """Running memory, the memory weights at the current segment's start (for eq. 21's reads), the
    key/value cache of the current segment window, and the tokens seen. Bounded by one segment."""

    memory: NeuralMemoryCache = field(default_factory=NeuralMemoryCache)
    segment_weights: tuple | None = None
    attention: KVCache | None = None
    key_index: mx.array | None = None  # segment index of each cached key (-1: persistent)
    position: int = 0

    @property
    def state(self) -> dict:
        out = {"memory": self.memory.state}
        if self.segment_weights is not None:
            out["segment_weights"] = list(self.segment_weights)
        if self.attention is not None:
            out["attention"] = self.attention.state
        if self.key_index is not None:
            out["key_index"] = self.key_index
        return out

    @property
    def meta_state(self) -> dict:
        return {"position": self.position, "memory": describe(self.memory), "attention": describe(self.attention)}

    @classmethod
    def from_state(cls, state: dict, meta_state: dict) -> MACCache:
        weights = state.get("segment_weights")
        return cls(memory=restore(meta_state["memory"], state.get("memory")),
                   segment_weights=tuple(weights) if weights is not None else None,
                   attention=restore(meta_state["attention"], state.get("attention")),
                   key_index=state.get("key_index"), position=int(meta_state["position"]))

    @property
    def nbytes(self) -> int:
        window = self.attention.nbytes if self.attention is not None else 0
        rest = [*self.memory.arrays, *(self.segment_weights or ()),
                *([self.key_index] if self.key_index is not None else [])]
        return window + sum(a.nbytes for a in rest)


class Block(nn.Module):
    def __init__(self, args: ModelArgs):
        super().__init__()
        self.segment_size, self.memory_input = args.segment_size, args.memory_input
        self.n_persistent = args.n_persistent
        self.norm = nn.RMSNorm(args.dims, eps=args.norm_eps)
        if args.n_persistent:
            self.persistent = 0.02 * mx.random.normal((args.n_persistent, args.dims))
        self.read_proj = nn.Linear(args.dims, args.dims, bias=False)  # W_Q of eq. 21
        self.memory = make_memory(args)
        self.attention = Attention(args.dims, args.n_heads)
        self.gate = MemoryGate(args.dims, args.norm_eps)
        self.mlp_norm = nn.RMSNorm(args.dims, eps=args.norm_eps)
        self.mlp = SwiGLU(args.dims, args.mlp_hidden)

    def make_cache(self) -> MACCache:
        return MACCache()

    def _start_segment(self, cache: MACCache, batch: int, dtype):
        state = cache.memory.memory
        if state is not None:
            cache.segment_weights = state.weights
        else:
            cache.segment_weights = tuple(w.astype(dtype) for w in self.memory.memory_weights)
        cache.attention = KVCache()
        cache.key_index = mx.zeros((0,), dtype=mx.int32)
        if self.n_persistent:
            p = mx.broadcast_to(self.persistent.astype(dtype), (batch, *self.persistent.shape))
            self.attention(p, cache.attention)  # stores the persistent keys/values; outputs unused
            cache.key_index = mx.full((self.n_persistent,), -1, dtype=mx.int32)

    def _window_attention(self, h, x, cache: MACCache):
        """Attention of segment tokens ``x`` over ``[p ‖ h ‖ S]`` (eq. 22-23, Fig. 3a mask)."""
        attn, C, n_p = self.attention, self.segment_size, self.n_persistent
        first = cache.position % C  # segment index of x[:, 0]
        q = attn.rope(attn.heads(attn.q_proj(x)), offset=n_p + C + first)
        k_h = attn.rope(attn.heads(attn.k_proj(h)), offset=n_p + first)
        k_x = attn.rope(attn.heads(attn.k_proj(x)), offset=n_p + C + first)
        values = attn.heads(attn.v_proj(mx.concatenate([h, x], axis=1)))
        k, v = cache.attention.update_and_fetch(mx.concatenate([k_h, k_x], axis=2), values)
        index = first + mx.arange(x.shape[1], dtype=mx.int32)
        cache.key_index = mx.concatenate([cache.key_index, index, index])
        mask = cache.key_index[None, :] <= index[:, None]
        out = masked_attention(q, k, v, mask)
        return attn.o_proj(attn.merge(out))

    def _segment(self, x, cache: MACCache):
        """Tokens ``x`` (B, n, d) that lie inside one segment."""
        B, n, _ = x.shape
        if cache.position % self.segment_size == 0:
            self._start_segment(cache, B, x.dtype)
        q = l2_normalize(self.memory.split_heads(silu(self.read_proj(x))))
        h = self.memory.output(self.memory.read(cache.segment_weights, q).astype(x.dtype), x)
        y = self._window_attention(h, x, cache)
        m = self.memory(y if self.memory_input == "attention_output" else x, cache.memory)
        cache.position += n
        return self.gate(y, m)

    def __call__(self, x, cache: MACCache | None = None):
        if cache is None:
            cache = self.make_cache()
        h = self.norm(x)
        outputs, start, T = [], 0, x.shape[1]
        while start < T:
            n = min(T - start, self.segment_size - cache.position % self.segment_size)
            outputs.append(self._segment(h[:, start : start + n], cache))
            start += n
        x = x + (outputs[0] if len(outputs) == 1 else mx.concatenate(outputs, axis=1))
        return x + self.mlp(self.mlp_norm(x))


class Model(LanguageModel):
    model_type = "mac"

    def __init__(self, args: ModelArgs):
        super().__init__(args, [Block(args) for _ in range(args.n_layers)])
