#!/bin/bash
# The reference workloads on a GPU machine, as one bounded run (every part has a time limit, so a
# short lease still returns what finished). Usage:
#
#     bash scripts/gpu_report.sh [OUTDIR] [SECONDS]     # defaults: ./gpu_report, 530
#
# Needs gnntrack importable (pip install -e ".[torch]" or PYTHONPATH) and a JAX that sees the GPU.
# Writes one log per part to OUTDIR (plus versions.txt and the quickstart's report.md), most
# telling parts first, so a run cut short by its budget keeps those:
#   smoke          tiny comparison; stops the run at once if anything fails to import or compile
#   particlenet_lite  ParticleNet-Lite (scripts/compare_particlenet.py) vs PyTorch on CUDA: train
#                  step and inference, batch 128, 80 constituents
#   ref_chunk0     scripts/compare_pytorch.py's reference workload (80k edges), impl=fast,
#                  unchunked (the GPU default, models.default_chunk_size), vs PyTorch on CUDA
#   mu200_size     the same model with 3 iterations on a graph the size of a filtered mu = 200
#                  event (106k nodes, 1.04M edges, experiments/whole_event)
#   quickstart     `gnntrack quickstart` end to end on the GPU
#   particlenet    the full ParticleNet the same way (its first run on an H100 did not finish
#                  within 110 s, cause not read: hence after the quickstart, with its own limit)
#   scaling        10k .. 3M edges, fresh process per size, peak device memory of each side
#   ref_chunk2048  80k edges with the CPU row blocks, and the FLOP floor
#   ref_reference  impl=reference (the naive formulation) for the fast-vs-naive ratio
#   ref_tf32       both frameworks with TensorFloat-32 matmuls instead of strict float32
OUT=${1:-gpu_report}; BUDGET=${2:-530}; START=$(date +%s)
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false  # peak memory as used, shared with torch
PY=${PYTHON:-python3}; C="$(dirname "$0")/compare_pytorch.py"
left() { echo $(( BUDGET - ($(date +%s) - START) )); }
part() {  # part NAME LIMIT cmd...: runs cmd for at most min(LIMIT, time left), log in OUT/NAME.txt
  local name=$1 limit=$2 l; shift 2; l=$(left); (( l < limit )) && limit=$l
  (( limit < 15 )) && { echo "== $name: skipped (time budget spent)"; return 0; }
  echo "== $name (limit ${limit}s, t=$(( $(date +%s) - START ))s)"
  timeout "$limit" "$@" > "$OUT/$name.txt" 2>&1; local rc=$?
  echo "== $name rc=$rc t=$(( $(date +%s) - START ))s"; tail -n 40 "$OUT/$name.txt"; return $rc
}
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null; nproc
$PY -c "import jax, flax, optax, orbax.checkpoint as ocp, jraph, torch; print('jax', jax.__version__, \
jax.devices(), 'flax', flax.__version__, 'optax', optax.__version__, 'orbax', ocp.__version__, \
'torch', torch.__version__, 'cuda', torch.cuda.is_available())"; } 2>&1 | tee "$OUT/versions.txt"
[[ ${PIPESTATUS[0]} == 0 ]] || exit 1
part smoke 90 $PY "$C" --nodes 500 --edges 2000 --repeats 1 --steps 2 --floor-repeats 1 --no-scaling \
  || { echo "smoke run failed: see $OUT/smoke.txt"; exit 1; }
fast='{"impl": "fast", "chunk_size": 0}'
P="$(dirname "$0")/compare_particlenet.py"  # one part per model: a slow compile of one keeps the other
part particlenet_lite 70 $PY "$P" --models particlenet_lite --warmup 2 --repeats 5 --json "$OUT/particlenet_lite.json"
part ref_chunk0 70 $PY "$C" --repeats 3 --steps 10 --warmup 3 --no-floor --no-scaling --overrides "$fast"
part mu200_size 80 $PY "$C" --nodes 106000 --edges 1040000 --n-iters 3 --repeats 2 --steps 5 --warmup 2 \
  --no-floor --no-scaling --overrides "$fast"
part quickstart 200 $PY -m gnntrack quickstart --workdir /tmp/gnntrack_gpu_quickstart --no-progress
part particlenet 150 $PY "$P" --models particlenet --warmup 1 --repeats 3 --json "$OUT/particlenet.json"
part scaling 150 $PY "$C" --repeats 1 --steps 3 --warmup 1 --no-floor --nodes 1000 --edges 4000 \
  --scaling-edges 10000,100000,1000000,3000000 --scaling-steps 10 --torch-max-edges 1000000 --overrides "$fast"
part ref_chunk2048 130 $PY "$C" --repeats 3 --steps 10 --warmup 3 --floor-repeats 5 --no-scaling \
  --overrides '{"impl": "fast", "chunk_size": 2048}'
part ref_reference 60 $PY "$C" --repeats 3 --steps 10 --warmup 3 --no-floor --no-scaling --skip-torch \
  --overrides '{"impl": "reference"}'
part ref_tf32 60 $PY "$C" --repeats 3 --steps 10 --warmup 3 --no-floor --no-scaling --matmul-precision tf32 \
  --overrides "$fast"
cp /tmp/gnntrack_gpu_quickstart/report.md "$OUT/quickstart_report.md" 2>/dev/null
echo "total $(( $(date +%s) - START ))s"
