"""Synthetic recall tasks for the Titans claims (pure numpy, seeded, zoology-style).

Every generator is a pure function of its knobs and an integer ``seed``: the same arguments
give bit-identical output, a different seed gives different data. Nothing here imports MLX;
callers convert the numpy arrays (``mx.array(batch.inputs)``).

Token tasks
===========
A token generator returns a :class:`TaskBatch`:

* ``inputs``  -- int32 ``(batch, T)`` token ids.
* ``targets`` -- int32 ``(batch, T)``; ``targets[b, t]`` is the token expected as the *next*
  token after ``inputs[b, :t+1]`` (language-model convention, already shifted), or
  :data:`IGNORE` (-100) where the position is not scored.
* ``meta``    -- a dict of numpy arrays / scalars for slicing accuracy. Every token task puts
  ``meta["task"]`` (its name), ``meta["scored_pos"]`` (int32 ``(batch, Q)``: the positions
  ``t`` with a scored target, padded with -1 where rows have fewer) and
  ``meta["distance"]`` (int32 ``(batch, Q)`` or ``(batch,)``: how many positions back the
  information needed at that scored position was written). Other per-query arrays share the
  ``(batch, Q)`` (or ``(batch,)`` when ``Q == 1``) layout, so :func:`accuracy_by` can group by
  any of them.

Shared vocabulary layout (every token task except :func:`mqar`)
---------------------------------------------------------------
::

    0 .. 7                      special tokens (see below; 6 and 7 are reserved, never emitted)
    [key_lo,    key_hi)         key tokens
    [value_lo,  value_hi)       value tokens
    [filler_lo, vocab_size)     filler / distractor / noise tokens

with ``n_filler = max(1, (vocab_size - 8) // 4)`` and the rest split evenly between keys and
values (keys get the smaller half). :func:`vocab_layout` returns the ranges; the four ranges
are disjoint and cover ``[0, vocab_size)``. Special tokens:

* ``PAD = 0``   -- padding (not emitted by the generators here)
* ``BLANK = 1`` -- blank / background token (selective copying)
* ``KEY = 2``   -- starts a binding ``KEY k v`` (far-pointer needles)
* ``QUERY = 3`` -- starts the final query ``QUERY k`` (far pointer)
* ``SEP = 4``   -- separates the context from the query block (rebinding)
* ``COPY = 5``  -- "now emit the tokens" marker (selective copying)

:func:`mqar` is the exception: it reproduces zoology's MQAR layout exactly (token 0 is the
non-query filler, keys are ``[1, V/2)``, values ``[V/2, V)``, random non-query tokens are
drawn from the whole ``[0, V)``), so its numbers are comparable with zoology's.

Continuous key/value streams
============================
For memory-level claims tested with fixed, untrained projections, :func:`kv_stream_far_pointer`,
:func:`kv_stream_pairs` and :func:`kv_stream_rebinding` return a :class:`KVStream`: float32
``keys (T, d_k)`` (unit l2 norm) and ``values (T, d_v)`` to write one step at a time, then
``queries (Q, d_k)`` to read after step ``query_index[q]`` (always ``T - 1``: after every
write) with expected read-outs ``targets (Q, d_v)``. Values are i.i.d. ``N(0, 1/d_v)`` per
entry (``E|v|^2 = 1``) unless ``normalize_values=True`` makes them unit-norm too.

Knob errors raise ``ValueError`` (wrong values, inconsistent knobs) or ``TypeError`` (wrong
types) whose message starts with the offending argument's name.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "BLANK",
    "COPY",
    "IGNORE",
    "KEY",
    "N_SPECIAL",
    "PAD",
    "QUERY",
    "SEP",
    "KVStream",
    "TaskBatch",
    "VocabLayout",
    "accuracy",
    "accuracy_by",
    "far_pointer",
    "kv_stream_far_pointer",
    "kv_stream_pairs",
    "kv_stream_rebinding",
    "mqar",
    "noisy_recall",
    "predictions_from",
    "rebinding",
    "selective_copy",
    "staleness",
    "vocab_layout",
]

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

    @property
    def keys(self) -> range:
        return range(self.key_lo, self.key_hi)

    @property
    def values(self) -> range:
        return range(self.value_lo, self.value_hi)

    @property
    def filler(self) -> range:
        return range(self.filler_lo, self.filler_hi)

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
# validation (names the argument; pure python so this module never needs MLX)


def _int(name: str, value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be {what} int, got {type(value).__name__} {value!r}")
    return int(value)


def _pos_int(name: str, value) -> int:
    value = _int(name, value, "a positive")
    if value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value}")
    return value


def _nonneg_int(name: str, value) -> int:
    value = _int(name, value, "a non-negative")
    if value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value}")
    return value


def _seed(seed) -> int:
    return _nonneg_int("seed", seed)


def _real(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def _unit_interval(name: str, value) -> float:
    value = _real(name, value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {value}")
    return value


def _choice(name: str, value, options) -> str:
    if value not in options:
        raise ValueError(f"{name} must be one of {list(options)}, got {value!r}")
    return value


def _depths(depth, batch: int) -> np.ndarray | None:
    """``None`` (random per row), a float, or ``batch`` floats, all in [0, 1]."""
    if depth is None:
        return None
    if isinstance(depth, numbers.Real) and not isinstance(depth, bool):
        return np.full(batch, _unit_interval("depth", depth))
    if isinstance(depth, (str, bytes, bool)):
        raise TypeError(f"depth must be a float in [0, 1], None or an array of them, got {depth!r}")
    try:
        arr = np.asarray(depth, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise TypeError(f"depth must be a float in [0, 1], None or an array of them, got {depth!r}") from e
    if arr.shape != (batch,):
        raise ValueError(f"depth must be a float, None or an array of shape ({batch},), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or arr.min() < 0.0 or arr.max() > 1.0:
        raise ValueError(f"depth must lie in [0, 1], got values in [{arr.min()}, {arr.max()}]")
    return arr


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
# 2. MAD selective copying and noisy in-context recall


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


def noisy_recall(
    batch: int,
    seq_len: int,
    vocab_size: int = 64,
    seed: int = 0,
    *,
    n_keys: int = 8,
    frac_noise: float = 0.2,
    score: str = "recall",
) -> TaskBatch:
    """MAD (noisy) in-context recall / induction with distractors.

    Each row fixes a map from ``n_keys`` distinct key tokens to value tokens (values drawn with
    replacement). The sequence is a run of 2-token slots: with probability ``frac_noise`` a slot
    is two random filler-range noise tokens, otherwise it is ``k v`` with ``k`` uniform over the
    row's keys and ``v`` its bound value -- so keys recur with the same value. (``frac_noise=0``
    is plain MAD in-context recall.) ``score="recall"`` scores, at each recurring key position,
    its value (MAD's multi-query test targets); ``score="all"`` returns the full next-token
    targets (MAD's training targets) while ``meta`` still lists the recall positions.

    meta: ``scored_pos`` / ``distance`` / ``key`` / ``value`` ``(batch, Qmax)`` padded with -1
    (recall positions only; ``distance`` is back to the previous occurrence of the same key);
    ``n_recall`` ``(batch,)``; ``kv_keys`` / ``kv_values`` ``(batch, n_keys)``.
    """
    batch = _pos_int("batch", batch)
    seq_len = _pos_int("seq_len", seq_len)
    layout = vocab_layout(vocab_size)
    seed = _seed(seed)
    n_keys = _pos_int("n_keys", n_keys)
    frac_noise = _real("frac_noise", frac_noise)
    if not 0.0 <= frac_noise < 1.0:
        raise ValueError(f"frac_noise must lie in [0, 1), got {frac_noise}")
    score = _choice("score", score, ("recall", "all"))
    if n_keys > layout.n_keys:
        raise ValueError(f"n_keys={n_keys} exceeds the {layout.n_keys} key tokens of vocab_size={layout.vocab_size}")
    if seq_len < 4:
        raise ValueError(f"seq_len must be >= 4 (two key-value slots), got {seq_len}")

    rng = np.random.default_rng(seed)
    S = seq_len // 2 + 1  # 2S >= seq_len + 1 tokens; the extra ones are cut
    kv_keys = layout.key_lo + _distinct(rng, batch, layout.n_keys, n_keys)
    kv_vals = rng.integers(layout.value_lo, layout.value_hi, size=(batch, n_keys))
    noise = rng.random((batch, S)) < frac_noise
    kidx = rng.integers(0, n_keys, size=(batch, S))
    noise_tok = rng.integers(layout.filler_lo, layout.filler_hi, size=(batch, S, 2))

    seq = np.empty((batch, S, 2), dtype=np.int64)
    seq[..., 0] = np.take_along_axis(kv_keys, kidx, axis=1)
    seq[..., 1] = np.take_along_axis(kv_vals, kidx, axis=1)
    seq[noise] = noise_tok[noise]
    seq = seq.reshape(batch, 2 * S)[:, : seq_len + 1]

    # previous occurrence (slot index) of the same key, among non-noise slots
    prev = np.full((batch, S), -1, dtype=np.int64)
    slot = np.arange(S)
    for j in range(n_keys):
        occ = (kidx == j) & ~noise
        last = np.maximum.accumulate(np.where(occ, slot, -1), axis=1)
        before = np.concatenate([np.full((batch, 1), -1), last[:, :-1]], axis=1)
        prev = np.where(occ, before, prev)
    key_pos = 2 * slot  # key of slot s sits at 2s; its value (the target there) at 2s + 1
    recall = (prev >= 0) & (key_pos < seq_len)[None, :]

    inputs = seq[:, :seq_len].astype(np.int32)
    if score == "all":
        targets = seq[:, 1 : seq_len + 1].astype(np.int32)
    else:
        targets = np.full((batch, seq_len), IGNORE, dtype=np.int32)
    rows_pos, rows_dist, rows_key, rows_val = [], [], [], []
    for b in range(batch):
        s = np.nonzero(recall[b])[0]
        pos = key_pos[s]
        if score == "recall":
            targets[b, pos] = seq[b, pos + 1]
        rows_pos.append(pos)
        rows_dist.append(2 * (s - prev[b, s]))
        rows_key.append(seq[b, pos])
        rows_val.append(seq[b, pos + 1])
    meta = {
        "task": "noisy_recall",
        "scored_pos": _pad_ragged(rows_pos),
        "distance": _pad_ragged(rows_dist),
        "key": _pad_ragged(rows_key),
        "value": _pad_ragged(rows_val),
        "n_recall": recall.sum(axis=1).astype(np.int32),
        "kv_keys": kv_keys.astype(np.int32),
        "kv_values": kv_vals.astype(np.int32),
        "frac_noise": frac_noise,
        "score": score,
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


# ---------------------------------------------------------------------------------------------
# 5. metrics


def predictions_from(logits_or_predictions, targets) -> np.ndarray:
    """Integer predictions ``(batch, T)``: argmax over the last axis of logits ``(batch, T, V)``,
    or the array itself when it already has the shape of ``targets``."""
    x = np.asarray(logits_or_predictions)
    t = np.asarray(targets)
    if x.ndim == t.ndim + 1 and x.shape[:-1] == t.shape:
        return np.argmax(x, axis=-1)
    if x.shape == t.shape:
        if not np.issubdtype(x.dtype, np.integer):
            raise TypeError(f"logits_or_predictions with the shape of targets must hold integer ids, got {x.dtype}")
        return x
    raise ValueError(
        f"logits_or_predictions must have shape {t.shape} (predictions) or {t.shape + ('V',)} (logits), "
        f"got {x.shape}"
    )


def accuracy(logits_or_predictions, targets) -> float:
    """Exact-match accuracy over the scored positions (``targets != -100``); NaN if none."""
    t = np.asarray(targets)
    pred = predictions_from(logits_or_predictions, t)
    mask = t != IGNORE
    n = int(mask.sum())
    return float((pred[mask] == t[mask]).sum() / n) if n else float("nan")


def _per_query_correct(logits_or_predictions, batch: TaskBatch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pred = predictions_from(logits_or_predictions, batch.targets)
    pos = np.asarray(batch.meta["scored_pos"])
    valid = pos >= 0
    safe = np.where(valid, pos, 0)
    correct = np.take_along_axis(pred, safe, axis=1) == np.take_along_axis(batch.targets, safe, axis=1)
    return pred, correct, valid


def accuracy_by(meta_key: str, logits_or_predictions, batch: TaskBatch, bins=None) -> dict:
    """Accuracy at the scored positions grouped by ``batch.meta[meta_key]``.

    ``meta[meta_key]`` must have shape ``(batch, Q)`` like ``meta["scored_pos"]`` or ``(batch,)``
    (one value per row). Without ``bins`` each distinct value is a group; with ``bins`` (an
    increasing sequence of edges) groups are ``(lo, hi)`` bins, ``[lo, hi)`` except the last,
    which is closed; values outside the edges are dropped. Returns ``{group: (accuracy, count)}``
    ordered by group, with python scalars as keys.
    """
    if meta_key not in batch.meta:
        raise ValueError(f"meta_key {meta_key!r} not in batch.meta (has {sorted(batch.meta)})")
    _, correct, valid = _per_query_correct(logits_or_predictions, batch)
    vals = np.asarray(batch.meta[meta_key])
    if vals.ndim == 1 and vals.shape[0] == correct.shape[0]:
        vals = np.broadcast_to(vals[:, None], correct.shape)
    if vals.shape != correct.shape:
        raise ValueError(f"meta[{meta_key!r}] has shape {vals.shape}; expected {correct.shape} or ({correct.shape[0]},)")
    v, c = vals[valid], correct[valid]
    out: dict = {}
    if bins is None:
        for g in np.unique(v):
            sel = v == g
            out[g.item()] = (float(c[sel].mean()), int(sel.sum()))
        return out
    edges = np.asarray(bins, dtype=np.float64)
    if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError(f"bins must be an increasing sequence of at least 2 edges, got {bins!r}")
    idx = np.searchsorted(edges, v, side="right") - 1
    idx[v == edges[-1]] = len(edges) - 2
    for i in range(len(edges) - 1):
        sel = idx == i
        n = int(sel.sum())
        lo, hi = np.asarray(bins)[i].item(), np.asarray(bins)[i + 1].item()
        out[(lo, hi)] = (float(c[sel].mean()) if n else float("nan"), n)
    return out


def staleness(logits_or_predictions, batch: TaskBatch) -> float:
    """Rebinding: fraction of REBOUND queries answered with the old (overwritten) value."""
    if batch.meta.get("task") != "rebinding":
        raise ValueError(f"batch must come from rebinding(), got task {batch.meta.get('task')!r}")
    pred = predictions_from(logits_or_predictions, batch.targets)
    pos = batch.meta["scored_pos"]
    rebound = batch.meta["rebound"]
    n = int(rebound.sum())
    if not n:
        return float("nan")
    answered = np.take_along_axis(pred, pos, axis=1)
    return float((answered == batch.meta["old_value"])[rebound].sum() / n)


# ---------------------------------------------------------------------------------------------
# 6. continuous key/value streams (memory-level claims)


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
    if not isinstance(orthogonal_keys, bool):
        raise TypeError(f"orthogonal_keys must be a bool, got {orthogonal_keys!r}")
    if orthogonal_keys and n_pairs > d_k:
        raise ValueError(f"n_pairs={n_pairs} orthogonal keys need d_k >= n_pairs, got d_k={d_k}")
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
    if not isinstance(orthogonal_keys, bool):
        raise TypeError(f"orthogonal_keys must be a bool, got {orthogonal_keys!r}")
    if orthogonal_keys and n_pairs > d_k:
        raise ValueError(f"n_pairs={n_pairs} orthogonal keys need d_k >= n_pairs, got d_k={d_k}")
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
