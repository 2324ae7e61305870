"""Layers built on the ops: the neural memory (``NeuralMemory`` and its ``MemoryConfig``)."""

from titans.layers.neural_memory import MemoryConfig, NeuralMemory, NeuralMemoryCache

__all__ = ["MemoryConfig", "NeuralMemory", "NeuralMemoryCache"]
