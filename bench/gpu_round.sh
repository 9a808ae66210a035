#!/usr/bin/env bash
# One round of every GPU measurement that docs/benchmarks.md quotes, and the GPU tests.
#
#   bash bench/gpu_round.sh [LOG_DIR]        # default LOG_DIR: gpu-logs/
#
# Needs a CUDA machine with the project installed (`pip install -e .[dev]`). Each step has its
# own time limit (seconds, STEP_LIMIT, default 150), so one slow step cannot eat the others;
# every step's output goes to LOG_DIR/<step>.log and a one-line status to LOG_DIR/summary.txt.
# Steps run one after the other so that they never compete for the GPU.
set -u
LOG_DIR=${1:-gpu-logs}
LIMIT=${STEP_LIMIT:-150}
PY=${PYTHON:-python}
if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "expected a CUDA device, found none (torch.cuda.is_available() is False)" >&2
    exit 2
fi
mkdir -p "$LOG_DIR"
: > "$LOG_DIR/summary.txt"

step() {  # step NAME COMMAND...
    local name=$1; shift
    local start=$SECONDS
    timeout --signal=TERM --kill-after=10 "$LIMIT" "$@" > "$LOG_DIR/$name.log" 2>&1
    local rc=$?
    printf '%-22s rc=%-3s %4ss  %s\n' "$name" "$rc" "$((SECONDS - start))" "$*" | tee -a "$LOG_DIR/summary.txt"
}

"$PY" -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))" > "$LOG_DIR/device.txt" 2>&1
step compare_weights "$PY" bench/bench_compare_weights.py --no-ww --repeats 5
step bss             "$PY" bench/bench_bss.py --device cuda
step engine          "$PY" bench/bench_engine.py --device cuda --data digits
step scenarios       "$PY" bench/bench_scenarios.py --device cuda
step gpu_tests       "$PY" -m pytest -q -m gpu -p no:cacheprovider tests
