"""gnntrack.nn.fast: the fast forms of the built-in models.

Each fast form computes the same function as its reference module (`gnntrack.nn.segment_classifier`)
with the same parameter tree, so checkpoints move freely between the two; `model.impl` chooses
("fast" by default, "reference"). The equivalence tests (tests/nn/test_fast.py,
tests/nn/test_cpu_kernels.py) hold each fast form to its reference: parameter tree, logits and
gradients within float rounding.
"""

from gnntrack.nn.fast.segment_classifier import (CPU_KERNEL_CHOICES, EDGE_CHUNK, REMAT_MODES,
                                                 FastSegmentClassifier, cpu_kernels_label,
                                                 default_chunk_size, remat_mode,
                                                 resolve_cpu_kernels)

__all__ = ["CPU_KERNEL_CHOICES", "EDGE_CHUNK", "REMAT_MODES", "FastSegmentClassifier",
           "cpu_kernels_label", "default_chunk_size", "remat_mode", "resolve_cpu_kernels"]
