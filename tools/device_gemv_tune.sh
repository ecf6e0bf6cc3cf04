#!/usr/bin/env bash
# One device call to tune the GEMV's launch choices that never change a result: build orc, run
# the GPU tests, then bench/bench_kernels.py under each ring depth (ORC_GEMV_STAGES) and with
# programmatic dependent launch off (ORC_PDL=0), and the decode step times of
# bench/profile_decode.py with PDL on and off.
#   tools/device_gemv_tune.sh        (env: TYPES, NS, MODELS, SKIP_TESTS, PYTEST_ARGS)
set -uo pipefail
source "$(dirname "$0")/device_env.sh"
( time python3 setup.py build_ext --inplace -j 12 ) >"$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; exit 1; }
tail -3 "$OUT/build.log"
if [ -z "${SKIP_TESTS:-}" ]; then
    timeout "${TEST_TIMEOUT:-300}" python3 -m pytest -m gpu -q -rs --tb=short -p no:cacheprovider ${PYTEST_ARGS:-} \
        >"$OUT/gpu_tests.log" 2>&1
    echo "gpu tests rc=$?"; grep -E "^(FAILED|ERROR)|^E  |passed|failed" "$OUT/gpu_tests.log" | tail -30
fi
TYPES="${TYPES:-Q4_K,Q6_K,Q8_0,F16}" NS="${NS:-1,4}"
for v in "ORC_GEMV_STAGES=2" "ORC_GEMV_STAGES=3" "ORC_GEMV_STAGES=4" "ORC_PDL=0" "ORC_GEMV_STAGES=0"; do
    echo "### $v"
    env "$v" timeout 150 python3 bench/bench_kernels.py --types "$TYPES" --n "$NS" --no-attention 2>/dev/null \
        | tee "$OUT/kernels_${v/=/}.txt" | grep -E "x[0-9]+ +[A-Z0-9_]+ +[0-9] "
done
for v in "ORC_PDL=1" "ORC_PDL=0"; do
    echo "### decode $v"
    env "$v" timeout 200 python3 bench/profile_decode.py --models "${MODELS:-qwen05-q4_k_m,llama8b-q4_k}" \
        --weights quantized 2>&1 | tee "$OUT/decode_${v/=/}.txt" | grep -E "^##|prompt:"
done
if [ -n "${NCU:-1}" ] && command -v ncu >/dev/null; then
    echo "### ncu"
    timeout 120 ncu --clock-control none -k regex:orc_gemv_kernel -c 2 --section SpeedOfLight \
        --section WarpStateStats --section SchedulerStats --section Occupancy --section LaunchStats \
        python3 bench/ncu_gemv.py --rows 14336 --cols 4096 --type Q4_K >"$OUT/ncu_q4k.txt" 2>&1
    grep -E "Duration|Throughput|Issue Slots|Issued Warp|No Eligible|Active Warps|Eligible Warps|Stall|Registers|Theoretical Occ|Achieved Occ|Block Limit|Shared Memory Config|Dynamic Shared" "$OUT/ncu_q4k.txt" | head -60
fi
