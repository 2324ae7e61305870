"""Probes: small, fixed experiments on the library's layers and ops that the claims and the
notebook share.

* ``memorization``: store N pairs through a ``NeuralMemory`` layer and compare the loss on stored
  and never-stored pairs after 1/2/4/8 passes.
* ``mixers``: the token mixers (Titans memory, attention, sliding-window attention, retention, a
  MAC-style hybrid) read continuous key/value streams with fixed, untrained projections, decoded
  by nearest neighbour among the written values and foils; ``recall_vs_distance`` is the
  recall-versus-distance experiment of the recall claims and of the notebook.
"""

from titans.probes import mixers
from titans.probes.memorization import MemorizationResult, memorization_probe

__all__ = ["MemorizationResult", "memorization_probe", "mixers"]
