"""Benchmarks run outside pytest: ``./run bench --peer`` (``bench/peer.py``, see bench/README.md)."""
