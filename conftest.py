"""Top-level pytest configuration.

``titans`` is imported before anything imports ``mlx`` so that MLX gets an optimized BLAS
(see ``titans/_blas.py``). The claims plugin adds ``--scale``, the ``claim`` fixture and the
end-of-session claim report.
"""

import titans  # noqa: F401  (must precede every mlx import)

pytest_plugins = ["titans.reporting.plugin"]
