"""Depthwise causal 1-D convolution with a carried state (the short conv of Titans Sec. 4.4).

``y[b, t, c] = sum_{i=0}^{K-1} weight[c, i] * x[b, t - (K-1) + i, c]`` with inputs before the
sequence taken from ``state`` (zeros at the start), i.e. PyTorch ``conv1d(groups=C)`` with K-1
left padding: the last tap multiplies the current input. ``state`` (B, K-1, C) holds the last K-1
inputs, so split calls equal one call and single-token decoding works.
"""

from __future__ import annotations

import mlx.core as mx

from titans import _checks

__all__ = ["short_conv", "short_conv_reference"]


def _check_conv(x, weight, state) -> None:
    _checks.float_array("x", x, ndim=3)
    _checks.float_array("weight", weight, ndim=2)
    if 0 in x.shape:
        raise ValueError(f"x is empty: shape {tuple(x.shape)} (B, T, C must all be > 0)")
    if weight.shape[0] != x.shape[2]:
        raise ValueError(
            f"weight must have shape (C, K) with C = x.shape[2] = {x.shape[2]}, "
            f"got {tuple(weight.shape)}"
        )
    if weight.shape[1] == 0:
        raise ValueError(f"weight must have kernel size K >= 1, got shape {tuple(weight.shape)}")
    if state is None:
        _checks.same_dtype(x=x, weight=weight)
        return
    _checks.float_array("state", state, ndim=3)
    _checks.same_dtype(x=x, weight=weight, state=state)
    expected = (x.shape[0], weight.shape[1] - 1, x.shape[2])
    if tuple(state.shape) != expected:
        raise ValueError(
            f"state must have shape (B, K-1, C) = {expected}, got {tuple(state.shape)}"
        )


def _initial_state(x, weight, state) -> mx.array:
    if state is not None:
        return state
    return mx.zeros((x.shape[0], weight.shape[1] - 1, x.shape[2]), x.dtype)


def short_conv(x, weight, state=None) -> tuple[mx.array, mx.array]:
    """Causal depthwise conv of x (B, T, C) with weight (C, K); returns (y (B, T, C), new state).

    Computed as K shifted multiply-adds over ``[state; x]`` (K is small, typically 4).
    """
    _check_conv(x, weight, state)
    length, kernel = x.shape[1], weight.shape[1]
    padded = mx.concatenate([_initial_state(x, weight, state), x], axis=1)
    y = padded[:, 0:length] * weight[:, 0]
    for tap in range(1, kernel):
        y = y + padded[:, tap : tap + length] * weight[:, tap]
    return y, padded[:, padded.shape[1] - (kernel - 1) :]


def short_conv_reference(x, weight, state=None) -> tuple[mx.array, mx.array]:
    """Naive per-token loop of the same convolution (test reference)."""
    _check_conv(x, weight, state)
    kernel = weight.shape[1]
    initial = _initial_state(x, weight, state)
    history = list(mx.split(initial, kernel - 1, axis=1)) if kernel > 1 else []
    outputs = []
    for t in range(x.shape[1]):
        window = history + [x[:, t : t + 1]]  # the last K inputs, oldest first
        y_t = sum(window[i] * weight[:, i] for i in range(kernel))
        outputs.append(y_t)
        history = window[1:]
    new_state = (
        mx.concatenate(history, axis=1)
        if history
        else mx.zeros((x.shape[0], 0, x.shape[2]), x.dtype)
    )
    return mx.concatenate(outputs, axis=1), new_state
