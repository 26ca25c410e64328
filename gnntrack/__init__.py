"""gnntrack: graph neural networks for particle-physics track reconstruction in JAX/Flax.

Submodules are imported lazily by the CLI so that `import gnntrack` stays cheap.
"""

__version__ = "0.1.0"
