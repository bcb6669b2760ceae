#!/usr/bin/env bash
# Everything Paddy measures on a GPU, in one run (under 8 minutes on an H100/H200), one table:
#   1. the CUDA-only tests (tests whose name says cuda, in the files that skip without CUDA);
#   2. bench.train_throughput for all four families (Paddy's loop against the original's);
#   3. bench.real_data --compare-bf16: bf16 against fp32 accuracy on the real tiles.
#
#   bench/gpu_check.sh            # on a GPU host; record the table in docs/benchmarks.md with the card
#   bench/gpu_check.sh --smoke    # the same parts, tiny, on whatever device there is (checks the script)
#
# Without CUDA the GPU parts are skipped, and the table says so; the script still exits 0. It exits
# 1 when a part that ran failed. PYTHON (default .venv/bin/python, else python3) runs everything.
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
DATA=${PADDY_REAL_DATA:-../shared/datasets/rice-leaf-real}
SMOKE=false
case "${1:-}" in
  "") ;;
  --smoke) SMOKE=true ;;
  *) echo "usage: $0 [--smoke]" >&2; exit 2 ;;
esac

LOGS=$(mktemp -d "${TMPDIR:-/tmp}/paddy-gpu-check.XXXXXX")
trap 'rm -rf "$LOGS"' EXIT
ROWS=()
FAILED=0

CARD=$("$PYTHON" -c 'import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")')
if [ -n "$CARD" ]; then
  DEVICE=cuda
else
  DEVICE=cpu
  CARD="none (torch.cuda.is_available() is false)"
fi
echo "GPU: $CARD"
echo "python: $PYTHON, data: $DATA, smoke: $SMOKE"

# part NAME KEY_FIGURE_COMMAND -- COMMAND...: runs COMMAND with its output shown and kept, then
# KEY_FIGURE_COMMAND reads that output (on stdin) for the table's key figure.
part() {
  local name=$1 figure=$2 started status seconds key
  shift 3
  echo
  echo "=== $name: $*"
  started=$(date +%s.%N)
  if "$@" 2>&1 | tee "$LOGS/$name.log"; then
    status=ran
    key=$("$figure" <"$LOGS/$name.log" || true)
  else
    local statuses=("${PIPESTATUS[@]}")
    status=failed
    FAILED=1
    key="exit status ${statuses[0]}; see above"
  fi
  seconds=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')
  ROWS+=("$name|$status|$seconds|${key:-see above}")
}

skip() {
  ROWS+=("$1|skipped|0|$2")
}

pytest_figure() {
  grep -E '[0-9]+ (passed|failed|skipped|error).* in [0-9.]+s' | tail -1 | sed -E 's/^=+ //; s/ =+$//'
}

# Paddy's steady-state images/s per model from the bench's table (its columns found by name), with
# the pipeline efficiency (the bound) where the bench reports one.
throughput_figure() {
  "$PYTHON" -c '
import re, sys
header, rates, efficiency = None, {}, {}
for line in sys.stdin:
    if match := re.match(r"pipeline efficiency (\S+): ([0-9.]+)", line):
        efficiency[match[1]] = match[2]
    cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
    if "model" in cells and "loop" in cells and "steady img/s" in cells:
        header = cells
    elif header and len(cells) == len(header) and cells[header.index("loop")].startswith("paddy"):
        rates[cells[0]] = cells[header.index("steady img/s")]
    elif not line.strip():
        header = None
print(", ".join(
    f"{model} {rate} img/s" + (f" (efficiency {efficiency[model]})" if model in efficiency else "")
    for model, rate in rates.items()
))
'
}

bf16_figure() {
  grep -E '^mean test accuracy over' | sed -E 's/^mean test accuracy over //'
}

CUDA_TEST_FILES=$(grep -rl --include='test_*.py' 'skipif(not torch.cuda.is_available()' tests || true)

if [ "$DEVICE" = cuda ] || [ "$SMOKE" = true ]; then
  # Without CUDA (smoke) these are collected and reported skipped: proof the selection finds them.
  # shellcheck disable=SC2086
  part cuda-tests pytest_figure -- "$PYTHON" -m pytest -q -p no:cacheprovider -rs -k cuda $CUDA_TEST_FILES
else
  skip cuda-tests "no CUDA device: $(echo $CUDA_TEST_FILES | wc -w) files of CUDA-only tests not run"
fi

if [ "$SMOKE" = true ]; then
  part throughput throughput_figure -- "$PYTHON" -m bench.train_throughput --device "$DEVICE" \
    --models custom_cnn --image-size 64 --images 16 --batch-size 8 --epochs 2 --data "$DATA"
  part bf16-accuracy bf16_figure -- "$PYTHON" -m bench.real_data --compare-bf16 --device "$DEVICE" \
    --seeds 42 --epochs 1 --image-size 64 --data "$DATA"
elif [ "$DEVICE" = cuda ]; then
  part throughput throughput_figure -- "$PYTHON" -m bench.train_throughput --device cuda \
    --models custom_cnn mobilenet_v2 resnet50 vgg16 --data "$DATA"
  part bf16-accuracy bf16_figure -- "$PYTHON" -m bench.real_data --compare-bf16 --device cuda \
    --seeds 42 43 44 --data "$DATA"
else
  skip throughput "no CUDA device (the full bench is for GPUs; --smoke runs a tiny one here)"
  skip bf16-accuracy "no CUDA device (the full check is for GPUs; --smoke runs a tiny one here)"
fi

echo
echo "GPU check on: $CARD$([ "$SMOKE" = true ] && echo ' (smoke run: tiny parts, figures mean nothing)')"
echo "| part | status | seconds | key figure |"
echo "|---|---|---|---|"
for row in "${ROWS[@]}"; do
  IFS='|' read -r name status seconds key <<<"$row"
  echo "| $name | $status | $seconds | $key |"
done
if [ "$DEVICE" = cpu ]; then
  echo "CUDA parts skipped: no CUDA device here. Run bench/gpu_check.sh on an H100/H200 for the figures."
fi
exit "$FAILED"
