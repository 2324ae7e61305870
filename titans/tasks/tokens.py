"""Token tasks: seeded generators of ``TaskBatch`` token sequences for training and evaluating
language models (the package docstring describes the layout and the vocabulary)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from titans.tasks._knobs import _choice, _depths, _nonneg_int, _pos_int, _real, _seed

IGNORE = -100
PAD, BLANK, KEY, QUERY, SEP, COPY = 0, 1, 2, 3, 4, 5
N_SPECIAL = 8
HAYSTACKS = ("filler", "random", "needles")


# ---------------------------------------------------------------------------------------------
# containers


@dataclass(frozen=True)
class TaskBatch:
    """A batch of token sequences: ``inputs`` / ``targets`` int32 ``(batch, T)`` and ``meta``."""

    inputs: np.ndarray
    targets: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def scored_mask(self) -> np.ndarray:
        """Boolean ``(batch, T)``: where ``targets`` is scored."""
        return self.targets != IGNORE

    @property
    def n_scored(self) -> int:
        return int(self.scored_mask.sum())



@dataclass(frozen=True)
class VocabLayout:
    """The shared token layout: specials ``[0, 8)``, then keys, values, filler (disjoint)."""

    vocab_size: int
    key_lo: int
    key_hi: int
    value_lo: int
    value_hi: int
    filler_lo: int
    filler_hi: int

    @property
    def n_keys(self) -> int:
        return self.key_hi - self.key_lo

    @property
    def n_values(self) -> int:
        return self.value_hi - self.value_lo

    @property
    def n_filler(self) -> int:
        return self.filler_hi - self.filler_lo




    def filler_pattern(self, period: int) -> np.ndarray:
        """The fixed filler motif (same for every seed): ``filler_lo + (i mod n_filler)``."""
        return (self.filler_lo + np.arange(period) % self.n_filler).astype(np.int32)


def vocab_layout(vocab_size: int) -> VocabLayout:
    """Split ``vocab_size`` into specials, keys, values and filler (see the module docstring)."""
    vocab_size = _pos_int("vocab_size", vocab_size)
    if vocab_size < N_SPECIAL + 3:
        raise ValueError(
            f"vocab_size must be >= {N_SPECIAL + 3} ({N_SPECIAL} special tokens plus at least one "
            f"key, value and filler token), got {vocab_size}"
        )
    rest = vocab_size - N_SPECIAL
    n_filler = max(1, rest // 4)
    n_keys = (rest - n_filler) // 2
    n_values = rest - n_filler - n_keys
    key_lo = N_SPECIAL
    value_lo = key_lo + n_keys
    filler_lo = value_lo + n_values
    return VocabLayout(vocab_size, key_lo, value_lo, value_lo, filler_lo, filler_lo, vocab_size)


# ---------------------------------------------------------------------------------------------
# sampling helpers


def _distinct(rng: np.random.Generator, batch: int, n: int, k: int) -> np.ndarray:
    """``(batch, k)`` int64: each row ``k`` distinct draws from ``[0, n)`` in random order."""
    if k == 0:
        return np.zeros((batch, 0), dtype=np.int64)
    out = np.empty((batch, k), dtype=np.int64)
    rows = max(1, (1 << 22) // n)
    for start in range(0, batch, rows):
        r = rng.random((min(rows, batch - start), n))
        idx = np.argpartition(r, k - 1, axis=1)[:, :k] if k < n else np.argsort(r, axis=1)
        order = np.argsort(np.take_along_axis(r, idx, axis=1), axis=1)
        out[start : start + len(r)] = np.take_along_axis(idx, order, axis=1)
    return out


def _avoiding(rng: np.random.Generator, n: int, avoid: np.ndarray, size) -> np.ndarray:
    """Uniform draws from ``[0, n)`` minus ``avoid`` (broadcast against ``size``)."""
    x = rng.integers(0, n - 1, size=size)
    return x + (x >= avoid)


def _pad_ragged(rows: list[np.ndarray], fill: int = -1) -> np.ndarray:
    width = max((len(r) for r in rows), default=0)
    out = np.full((len(rows), width), fill, dtype=np.int32)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


# ---------------------------------------------------------------------------------------------
# 1. far pointer (RULER S-NIAH token analogue)


def far_pointer(
    batch: int,
    seq_len: int,
    depth: float | None,
    haystack: str = "filler",
    vocab_size: int = 512,
    seed: int = 0,
    *,
    n_needles_distractor: int | None = None,
    filler_period: int = 8,
) -> TaskBatch:
    """One ``KEY k v`` needle at relative ``depth`` of a haystack; ``QUERY k`` at the end.

    Sequence (length ``seq_len`` = ``T``; ``H = T - 5`` haystack tokens, needle start
    ``p = round(depth * H)``)::

        hay[:p]  KEY k v  hay[p:]  QUERY k        -> the only scored target: targets[:, T-1] = v

    ``depth = 0`` puts the needle first, ``depth = 1`` right before the query; ``depth=None``
    draws ``p`` uniformly per row; an array gives one depth per row.

    Haystacks (``haystack``):

    * ``"filler"`` -- the fixed motif ``layout.filler_pattern(filler_period)`` repeated (RULER's
      "noise" haystack: the same short sentence over and over); identical for every row/seed,
      continuing its phase across the needle.
    * ``"random"`` -- i.i.d. uniform filler-range tokens (never keys or values).
    * ``"needles"`` -- other ``KEY k' v'`` needles with distinct keys ``k' != k`` and values
      ``v' != v`` tiled in 3-token slots on both sides of the needle (RULER's "needle"
      haystack). ``n_needles_distractor=None`` fills every slot (capped at ``n_keys - 1``);
      an int puts that many at random slots and leaves the rest as the filler motif.

    meta (per row, shape ``(batch,)`` unless noted): ``needle_pos`` (index of the ``KEY``
    marker), ``key_pos``, ``value_pos``, ``query_pos`` (= ``T - 1``, the scored position),
    ``distance`` (= ``query_pos - needle_pos``), ``depth`` (realised ``p / H``), ``key``,
    ``value``, ``n_distractors``; ``scored_pos`` ``(batch, 1)``; ``haystack``.
    """
    batch = _pos_int("batch", batch)
    seq_len = _pos_int("seq_len", seq_len)
    haystack = _choice("haystack", haystack, HAYSTACKS)
    layout = vocab_layout(vocab_size)
    seed = _seed(seed)
    filler_period = _pos_int("filler_period", filler_period)
    if seq_len < 5:
        raise ValueError(f"seq_len must be >= 5 (KEY k v ... QUERY k), got {seq_len}")
    depths = _depths(depth, batch)
    H = seq_len - 5
    if n_needles_distractor is not None:
        n_needles_distractor = _nonneg_int("n_needles_distractor", n_needles_distractor)
        if haystack != "needles" and n_needles_distractor:
            raise ValueError(f"n_needles_distractor only applies to haystack='needles', got haystack={haystack!r}")

    rng = np.random.default_rng(seed)
    if depths is None:
        p = rng.integers(0, H + 1, size=batch)
    else:
        p = np.rint(depths * H).astype(np.int64)
    keys = rng.integers(0, layout.n_keys, size=batch)
    vals = rng.integers(0, layout.n_values, size=batch)

    motif = layout.filler_pattern(filler_period)[np.arange(H) % filler_period]  # the fixed filler haystack
    if haystack == "filler":
        hay = np.broadcast_to(motif, (batch, H))
    elif haystack == "random":
        hay = rng.integers(layout.filler_lo, layout.filler_hi, size=(batch, H))
    else:
        hay = None

    inputs = np.empty((batch, seq_len), dtype=np.int32)
    n_distr = np.zeros(batch, dtype=np.int32)
    for b in range(batch):
        pb = int(p[b])
        if hay is not None:
            row = hay[b]
        else:
            row = motif.copy()
            starts = np.concatenate([np.arange(0, pb - 2, 3), np.arange(pb, H - 2, 3)]).astype(np.int64)
            cap = min(len(starts), layout.n_keys - 1)
            if n_needles_distractor is None:
                n = cap
            else:
                n = n_needles_distractor
                if n > len(starts):
                    raise ValueError(
                        f"n_needles_distractor={n} does not fit: the haystack has only {len(starts)} "
                        f"3-token slots at seq_len={seq_len}"
                    )
                if n > layout.n_keys - 1:
                    raise ValueError(
                        f"n_needles_distractor={n} needs {n + 1} distinct keys but vocab_size={layout.vocab_size} "
                        f"has {layout.n_keys}"
                    )
            if n and layout.n_values < 2:
                raise ValueError(f"vocab_size={layout.vocab_size} leaves fewer than 2 values for distractor needles")
            slots = np.sort(starts[rng.permutation(len(starts))[:n]]) if n < len(starts) else starts
            n_distr_b = len(slots)
            # distinct distractor keys, all different from the needle's key
            dk = rng.permutation(np.delete(np.arange(layout.n_keys), keys[b]))[:n_distr_b]
            dv = _avoiding(rng, layout.n_values, vals[b], (n_distr_b,))
            row[slots] = KEY
            row[slots + 1] = layout.key_lo + dk
            row[slots + 2] = layout.value_lo + dv
            n_distr[b] = n_distr_b
        inputs[b, :pb] = row[:pb]
        inputs[b, pb : pb + 3] = (KEY, layout.key_lo + keys[b], layout.value_lo + vals[b])
        inputs[b, pb + 3 : H + 3] = row[pb:]
        inputs[b, H + 3 :] = (QUERY, layout.key_lo + keys[b])

    targets = np.full((batch, seq_len), IGNORE, dtype=np.int32)
    targets[:, -1] = layout.value_lo + vals
    query_pos = np.full(batch, seq_len - 1, dtype=np.int32)
    meta = {
        "task": "far_pointer",
        "haystack": haystack,
        "scored_pos": query_pos[:, None].copy(),
        "needle_pos": p.astype(np.int32),
        "key_pos": (p + 1).astype(np.int32),
        "value_pos": (p + 2).astype(np.int32),
        "query_pos": query_pos,
        "distance": (query_pos - p).astype(np.int32),
        "depth": p / H if H > 0 else np.zeros(batch),
        "key": (layout.key_lo + keys).astype(np.int32),
        "value": (layout.value_lo + vals).astype(np.int32),
        "n_distractors": n_distr,
    }
    return TaskBatch(inputs, targets, meta)


# ---------------------------------------------------------------------------------------------
# 2. MAD selective copying


def selective_copy(
    batch: int,
    seq_len: int,
    n_copy: int,
    vocab_size: int = 64,
    seed: int = 0,
    *,
    teacher_forcing: bool = False,
) -> TaskBatch:
    """MAD selective copying: ``n_copy`` content tokens scattered among ``BLANK``s, then ``COPY``.

    Layout (``C = seq_len - n_copy - 1`` context positions, ``C >= n_copy``)::

        [C context: the n_copy tokens at random sorted positions, BLANK elsewhere] COPY  x x .. x

    Content tokens are drawn with replacement from the key and value ranges. With
    ``teacher_forcing=False`` (MAD) the ``n_copy`` trailing inputs ``x`` are ``BLANK`` and
    ``targets[C + 1 + j]`` is the ``j``-th token; with ``teacher_forcing=True`` they are the
    tokens themselves and the targets are shifted one earlier (``targets[C + j]``; the last
    position is unscored), i.e. plain next-token prediction.

    meta ``(batch, n_copy)``: ``scored_pos``, ``src_pos`` (where the token sat in the context),
    ``distance`` (= ``scored_pos - src_pos``), ``order`` (``j``); ``copy_pos`` ``(batch,)``.
    """
    batch = _pos_int("batch", batch)
    seq_len = _pos_int("seq_len", seq_len)
    n_copy = _pos_int("n_copy", n_copy)
    layout = vocab_layout(vocab_size)
    seed = _seed(seed)
    if not isinstance(teacher_forcing, bool):
        raise TypeError(f"teacher_forcing must be a bool, got {teacher_forcing!r}")
    if seq_len < 2 * n_copy + 1:
        raise ValueError(f"seq_len must be >= 2 * n_copy + 1 = {2 * n_copy + 1}, got {seq_len}")
    C = seq_len - n_copy - 1
    rng = np.random.default_rng(seed)
    src = np.sort(_distinct(rng, batch, C, n_copy), axis=1)
    tok = rng.integers(layout.key_lo, layout.value_hi, size=(batch, n_copy)).astype(np.int32)

    inputs = np.full((batch, seq_len), BLANK, dtype=np.int32)
    np.put_along_axis(inputs, src, tok, axis=1)
    inputs[:, C] = COPY
    targets = np.full((batch, seq_len), IGNORE, dtype=np.int32)
    j = np.arange(n_copy)
    if teacher_forcing:
        inputs[:, C + 1 :] = tok
        out_pos = C + j
    else:
        out_pos = C + 1 + j
    targets[:, out_pos] = tok
    scored = np.broadcast_to(out_pos, (batch, n_copy)).astype(np.int32)
    meta = {
        "task": "selective_copy",
        "scored_pos": scored.copy(),
        "src_pos": src.astype(np.int32),
        "distance": (scored - src).astype(np.int32),
        "order": np.broadcast_to(j, (batch, n_copy)).astype(np.int32).copy(),
        "copy_pos": np.full(batch, C, dtype=np.int32),
        "teacher_forcing": teacher_forcing,
    }
    return TaskBatch(inputs, targets, meta)


# ---------------------------------------------------------------------------------------------
# 3. rebinding (zoology forgetting-MQAR / BABILong qa1 flavour)


def rebinding(
    batch: int,
    seq_len: int,
    n_pairs: int,
    n_rebinds: int,
    vocab_size: int = 512,
    seed: int = 0,
    *,
    gap: int | None = None,
) -> TaskBatch:
    """Bind ``n_pairs`` keys, later re-bind ``n_rebinds`` of them to NEW values, query all keys.

    Layout (``N = n_pairs``, ``R = n_rebinds``, ``F = seq_len - 4N - 2R`` filler tokens)::

        k1 v1 .. kN vN | gap filler | r1 v'1 .. rR v'R | F-gap filler | SEP | q1 a1 .. qN a(N)

    The last answer ``a(N)`` is only a target (inputs have ``seq_len`` tokens). ``gap`` (default
    ``F // 2``) is the filler between the original bindings and the rebinding block. Queries are
    the ``N`` keys in random order; at each query key the target is its LATEST value and the
    answer is teacher-forced into the next input. All ``N + R`` values in a row are distinct,
    so a stale answer (the old value) is unambiguous. Filler is random filler-range tokens.

    meta, ``(batch, N)`` in query order: ``scored_pos``, ``query_key``, ``target`` (latest
    value), ``old_value`` (first-bound value; equals ``target`` when not rebound), ``rebound``
    (bool), ``bind_pos`` (position of the original ``k``), ``rebind_pos`` (position of the
    rebinding ``k``, -1 if none), ``distance`` (``scored_pos`` minus the position of the key
    of the latest binding), ``rebind_distance`` (``scored_pos - rebind_pos``, -1 if none);
    ``gap`` (int). See :func:`staleness`.
    """
    batch = _pos_int("batch", batch)
    seq_len = _pos_int("seq_len", seq_len)
    n_pairs = _pos_int("n_pairs", n_pairs)
    n_rebinds = _nonneg_int("n_rebinds", n_rebinds)
    layout = vocab_layout(vocab_size)
    seed = _seed(seed)
    if n_rebinds > n_pairs:
        raise ValueError(f"n_rebinds={n_rebinds} exceeds n_pairs={n_pairs}")
    if n_pairs > layout.n_keys:
        raise ValueError(f"n_pairs={n_pairs} exceeds the {layout.n_keys} key tokens of vocab_size={layout.vocab_size}")
    if n_pairs + n_rebinds > layout.n_values:
        raise ValueError(
            f"vocab_size={layout.vocab_size} has {layout.n_values} value tokens; n_pairs + n_rebinds = "
            f"{n_pairs + n_rebinds} distinct values are needed"
        )
    F = seq_len - 4 * n_pairs - 2 * n_rebinds
    if F < 0:
        raise ValueError(f"seq_len must be >= 4 * n_pairs + 2 * n_rebinds = {seq_len - F}, got {seq_len}")
    if gap is None:
        gap = F // 2
    gap = _nonneg_int("gap", gap)
    if gap > F:
        raise ValueError(f"gap={gap} exceeds the {F} filler tokens available at seq_len={seq_len}")

    N, R = n_pairs, n_rebinds
    rng = np.random.default_rng(seed)
    keys = layout.key_lo + _distinct(rng, batch, layout.n_keys, N)
    vals = layout.value_lo + _distinct(rng, batch, layout.n_values, N + R)
    old, new = vals[:, :N], vals[:, N:]
    which = _distinct(rng, batch, N, R)  # pair indices rebound, in rebinding-block order
    qorder = _distinct(rng, batch, N, N)  # pair indices in query order
    filler = rng.integers(layout.filler_lo, layout.filler_hi, size=(batch, F))

    latest = old.copy()
    np.put_along_axis(latest, which, new, axis=1)
    rb_start = 2 * N + gap
    rebind_pos_pair = np.full((batch, N), -1, dtype=np.int64)
    np.put_along_axis(rebind_pos_pair, which, rb_start + 2 * np.arange(R)[None, :], axis=1)

    full = np.empty((batch, seq_len + 1), dtype=np.int64)
    full[:, 0 : 2 * N : 2] = keys
    full[:, 1 : 2 * N : 2] = old
    full[:, 2 * N : rb_start] = filler[:, :gap]
    full[:, rb_start : rb_start + 2 * R : 2] = np.take_along_axis(keys, which, axis=1)
    full[:, rb_start + 1 : rb_start + 2 * R : 2] = new
    sep = rb_start + 2 * R + (F - gap)
    full[:, rb_start + 2 * R : sep] = filler[:, gap:]
    full[:, sep] = SEP
    q0 = sep + 1
    full[:, q0::2] = np.take_along_axis(keys, qorder, axis=1)
    full[:, q0 + 1 :: 2] = np.take_along_axis(latest, qorder, axis=1)

    inputs = full[:, :seq_len].astype(np.int32)
    targets = np.full((batch, seq_len), IGNORE, dtype=np.int32)
    scored = np.broadcast_to(q0 + 2 * np.arange(N), (batch, N)).astype(np.int64)
    np.put_along_axis(targets, scored, np.take_along_axis(latest, qorder, axis=1).astype(np.int32), axis=1)

    bind_pos = 2 * qorder
    rebind_pos = np.take_along_axis(rebind_pos_pair, qorder, axis=1)
    rebound = rebind_pos >= 0
    latest_pos = np.where(rebound, rebind_pos, bind_pos)
    meta = {
        "task": "rebinding",
        "scored_pos": scored.astype(np.int32),
        "query_key": np.take_along_axis(keys, qorder, axis=1).astype(np.int32),
        "target": np.take_along_axis(latest, qorder, axis=1).astype(np.int32),
        "old_value": np.take_along_axis(old, qorder, axis=1).astype(np.int32),
        "rebound": rebound,
        "bind_pos": bind_pos.astype(np.int32),
        "rebind_pos": rebind_pos.astype(np.int32),
        "distance": (scored - latest_pos).astype(np.int32),
        "rebind_distance": np.where(rebound, scored - rebind_pos, -1).astype(np.int32),
        "gap": gap,
    }
    return TaskBatch(inputs, targets, meta)


# ---------------------------------------------------------------------------------------------
# 4. zoology MQAR


def mqar(
    batch: int,
    seq_len: int,
    n_pairs: int,
    vocab_size: int = 8192,
    seed: int = 0,
    power_a: float = 0.01,
    random_non_queries: bool = True,
    *,
    uniform_gaps: bool = False,
) -> TaskBatch:
    """Zoology multi-query associative recall (``zoology/data/multiquery_ar.py`` semantics).

    Keys are ``n_pairs`` distinct tokens from ``[1, V/2)``, values distinct from ``[V/2, V)``
    (``V = vocab_size``); the context is ``k1 v1 .. kN vN``. In the remaining
    ``seq_len - 2N`` positions each key is re-inserted once at offset ``2g`` (``g`` drawn
    without replacement from ``0 .. (seq_len - 2N)//2 - 1`` with ``P(g) ∝ a (g+1)^(a-1)``,
    ``a = power_a``; the default 0.01 strongly favours short gaps and, as in zoology, the first
    keys of the context tend to get the shortest gaps). The value is NOT re-inserted: the
    target at the query-key position is its value and every other target is -100. All other
    positions are 0, or with ``random_non_queries`` uniform tokens from ``[0, V)`` (which, as
    in zoology, may include key/value tokens). ``uniform_gaps=True`` (or ``power_a=1``) draws
    the gaps uniformly, spreading queries over the whole tail -- useful for small-budget training.

    meta ``(batch, N)`` in context order: ``scored_pos`` (query positions), ``key``, ``value``,
    ``key_pos`` (= 2i), ``gap``, ``distance`` (= ``scored_pos - key_pos``).
    """
    batch = _pos_int("batch", batch)
    seq_len = _pos_int("seq_len", seq_len)
    n_pairs = _pos_int("n_pairs", n_pairs)
    vocab_size = _pos_int("vocab_size", vocab_size)
    seed = _seed(seed)
    power_a = _real("power_a", power_a)
    if power_a <= 0:
        raise ValueError(f"power_a must be > 0, got {power_a}")
    if not isinstance(random_non_queries, bool):
        raise TypeError(f"random_non_queries must be a bool, got {random_non_queries!r}")
    if not isinstance(uniform_gaps, bool):
        raise TypeError(f"uniform_gaps must be a bool, got {uniform_gaps!r}")
    if 4 * n_pairs > seq_len:
        raise ValueError(f"seq_len must be >= 4 * n_pairs = {4 * n_pairs}, got {seq_len}")
    half = vocab_size // 2
    if half - 1 < n_pairs or vocab_size - half < n_pairs:
        raise ValueError(
            f"vocab_size={vocab_size} gives {max(half - 1, 0)} keys and {vocab_size - half} values; "
            f"n_pairs={n_pairs} needs at least that many of each"
        )

    N = n_pairs
    rng = np.random.default_rng(seed)
    keys = 1 + _distinct(rng, batch, half - 1, N)
    vals = half + _distinct(rng, batch, vocab_size - half, N)
    space = (seq_len - 2 * N) // 2
    # Sampling N gaps without replacement with weights p, in draw order == taking the top N of
    # log p + Gumbel noise, sorted by score (Plackett-Luce); vectorised over the batch.
    if uniform_gaps or power_a == 1.0:
        logp = np.zeros(space)
    else:
        logp = math.log(power_a) + (power_a - 1.0) * np.log(np.arange(1, space + 1))
    score = logp[None, :] + rng.gumbel(size=(batch, space))
    top = np.argpartition(-score, N - 1, axis=1)[:, :N] if N < space else np.argsort(-score, axis=1)
    order = np.argsort(-np.take_along_axis(score, top, axis=1), axis=1)
    gaps = np.take_along_axis(top, order, axis=1)

    inputs = np.zeros((batch, seq_len), dtype=np.int64)
    inputs[:, 0 : 2 * N : 2] = keys
    inputs[:, 1 : 2 * N : 2] = vals
    qpos = 2 * N + 2 * gaps
    np.put_along_axis(inputs, qpos, keys, axis=1)
    targets = np.full((batch, seq_len), IGNORE, dtype=np.int32)
    np.put_along_axis(targets, qpos, vals.astype(np.int32), axis=1)
    if random_non_queries:
        noise = rng.integers(0, vocab_size, size=inputs.shape)
        zero = inputs == 0
        inputs[zero] = noise[zero]
    key_pos = np.broadcast_to(2 * np.arange(N), (batch, N))
    meta = {
        "task": "mqar",
        "scored_pos": qpos.astype(np.int32),
        "key": keys.astype(np.int32),
        "value": vals.astype(np.int32),
        "key_pos": key_pos.astype(np.int32),
        "gap": gaps.astype(np.int32),
        "distance": (qpos - key_pos).astype(np.int32),
    }
    return TaskBatch(inputs.astype(np.int32), targets, meta)
