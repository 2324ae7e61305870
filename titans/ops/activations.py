"""Exponential-family activations (exp, sigmoid, SiLU, softmax) computed through ``mx.power``.

On the CPU backend of MLX (x86 Linux) the transcendental kernels are the bottleneck of every
model here, and ``mx.power(e, x)`` is several times cheaper per element than ``mx.exp``,
``mx.sigmoid`` or ``nn.silu`` (``docs/performance.md``; ``python -m bench.elementwise`` measures
them). The power kernel is also the more accurate one in float64 (neither reaches float64
precision on MLX's CPU). So on the CPU these functions evaluate ``e^x`` as ``mx.power(e, x)``; on
other devices they call MLX's own kernels. Each is written so that neither the value nor its
gradient overflows where MLX's kernels stay finite.

Every function has its MLX counterpart as the reference (``tests/test_activations.py``).
"""

from __future__ import annotations

import math

import mlx.core as mx

__all__ = ["exp", "sigmoid", "silu", "softmax"]


# e^87 < float32 max (3.4e38); MLX's CPU float64 power is float32 inside, so the same cap holds there
_MAX_EXPONENT = 87.0


def _on_cpu() -> bool:
    return mx.default_device() == mx.cpu


def exp(x: mx.array) -> mx.array:
    """``e^x`` (float dtypes). On the CPU the power kernel: faster, and more accurate in float64."""
    if not _on_cpu():
        return mx.exp(x)
    return mx.power(mx.array(math.e, x.dtype), x)


@mx.custom_function
def _sigmoid_by_power(x: mx.array) -> mx.array:
    return mx.reciprocal(1 + exp(mx.minimum(-x, _MAX_EXPONENT)))


@_sigmoid_by_power.vjp
def _sigmoid_by_power_vjp(x, cotangent, s):
    # σ' = σ (1 − σ), as MLX's own sigmoid: no second power in the backward pass
    return cotangent * s * (1 - s)


def sigmoid(x: mx.array) -> mx.array:
    """``σ(x) = 1 / (1 + e^−x)``, with the exponent capped at ``_MAX_EXPONENT`` so that nothing
    overflows (σ(x) for x < −87 is then 1.6e-38 instead of smaller); gradient ``σ (1 − σ)``.
    ``mx.where`` is avoided on purpose: on the CPU it costs as much as the power itself.
    Half-precision inputs are computed in float32."""
    if not _on_cpu():
        return mx.sigmoid(x)
    if x.dtype in (mx.float16, mx.bfloat16):
        return _sigmoid_by_power(x.astype(mx.float32)).astype(x.dtype)
    return _sigmoid_by_power(x)


def silu(x: mx.array) -> mx.array:
    """``SiLU(x) = x σ(x)`` (a.k.a. swish), the activation of §4.4 and of SwiGLU."""
    return x * sigmoid(x)


def softmax(x: mx.array, axis: int = -1) -> mx.array:
    """Softmax along ``axis``; rows that are entirely −inf give NaN, as ``mx.softmax`` does."""
    if not _on_cpu():
        return mx.softmax(x, axis=axis)
    # the result does not depend on the shift, so no gradient needs to flow through it
    shifted = exp(x - mx.stop_gradient(mx.max(x, axis=axis, keepdims=True)))
    return shifted / mx.sum(shifted, axis=axis, keepdims=True)
