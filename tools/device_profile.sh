#!/usr/bin/env bash
# One device call to see where decode time goes: build orc, then bench/profile_decode.py (with
# ORC_DEBUG_FAST=1: the fast path's refusals on stderr) and bench/bench_kernels.py --quick;
# the GPU tests first unless SKIP_TESTS=1 (PYTEST_ARGS narrows them); NCU=1 adds Nsight Compute's
# issue/occupancy sections for one GEMV shape (bench/ncu_gemv.py; NCU_ARGS, default Q4_K 14336x4096).
#   tools/device_profile.sh [profile_decode.py args...]
set -uo pipefail
source "$(dirname "$0")/device_env.sh"
( time python3 setup.py build_ext --inplace -j 12 ) >"$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; exit 1; }
tail -3 "$OUT/build.log"
if [ -z "${SKIP_TESTS:-}" ]; then
    timeout "${TEST_TIMEOUT:-300}" python3 -m pytest -m gpu -q -rs --tb=short -p no:cacheprovider ${PYTEST_ARGS:-} \
        >"$OUT/gpu_tests.log" 2>&1
    echo "gpu tests rc=$?"; grep -E "^(FAILED|ERROR)|^E  |passed|failed" "$OUT/gpu_tests.log" | tail -30
fi
ORC_DEBUG_FAST=1 timeout "${PROFILE_TIMEOUT:-200}" python3 bench/profile_decode.py "$@" 2>&1 | tee "$OUT/profile_decode.txt"
timeout "${KERNELS_TIMEOUT:-90}" python3 bench/bench_kernels.py --quick 2>&1 | tee "$OUT/bench_kernels.txt" | tail -40
if [ -n "${NCU:-}" ] && command -v ncu >/dev/null; then
    timeout 120 ncu --clock-control none -k regex:orc_gemv_kernel -c 1 --section SpeedOfLight \
        --section WarpStateStats --section SchedulerStats --section Occupancy --section LaunchStats \
        python3 bench/ncu_gemv.py ${NCU_ARGS:---rows 14336 --cols 4096 --type Q4_K} >"$OUT/ncu_gemv.txt" 2>&1
    grep -E "Duration|Throughput|Issued Warp|No Eligible|Active Warps|Eligible Warps|Registers|Occupancy|Block Limit" \
        "$OUT/ncu_gemv.txt" | head -40
fi
