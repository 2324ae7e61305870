"""Read-out helpers for the token-mixer claims (Titans memory vs attention vs retention).

The claims of ``claims/test_{recall,interference,drift,capacity,gating,stability}.py`` compare the
token mixers themselves on continuous key/value streams (``titans.tasks.kv_stream_*``), with
fixed, untrained projections: every mixer sees the stream's keys, values and queries as they are
(unit-norm keys, values ``N(0, 1/d_v)``), so differences come from the mixers, not from training.

Decoding (shared by every mixer)
================================
A mixer's read-out ``y`` (a ``d_v`` vector, or one vector per head for RetNet) is decoded by
**nearest neighbour in cosine** among a **candidate set** and scored by exact match:

* candidates = every distinct value written to that stream up to the read (needle, filler values,
  distractors, earlier bindings of the same key ...) plus ``N_FOILS`` = 64 *foils*: fresh values
  from the same distribution that were never written (so an uninformative read-out does not hit
  the target by luck when the stream has few distinct values);
* chance = 1 / (number of candidates);
* a non-finite read-out counts as wrong.

Mixers
======
Titans memory (:class:`MemorySpec`, :func:`memory_reads`)
    ``titans.ops.memory.memory_scan`` semantics: per token ``S_t = η S_{t-1} − θ ∇‖M(k_t) − v_t‖²``,
    ``M_t = (1 − α) M_{t-1} + S_t``; read ``y = M_t(q)`` after token ``t``'s update (eq. 13-15).
    ``depth`` 1 is the matrix memory (initial weights 0); ``depth ≥ 2`` is the SiLU MLP of
    ``memory_scan`` with hidden width ``hidden`` (default ``d_k``), initialised like
    ``titans.layers.NeuralMemory`` (every layer ``N(0, 1/d_in)``). Gates are constants (untrained).

    ``chunk == 1`` is the token recurrence itself (eq. 13-14: every gradient at the current
    weights). ``memory_scan(chunk_size=1)`` pays MLX's per-call dispatch overhead on every token,
    so :func:`memory_reads` runs that case with :func:`online_scan`, a NumPy transcription of the
    same recurrence (hand-written backprop of the SiLU MLP), and every claim that uses it first calls
    :func:`check_online_against_memory_scan` on a prefix of its own data (tolerance 1e-4 relative).
    ``chunk > 1`` (the chunked-parallel form of eq. 16-18, gradients at chunk-start weights) runs
    ``memory_scan`` itself, streamed in pieces with its state.

    Default gates (:data:`TITANS_DEFAULT`, the "recall default"): ``η = 0.9`` (the initial momentum
    gate σ(2.2) of ``MemoryConfig.paper()``), ``α = 0`` (no forgetting: the paper's ``α → 0 keeps
    the past``; forgetting is swept in the gating/drift claims), ``chunk = 1``, and θ chosen per
    depth/width/chunk on a dev task by :func:`calibrated` (grid :data:`THETA_GRID`; 8 pairs written
    once, then 256 filler writes, recall of the 8; seeds :data:`DEV_SEEDS`, used by no claim's
    evaluation streams; gating.forgetting-helps selects its α on dev streams at the same seeds);
    the θ chosen is in each claim's note (:meth:`MemorySpec.label`), the dev recall per θ in
    recall.far-pointer-titans' (:func:`calibration_record`). ``TITANS_DEFAULT.theta = 0.05`` (one
    write, carried by momentum, moves a unit key's read-out by ``2θ/(1−η) = 1``) is only the
    placeholder that :func:`calibrated` replaces. A θ with ``2θ/(1−η) > 1`` overshoots: the dev
    task (a repeated filler) can tolerate it where streams of novel pairs do not
    (recall.random-haystack-capacity, gating.momentum-helps, the needles haystack of
    recall.far-pointer-titans).
    With constant gates the chunked form is fragile on streams whose keys repeat inside a chunk
    (the chunk's gradients, all taken at the chunk-start weights, add coherently); that is
    measured, not hidden (``test_gating.py``, reviewer.memory-size-refresh).

Softmax attention (:func:`attention_reads`)
    ``titans.ops.attention`` of one query over the written keys (bottom-right aligned: the query
    sits at the read position), values as written. Keys and queries are unit vectors, so the
    scale is a temperature on cosines; we use the QKNorm initial scale (Henry et al. 2020)
    ``τ = log2(L² − L)`` for a context of ``L`` tokens (:func:`qknorm_scale`): 26 at 8k, 32 at 64k.
    ``window=w`` is sliding-window attention (the last ``w`` keys, the query's own position
    included); ``prefix`` adds persistent key/value pairs that every query sees (``n_prefix``).

RetNet retention (:func:`retention_reads`)
    Per head ``o_h = Σ_{m ≤ t} γ_h^{t−m} (q · k_m) v_m`` (the recurrent form ``S_t = γ S_{t−1} +
    k_t v_tᵀ``, ``o = q S_t``; RetNet eq. 6) with ``γ_h = 1 − 2^{−5−h}``, ``h = 0..7`` (8 heads,
    fla's default; slowest horizon ``1/(1−γ_7) = 4096`` tokens), all heads sharing the identity
    projections. RetNet normalises each head (GroupNorm) before its output projection, so the
    decoder scores a candidate by the **mean over heads of the cosine** between ``o_h`` and the
    candidate (= cosine of the concatenated, per-head-normalised read-out with the candidate
    repeated per head). :func:`check_retention_against_ops` compares the closed form with
    ``titans.ops.retention_recurrent``.

Hybrid, MAC-style (:func:`hybrid_reads`)
    Sliding-window attention whose context also holds one *memory token*: the memory read-out
    ``M_t(q)`` as value, with a fixed logit ``κ τ`` (``κ = 0.75``): an exact key match inside the
    window (logit ``τ``) still dominates, while unrelated window keys (cosine ≈ 0 ± 1/√d_k, i.e.
    far below 0.75) lose to the memory token. In MAC the retrieved memory tokens are part of the
    attention context (eq. 21-23); with untrained projections their attention logit cannot come
    from a learned key, so it is this fixed constant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Callable, Sequence

import numpy as np

import titans  # noqa: F401  (BLAS before mlx)
import mlx.core as mx

from titans.ops.memory import memory_read, memory_scan
from titans.ops import attention, retention_recurrent, retnet_gammas

N_FOILS = 64
RETNET_HEADS = 8
HYBRID_KAPPA = 0.75

__all__ = [
    "ATTENTION_MIXERS",
    "HYBRID_KAPPA",
    "MemorySpec",
    "N_FOILS",
    "RETNET_HEADS",
    "TITANS_DEFAULT",
    "attention_reads",
    "DEV_SEEDS",
    "THETA_GRID",
    "calibrated",
    "calibration_record",
    "candidate_first_index",
    "dev_recall",
    "is_target",
    "check_online_against_memory_scan",
    "check_retention_against_ops",
    "chunked_reads",
    "decode",
    "first_below",
    "foils",
    "hybrid_name",
    "hybrid_reads",
    "init_weights",
    "largest_passing_any",
    "memory_name",
    "memory_reads",
    "mlp_read",
    "online_scan",
    "qknorm_scale",
    "read_and_score",
    "recall_specs",
    "recall_vs_distance",
    "retention_reads",
    "retnet_decode",
    "score_reads",
    "unit",
]


# --------------------------------------------------------------------------------------------
# decoding
# --------------------------------------------------------------------------------------------


def unit(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Rows scaled to unit l2 norm (zero rows stay zero)."""
    x = np.asarray(x, dtype=np.float64)
    n = np.linalg.norm(x, axis=axis, keepdims=True)
    return x / np.where(n > 0, n, 1.0)


def foils(seed: int, n: int, d_v: int) -> np.ndarray:
    """``n`` never-written values ``N(0, 1/d_v)`` (the value distribution of ``titans.tasks``)."""
    rng = np.random.default_rng([7919, int(seed)])
    return (rng.standard_normal((n, d_v)) / math.sqrt(d_v)).astype(np.float32)


def decode(y: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Index of the candidate closest in cosine to each read-out.

    ``y`` (..., d) and ``candidates`` (..., C, d) with broadcastable leading dims; returns (...),
    with -1 where the read-out is not finite (always wrong).
    """
    y = np.asarray(y, dtype=np.float64)
    finite = np.all(np.isfinite(y), axis=-1)
    y = np.where(finite[..., None], y, 0.0)
    scores = np.einsum("...d,...cd->...c", unit(y), unit(candidates))
    return np.where(finite, np.argmax(scores, axis=-1), -1)


def retnet_decode(o: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Decode per-head retention read-outs ``o`` (..., H, d) by the mean over heads of the cosine."""
    o = np.asarray(o, dtype=np.float64)
    finite = np.all(np.isfinite(o), axis=(-1, -2))
    o = np.where(finite[..., None, None], o, 0.0)
    scores = np.einsum("...hd,...cd->...c", unit(o), unit(candidates)) / o.shape[-2]
    return np.where(finite, np.argmax(scores, axis=-1), -1)


def is_target(y: np.ndarray, candidates: np.ndarray, target: np.ndarray, *, retnet: bool = False) -> np.ndarray:
    """Exact match: whether the decoded candidate equals ``target`` (..., d_v).

    ``y`` (..., d_v) (per-head (..., H, d_v) with ``retnet``), ``candidates`` (..., C, d_v)."""
    idx = (retnet_decode if retnet else decode)(y, candidates)
    picked = np.take_along_axis(candidates, np.maximum(idx, 0)[..., None, None], axis=-2)[..., 0, :]
    return (idx >= 0) & np.all(picked == target, axis=-1)


def candidate_first_index(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of ``values`` (T, d) and the step at which each was first written.

    The candidates of a read after step ``t`` are the distinct rows with ``first <= t`` (plus the
    foils)."""
    values = np.ascontiguousarray(values)
    rows = values.view(np.dtype((np.void, values.dtype.itemsize * values.shape[1])))[:, 0]
    _, first = np.unique(rows, return_index=True)
    first = np.sort(first)
    return values[first], first


def first_below(xs: Sequence[float], ys: Sequence[float], threshold: float):
    """The first ``x`` (in the given order) whose ``y`` is below ``threshold``; None if none is."""
    for x, y in zip(xs, ys):
        if y < threshold:
            return x
    return None


def largest_passing_any(xs: Sequence[float], ys: Sequence[float], threshold: float) -> float:
    """The largest ``x`` whose ``y >= threshold`` (0 if none)."""
    passing = [x for x, y in zip(xs, ys) if y >= threshold]
    return max(passing) if passing else 0


# --------------------------------------------------------------------------------------------
# Titans memory
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemorySpec:
    """A Titans memory with constant gates (see the module docstring)."""

    depth: int = 1
    theta: float = 0.05
    eta: float = 0.9
    alpha: float = 0.0
    chunk: int = 1
    hidden: int | None = None  # hidden width of a deep memory (default: d_k)
    init: str = "default"  # "default": matrix memory 0, deep memory N(0, 1/d_in) per layer

    def but(self, **changes) -> "MemorySpec":
        return replace(self, **changes)

    def label(self) -> str:
        extra = f", hidden {self.hidden}" if self.hidden else ""
        return (f"L_M={self.depth}{extra}, θ={self.theta:g}, η={self.eta:g}, α={self.alpha:g}, "
                f"chunk={self.chunk}")


TITANS_DEFAULT = MemorySpec()


def init_weights(spec: MemorySpec, d_k: int, d_v: int, seed: int) -> list[np.ndarray]:
    """Initial memory weights ``(d_out, d_in)`` per layer (float32)."""
    if spec.depth == 1 and spec.init == "default":
        return [np.zeros((d_v, d_k), np.float32)]
    hidden = spec.hidden or d_k
    widths = [d_k] + [hidden] * (spec.depth - 1) + [d_v]
    rng = np.random.default_rng([104729, int(seed), spec.depth, hidden])
    return [
        (rng.standard_normal((d_out, d_in)) / math.sqrt(d_in)).astype(np.float32)
        for d_in, d_out in zip(widths[:-1], widths[1:])
    ]


def _gate(x, B: int, T: int) -> np.ndarray:
    """A gate given as a scalar, (T,) or (B, T) array -> (B, T) float32 view."""
    a = np.asarray(x, dtype=np.float32)
    return np.broadcast_to(a, (B, T))


def mlp_read(ws: Sequence[np.ndarray], x: np.ndarray) -> np.ndarray:
    """``M(x)`` in NumPy for x (B, Q, d_k) with per-row weights ws[l] (B, d_out, d_in) (the read of
    :func:`online_scan`'s memory)."""
    h = x
    for layer, w in enumerate(ws):
        h = h @ np.swapaxes(w, -1, -2)
        if layer < len(ws) - 1:
            h = h / (1.0 + np.exp(-h))
    return h


@dataclass
class OnlineResult:
    reads: np.ndarray  # (B, R, Q, d_v)
    weights: list  # final weights, per layer (B, d_out, d_in)
    lr_used: np.ndarray | None = None  # (B, T) when theta_fn set the write rates
    surprise: np.ndarray | None = None  # (B, T) ‖M_{t-1}(k_t) − v_t‖ when recorded
    weight_norms: np.ndarray | None = None  # (B, R) Frobenius norm over layers at each read
    extra: dict = field(default_factory=dict)


def online_scan(
    weights: Sequence[np.ndarray],
    keys: np.ndarray,
    values: np.ndarray,
    lr,
    momentum,
    decay,
    read_at: Sequence[int],
    queries: np.ndarray,
    *,
    theta_fn: Callable[[np.ndarray, int], np.ndarray] | None = None,
    record_surprise: bool = False,
    momenta: Sequence[np.ndarray] | None = None,
    row_index: np.ndarray | None = None,
) -> OnlineResult:
    """The token recurrence of ``memory_scan`` with ``chunk_size=1`` in NumPy (float32).

    ``weights[l]`` (d_out, d_in) or (B, d_out, d_in); ``keys`` (B, T, d_k), ``values`` (B, T, d_v);
    gates scalars, (T,) or (B, T). After token ``t`` for each ``t`` in ``read_at`` (sorted), reads
    ``M_t(q)`` for ``queries`` (B, Q, d_k) or per read (B, R, Q, d_k).

    ``theta_fn(surprise, t) -> θ_t`` (B,) replaces ``lr``: ``surprise`` is the momentary error
    ``‖M_{t-1}(k_t) − v_t‖`` at the current weights, before the update (the surprise-gated write of
    test_drift); the rates used are returned as ``lr_used`` so that ``memory_scan`` can replay them.
    ``momenta`` continues from a previous call's ``extra["momenta"]`` (with its final ``weights``),
    so a long stream can be fed in pieces. ``row_index`` (B,) runs B memories on the streams
    ``keys[row_index]`` without copying them (e.g. one stream under several gate settings); the
    queries and gates are then per memory row.
    """
    keys = np.asarray(keys, np.float32)
    values = np.asarray(values, np.float32)
    _, T, _ = keys.shape
    row_index = None if row_index is None else np.asarray(row_index, np.int64)
    B = keys.shape[0] if row_index is None else len(row_index)
    read_at = np.asarray(read_at, dtype=np.int64)
    if read_at.size and (np.any(np.diff(read_at) <= 0) or read_at[0] < 0 or read_at[-1] >= T):
        raise ValueError("read_at must be strictly increasing positions inside the stream")
    queries = np.asarray(queries, np.float32)
    per_read_queries = queries.ndim == 4
    ws = [np.array(np.broadcast_to(w, (B, *w.shape[-2:])), dtype=np.float32) for w in weights]
    ss = ([np.zeros_like(w) for w in ws] if momenta is None
          else [np.array(np.broadcast_to(m, w.shape), dtype=np.float32) for m, w in zip(momenta, ws)])
    bufs = [np.empty_like(w) for w in ws]
    L = len(ws)
    lr_a = None if theta_fn is not None else _gate(lr, B, T)
    eta_a, alpha_a = _gate(momentum, B, T), _gate(decay, B, T)
    eta_const = np.all(eta_a == eta_a.flat[0]) if eta_a.size else True
    alpha_const = np.all(alpha_a == alpha_a.flat[0]) if alpha_a.size else True
    eta0, alpha0 = float(eta_a.flat[0]), float(alpha_a.flat[0])
    lr_used = np.zeros((B, T), np.float32) if theta_fn is not None else None
    surprise = np.zeros((B, T), np.float32) if (record_surprise or theta_fn is not None) else None
    d_v = values.shape[-1]
    Q = queries.shape[-2]
    reads = np.zeros((B, len(read_at), Q, d_v), np.float32)
    norms = np.zeros((B, len(read_at)), np.float64)
    r = 0
    for t in range(T):
        k = keys[:, t] if row_index is None else keys[row_index, t]
        v_t = values[:, t] if row_index is None else values[row_index, t]
        # forward at M_{t-1}, keeping layer inputs and SiLU slopes
        inputs, slopes = [k], []
        h = k
        for layer, w in enumerate(ws):
            z = (w @ h[:, :, None])[:, :, 0]
            if layer < L - 1:
                s = 1.0 / (1.0 + np.exp(-z))
                h = z * s
                inputs.append(h)
                slopes.append(s * (1.0 + z * (1.0 - s)))
        err = z - v_t
        if surprise is not None:
            surprise[:, t] = np.sqrt(np.sum(np.square(err, dtype=np.float64), axis=-1))
        if theta_fn is not None:
            theta = np.asarray(theta_fn(surprise[:, t], t), np.float32).reshape(B)
            lr_used[:, t] = theta
        else:
            theta = lr_a[:, t]
        g = 2.0 * err
        eta = eta0 if eta_const else eta_a[:, t, None, None]
        keep = (1.0 - alpha0) if alpha_const else (1.0 - alpha_a[:, t, None, None])
        for layer in range(L - 1, -1, -1):
            if layer > 0:
                g_next = (np.swapaxes(ws[layer], -1, -2) @ g[:, :, None])[:, :, 0] * slopes[layer - 1]
            # S ← η S − θ g aᵀ;  W ← (1 − α) W + S   (in place: this loop is memory-bound)
            np.multiply((-theta[:, None] * g)[:, :, None], inputs[layer][:, None, :], out=bufs[layer])
            ss[layer] *= eta
            ss[layer] += bufs[layer]
            if not (alpha_const and alpha0 == 0.0):
                ws[layer] *= keep
            ws[layer] += ss[layer]
            if layer > 0:
                g = g_next
        while r < len(read_at) and read_at[r] == t:
            q = queries[:, r] if per_read_queries else queries
            reads[:, r] = mlp_read(ws, q)
            norms[:, r] = np.sqrt(sum(np.sum(np.square(w, dtype=np.float64), axis=(-1, -2)) for w in ws))
            r += 1
    return OnlineResult(reads, ws, lr_used, surprise, norms, extra={"momenta": ss})


def chunked_reads(
    spec: MemorySpec,
    weights: Sequence[np.ndarray],
    keys: np.ndarray,
    values: np.ndarray,
    read_at: Sequence[int],
    queries: np.ndarray,
    *,
    lr=None,
    momentum=None,
    decay=None,
    max_piece: int = 8192,
) -> OnlineResult:
    """``memory_scan`` (chunked-parallel form, ``spec.chunk``) streamed in pieces that end at the
    read positions; reads with ``memory_read`` on the carried state."""
    keys = np.asarray(keys, np.float32)
    B, T, _ = keys.shape
    lr = spec.theta if lr is None else lr
    momentum = spec.eta if momentum is None else momentum
    decay = spec.alpha if decay is None else decay
    gates = [mx.array(np.ascontiguousarray(_gate(g, B, T))) for g in (lr, momentum, decay)]
    k = mx.array(keys)
    v = mx.array(np.asarray(values, np.float32))
    ws = tuple(mx.array(np.asarray(w, np.float32)) for w in weights)
    queries = np.asarray(queries, np.float32)
    per_read_queries = queries.ndim == 4
    read_at = [int(t) for t in read_at]
    reads = np.zeros((B, len(read_at), queries.shape[-2], values.shape[-1]), np.float32)
    norms = np.zeros((B, len(read_at)), np.float64)
    bounds = sorted(set([t + 1 for t in read_at] + list(range(max_piece, T, max_piece)) + [T]))
    state, start, r = None, 0, 0
    for stop in bounds:
        if stop <= start:
            continue
        _, state = memory_scan(ws, k[:, start:stop], k[:, start:stop], v[:, start:stop],
                               *(g[:, start:stop] for g in gates), spec.chunk, state, validate=False)
        mx.eval(*state.arrays)
        start = stop
        while r < len(read_at) and read_at[r] == stop - 1:
            q = queries[:, r] if per_read_queries else queries
            y = memory_read(state.weights, mx.array(q))
            reads[:, r] = np.array(y)
            norms[:, r] = np.sqrt(sum(np.sum(np.square(np.array(w), dtype=np.float64), axis=(-1, -2))
                                      for w in state.weights))
            r += 1
    return OnlineResult(reads, [np.array(w) for w in state.weights], None, None, norms)


def memory_reads(
    spec: MemorySpec,
    keys: np.ndarray,
    values: np.ndarray,
    read_at: Sequence[int],
    queries: np.ndarray,
    *,
    seed: int = 0,
    weights: Sequence[np.ndarray] | None = None,
    lr=None,
    momentum=None,
    decay=None,
    theta_fn=None,
    record_surprise: bool = False,
    row_index: np.ndarray | None = None,
) -> OnlineResult:
    """Read-outs of the memory ``spec`` after the steps ``read_at`` (see :func:`online_scan`).

    Gates default to the spec's constants; ``lr``/``momentum``/``decay`` override them per token.
    """
    d_k, d_v = keys.shape[-1], values.shape[-1]
    if weights is None:
        weights = init_weights(spec, d_k, d_v, seed)
    lr = spec.theta if lr is None else lr
    momentum = spec.eta if momentum is None else momentum
    decay = spec.alpha if decay is None else decay
    if spec.chunk == 1:
        return online_scan(weights, keys, values, lr, momentum, decay, read_at, queries,
                           theta_fn=theta_fn, record_surprise=record_surprise, row_index=row_index)
    if row_index is not None:
        keys, values = keys[row_index], values[row_index]
    if theta_fn is not None:
        raise ValueError("theta_fn needs the token recurrence (chunk 1)")
    return chunked_reads(spec, weights, keys, values, read_at, queries, lr=lr, momentum=momentum,
                         decay=decay)


THETA_GRID = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5)
DEV_SEEDS = tuple(range(90000, 90008))


def dev_recall(spec: MemorySpec, d_k: int, d_v: int, thetas: Sequence[float] = THETA_GRID) -> np.ndarray:
    """Mean recall of the dev task for each θ: 8 pairs written once, 256 filler writes, then all 8
    keys queried (``kv_stream_rebinding(n_pairs=8, n_rebinds=0, tail=256, haystack="filler")``,
    seeds :data:`DEV_SEEDS`, never used by a claim). Candidates: the stream's values + foils."""
    from titans.tasks import kv_stream_rebinding

    streams = [kv_stream_rebinding(d_k, d_v, 8, 0, seed=s, tail=256, haystack="filler") for s in DEV_SEEDS]
    K = np.stack([s.keys for s in streams] * len(thetas))
    V = np.stack([s.values for s in streams] * len(thetas))
    Q = np.stack([s.queries for s in streams] * len(thetas))
    T = K.shape[1]
    lr = np.repeat(np.asarray(thetas, np.float32), len(streams))[:, None] * np.ones((1, T), np.float32)
    with np.errstate(all="ignore"):
        y = memory_reads(spec, K, V, [T - 1], Q, lr=lr, seed=0).reads[:, 0]  # (B, 8, d_v)
    hits = []
    for b in range(K.shape[0]):
        s = streams[b % len(streams)]
        cands = np.concatenate([candidate_first_index(s.values)[0], foils(b % len(streams), N_FOILS, d_v)])
        hits.append(is_target(y[b], cands[None], s.targets).mean())
    return np.asarray(hits).reshape(len(thetas), len(streams)).mean(axis=1)


_CALIBRATED: dict = {}


def calibrated(spec: MemorySpec, d_k: int, d_v: int | None = None) -> MemorySpec:
    """``spec`` with θ set to the :data:`THETA_GRID` value of best :func:`dev_recall` (ties: the
    smaller θ). The gates η, α, the depth, width and chunk of ``spec`` are kept."""
    d_v = d_k if d_v is None else d_v
    key = (spec.but(theta=0.0), d_k, d_v)
    if key not in _CALIBRATED:
        scores = dev_recall(spec, d_k, d_v)
        _CALIBRATED[key] = (THETA_GRID[int(np.argmax(scores))], scores)
    return spec.but(theta=_CALIBRATED[key][0])


def calibration_record(spec: MemorySpec, d_k: int, d_v: int | None = None):
    """``(θ grid, dev recall per θ)`` behind :func:`calibrated` (for the reports)."""
    d_v = d_k if d_v is None else d_v
    calibrated(spec, d_k, d_v)
    return list(THETA_GRID), [float(x) for x in _CALIBRATED[(spec.but(theta=0.0), d_k, d_v)][1]]


def check_online_against_memory_scan(
    spec: MemorySpec,
    keys: np.ndarray,
    values: np.ndarray,
    *,
    seed: int = 0,
    steps: int = 128,
    rows: int = 4,
    lr=None,
    momentum=None,
    decay=None,
) -> float:
    """Max relative difference between :func:`online_scan` and ``memory_scan(chunk_size=1)``.

    Runs both on the first ``steps`` tokens of the first ``rows`` rows, with ``q_t = k_t`` read at
    every step, gates as in :func:`memory_reads` (or the given per-token arrays, e.g. the rates a
    surprise-gated run used). Returns ``max|Δy| / max|y|``.
    """
    keys = np.asarray(keys[:rows, :steps], np.float32)
    values = np.asarray(values[:rows, :steps], np.float32)
    B, T, d_k = keys.shape
    weights = init_weights(spec, d_k, values.shape[-1], seed)

    def cut(g, default):
        g = default if g is None else g
        a = np.asarray(g, np.float32)
        return a[:rows, :steps] if a.ndim == 2 else a[:steps] if a.ndim == 1 else a

    lr_, eta_, alpha_ = cut(lr, spec.theta), cut(momentum, spec.eta), cut(decay, spec.alpha)
    ours = online_scan(weights, keys, values, lr_, eta_, alpha_, np.arange(T), keys[:, :, None, :])
    y_ours = ours.reads[:, :, 0]
    gates = [mx.array(np.ascontiguousarray(_gate(g, B, T))) for g in (lr_, eta_, alpha_)]
    k = mx.array(keys)
    y_ref, _ = memory_scan(tuple(mx.array(w) for w in weights), k, k, mx.array(values), *gates, 1)
    y_ref = np.array(y_ref)
    scale = max(float(np.max(np.abs(y_ref))), 1e-12)
    return float(np.max(np.abs(y_ref - y_ours)) / scale)


# --------------------------------------------------------------------------------------------
# attention
# --------------------------------------------------------------------------------------------


def qknorm_scale(length: int) -> float:
    """QKNorm's initial temperature ``log2(L² − L)`` for unit queries/keys in a context of L."""
    length = max(int(length), 2)
    return math.log2(length * length - length)


def attention_reads(
    keys: np.ndarray,
    values: np.ndarray,
    read_at: Sequence[int],
    queries: np.ndarray,
    *,
    scale: float,
    window: int | None = None,
    prefix: tuple[np.ndarray, np.ndarray] | None = None,
    extra_token: tuple[np.ndarray, float] | None = None,
) -> np.ndarray:
    """Softmax-attention read-outs (B, R, Q, d_v) of ``queries`` placed at the read positions.

    ``keys`` (B, T, d_k), ``values`` (B, T, d_v); ``queries`` (B, Q, d_k) or (B, R, Q, d_k).
    ``prefix = (pk, pv)``: persistent pairs ``(N_p, d)`` visible to every query (``n_prefix``).
    ``extra_token = (vals (B, R, Q, d_v), logit)``: the hybrid's memory token (see
    :func:`hybrid_reads`); computed by hand since its value differs per query.
    """
    keys = np.asarray(keys, np.float32)
    values = np.asarray(values, np.float32)
    queries = np.asarray(queries, np.float32)
    B = keys.shape[0]
    per_read = queries.ndim == 4
    Q = queries.shape[-2]
    n_p = 0 if prefix is None else prefix[0].shape[0]
    out = np.zeros((B, len(read_at), Q, values.shape[-1]), np.float32)
    for r, t in enumerate(read_at):
        lo = 0 if window is None else max(0, t + 1 - window)
        k = keys[:, lo : t + 1]
        v = values[:, lo : t + 1]
        if n_p:
            k = np.concatenate([np.broadcast_to(prefix[0], (B, *prefix[0].shape)), k], axis=1)
            v = np.concatenate([np.broadcast_to(prefix[1], (B, *prefix[1].shape)), v], axis=1)
        qs = queries[:, r] if per_read else queries
        if extra_token is None:
            # every query sits at the read position: one call per query (bottom-right aligned)
            km, vm = mx.array(np.ascontiguousarray(k))[:, None], mx.array(np.ascontiguousarray(v))[:, None]
            for j in range(Q):
                qm = mx.array(np.ascontiguousarray(qs[:, j]))[:, None, None, :]
                o = attention(qm, km, vm, scale=scale)  # the window was applied by slicing
                out[:, r, j] = np.array(o)[:, 0, 0]
        else:
            mem_vals, logit = extra_token
            s = scale * np.einsum("bqd,btd->bqt", qs, k, dtype=np.float64)
            s = np.concatenate([s, np.full((B, Q, 1), logit, np.float64)], axis=-1)
            s -= s.max(axis=-1, keepdims=True)
            p = np.exp(s)
            p /= p.sum(axis=-1, keepdims=True)
            out[:, r] = np.einsum("bqt,btd->bqd", p[..., :-1], v) + p[..., -1:] * mem_vals[:, r]
    return out


def hybrid_reads(
    memory_out: np.ndarray,
    keys: np.ndarray,
    values: np.ndarray,
    read_at: Sequence[int],
    queries: np.ndarray,
    *,
    scale: float,
    window: int,
    kappa: float = HYBRID_KAPPA,
    prefix: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """MAC-style hybrid: sliding-window attention over ``[persistent ‖ memory token ‖ window]``
    where the memory token carries the memory read-out ``memory_out`` (B, R, Q, d_v) and has logit
    ``kappa·scale``."""
    return attention_reads(keys, values, read_at, queries, scale=scale, window=window, prefix=prefix,
                           extra_token=(memory_out, kappa * scale))


# --------------------------------------------------------------------------------------------
# retention
# --------------------------------------------------------------------------------------------


def retention_reads(
    keys: np.ndarray,
    values: np.ndarray,
    read_at: Sequence[int],
    queries: np.ndarray,
    gammas: np.ndarray | None = None,
) -> np.ndarray:
    """Retention read-outs (B, R, Q, H, d_v): ``o_h = Σ_{m≤t} γ_h^{t−m} (q·k_m) v_m`` per head."""
    if gammas is None:
        gammas = np.array(retnet_gammas(RETNET_HEADS), dtype=np.float64)
    gammas = np.asarray(gammas, np.float64)
    keys = np.asarray(keys, np.float64)
    values = np.asarray(values, np.float64)
    queries = np.asarray(queries, np.float64)
    per_read = queries.ndim == 4
    B = keys.shape[0]
    Q = queries.shape[-2]
    H = gammas.shape[0]
    out = np.zeros((B, len(read_at), Q, H, values.shape[-1]))
    log_g = np.log(gammas)
    for r, t in enumerate(read_at):
        age = (t - np.arange(t + 1))[None, :]  # (1, t+1)
        decay = np.exp(log_g[:, None] * age)  # (H, t+1)
        qs = queries[:, r] if per_read else queries
        s = np.einsum("bqd,btd->bqt", qs, keys[:, : t + 1])  # (B, Q, t+1)
        out[:, r] = np.einsum("bqt,ht,btd->bqhd", s, decay, values[:, : t + 1], optimize=True)
    return out


def check_retention_against_ops(keys: np.ndarray, values: np.ndarray, queries: np.ndarray,
                                steps: int = 96) -> float:
    """Max relative difference between :func:`retention_reads` and ``titans.ops.retention_recurrent``
    (read at every step with a fixed query per row, first ``steps`` tokens, float64)."""
    keys = np.asarray(keys[:, :steps], np.float64)
    values = np.asarray(values[:, :steps], np.float64)
    q = np.asarray(queries, np.float64)[:, 0]  # (B, d_k)
    B, T, _ = keys.shape
    gammas = np.array(retnet_gammas(RETNET_HEADS, mx.float32), dtype=np.float64)
    ours = retention_reads(keys, values, np.arange(T), q[:, None, :], gammas)[:, :, 0]  # (B, T, H, d)
    H = gammas.shape[0]
    rep = lambda x: mx.array(np.ascontiguousarray(np.broadcast_to(x[:, None], (B, H, *x.shape[1:]))))
    qq = np.broadcast_to(q[:, None, :], (B, T, q.shape[-1]))
    ref, _ = retention_recurrent(rep(qq), rep(keys), rep(values), mx.array(gammas))
    ref = np.swapaxes(np.array(ref), 1, 2)  # (B, T, H, d)
    return float(np.max(np.abs(ref - ours)) / max(np.max(np.abs(ref)), 1e-12))


# --------------------------------------------------------------------------------------------
# Recall vs distance: the experiment of the recall claims and of the notebook
# --------------------------------------------------------------------------------------------

# Mixer names understood by read_and_score besides the memory specs' own names and the hybrids
# (``hybrid_name(memory)`` for a memory of the specs, e.g. "hybrid (L_M=2, chunk 64)").
ATTENTION_MIXERS = ("attention", "SWA", "RetNet")


def memory_name(depth: int, chunk: int = 1) -> str:
    """The name of a recall memory: ``"memory L_M=<depth>"`` for the token recurrence (chunk 1),
    ``"memory L_M=<depth>, chunk <chunk>"`` for the chunked form."""
    return f"memory L_M={depth}" + ("" if chunk == 1 else f", chunk {chunk}")


def recall_specs(d_k: int, depths=(1, 2), chunks=(1,)) -> dict[str, MemorySpec]:
    """The recall default memories, ``{memory_name(depth, chunk): spec}``: :data:`TITANS_DEFAULT`
    (hidden width ``2 d_k`` when deep) in the token recurrence (chunk 1) or the chunked-parallel
    form of ``memory_scan`` (chunk > 1), θ from :func:`calibrated` for each depth and chunk."""
    return {memory_name(depth, chunk): calibrated(
                TITANS_DEFAULT.but(depth=depth, hidden=2 * d_k if depth > 1 else None, chunk=chunk), d_k)
            for chunk in chunks for depth in depths}


def score_reads(reads: np.ndarray, streams, read_at, row_seeds, candidates, *, retnet: bool = False):
    """Exact-match hits and chance, both ``(rows, reads)``, of read-outs ``reads`` (rows, reads, 1, ...)
    of streams whose one query's target is ``targets[0]``. The candidates at a read are the
    distinct values written up to it (``candidates[b]`` from :func:`candidate_first_index`) plus
    the row's foils."""
    hits = np.zeros((len(streams), len(read_at)), bool)
    chance = np.zeros(hits.shape)
    for b, s in enumerate(streams):
        uniq, first = candidates[b]
        fo = foils(row_seeds[b], N_FOILS, s.values.shape[1])
        for r, t in enumerate(read_at):
            pool = np.concatenate([uniq[first <= t], fo])
            hits[b, r] = is_target(reads[b, r, 0], pool, s.targets[0], retnet=retnet)
            chance[b, r] = 1.0 / len(pool)
    return hits, chance


def hybrid_name(memory: str) -> str:
    """The MAC-style hybrid mixer of a recall memory: ``"memory <x>"`` -> ``"hybrid (<x>)"``."""
    if not memory.startswith("memory ") or len(memory) == len("memory "):
        raise ValueError(f"memory must be a recall memory's name 'memory <x>' (memory_name), got {memory!r}")
    return f"hybrid ({memory[len('memory '):]})"


def _hybrid_memory(name: str) -> str | None:
    """``"memory <x>"`` for a hybrid mixer named ``"hybrid (<x>)"`` (inverse of :func:`hybrid_name`), else None."""
    if name.startswith("hybrid (") and name.endswith(")") and len(name) > len("hybrid ()"):
        return "memory " + name[len("hybrid (") : -1]
    return None


def read_and_score(streams, row_seeds, read_at, *, length: int, windows: dict, specs: dict, mixers,
                   nonfinite: dict | None = None) -> dict:
    """``{mixer: (hits, chance)}`` of every memory in ``specs`` and every mixer of ``mixers`` (names
    of :data:`ATTENTION_MIXERS`, or :func:`hybrid_name` of a memory of ``specs``, e.g.
    ``"hybrid (L_M=2, chunk 64)"``; ``windows["SWA"]`` and
    ``windows["hybrid"]`` are their windows) on a group of streams read at steps ``read_at``.
    Attention uses the QKNorm temperature of a ``length``-token context. A dict passed as
    ``nonfinite`` receives, per memory, whether each read-out (rows, reads) is non-finite (a
    diverged memory; such a read counts as wrong)."""
    unknown = [m for m in mixers if m not in ATTENTION_MIXERS and _hybrid_memory(m) is None]
    if unknown:
        raise ValueError(f"mixers has unknown name(s) {unknown}; choose from {ATTENTION_MIXERS} or 'hybrid (<memory>)'")
    K = np.stack([s.keys for s in streams])
    V = np.stack([s.values for s in streams])
    Q = np.stack([s.queries for s in streams])
    out, mem = {}, {}
    cands = [candidate_first_index(s.values) for s in streams]
    for name, spec in specs.items():
        with np.errstate(all="ignore"):
            mem[name] = memory_reads(spec, K, V, read_at, Q, seed=0).reads
        out[name] = score_reads(mem[name], streams, read_at, row_seeds, cands)
        if nonfinite is not None:
            nonfinite[name] = ~np.all(np.isfinite(mem[name][:, :, 0]), axis=-1)
    tau = qknorm_scale(length)
    if "attention" in mixers:
        out["attention"] = score_reads(attention_reads(K, V, read_at, Q, scale=tau), streams, read_at, row_seeds, cands)
    if "SWA" in mixers:
        y = attention_reads(K, V, read_at, Q, scale=tau, window=windows["SWA"])
        out["SWA"] = score_reads(y, streams, read_at, row_seeds, cands)
    for name in [m for m in mixers if _hybrid_memory(m) is not None]:
        memory = _hybrid_memory(name)
        if memory not in mem:
            raise ValueError(f"mixer {name!r} needs {memory!r} in specs")
        y = hybrid_reads(mem[memory], K, V, read_at, Q, scale=tau, window=windows["hybrid"])
        out[name] = score_reads(y, streams, read_at, row_seeds, cands)
    if "RetNet" in mixers:
        out["RetNet"] = score_reads(retention_reads(K, V, read_at, Q), streams, read_at, row_seeds, cands, retnet=True)
    return out


def recall_vs_distance(length: int, distances, *, d_k: int, seeds, trials: int = 1, haystack: str = "filler",
                       specs: dict, mixers=(), windows: dict | None = None, extra_distances=(),
                       row_bytes: float = 1.5e9, stream_tag: int = 1, stream_options: dict | None = None) -> dict:
    """Needle recall against distance for every mixer, on far-pointer key/value streams.

    Per row (``trials`` per seed; data seed ``derived_seed(seed, length, trial, stream_tag)``) one
    ``length``-step stream holds its needle at ``p = length - 1 - D`` (``D`` = the largest distance
    below ``length``) and is read after steps ``p + d``: by causality the read at ``p + d`` is the
    far-pointer query of a stream of ``p + d + 1`` steps. ``stream_options`` go to
    ``kv_stream_far_pointer`` (e.g. ``n_needles_distractor`` for ``haystack="needles"``); the
    needle of a row does not depend on the haystack, so runs on different haystacks are paired.
    Rows are processed in groups of at most ``row_bytes`` of keys, values and queries. On the first
    group the NumPy recurrence of every token-recurrence memory (chunk 1; a chunked memory is read
    from ``memory_scan`` itself) is checked against ``memory_scan`` and the closed-form retention
    against the op (``checks``: max relative differences).

    Returns ``distances`` (the distances read, ``extra_distances`` included), ``recall`` and
    ``chance`` (``{mixer: (seeds, distances)}``, means over each seed's trials), ``nonfinite``
    (``{memory: (seeds, distances)}``, the fraction of rows whose read-out is not finite), ``checks``.
    """
    from titans.tasks import derived_seed, kv_stream_far_pointer

    below = [d for d in distances if d < length]
    if not below:
        raise ValueError(f"distances must hold a distance below length {length}, got {list(distances)}")
    D = max(below)
    p = length - 1 - D
    ds = sorted(set(d for d in distances if d <= D) | set(d for d in extra_distances if d <= D))
    read_at = [p + d for d in ds]
    seeds = list(seeds)
    rows = [(seed, trial) for seed in seeds for trial in range(trials)]
    per_group = max(1, int(row_bytes // (length * d_k * 4 * 3)))
    groups, checks = [], {}
    for g in range(0, len(rows), per_group):
        row_seeds = [derived_seed(seed, length, trial, stream_tag) for seed, trial in rows[g : g + per_group]]
        streams = [kv_stream_far_pointer(d_k, d_k, length, p / (length - 1), haystack, seed=rs, **(stream_options or {}))
                   for rs in row_seeds]
        if any(s.meta["needle_index"] != p for s in streams):
            raise RuntimeError(f"a generated stream does not hold its needle at step {p}")
        if g == 0:
            K = np.stack([s.keys for s in streams])
            V = np.stack([s.values for s in streams])
            with np.errstate(all="ignore"):  # a memory that diverges within the checked prefix gives NaN
                checks = {n: check_online_against_memory_scan(sp, K, V) for n, sp in specs.items() if sp.chunk == 1}
            if "RetNet" in mixers:
                checks["RetNet"] = check_retention_against_ops(K, V, np.stack([s.queries for s in streams]))
        bad = {}
        groups.append((read_and_score(streams, row_seeds, read_at, length=length, windows=windows or {},
                                      specs=specs, mixers=mixers, nonfinite=bad), bad))
    recall, chance, nonfinite = {}, {}, {}
    per_seed = lambda x: x.reshape(len(seeds), trials, len(ds)).mean(axis=1)  # noqa: E731
    for name in groups[0][0]:
        recall[name] = per_seed(np.concatenate([r[name][0] for r, _ in groups]))
        chance[name] = per_seed(np.concatenate([r[name][1] for r, _ in groups]))
    for name in groups[0][1]:
        nonfinite[name] = per_seed(np.concatenate([b[name] for _, b in groups]).astype(np.float64))
    return dict(distances=ds, recall=recall, chance=chance, checks=checks, nonfinite=nonfinite)
