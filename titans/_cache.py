"""Allocator policy for entry points: let MLX's CPU allocator keep freed buffers for reuse.

MLX on the CPU keeps only a small cache of freed buffers by default; every larger buffer goes
back to the operating system when freed and is page-faulted in again, zeroed, on the next
allocation. With long sequences (8k tokens of 4096-way logits is 134 MiB) that page-fault work
grows with the working set and bends throughput-versus-length curves upward.

``configure_allocator()`` raises the cache limit on the CPU to a quarter of physical memory,
capped at 8 GiB. It is process-wide, so only entry points call it (the training CLI, the claims
session, the training workers, the notebook); ``import titans`` leaves MLX's allocator alone. The
cache only holds buffers already freed; peak *active* memory (what ``mx.get_peak_memory`` and the
memory claims measure) is unchanged. ``TITANS_MLX_CACHE_LIMIT`` chooses the limit in bytes, or
``default`` keeps MLX's.
"""

from __future__ import annotations

import os

import mlx.core as mx

_CAP = 8 * 2**30
_configured: int | None = None


def _default_limit() -> int:
    try:
        physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return _CAP // 4
    return min(_CAP, physical // 4)


def configure_allocator() -> int | None:
    """Apply the cache limit described above (CPU default device only); returns it, or None if
    MLX's default is kept."""
    global _configured
    choice = os.environ.get("TITANS_MLX_CACHE_LIMIT", "").strip().lower()
    if choice == "default" or mx.default_device() != mx.cpu:
        return None
    if choice:
        try:
            limit = int(float(choice))
        except ValueError:
            raise ValueError(
                f"TITANS_MLX_CACHE_LIMIT must be a number of bytes or 'default', got {choice!r}"
            ) from None
        if limit < 0:
            raise ValueError(f"TITANS_MLX_CACHE_LIMIT must be non-negative, got {limit}")
    else:
        limit = _default_limit()
    mx.set_cache_limit(limit)
    _configured = limit
    return limit


def cache_limit() -> int | None:
    """The cache limit ``configure_allocator`` set in this process (None: MLX's default is in force)."""
    return _configured
