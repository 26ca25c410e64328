"""Hand-written CPU kernels, called from JAX through XLA's FFI and compiled on first use.

MLP kernels (source: `edge_mlp.cc` next to this file), forward passes of tanh + LayerNorm MLPs
computed tile by tile of 24 rows, so no [rows, H] intermediate goes through memory:
  * `edge_mlp`: the segment classifier's edge network -- gather the two projected node rows of
    each edge (plus an optional per-edge term: projected edge features), every hidden layer's
    matmul + LayerNorm + tanh, the 1-unit output (logits [E]);
  * `row_mlp`: the layers of an MLP after its first matmul, on given rows (the node network).
and their backward passes `edge_mlp_grad` / `row_mlp_grad` (recompute the tile's forward pass,
then back-propagate through every layer with the weight gradients accumulated per fixed chunk of
rows, so results are deterministic). `gnntrack.nn.layers.fused_edge_mlp` / `fused_row_mlp` tie
them together as custom-VJP functions.

Message-passing kernels (`graph_ops.cc`): `segment_order` (counting sort of edges by endpoint),
`segment_gather_sum` (per-node sums over a node's edges, one thread per node: deterministic) and
`row_dots`; `segment_sum` and `gnntrack.nn.fast.segment_classifier.weighted_bidirectional_sum`
(the segment classifier's message, forward and backward) are built on them.

Why compile on first use instead of at install time: the kernel needs jaxlib's FFI headers and a
C++ compiler, which a plain `pip install` must not require. The shared library is built once per
(source, jaxlib, compiler, flags) into a cache directory and reused by every later process; when
anything is missing (no compiler, not x86-64 with AVX2 + FMA, not Linux/macOS), `status()` says
why and the models run their XLA formulation instead.

Environment: `GNNTRACK_KERNEL_CACHE` (cache directory; default `$XDG_CACHE_HOME/gnntrack/kernels`
or `~/.cache/gnntrack/kernels`), `CXX` (compiler; default `c++`, then `g++`, `clang++`),
`GNNTRACK_CPU_KERNELS=off` (never build or use them).
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from gnntrack._compat import vary_like

logger = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("edge_mlp.cc")
GRAPH_OPS_SOURCE = Path(__file__).with_name("graph_ops.cc")
HEADERS = (Path(__file__).with_name("parallel.h"),)  # included by both sources
EDGE_MLP_TARGET = "gnntrack_edge_mlp"
ROW_MLP_TARGET = "gnntrack_row_mlp"
EDGE_MLP_GRAD_TARGET = "gnntrack_edge_mlp_grad"
ROW_MLP_GRAD_TARGET = "gnntrack_row_mlp_grad"
SEGMENT_ORDER_TARGET = "gnntrack_segment_order"
SEGMENT_GATHER_SUM_TARGET = "gnntrack_segment_gather_sum"
ROW_DOTS_TARGET = "gnntrack_row_dots"
CHUNK_ROWS = 1008  # rows per unit of work in edge_mlp.cc (kChunkRows): one partial gradient each
MLP_WIDTHS = (16, 32, 64, 128)  # hidden widths instantiated in edge_mlp.cc
CXX_FLAGS = ("-O3", "-mavx2", "-mfma", "-std=c++17", "-shared", "-fPIC", "-w")
_REQUIRED_CPU_FLAGS = ("avx2", "fma")


@dataclasses.dataclass(frozen=True)
class KernelStatus:
    """Whether the CPU kernels can run here: `available`, and `detail` (what was built, or why not)."""

    available: bool
    detail: str

    def label(self) -> str:
        """One line for run provenance, e.g. 'fused (g++ 12.2.0, AVX2+FMA)' or 'xla (no compiler)'."""
        return f"fused ({self.detail})" if self.available else f"xla ({self.detail})"


def cache_dir() -> Path:
    """Where compiled kernels are kept (created on demand)."""
    if os.environ.get("GNNTRACK_KERNEL_CACHE"):
        return Path(os.environ["GNNTRACK_KERNEL_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gnntrack" / "kernels"


def cpu_flags(cpuinfo: str | None = None) -> frozenset[str]:
    """The instruction-set flags of this CPU (Linux /proc/cpuinfo; macOS sysctl); empty if unknown."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = _sysctl_cpu_features()
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "machdep.cpu.leaf7_features", "machdep.cpu.features"):
            flags.update(v.lower() for v in value.split())
    return frozenset(flags)


def _sysctl_cpu_features() -> str:
    try:
        out = subprocess.run(["sysctl", "machdep.cpu.features", "machdep.cpu.leaf7_features"],
                             capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    return out  # "machdep.cpu.features: ... FMA ...", "machdep.cpu.leaf7_features: ... AVX2 ..."


def find_compiler() -> str | None:
    """Path of the C++ compiler to use (`$CXX`, else c++ / g++ / clang++ on PATH), or None."""
    names = [os.environ["CXX"]] if os.environ.get("CXX") else ["c++", "g++", "clang++"]
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    return None


def _compiler_version(compiler: str) -> str:
    try:
        out = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    first = (out.stdout or out.stderr).strip().splitlines()
    return first[0] if first else "unknown"


def _unavailable_reason() -> str | None:
    """Why the kernels cannot be built here (None: nothing known against it)."""
    if os.environ.get("GNNTRACK_CPU_KERNELS", "").lower() in ("off", "0", "false", "no"):
        return "GNNTRACK_CPU_KERNELS=off"
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return f"needs x86-64, this is {platform.machine()}"
    if sys.platform not in ("linux", "darwin"):
        return f"not built on {sys.platform}"
    missing = [f for f in _REQUIRED_CPU_FLAGS if f not in cpu_flags()]
    if missing:
        return f"CPU lacks {'+'.join(m.upper() for m in missing)}"
    if not hasattr(jax, "ffi") or not Path(jax.ffi.include_dir()).is_dir():
        return "this jaxlib has no FFI headers"
    if find_compiler() is None:
        return "no C++ compiler (set CXX or install g++)"
    return None


def build(source: Path = SOURCE, directory: Path | None = None) -> Path:
    """Compile `source` into a shared library under `directory` (default `cache_dir()`), unless
    an identical build is already there; returns its path. Raises RuntimeError with the
    compiler's message on failure. Safe for concurrent processes: each compiles to its own
    temporary file and renames it into place atomically."""
    compiler = find_compiler()
    if compiler is None:
        raise RuntimeError("no C++ compiler found (set CXX)")
    include = jax.ffi.include_dir()
    text = source.read_bytes()
    headers = [h.read_bytes() for h in HEADERS if h.parent == source.parent]
    key = hashlib.sha256(b"\0".join([
        text, *headers, " ".join(CXX_FLAGS).encode(), _compiler_version(compiler).encode(),
        jax.__version__.encode(), str(include).encode()])).hexdigest()[:16]
    directory = Path(directory) if directory is not None else cache_dir()
    target = directory / f"{source.stem}-{key}.so"
    if target.exists():
        return target
    directory.mkdir(parents=True, exist_ok=True)
    # One line, once per machine: the only long step here, and a silent pause would look hung.
    print(f"gnntrack: compiling {source.name} into {directory} (once; ~10 s) ...",
          file=sys.stderr, flush=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{source.stem}-", suffix=".so")
    os.close(fd)
    try:
        cmd = [compiler, *CXX_FLAGS, f"-I{include}", f"-I{source.parent}", str(source), "-o", tmp]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(f"compiling {source.name} failed ({' '.join(cmd)}):\n"
                               f"{proc.stderr.strip()[-2000:]}")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


@functools.cache
def status() -> KernelStatus:
    """Build (or find) and register the kernels once per process; never raises."""
    reason = _unavailable_reason()
    if reason is not None:
        return KernelStatus(False, reason)
    try:
        mlp = ctypes.cdll.LoadLibrary(str(build(SOURCE)))
        graph = ctypes.cdll.LoadLibrary(str(build(GRAPH_OPS_SOURCE)))
        for name, library in ((EDGE_MLP_TARGET, mlp), (ROW_MLP_TARGET, mlp),
                              (EDGE_MLP_GRAD_TARGET, mlp), (ROW_MLP_GRAD_TARGET, mlp),
                              (SEGMENT_ORDER_TARGET, graph), (SEGMENT_GATHER_SUM_TARGET, graph),
                              (ROW_DOTS_TARGET, graph)):
            jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(getattr(library, name)),
                                        platform="cpu")
    except Exception as err:  # noqa: BLE001 -- any failure means: run the XLA formulation
        logger.warning("gnntrack CPU kernels unavailable, using XLA: %s", err)
        return KernelStatus(False, f"build failed: {str(err).splitlines()[0]}")
    words = _compiler_version(find_compiler()).split()
    compiler = f"{Path(words[0]).name} {words[-1]}" if len(words) > 1 else find_compiler()
    return KernelStatus(True, f"{compiler}, AVX2+FMA")


def available() -> bool:
    """Whether the kernels run here (builds them on the first call; see `status`)."""
    return status().available


def loaded_label() -> str:
    """`status().label()` if this process has already looked for the kernels, else 'not used'
    (for provenance records, which should not trigger a build)."""
    return status().label() if status.cache_info().currsize else "not used"


def _require() -> None:
    """Raise RuntimeError (naming why) unless the kernels run here."""
    if not available():
        raise RuntimeError(f"the fused CPU kernels are unavailable: {status().detail}")


def _extra_rows(extra, n_edges: int, width: int) -> jnp.ndarray:
    """The edge kernels' optional per-edge first-layer term: [E, H], or [0, H] for none."""
    if extra is None:
        return jnp.zeros((0, width), jnp.float32)
    return jnp.asarray(extra, jnp.float32).reshape(n_edges, width)


def edge_mlp(ps: jnp.ndarray, pr: jnp.ndarray, senders: jnp.ndarray, receivers: jnp.ndarray,
             vecs: jnp.ndarray, mats: jnp.ndarray, w_out: jnp.ndarray,
             b_out: jnp.ndarray, extra: jnp.ndarray | None = None) -> jnp.ndarray:
    """Edge logits float32 [E] of the fused edge network (forward only; see edge_mlp.cc).

    ps [N_s, H], pr [N_r, H]: per-node projections of the first layer for senders / receivers;
    senders, receivers int32 [E]; vecs [L, 3, H] (bias, LayerNorm scale, offset of each hidden
    layer); mats [L-1, H, H]; w_out [H]; b_out [1]; extra [E, H] or None: a per-edge term of the
    first layer (projected edge features). H in MLP_WIDTHS; CPU only.
    """
    _require()
    n_edges = senders.shape[0]
    call = jax.ffi.ffi_call(EDGE_MLP_TARGET, jax.ShapeDtypeStruct((n_edges,), jnp.float32),
                            vmap_method="sequential")
    f32 = functools.partial(jnp.asarray, dtype=jnp.float32)
    args = (f32(ps), f32(pr), jnp.asarray(senders, jnp.int32), jnp.asarray(receivers, jnp.int32),
            f32(vecs), f32(mats).reshape(-1, ps.shape[-1], ps.shape[-1]), f32(w_out),
            f32(b_out).reshape(1), _extra_rows(extra, n_edges, ps.shape[-1]))
    return vary_like(call(*args), *args)


def row_mlp(x: jnp.ndarray, vecs: jnp.ndarray, mats: jnp.ndarray) -> jnp.ndarray:
    """out [R, H] float32: x [R, H] through L layers, h = tanh(LN(h + b_l) * g_l + c_l) with
    h @ mats[l-1] before layer l >= 1 (the layers of an MLP after its first matmul).

    vecs [L, 3, H] (bias, LayerNorm scale, offset per layer), mats [L-1, H, H]; H in MLP_WIDTHS;
    CPU only; forward only.
    """
    _require()
    width = x.shape[-1]
    call = jax.ffi.ffi_call(ROW_MLP_TARGET, jax.ShapeDtypeStruct(x.shape, jnp.float32),
                            vmap_method="sequential")
    args = (jnp.asarray(x, jnp.float32), jnp.asarray(vecs, jnp.float32),
            jnp.asarray(mats, jnp.float32).reshape(-1, width, width))
    return vary_like(call(*args), *args)


def _grad_outputs(n_rows: int, width: int, n_layers: int):
    n_chunks = -(-n_rows // CHUNK_ROWS)
    n_par = n_layers * 3 * width + (n_layers - 1) * width * width + width + 1
    return (jax.ShapeDtypeStruct((n_rows, width), jnp.float32),
            jax.ShapeDtypeStruct((n_chunks, n_par), jnp.float32))


def _unpack_grad_params(partials: jnp.ndarray, n_layers: int, width: int):
    """(d vecs [L, 3, H], d mats [L-1, H, H], d w_out [H], d b_out [1]) from the kernel's
    per-chunk partial sums [n_chunks, P], summed over chunks in a fixed order."""
    flat = jnp.sum(partials, axis=0)
    sizes = [n_layers * 3 * width, (n_layers - 1) * width * width, width, 1]
    pieces = jnp.split(flat, np.cumsum(sizes)[:-1])
    return (pieces[0].reshape(n_layers, 3, width), pieces[1].reshape(n_layers - 1, width, width),
            pieces[2], pieces[3])


def edge_mlp_grad(ps, pr, senders, receivers, vecs, mats, w_out, b_out, g, extra=None):
    """Backward pass of `edge_mlp` for the cotangent g [E] of its logits.

    Returns (d_in [E, H] -- the gradient of each edge's first-layer pre-activation, so
    d ps = segment_sum(d_in, senders), d pr = segment_sum(d_in, receivers), d extra = d_in --,
    d vecs, d mats, d w_out, d b_out). The kernel recomputes the forward pass tile by tile; parameter gradients
    are summed per fixed chunk of CHUNK_ROWS rows, then over chunks: deterministic.
    """
    _require()
    width, n_layers = ps.shape[-1], vecs.shape[0]
    call = jax.ffi.ffi_call(EDGE_MLP_GRAD_TARGET, _grad_outputs(senders.shape[0], width, n_layers),
                            vmap_method="sequential")
    args = (ps, pr, senders, receivers, vecs, mats.reshape(-1, width, width), w_out,
            b_out.reshape(1), _extra_rows(extra, senders.shape[0], width), g)
    d_in, partials = vary_like(call(*args), *args)
    return (d_in, *_unpack_grad_params(partials, n_layers, width))


def row_mlp_grad(x, vecs, mats, g):
    """Backward pass of `row_mlp` for the cotangent g [R, H] of its output: (dx [R, H], d vecs,
    d mats), deterministic as `edge_mlp_grad`."""
    _require()
    width, n_layers = x.shape[-1], vecs.shape[0]
    call = jax.ffi.ffi_call(ROW_MLP_GRAD_TARGET, _grad_outputs(x.shape[0], width, n_layers),
                            vmap_method="sequential")
    args = (x, vecs, mats.reshape(-1, width, width), g)
    dx, partials = vary_like(call(*args), *args)
    d_vecs, d_mats, _, _ = _unpack_grad_params(partials, n_layers, width)
    return dx, d_vecs, d_mats


# ---------------------------------------------------------------------------------------------
# Message-passing primitives (graph_ops.cc): segment sums as gathers over edges grouped by node.


def segment_order(index: jnp.ndarray, num_segments: int) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Stable counting sort of edges by `index` int32 [E] (values in [0, num_segments)):
    (perm int32 [E], ptr int32 [num_segments + 1]); segment n's edges are perm[ptr[n]:ptr[n+1]],
    in edge order. O(E + N), one thread; not differentiable (integers)."""
    _require()
    index = jnp.asarray(index, jnp.int32)
    call = jax.ffi.ffi_call(SEGMENT_ORDER_TARGET,
                            (jax.ShapeDtypeStruct(index.shape, jnp.int32),
                             jax.ShapeDtypeStruct((num_segments + 1,), jnp.int32)),
                            vmap_method="sequential")
    return vary_like(call(index), index)


def segment_gather_sum(table: jnp.ndarray, rows: jnp.ndarray, coef: jnp.ndarray | None,
                       ptr: jnp.ndarray) -> jnp.ndarray:
    """out [N, H] float32, out[n] = Σ_{j in [ptr[n], ptr[n+1])} coef[j] · table[rows[j]].

    table float32 [T, H]; rows int32 [E] in [0, T); coef float32 [E] or None (all ones);
    ptr int32 [N + 1] from `segment_order`. Each output row is summed by one thread in j order:
    deterministic. Forward only (the callers define the gradients)."""
    _require()
    n = ptr.shape[0] - 1
    coef = jnp.zeros((0,), jnp.float32) if coef is None else jnp.asarray(coef, jnp.float32)
    call = jax.ffi.ffi_call(SEGMENT_GATHER_SUM_TARGET,
                            jax.ShapeDtypeStruct((n, table.shape[-1]), jnp.float32),
                            vmap_method="sequential")
    args = (jnp.asarray(table, jnp.float32), jnp.asarray(rows, jnp.int32), coef,
            jnp.asarray(ptr, jnp.int32))
    return vary_like(call(*args), *args)


def segment_sum(data: jnp.ndarray, index: jnp.ndarray, num_segments: int) -> jnp.ndarray:
    """jax.ops.segment_sum(data, index, num_segments) for data float32 [E, H], index int32 [E]
    in range, by `segment_order` + `segment_gather_sum` (deterministic; forward only)."""
    perm, ptr = segment_order(index, num_segments)
    return segment_gather_sum(data, perm, None, ptr)


def row_dots(a: jnp.ndarray, ia: jnp.ndarray, b: jnp.ndarray, ib: jnp.ndarray) -> jnp.ndarray:
    """out float32 [E], out[e] = a[ia[e]] · b[ib[e]]; a [Ta, H], b [Tb, H] float32, ia/ib int32
    [E]. Forward only."""
    _require()
    call = jax.ffi.ffi_call(ROW_DOTS_TARGET, jax.ShapeDtypeStruct(ia.shape, jnp.float32),
                            vmap_method="sequential")
    args = (jnp.asarray(a, jnp.float32), jnp.asarray(ia, jnp.int32), jnp.asarray(b, jnp.float32),
            jnp.asarray(ib, jnp.int32))
    return vary_like(call(*args), *args)


__all__ = ["KernelStatus", "status", "available", "loaded_label", "build", "edge_mlp", "row_mlp",
           "edge_mlp_grad", "row_mlp_grad", "segment_order", "segment_gather_sum", "segment_sum",
           "row_dots",
           "cache_dir", "cpu_flags", "find_compiler", "MLP_WIDTHS", "SOURCE", "GRAPH_OPS_SOURCE"]
