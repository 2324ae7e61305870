"""Sequence-mixing primitives: softmax attention, retention (RetNet) and the short causal conv.

Every fast form has a slow reference beside it (``attention`` / ``blockwise_attention``,
``retention_recurrent`` / ``retention_parallel`` / ``retention_chunkwise``,
``short_conv_reference`` / ``short_conv``) and tests that they agree.
"""

from titans.ops.attention import (
    KVCache,
    SlidingWindowKVCache,
    attention,
    attention_mask,
    blockwise_attention,
    masked_attention,
)
from titans.ops.conv import short_conv, short_conv_reference
from titans.ops.retention import (
    retention_chunkwise,
    retention_parallel,
    retention_recurrent,
    retnet_gammas,
)

__all__ = [
    "KVCache",
    "SlidingWindowKVCache",
    "attention",
    "attention_mask",
    "blockwise_attention",
    "masked_attention",
    "retention_chunkwise",
    "retention_parallel",
    "retention_recurrent",
    "retnet_gammas",
    "short_conv",
    "short_conv_reference",
]
