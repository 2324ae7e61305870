"""Sequence-mixing primitives: softmax attention, retention (RetNet) and the short causal conv.

Every fast form has a slow reference beside it (``attention`` / ``blockwise_attention``,
``retention_recurrent`` / ``retention_parallel`` / ``retention_chunkwise``,
``short_conv_reference`` / ``short_conv``) and tests that they agree. The memory's op lives in
``titans.ops.memory`` (re-exported by ``titans``).
"""

from titans.ops import attention as _attention
from titans.ops import conv as _conv
from titans.ops import retention as _retention
from titans.ops.attention import *  # noqa: F401,F403  (each module's __all__ is its public API)
from titans.ops.conv import *  # noqa: F401,F403
from titans.ops.retention import *  # noqa: F401,F403

__all__ = [*_attention.__all__, *_conv.__all__, *_retention.__all__]
