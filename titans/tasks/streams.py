"""Continuous key/value streams: unit keys and values written one step at a time, then queried,
for memory-level claims with fixed, untrained projections."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from titans.tasks._knobs import _choice, _nonneg_int, _pos_int, _real, _seed, _unit_interval
from titans.tasks.tokens import HAYSTACKS


@dataclass(frozen=True)
class KVStream:
    """A continuous key/value stream for testing a memory directly.

    Write ``(keys[t], values[t])`` for ``t = 0 .. T-1``; after step ``query_index[q]`` read the
    memory with ``queries[q]``; the ideal read-out is ``targets[q]``.
    """

    keys: np.ndarray  # (T, d_k) float32, unit rows
    values: np.ndarray  # (T, d_v) float32
    queries: np.ndarray  # (Q, d_k) float32, unit rows
    targets: np.ndarray  # (Q, d_v) float32
    query_index: np.ndarray  # (Q,) int64: read after this write step
    meta: dict[str, Any] = field(default_factory=dict)


def _unit_rows(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    g = rng.standard_normal((n, d))
    return g / np.linalg.norm(g, axis=1, keepdims=True)


def _orthonormal_rows(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    q, _ = np.linalg.qr(rng.standard_normal((d, n)))
    return q.T


def _value_rows(rng: np.random.Generator, n: int, d: int, normalize: bool) -> np.ndarray:
    return _unit_rows(rng, n, d) if normalize else rng.standard_normal((n, d)) / math.sqrt(d)


def _queries(rng: np.random.Generator, keys: np.ndarray, noise: float) -> np.ndarray:
    if noise == 0.0:
        return keys.copy()
    q = keys + noise * rng.standard_normal(keys.shape) / math.sqrt(keys.shape[1])
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def _stream_common(d_k, d_v, query_noise, normalize_values) -> tuple[int, int, float, bool]:
    d_k = _pos_int("d_k", d_k)
    d_v = _pos_int("d_v", d_v)
    query_noise = _real("query_noise", query_noise)
    if query_noise < 0:
        raise ValueError(f"query_noise must be >= 0, got {query_noise}")
    if not isinstance(normalize_values, bool):
        raise TypeError(f"normalize_values must be a bool, got {normalize_values!r}")
    return d_k, d_v, query_noise, normalize_values


def _check_orthogonal_keys(orthogonal_keys, n_pairs: int, d_k: int) -> None:
    if not isinstance(orthogonal_keys, bool):
        raise TypeError(f"orthogonal_keys must be a bool, got {orthogonal_keys!r}")
    if orthogonal_keys and n_pairs > d_k:
        raise ValueError(f"n_pairs={n_pairs} orthogonal keys need d_k >= n_pairs, got d_k={d_k}")


def _haystack_kv(rng, kind: str, length: int, d_k: int, d_v: int, n_filler: int, normalize: bool):
    """``length`` haystack writes: a repeated ``n_filler`` cycle, or fresh random pairs."""
    if kind == "filler":
        fk, fv = _unit_rows(rng, n_filler, d_k), _value_rows(rng, n_filler, d_v, normalize)
        idx = np.arange(length) % n_filler
        return fk[idx], fv[idx], idx
    return _unit_rows(rng, length, d_k), _value_rows(rng, length, d_v, normalize), None


def kv_stream_far_pointer(
    d_k: int,
    d_v: int,
    seq_len: int,
    depth: float | None,
    haystack: str = "filler",
    seed: int = 0,
    *,
    n_filler: int = 4,
    n_needles_distractor: int | None = None,
    query_noise: float = 0.0,
    normalize_values: bool = False,
) -> KVStream:
    """A needle ``(k*, v*)`` written at step ``p = round(depth * (T-1))`` of a ``T``-step stream;
    one query ``k*`` read after the last step, target ``v*``.

    Haystacks: ``"filler"`` -- ``n_filler`` fixed random unit keys/values written in a repeating
    cycle (period ``n_filler``, phase continuous across the needle); ``"random"`` -- a fresh
    random unit key and value every step; ``"needles"`` -- distinct distractor associations
    (fresh random key, fresh value) at ``n_needles_distractor`` random haystack steps over the
    filler cycle (``None`` = every haystack step, which is distributed exactly like
    ``"random"``; the difference is that meta records the distractor steps). ``depth=None``
    draws ``p`` uniformly. ``query_noise`` perturbs the query: ``q = normalize(k* + s g/sqrt(d_k))``.

    meta: ``needle_index``, ``distance`` (= ``T - 1 - needle_index``), ``depth`` (realised),
    ``haystack``, ``filler_index`` (``(T,)`` cycle index per step, -1 off-cycle; filler/needles),
    ``distractor_index`` (steps holding distractors; needles).
    """
    d_k, d_v, query_noise, normalize_values = _stream_common(d_k, d_v, query_noise, normalize_values)
    seq_len = _pos_int("seq_len", seq_len)
    haystack = _choice("haystack", haystack, HAYSTACKS)
    seed = _seed(seed)
    n_filler = _pos_int("n_filler", n_filler)
    if depth is not None:
        depth = _unit_interval("depth", depth)
    H = seq_len - 1
    if n_needles_distractor is not None:
        n_needles_distractor = _nonneg_int("n_needles_distractor", n_needles_distractor)
        if haystack != "needles" and n_needles_distractor:
            raise ValueError(f"n_needles_distractor only applies to haystack='needles', got haystack={haystack!r}")
        if n_needles_distractor > H:
            raise ValueError(f"n_needles_distractor={n_needles_distractor} exceeds the {H} haystack steps")

    rng = np.random.default_rng(seed)
    p = int(rng.integers(0, H + 1)) if depth is None else int(round(depth * H))
    nk, nv = _unit_rows(rng, 1, d_k), _value_rows(rng, 1, d_v, normalize_values)
    meta: dict[str, Any] = {"haystack": haystack}
    if haystack == "needles":
        hk, hv, fidx = _haystack_kv(rng, "filler", H, d_k, d_v, n_filler, normalize_values)
        n = H if n_needles_distractor is None else n_needles_distractor
        steps = np.sort(rng.permutation(H)[:n])
        hk[steps] = _unit_rows(rng, n, d_k)
        hv[steps] = _value_rows(rng, n, d_v, normalize_values)
        fidx = fidx.copy()
        fidx[steps] = -1
        meta["distractor_index"] = np.where(steps < p, steps, steps + 1)
    else:
        hk, hv, fidx = _haystack_kv(rng, haystack, H, d_k, d_v, n_filler, normalize_values)
    keys = np.concatenate([hk[:p], nk, hk[p:]]).astype(np.float32)
    values = np.concatenate([hv[:p], nv, hv[p:]]).astype(np.float32)
    if fidx is not None:
        meta["filler_index"] = np.concatenate([fidx[:p], [-1], fidx[p:]]).astype(np.int64)
    meta.update(needle_index=p, distance=H - p, depth=p / H if H else 0.0)
    return KVStream(
        keys=keys,
        values=values,
        queries=_queries(rng, nk, query_noise).astype(np.float32),
        targets=nv.astype(np.float32),
        query_index=np.array([seq_len - 1]),
        meta=meta,
    )


def kv_stream_pairs(
    d_k: int,
    d_v: int,
    n_pairs: int,
    seed: int = 0,
    *,
    n_queries: int | None = None,
    orthogonal_keys: bool = False,
    shuffle_queries: bool = True,
    query_noise: float = 0.0,
    normalize_values: bool = False,
) -> KVStream:
    """``n_pairs`` associations written once each, then queries of all (or ``n_queries``) of them.

    Keys are random unit vectors, or orthonormal with ``orthogonal_keys`` (needs
    ``n_pairs <= d_k``; then a linear memory can store them exactly). Queries are the keys in
    random order (``shuffle_queries=False``: write order), read after the last write.

    meta: ``pair_index`` ``(Q,)`` (which association each query asks for), ``distance`` ``(Q,)``
    (= ``n_pairs - 1 - pair_index``: writes since it was stored).
    """
    d_k, d_v, query_noise, normalize_values = _stream_common(d_k, d_v, query_noise, normalize_values)
    n_pairs = _pos_int("n_pairs", n_pairs)
    seed = _seed(seed)
    n_queries = n_pairs if n_queries is None else _pos_int("n_queries", n_queries)
    if n_queries > n_pairs:
        raise ValueError(f"n_queries={n_queries} exceeds n_pairs={n_pairs}")
    _check_orthogonal_keys(orthogonal_keys, n_pairs, d_k)
    rng = np.random.default_rng(seed)
    keys = _orthonormal_rows(rng, n_pairs, d_k) if orthogonal_keys else _unit_rows(rng, n_pairs, d_k)
    values = _value_rows(rng, n_pairs, d_v, normalize_values)
    order = rng.permutation(n_pairs) if shuffle_queries else np.arange(n_pairs)
    order = order[:n_queries]
    return KVStream(
        keys=keys.astype(np.float32),
        values=values.astype(np.float32),
        queries=_queries(rng, keys[order], query_noise).astype(np.float32),
        targets=values[order].astype(np.float32),
        query_index=np.full(n_queries, n_pairs - 1),
        meta={"pair_index": order, "distance": n_pairs - 1 - order},
    )


def kv_stream_rebinding(
    d_k: int,
    d_v: int,
    n_pairs: int,
    n_rebinds: int,
    seed: int = 0,
    *,
    gap: int = 0,
    tail: int = 0,
    haystack: str = "random",
    n_filler: int = 4,
    orthogonal_keys: bool = False,
    query_noise: float = 0.0,
    normalize_values: bool = False,
) -> KVStream:
    """``n_pairs`` associations, ``gap`` haystack writes, ``n_rebinds`` of the keys re-written
    with NEW values, ``tail`` haystack writes; then every key is queried (random order) and the
    target is its latest value.

    Stream length ``T = n_pairs + gap + n_rebinds + tail``. ``haystack`` is ``"random"`` or
    ``"filler"`` as in :func:`kv_stream_far_pointer`.

    meta ``(Q,)``: ``pair_index``, ``rebound`` (bool), ``old_targets`` ``(Q, d_v)`` (first
    values), ``bind_index``, ``rebind_index`` (-1 if not rebound), ``distance``
    (``T - 1`` minus the step of the latest write of that key).
    """
    d_k, d_v, query_noise, normalize_values = _stream_common(d_k, d_v, query_noise, normalize_values)
    n_pairs = _pos_int("n_pairs", n_pairs)
    n_rebinds = _nonneg_int("n_rebinds", n_rebinds)
    seed = _seed(seed)
    gap = _nonneg_int("gap", gap)
    tail = _nonneg_int("tail", tail)
    haystack = _choice("haystack", haystack, ("random", "filler"))
    n_filler = _pos_int("n_filler", n_filler)
    if n_rebinds > n_pairs:
        raise ValueError(f"n_rebinds={n_rebinds} exceeds n_pairs={n_pairs}")
    _check_orthogonal_keys(orthogonal_keys, n_pairs, d_k)
    N, R = n_pairs, n_rebinds
    rng = np.random.default_rng(seed)
    keys = _orthonormal_rows(rng, N, d_k) if orthogonal_keys else _unit_rows(rng, N, d_k)
    old = _value_rows(rng, N, d_v, normalize_values)
    new = _value_rows(rng, R, d_v, normalize_values)
    which = rng.permutation(N)[:R]
    hk, hv, _ = _haystack_kv(rng, haystack, gap + tail, d_k, d_v, n_filler, normalize_values)
    T = N + gap + R + tail
    stream_k = np.concatenate([keys, hk[:gap], keys[which], hk[gap:]])
    stream_v = np.concatenate([old, hv[:gap], new, hv[gap:]])
    latest = old.copy()
    latest[which] = new
    rebind_index = np.full(N, -1, dtype=np.int64)
    rebind_index[which] = N + gap + np.arange(R)
    order = rng.permutation(N)
    last_write = np.where(rebind_index >= 0, rebind_index, np.arange(N))
    return KVStream(
        keys=stream_k.astype(np.float32),
        values=stream_v.astype(np.float32),
        queries=_queries(rng, keys[order], query_noise).astype(np.float32),
        targets=latest[order].astype(np.float32),
        query_index=np.full(N, T - 1),
        meta={
            "pair_index": order,
            "rebound": rebind_index[order] >= 0,
            "old_targets": old[order].astype(np.float32),
            "bind_index": order.copy(),
            "rebind_index": rebind_index[order],
            "distance": T - 1 - last_write[order],
            "haystack": haystack,
        },
    )


def kv_stream_rewrites(d: int, n_keys: int, rewrites: tuple, gap: int, tail: int, seed: int, *,
                       n_filler: int = 4) -> KVStream:
    """Keys rebound to new values over time (drift): each of ``n_keys`` unit keys is written once,
    then rewritten ``rewrites[0]..rewrites[1]`` times (uniform per key) in random order, with
    ``gap`` filler writes (a cycle of ``n_filler`` pairs) after every key write and ``tail`` at
    the end. Queries: every key after the last write; targets: its latest value;
    ``meta["older"][i]``: key ``i``'s earlier values (a stale answer is one of them)."""
    d, n_keys = _pos_int("d", d), _pos_int("n_keys", n_keys)
    if not (isinstance(rewrites, (tuple, list)) and len(rewrites) == 2):
        raise ValueError(f"rewrites must be (low, high), got {rewrites!r}")
    low, high = (_nonneg_int(f"rewrites[{i}]", r) for i, r in enumerate(rewrites))
    if low > high:
        raise ValueError(f"rewrites must satisfy low <= high, got {rewrites!r}")
    gap, tail, n_filler = _nonneg_int("gap", gap), _nonneg_int("tail", tail), _pos_int("n_filler", n_filler)
    rng = np.random.default_rng(_seed(seed))
    keys = _unit_rows(rng, n_keys, d)
    counts = rng.integers(low, high + 1, n_keys)
    bindings = [_value_rows(rng, 1 + c, d, False) for c in counts]
    fk, fv = _unit_rows(rng, n_filler, d), _value_rows(rng, n_filler, d, False)
    events = [(i, 0) for i in rng.permutation(n_keys)]
    seen = np.zeros(n_keys, int)
    for i in rng.permutation(np.repeat(np.arange(n_keys), counts)):
        seen[i] += 1
        events.append((i, seen[i]))
    K, V, f = [], [], 0
    for i, j in events:
        K.append(keys[i])
        V.append(bindings[i][j])
        for _ in range(gap):
            K.append(fk[f % n_filler])
            V.append(fv[f % n_filler])
            f += 1
    for _ in range(tail):
        K.append(fk[f % n_filler])
        V.append(fv[f % n_filler])
        f += 1
    latest = np.stack([b[-1] for b in bindings])
    return KVStream(np.asarray(K, np.float32), np.asarray(V, np.float32), keys.astype(np.float32),
                    latest.astype(np.float32), np.full(n_keys, len(K) - 1, np.int64),
                    {"task": "kv_stream_rewrites", "older": [b[:-1].astype(np.float32) for b in bindings]})


def kv_stream_switch(d: int, period: int, before: int, after: int, seed: int, *, n_filler: int = 4) -> KVStream:
    """One key written every ``period`` steps, bound to an old value for ``before`` writes and to a
    new one for ``after`` writes, filler pairs in between. Query: the key; target: the new value;
    ``meta["candidates"]``: old, new and filler values; ``meta["switch"]``: the first new write."""
    d, period = _pos_int("d", d), _pos_int("period", period)
    before, after, n_filler = _pos_int("before", before), _pos_int("after", after), _pos_int("n_filler", n_filler)
    rng = np.random.default_rng(_seed(seed))
    k = _unit_rows(rng, 1, d)[0]
    old, new = _value_rows(rng, 2, d, False)
    fk, fv = _unit_rows(rng, n_filler, d), _value_rows(rng, n_filler, d, False)
    T = (before + after) * period
    K, V = np.zeros((T, d)), np.zeros((T, d))
    f = 0
    for t in range(T):
        if t % period == 0:
            K[t], V[t] = k, (old if t < before * period else new)
        else:
            K[t], V[t] = fk[f % n_filler], fv[f % n_filler]
            f += 1
    candidates = np.concatenate([[old, new], fv]).astype(np.float32)
    return KVStream(K.astype(np.float32), V.astype(np.float32), k[None].astype(np.float32),
                    new[None].astype(np.float32), np.array([T - 1], np.int64),
                    {"task": "kv_stream_switch", "candidates": candidates, "switch": before * period})


def kv_stream_overwrites(d: int, length: int, pool: int, p_overwrite: float, seed: int) -> KVStream:
    """Random pairs where, with probability ``p_overwrite`` per step, the key is one of ``pool``
    recurring keys (each bound first at steps ``0..pool-1``) with a fresh value. Queries: the pool
    keys after the last step; targets: their latest values; ``meta["age"]``: steps since each was
    last written."""
    d, length, pool = _pos_int("d", d), _pos_int("length", length), _pos_int("pool", pool)
    if pool > length:
        raise ValueError(f"pool must be <= length ({length}), got {pool}")
    p_overwrite = _unit_interval("p_overwrite", p_overwrite)
    rng = np.random.default_rng(_seed(seed))
    keys = _unit_rows(rng, pool, d)
    K = _unit_rows(rng, length, d)
    V = _value_rows(rng, length, d, False)
    which = np.where(rng.random(length) < p_overwrite, rng.integers(0, pool, length), -1)
    which[:pool] = np.arange(pool)  # every pool key is bound at least once, at the start
    K[which >= 0] = keys[which[which >= 0]]
    last = np.array([np.flatnonzero(which == i)[-1] for i in range(pool)])
    return KVStream(K.astype(np.float32), V.astype(np.float32), keys.astype(np.float32),
                    V[last].astype(np.float32), np.full(pool, length - 1, np.int64),
                    {"task": "kv_stream_overwrites", "age": length - 1 - last})
