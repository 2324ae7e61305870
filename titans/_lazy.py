"""Evaluate intermediate results when allowed, so that long scans keep memory flat in T.

MLX builds a lazy graph; a scan over 64k tokens left lazy keeps every intermediate alive until the
end. Evaluating block by block bounds that, but arrays cannot be evaluated while a function is
being traced by ``mx.compile`` or ``mx.vmap``; there we keep one lazy graph. Under ``mx.grad``
evaluation is allowed (the graph for the backward pass is kept either way).
"""

import mlx.core as mx


def is_trace_error(error: Exception) -> bool:
    """The ``ValueError`` MLX raises when arrays are evaluated while ``mx.compile``/``mx.vmap`` trace."""
    return isinstance(error, ValueError) and "function transformations" in str(error)


def eval_unless_traced(*arrays) -> bool:
    """``mx.eval(*arrays)``; returns False (and evaluates nothing) inside compile/vmap tracing."""
    try:
        mx.eval(*arrays)
    except ValueError as error:
        if not is_trace_error(error):
            raise
        return False
    return True
