"""Test-wide setup: 4 forced CPU devices (multi-device tests need them; single-device code uses
device 0), set before anything imports jax."""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# With several forced host devices on a 2-core machine, XLA's CPU collectives can deadlock when the
# thread pool is smaller than the device count; give the PJRT CPU client enough threads.
os.environ.setdefault("PJRT_NPROC", "8")
