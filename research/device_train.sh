#!/usr/bin/env bash
# Train several caec variants side by side on one GPU within one device call, and check
# that GPU-encoded latents decode on a CPU. Run from the repository root on the GPU host:
#
#   bash research/device_train.sh MINUTES NAME:'TRAIN ARGS' [NAME:'TRAIN ARGS' ...]
#
# Training photos are read from data/train (a git-ignored copy of ../shared/data/train
# that travels with the call); weights, checkpoints, logs and research/gpu_cpu.py's analyses
# are written to $OUT directly, so that a call cut off at its time limit still returns them.
# The photos (45 MB) and the shipped weights together may exceed what one call can carry
# (64 MiB): put the --init weights in a git-ignored folder that travels too (runs/init), and
# leave the shipped weights that the call does not need out of the working tree for the call's
# duration. `cae-gdn-v3` was made this way, the recipe in docs/models.md.
# Each variant gets the same time budget (`caec train --minutes`); a variant whose
# torch.compile fails is retried once without it, in the time left.
set -u
OUT=${OUT:-runs/device-out}
MINUTES=$1
shift
mkdir -p "$OUT" runs/gpu
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import torch; print('torch', torch.__version__)"
  # the GPU-vs-CPU check needs a few Kodak images; a call short of room can leave them out
  if [ -d data/kodak3 ]; then python3 research/gpu_cpu.py analyse data/kodak3 "$OUT/gpu_analysis.npz"; fi
} >>runs/gpu/device.log 2>&1  # appends: one command may chain several calls of this script

train_for() {  # NAME MINUTES OPTIONS...: one bounded `caec train`, appending to NAME's log
  local name=$1 minutes=$2
  shift 2
  timeout $((${MINUTES%.*} * 60 + 120)) python3 -m cae_codec train data/train -o "$OUT/$name.safetensors" \
    --minutes "$minutes" "$@" >>"runs/gpu/$name.log" 2>&1
}

run_variant() {
  local name=$1 args=$2 start left
  start=$(date +%s)
  : >"runs/gpu/$name.log"
  # shellcheck disable=SC2086  # args is a list of options
  train_for "$name" "$MINUTES" $args && return
  left=$(python3 -c "print(round($MINUTES - ($(date +%s) - $start) / 60 - 0.5, 2))")
  echo "== failed; retrying without torch.compile for $left min" >>"runs/gpu/$name.log"
  # shellcheck disable=SC2086
  python3 -c "import sys; sys.exit(float('$left') < 1)" && train_for "$name" "$left" --no-compile $args
}

names=()
for spec in "$@"; do
  run_variant "${spec%%:*}" "${spec#*:}" &
  names+=("${spec%%:*}")
done
wait
for name in "${names[@]}"; do
  {
    echo "== $name"
    tr '\r' '\n' <"runs/gpu/$name.log" | grep -v '^\s*$' >"runs/gpu/$name.lines"
    grep -v '%|' "runs/gpu/$name.lines"                         # messages
    grep '%|' "runs/gpu/$name.lines" | awk 'NR % 400 == 0' | tail -n 15  # progress, sampled
    grep '%|' "runs/gpu/$name.lines" | tail -n 1
  } >>runs/gpu/device.log
done
cp runs/gpu/device.log "$OUT/device.log"
# checkpoints stay on the device: $OUT returns at most 8 files, and a finished run's weights
# are all a next leg needs (--init)
[ -n "${KEEP_CHECKPOINTS:-}" ] || rm -f "$OUT"/*.ckpt.safetensors
cat runs/gpu/device.log
