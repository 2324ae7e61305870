"""Metrics of token tasks: accuracy over the scored positions, by any per-query meta key, and
staleness (answers with the overwritten value)."""

from __future__ import annotations

import numpy as np

from titans.tasks.tokens import IGNORE, TaskBatch


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
