#!/usr/bin/env bash
# The GPU checks of the project, for a machine with a CUDA GPU, in under 5 minutes:
#   1. the GPU is there: nvidia-smi answers and torch sees CUDA;
#   2. the GPU tests: GT_BACKEND=torch python -m pytest -q -m gpu tests/
#   3. the engine benchmark: python benchmarks/bench_engines.py (numpy, torch CPU, and every GPU)
#   4. where a step's time goes on the GPU, gt beside PyTorch: benchmarks/profile_step.py, float32
#      at 2 x 4 and bfloat16 autocast at 16 x 8
# Each step runs under `timeout` (at most 15 + 45 + 70 + 95 + 30 + 30 s, plus 10 s grace per step
# to stop a step that ignores SIGTERM, in all under 5 minutes); a summary of what passed is printed at the end.
#
#   bash benchmarks/gpu_check.sh              # from anywhere; it runs in the repository root
#   PYTHON=.venv/bin/python bash benchmarks/gpu_check.sh
#
# Exit status: 0 when every step passed, 1 when a step failed or ran out of time, 2 when there
# is no usable GPU (nothing else is run then).

set -u

cd "$(dirname "$0")/.." || exit 2
PYTHON=${PYTHON:-python}
TEST_LIMIT=${GPU_CHECK_TEST_LIMIT:-70}      # seconds for the GPU tests (45-64 s on an H200)
BENCH_LIMIT=${GPU_CHECK_BENCH_LIMIT:-95}    # seconds for the engine benchmark (60-80 s on an H200)
PROFILE_LIMIT=${GPU_CHECK_PROFILE_LIMIT:-30}  # seconds for each step's profile (13-23 s on an H200)

declare -a SUMMARY=()
FAILED=0

step() {
    # step NAME LIMIT COMMAND...: run COMMAND under `timeout LIMIT`, record how it went
    local name=$1 limit=$2 start status
    shift 2
    echo
    echo "== ${name} (at most ${limit} s): $*"
    start=$(date +%s)
    timeout --kill-after=10 "${limit}" "$@"
    status=$?
    local took=$(( $(date +%s) - start ))
    if [ "${status}" -eq 0 ]; then
        SUMMARY+=("ok      ${name} (${took} s)")
    elif [ "${status}" -eq 124 ] || [ "${status}" -eq 137 ]; then
        SUMMARY+=("TIMEOUT ${name}: stopped after ${limit} s")
        FAILED=1
    else
        SUMMARY+=("FAILED  ${name}: exit status ${status} (${took} s)")
        FAILED=1
    fi
}

if ! command -v nvidia-smi >/dev/null 2>&1; then
    echo "gpu_check: nvidia-smi not found: this machine has no NVIDIA driver, so no CUDA GPU to check" >&2
    exit 2
fi
if ! timeout 15 nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv,noheader; then
    echo "gpu_check: nvidia-smi found no usable GPU (see its message above)" >&2
    exit 2
fi
if ! timeout 45 "${PYTHON}" -c 'import torch; assert torch.cuda.is_available(); print("torch", torch.__version__,
      "CUDA", torch.version.cuda, "GPUs:", torch.cuda.device_count(), torch.cuda.get_device_name(0))' 2>/dev/null; then
    echo "gpu_check: ${PYTHON} cannot use CUDA: torch is missing or is a CPU-only build" \
         "(check: ${PYTHON} -c 'import torch; print(torch.__version__, torch.version.cuda)')" >&2
    exit 2
fi

step "GPU tests" "${TEST_LIMIT}" env GT_BACKEND=torch "${PYTHON}" -m pytest -q -p no:cacheprovider -m gpu tests/
step "engine benchmark" "${BENCH_LIMIT}" "${PYTHON}" benchmarks/bench_engines.py
step "profile of a step" "${PROFILE_LIMIT}" env GT_BACKEND=torch "${PYTHON}" benchmarks/profile_step.py
step "profile of a bfloat16 step" "${PROFILE_LIMIT}" env GT_BACKEND=torch "${PYTHON}" benchmarks/profile_step.py \
    --batch 16 8 --autocast bfloat16

echo
echo "== summary"
printf '%s\n' "${SUMMARY[@]}"
exit "${FAILED}"
