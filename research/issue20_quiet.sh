#!/usr/bin/env bash
# Issue 20 on a quiet machine (no trainings, no tests): the final figures of the evening session's
# levers, about 10-12 minutes on 2 cores. Run from the repository root:
#
#     bash research/issue20_quiet.sh 2>&1 | tee runs/issue20_quiet.txt
#
# 1. `make bench` (tools.speed and tools.startup: docs/benchmark.md's generated sections and
#    docs/bench.json, docs/startup.json);
# 2. start-up of the code before the session (BEFORE, a git archive) and now, in turns;
# 3. what a one-file process pays for ONNX Runtime under its levers, 2 threads, in turns;
# 4. int8 and sub-pixel graphs against the shipped ones, the network alone, 2 threads, in turns
#    (needs runs/int8-keeplast and runs/int8-subpixel from research/int8_graphs.py quantize;
#    skipped when they are not there);
# 5. the whole decode (cae_codec.decode, sessions kept) with those decoder graphs, in turns;
# 6. research/runtime_speed.py: torch against ONNX Runtime's levels, spinning and decoder forms.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
BEFORE=${BEFORE:-5dd2b5f}
ROUNDS=${ROUNDS:-9}  # rounds of sections 2-6 (a trial run: ROUNDS=1 SKIP_BENCH=1)
KODAK=${KODAK:-../shared/data/kodak}
unset PYTHONDONTWRITEBYTECODE  # an installed caec has its bytecode: so must both trees here

echo "== $(date -u '+%F %T') load: $(cut -d' ' -f1-3 /proc/loadavg); HEAD $(git rev-parse --short HEAD), before $BEFORE"
echo "== 1. make bench"
# -o: the venv is taken as installed (a newer pyproject.toml would reinstall it mid-measurement)
if [ -z "${SKIP_BENCH:-}" ]; then make -o .venv/bin/caec bench KODAK="$KODAK"; fi
echo "== load: $(cut -d' ' -f1-3 /proc/loadavg)"

echo "== 2. start-up, before ($BEFORE) and now, in turns"
before_tree=$(mktemp -d)
trap 'rm -rf "$before_tree"' EXIT
git archive "$BEFORE" | tar -x -C "$before_tree"
$PY -m research.startup_turns --tree "before=$before_tree" --tree now=. --rounds "$ROUNDS" --image "$KODAK/kodim23.png"

echo "== 3. ONNX Runtime's first calls, 2 threads"
OMP_NUM_THREADS=2 $PY -m research.graph_first_call --threads 2 --rounds "$(( (ROUNDS + 1) / 2 ))" \
    --configs shipped,preoptimized,arena-off,mem-pattern-off,spinning,sub-pixel,calls-of-8

echo "== 4. int8 and sub-pixel graphs, the network alone, 2 threads"
if [ -d runs/int8-keeplast ] && [ -d runs/int8-subpixel/float ]; then
    OMP_NUM_THREADS=2 $PY -m research.int8_graphs speed --threads 2 --rounds "$ROUNDS" \
        --variants int8=runs/int8-keeplast,float-sub-pixel=runs/int8-subpixel/float,int8-all-sub-pixel=runs/int8-subpixel
    echo "== 5. the whole decode with other decoder graphs, 2 threads, sessions kept (as make bench)"
    OMP_NUM_THREADS=2 $PY -m research.int8_graphs codec-time --threads 2 --rounds "$(( (ROUNDS + 1) / 2 ))" --images 6 --kodak "$KODAK" \
        --variants float-sub-pixel=runs/int8-subpixel/float,int8=runs/int8-keeplast
else
    echo "(no int8 graphs: python -m research.int8_graphs quantize --out runs/int8-keeplast --keep-float encoder.6/Conv, and --sub-pixel)"
fi
echo "== 6. the networks alone in torch and in ONNX Runtime's settings and forms, 2 threads, in turns"
$PY -m research.runtime_speed --threads 2 --rounds "$ROUNDS"
echo "== done $(date -u '+%F %T') load: $(cut -d' ' -f1-3 /proc/loadavg)"
