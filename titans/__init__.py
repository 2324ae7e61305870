"""Titans (Behrouz, Zhong, Mirrokni, arXiv 2501.00663) in MLX, with a claims harness.

Importing this package first loads an optimized BLAS for MLX on Linux (see ``titans._blas``);
it must therefore be imported before ``mlx``. It changes no other process-wide setting: entry
points call ``configure_allocator()`` to choose MLX's allocator policy (see ``titans._cache``).
"""

from titans import _blas

_blas.preload()

import mlx.core  # noqa: E402,F401  (loads libmlx after the BLAS, so the check below sees which one it got)

_blas.warn_if_reference()

from titans._blas import blas_info  # noqa: E402
from titans._cache import configure_allocator  # noqa: E402
from titans.ops.memory import MemoryState, memory_scan, memory_scan_reference  # noqa: E402
from titans.layers.neural_memory import NeuralMemory  # noqa: E402

__all__ = [
    "MemoryState",
    "NeuralMemory",
    "blas_info",
    "configure_allocator",
    "memory_scan",
    "memory_scan_reference",
]
__version__ = "0.1.0"
