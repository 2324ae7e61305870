"""Causal softmax attention with optional sliding window and persistent (prefix) keys.

Layout follows mlx-lm: ``q`` is (B, H, Tq, D), ``k`` is (B, H, Tk, D), ``v`` is (B, H, Tk, Dv).
Queries are bottom-right aligned: query ``i`` sits at absolute position ``p = Tk - Tq + i``.
Key ``j`` is visible to the query at ``p`` iff

    j <= p   and   (window is None  or  p - j < window  or  j < n_prefix)

``n_prefix`` keys at the start are persistent: always visible (Titans Sec. 3.3 and Fig. 3b: the
persistent memory tokens of MAG/MAL; MAC uses the same rule for its persistent + memory tokens).

* :func:`attention` is the reference: it materializes all scores and takes a float32 softmax.
* :func:`blockwise_attention` computes the same thing with an online softmax over key blocks
  (Milakov & Gimelshein 2018; Dao et al. 2022, Alg. 1), visiting only the key blocks that can be
  visible, so its peak memory is O(Tq * block) instead of O(Tq * Tk).
* :class:`KVCache` and :class:`SlidingWindowKVCache` hold keys/values for token-by-token decoding.

Half-precision inputs are computed in float32 and float64 inputs in float64; the result has the
input dtype.
"""

from __future__ import annotations

import math
import numbers
from functools import partial

import mlx.core as mx

from titans import _checks
from titans._lazy import eval_unless_traced
from titans.cache import Cache
from titans.ops.activations import exp, softmax

__all__ = [
    "KVCache",
    "SlidingWindowKVCache",
    "attention",
    "attention_mask",
    "blockwise_attention",
    "masked_attention",
]


# --------------------------------------------------------------------------------------------
# validation helpers


def _optional_window(window) -> int | None:
    return None if window is None else _checks.positive_int("window", window)


def _optional_scale(scale, head_dim: int) -> float:
    if scale is None:
        return head_dim**-0.5
    if isinstance(scale, bool) or not isinstance(scale, numbers.Real):
        raise TypeError(f"scale must be a positive float or None, got {type(scale).__name__}")
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive finite float, got {scale}")
    return float(scale)


def _heads(name: str, x) -> mx.array:
    """A non-empty (B, H, T, D) floating array."""
    _checks.float_array(name, x, ndim=4)
    if 0 in x.shape:
        raise ValueError(f"{name} is empty: shape {tuple(x.shape)} (B, H, T, D must all be > 0)")
    return x


def _check_qkv(q, k, v) -> None:
    _heads("q", q)
    _heads("k", k)
    _heads("v", v)
    _checks.same_dtype(q=q, k=k, v=v)
    if q.shape[:2] != k.shape[:2] or q.shape[3] != k.shape[3]:
        raise ValueError(
            f"q and k must share (B, H, ., D): q {tuple(q.shape)}, k {tuple(k.shape)}"
        )
    if v.shape[:3] != k.shape[:3]:
        raise ValueError(
            f"v must share (B, H, Tk) with k: k {tuple(k.shape)}, v {tuple(v.shape)}"
        )
    if q.shape[2] > k.shape[2]:
        raise ValueError(
            f"q has more positions than k ({q.shape[2]} > {k.shape[2]}); bottom-right aligned "
            "queries need Tq <= Tk"
        )


# --------------------------------------------------------------------------------------------
# mask


def _visible(query_positions: mx.array, key_positions: mx.array, window, n_prefix) -> mx.array:
    """Boolean (len(query_positions), len(key_positions)) visibility from absolute positions."""
    p = query_positions[:, None]
    j = key_positions[None, :]
    visible = j <= p
    if window is not None:
        in_window = (p - j) < window
        if n_prefix > 0:
            in_window = in_window | (j < n_prefix)
        visible = visible & in_window
    return visible


def attention_mask(
    n_queries: int,
    n_keys: int,
    *,
    window: int | None = None,
    n_prefix: int = 0,
    query_offset: int | None = None,
) -> mx.array:
    """Boolean (n_queries, n_keys) mask, True where key j is visible to query i.

    Query i sits at absolute position ``query_offset + i``; the default offset
    ``n_keys - n_queries`` is the bottom-right alignment used by :func:`attention`. Key j is
    visible iff ``j <= p and (window is None or p - j < window or j < n_prefix)``.
    """
    n_queries = _checks.positive_int("n_queries", n_queries)
    n_keys = _checks.positive_int("n_keys", n_keys)
    window = _optional_window(window)
    n_prefix = _checks.nonnegative_int("n_prefix", n_prefix)
    if query_offset is None:
        query_offset = n_keys - n_queries
    elif isinstance(query_offset, bool) or not isinstance(query_offset, numbers.Integral):
        raise TypeError(f"query_offset must be an int or None, got {type(query_offset).__name__}")
    positions = mx.arange(n_queries) + int(query_offset)
    return _visible(positions, mx.arange(n_keys), window, n_prefix)


# --------------------------------------------------------------------------------------------
# reference


def attention(q, k, v, *, scale=None, window=None, n_prefix=0) -> mx.array:
    """Reference attention ``softmax(q k^T * scale + mask) v`` (Vaswani et al. 2017, Eq. 1).

    Materializes the (B, H, Tq, Tk) scores; the softmax runs in float32 (float64 for float64
    input). Returns (B, H, Tq, Dv) in the input dtype.
    """
    _check_qkv(q, k, v)
    scale = _optional_scale(scale, q.shape[-1])
    window = _optional_window(window)
    n_prefix = _checks.nonnegative_int("n_prefix", n_prefix)
    dtype = _checks.compute_dtype(q.dtype)
    n_queries, n_keys = q.shape[2], k.shape[2]

    mask = _visible(mx.arange(n_keys - n_queries, n_keys), mx.arange(n_keys), window, n_prefix)
    return _masked_attention(q, k, v, mask, scale, dtype)


def masked_attention(q, k, v, mask, *, scale=None) -> mx.array:
    """``softmax(q k^T * scale, masked) v`` for an arbitrary boolean ``mask`` (Tq, Tk) or one that
    broadcasts to (B, H, Tq, Tk); True = visible. Every query needs at least one visible key.
    Same numerics as :func:`attention` (which builds its mask from positions)."""
    _check_qkv(q, k, v)
    scale = _optional_scale(scale, q.shape[-1])
    if not isinstance(mask, mx.array) or mask.dtype != mx.bool_:
        raise TypeError(f"mask must be a boolean mx.array, got {getattr(mask, 'dtype', type(mask).__name__)}")
    try:
        mx.broadcast_shapes(mask.shape, (*q.shape[:3], k.shape[2]))
    except ValueError:
        raise ValueError(f"mask of shape {tuple(mask.shape)} does not broadcast to the scores "
                         f"{(*q.shape[:3], k.shape[2])}") from None
    return _masked_attention(q, k, v, mask, scale, _checks.compute_dtype(q.dtype))


def _mask_bias(mask: mx.array, dtype) -> mx.array:
    """0 where visible, −inf elsewhere: added to the scores, which is ~20x cheaper on the CPU than
    ``mx.where`` over the (B, H, Tq, Tk) scores (the mask itself has no batch or head axes)."""
    return mx.where(mask, mx.array(0, dtype), mx.array(-math.inf, dtype))


def _masked_attention(q, k, v, mask, scale, dtype):
    scores = (q.astype(dtype) * scale) @ k.astype(dtype).swapaxes(-1, -2) + _mask_bias(mask, dtype)
    probs = softmax(scores, axis=-1)
    return (probs @ v.astype(dtype)).astype(q.dtype)


# --------------------------------------------------------------------------------------------
# blockwise (online softmax)


def _key_chunks(q_first: int, q_last: int, window, n_prefix: int, block_size: int):
    """Key ranges ``(start, stop, needs_mask)`` visible to queries at positions [q_first, q_last].

    The first range ends at ``q_last + 1`` and is at least as long as the query block, so every
    query sees at least one key in it (its own position): the running max is finite after it.
    """
    stop = q_last + 1
    low = 0 if window is None else max(0, q_first - window + 1)
    chunks = []
    while stop > low:
        start = max(low, stop - block_size)
        causal_full = stop - 1 <= q_first
        window_full = window is None or q_last - start < window
        chunks.append((start, stop, not (causal_full and window_full)))
        stop = start
    # persistent keys that fell out of the window: always visible to every query of the block
    prefix_stop = min(n_prefix, low)
    for start in range(0, prefix_stop, block_size):
        chunks.append((start, min(start + block_size, prefix_stop), False))
    return chunks


def _attention_block(q_block, k, v, *, q_first, window, n_prefix, block_size):
    """Online softmax of one query block (already scaled) over its visible key chunks."""
    n_rows = q_block.shape[2]
    q_positions = mx.arange(q_first, q_first + n_rows)
    running_max = row_sum = acc = None
    for start, stop, needs_mask in _key_chunks(
        q_first, q_first + n_rows - 1, window, n_prefix, block_size
    ):
        scores = q_block @ k[:, :, start:stop].swapaxes(-1, -2)
        if needs_mask:
            mask = _visible(q_positions, mx.arange(start, stop), window, n_prefix)
            scores = scores + _mask_bias(mask, scores.dtype)
        # the result does not depend on the shift, so no gradient needs to flow through it
        block_max = mx.stop_gradient(mx.max(scores, axis=-1, keepdims=True))
        if running_max is None:
            new_max = block_max
        else:
            new_max = mx.maximum(running_max, block_max)
        probs = exp(scores - new_max)
        block_out = probs @ v[:, :, start:stop]
        block_sum = mx.sum(probs, axis=-1, keepdims=True)
        if running_max is None:
            row_sum, acc = block_sum, block_out
        else:
            correction = exp(running_max - new_max)
            row_sum = row_sum * correction + block_sum
            acc = acc * correction + block_out
        running_max = new_max
    return acc / row_sum


def blockwise_attention(
    q,
    k,
    v,
    *,
    scale=None,
    window=None,
    n_prefix=0,
    block_size=512,
    checkpoint: bool = False,
) -> mx.array:
    """Same result as :func:`attention`, computed with an online softmax over key blocks.

    For each block of ``block_size`` queries, only the keys that can be visible are visited
    (the causal/window span plus the persistent prefix) in chunks of ``block_size``, keeping a
    running max ``m``, running sum ``l`` and unnormalized output ``acc``:

        m' = max(m, rowmax(S)),  l' = l e^(m - m') + rowsum(e^(S - m')),
        acc' = acc e^(m - m') + e^(S - m') V,    out = acc / l

    Each query block is evaluated before the next one (skipped inside ``mx.compile``/``mx.vmap``)
    so peak forward memory is O(Tq * block_size). Differentiable; with ``checkpoint=True`` each
    query block is recomputed in the backward pass, so training memory stays O(Tq * block_size)
    too.
    """
    _check_qkv(q, k, v)
    scale = _optional_scale(scale, q.shape[-1])
    window = _optional_window(window)
    n_prefix = _checks.nonnegative_int("n_prefix", n_prefix)
    block_size = _checks.positive_int("block_size", block_size)
    dtype = _checks.compute_dtype(q.dtype)
    n_queries, n_keys = q.shape[2], k.shape[2]
    offset = n_keys - n_queries

    q_scaled = q.astype(dtype) * scale
    k_c, v_c = k.astype(dtype), v.astype(dtype)

    evaluate = True
    outputs = []
    for begin in range(0, n_queries, block_size):
        end = min(begin + block_size, n_queries)
        block_fn = partial(
            _attention_block,
            q_first=offset + begin,
            window=window,
            n_prefix=n_prefix,
            block_size=block_size,
        )
        if checkpoint:
            block_fn = mx.checkpoint(block_fn)
        # keys after the block's last query are never visible
        visible = offset + end
        out = block_fn(q_scaled[:, :, begin:end], k_c[:, :, :visible], v_c[:, :, :visible])
        evaluate = evaluate and eval_unless_traced(out)  # traced: keep one lazy graph
        outputs.append(out)
    out = outputs[0] if len(outputs) == 1 else mx.concatenate(outputs, axis=2)
    return out.astype(q.dtype)


# --------------------------------------------------------------------------------------------
# caches


def _check_kv_update(keys, values, reference_keys, reference_values) -> None:
    _heads("keys", keys)
    _heads("values", values)
    _checks.same_dtype(keys=keys, values=values)
    if keys.shape[:3] != values.shape[:3]:
        raise ValueError(
            f"keys and values must share (B, H, T): keys {tuple(keys.shape)}, "
            f"values {tuple(values.shape)}"
        )
    if reference_keys is not None:
        ok = (
            keys.shape[:2] == reference_keys.shape[:2]
            and keys.shape[3] == reference_keys.shape[3]
            and values.shape[3] == reference_values.shape[3]
            and keys.dtype == reference_keys.dtype
        )
        if not ok:
            raise ValueError(
                "keys/values do not match the cache: cache holds (B, H, ., Dk/Dv) = "
                f"{tuple(reference_keys.shape[:2])} {reference_keys.shape[3]}/"
                f"{reference_values.shape[3]} {reference_keys.dtype}, got keys "
                f"{tuple(keys.shape)} values {tuple(values.shape)} {keys.dtype}"
            )


class KVCache(Cache):
    """Growing key/value cache for decoding (mlx-lm ``KVCache`` semantics).

    ``update_and_fetch(keys, values)`` appends (B, H, T, D) keys/values and returns all of them so
    far; storage grows in steps of ``step`` positions. ``offset`` counts stored positions; ``state``
    holds the stored positions, ``nbytes`` the allocated storage.
    """

    step = 256

    def __init__(self):
        self.keys: mx.array | None = None
        self.values: mx.array | None = None
        self.offset = 0

    def update_and_fetch(self, keys: mx.array, values: mx.array) -> tuple[mx.array, mx.array]:
        _check_kv_update(keys, values, self.keys, self.values)
        previous = self.offset
        n_new = keys.shape[2]
        if self.keys is None or previous + n_new > self.keys.shape[2]:
            batch, heads, _, key_dim = keys.shape
            value_dim = values.shape[3]
            grow = ((n_new + self.step - 1) // self.step) * self.step
            new_keys = mx.zeros((batch, heads, grow, key_dim), keys.dtype)
            new_values = mx.zeros((batch, heads, grow, value_dim), values.dtype)
            if self.keys is None:
                self.keys, self.values = new_keys, new_values
            else:
                self.keys = mx.concatenate([self.keys[:, :, :previous], new_keys], axis=2)
                self.values = mx.concatenate([self.values[:, :, :previous], new_values], axis=2)
        self.offset += n_new
        self.keys[:, :, previous : self.offset] = keys
        self.values[:, :, previous : self.offset] = values
        return self.keys[:, :, : self.offset], self.values[:, :, : self.offset]

    @property
    def state(self) -> dict:
        if self.keys is None:
            return {}
        return {"keys": self.keys[:, :, : self.offset], "values": self.values[:, :, : self.offset]}

    @property
    def meta_state(self) -> dict:
        return {"offset": self.offset}

    @classmethod
    def from_state(cls, state: dict, meta_state: dict) -> KVCache:
        cache = cls()
        if state:
            cache.keys, cache.values = state["keys"], state["values"]
        cache.offset = int(meta_state.get("offset", 0))
        return cache

    @property
    def nbytes(self) -> int:
        if self.keys is None:
            return 0
        return self.keys.nbytes + self.values.nbytes


class SlidingWindowKVCache(Cache):
    """Cache for sliding-window attention that stores at most ``n_prefix + window`` positions.

    Keeps the ``n_prefix`` persistent keys and the last ``window`` other keys. The keys returned
    by ``update_and_fetch`` are a compacted sequence ``[prefix | recent]`` whose tail ends at the
    newest token, so ``attention(q, keys, values, window=window, n_prefix=n_prefix)`` (bottom-right
    aligned) gives exactly the full-sequence result. Single-token updates on a full cache write in
    place into a ring buffer; the returned order is then rotated, which is harmless because every
    stored key is visible to that one query. ``offset`` counts all positions ever seen.
    """

    def __init__(self, window: int, n_prefix: int = 0):
        self.window = _checks.positive_int("window", window)
        self.n_prefix = _checks.nonnegative_int("n_prefix", n_prefix)
        self.keys: mx.array | None = None
        self.values: mx.array | None = None
        self.offset = 0
        self._next_slot: int | None = None  # ring write position once the buffer is full

    @property
    def capacity(self) -> int:
        return self.n_prefix + self.window

    def _temporal(self) -> tuple[mx.array, mx.array]:
        """Stored keys/values in time order."""
        if self._next_slot is None or self._next_slot == self.n_prefix:
            return self.keys, self.values
        p, s = self.n_prefix, self._next_slot
        order = lambda x: mx.concatenate([x[:, :, :p], x[:, :, s:], x[:, :, p:s]], axis=2)
        return order(self.keys), order(self.values)

    def update_and_fetch(self, keys: mx.array, values: mx.array) -> tuple[mx.array, mx.array]:
        _check_kv_update(keys, values, self.keys, self.values)
        n_new = keys.shape[2]
        self.offset += n_new
        if n_new == 1 and self._next_slot is not None:
            slot = self._next_slot
            self.keys[:, :, slot : slot + 1] = keys
            self.values[:, :, slot : slot + 1] = values
            self._next_slot = self.n_prefix + (slot + 1 - self.n_prefix) % self.window
            # slices, so that the next in-place write does not change what the caller holds
            return self.keys[:, :, : self.capacity], self.values[:, :, : self.capacity]
        if self.keys is None:
            all_keys, all_values = keys, values
        else:
            old_keys, old_values = self._temporal()
            all_keys = mx.concatenate([old_keys, keys], axis=2)
            all_values = mx.concatenate([old_values, values], axis=2)
        length = all_keys.shape[2]
        if length > self.capacity:
            p, w = self.n_prefix, self.window
            keep = lambda x: mx.concatenate([x[:, :, :p], x[:, :, length - w :]], axis=2)
            self.keys, self.values = keep(all_keys), keep(all_values)
        else:
            self.keys, self.values = all_keys, all_values
        # the oldest recent key sits right after the prefix
        self._next_slot = self.n_prefix if self.keys.shape[2] == self.capacity else None
        return all_keys, all_values

    @property
    def state(self) -> dict:
        # slices, so that the ring buffer's in-place writes never reach a saved or copied state
        return {} if self.keys is None else {"keys": self.keys[:, :, :], "values": self.values[:, :, :]}

    @property
    def meta_state(self) -> dict:
        return {"window": self.window, "n_prefix": self.n_prefix, "offset": self.offset,
                "next_slot": self._next_slot}

    @classmethod
    def from_state(cls, state: dict, meta_state: dict) -> SlidingWindowKVCache:
        cache = cls(meta_state["window"], meta_state.get("n_prefix", 0))
        if state:
            cache.keys, cache.values = state["keys"], state["values"]
        cache.offset = int(meta_state.get("offset", 0))
        cache._next_slot = meta_state.get("next_slot")
        return cache
