#!/usr/bin/env bash
# One device call: build, GPU tests, and the requested reports/benchmarks, all logged under $OUT.
#   tools/device_round.sh [tests] [parity] [bench-model] [bench-dequant] [real]
# Carried wheels (.whl/) go to /tmp/site; carried models (.models/) become the model cache.
set -uo pipefail
source "$(dirname "$0")/device_env.sh"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
( time python3 setup.py build_ext --inplace -j 16 ) >"$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; exit 1; }
python3 -m orc --version
for step in "$@"; do
    case "$step" in
    tests)
        timeout "${TEST_TIMEOUT:-300}" python3 -m pytest -m gpu -q -rs --tb=short -p no:cacheprovider ${PYTEST_ARGS:-} >"$OUT/gpu_tests.log" 2>&1
        echo "gpu tests rc=$?"; grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/gpu_tests.log" | tail -30 ;;
    parity)
        timeout 200 python3 tools/gpu_parity_report.py ${PARITY_ARGS:-} >"$OUT/parity.txt" 2>&1; echo "parity rc=$?"; cat "$OUT/parity.txt" ;;
    bench-model)
        timeout 200 python3 bench/bench_model.py --reps "${REPS:-3}" >"$OUT/bench_model.txt" 2>&1; tail -8 "$OUT/bench_model.txt" ;;
    bench-dequant)
        timeout 150 python3 bench/bench_dequant.py --mib 256 --iters 10 --markdown >"$OUT/bench_dequant.md" 2>&1; tail -3 "$OUT/bench_dequant.md" ;;
    *) echo "unknown step $step" ;;
    esac
done
