#!/usr/bin/env bash
# Multi-process (multi-node) gnntrack training on SLURM: one process per node (or per GPU),
# coordinated through jax.distributed. Documentation example: adapt partition, GPUs, modules.
#
#   sbatch scripts/launch_slurm.sh experiments/quickstart.py runs/quickstart_mp [--config.a.b=v ...]
#
# Every task runs the SAME `gnntrack train` command; gnntrack reads GNNTRACK_COORDINATOR,
# GNNTRACK_NUM_PROCESSES and GNNTRACK_PROCESS_ID (set below from SLURM's variables), calls
# jax.distributed.initialize, builds the same global batch in every process and feeds only its
# own devices' slice; process 0 writes the checkpoints and the run directory, the others their
# metrics into WORKDIR/process_<i> (WORKDIR must be on a filesystem every node sees). (Alternatively export
# GNNTRACK_DISTRIBUTED=auto and let JAX read the SLURM environment itself.)
#
#SBATCH --job-name=gnntrack
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1          # one process per node, owning all its GPUs
#SBATCH --gpus-per-node=4
#SBATCH --cpus-per-task=16
#SBATCH --time=02:00:00
#SBATCH --output=%x-%j.out

set -euo pipefail
CONFIG=${1:?usage: sbatch scripts/launch_slurm.sh CONFIG WORKDIR [overrides...]}
WORKDIR=${2:?usage: sbatch scripts/launch_slurm.sh CONFIG WORKDIR [overrides...]}
shift 2

# process 0 runs the coordinator on the first node of the allocation
HEAD_NODE=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
PORT=${GNNTRACK_PORT:-12355}

# shellcheck disable=SC2016  # expanded per task by the inner shell, not here
srun --kill-on-bad-exit=1 bash -c '
  export GNNTRACK_COORDINATOR="'"$HEAD_NODE"':'"$PORT"'"
  export GNNTRACK_NUM_PROCESSES="$SLURM_NTASKS"
  export GNNTRACK_PROCESS_ID="$SLURM_PROCID"
  exec gnntrack train --config "$0" --workdir "$1" --no-progress "${@:2}"
' "$CONFIG" "$WORKDIR" "$@"
