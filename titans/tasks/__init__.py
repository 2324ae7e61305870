"""Synthetic recall tasks for the Titans claims (pure numpy, seeded, zoology-style).

The package: ``tokens`` (token tasks), ``streams`` (continuous key/value streams), ``metrics``.
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

from titans.tasks.metrics import accuracy, accuracy_by, predictions_from, staleness
from titans.tasks.seeds import derived_seed
from titans.tasks.streams import (
    KVStream,
    kv_stream_far_pointer,
    kv_stream_overwrites,
    kv_stream_pairs,
    kv_stream_rebinding,
    kv_stream_rewrites,
    kv_stream_switch,
)
from titans.tasks.tokens import (
    BLANK,
    COPY,
    HAYSTACKS,
    IGNORE,
    KEY,
    N_SPECIAL,
    PAD,
    QUERY,
    SEP,
    TaskBatch,
    VocabLayout,
    far_pointer,
    mqar,
    rebinding,
    selective_copy,
    vocab_layout,
)

__all__ = [
    "BLANK",
    "COPY",
    "HAYSTACKS",
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
    "derived_seed",
    "far_pointer",
    "kv_stream_far_pointer",
    "kv_stream_overwrites",
    "kv_stream_pairs",
    "kv_stream_rebinding",
    "kv_stream_rewrites",
    "kv_stream_switch",
    "mqar",
    "predictions_from",
    "rebinding",
    "selective_copy",
    "staleness",
    "vocab_layout",
]
