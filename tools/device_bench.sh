#!/usr/bin/env bash
# One device call for issue 14's comparison: llama.cpp (shared/anchors, carried as .anchors/) builds in
# the background while orc builds and runs its GPU tests; then bench/bench_vs_llama.py runs both tools on
# the same files. Everything lands under $OUT.
#   tools/device_bench.sh [bench_vs_llama.py args...]
# Environment: SKIP_TESTS=1 skips the GPU tests; PYTEST_ARGS narrows them; LLAMA_WAIT (s, default 420);
# TUNE=1 runs bench_kernels.py under each GEMV ring depth while llama.cpp builds (TUNE_TYPES, TUNE_NS);
# DECODE_AB=1 runs bench/profile_decode.py with ORC_PDL=1 and 0 then (DECODE_MODELS);
# EXACT_AB=1 runs bench_kernels.py (n = 1) with the factored GEMV and with ORC_GEMV_EXACT=1;
# KERNELS=1 runs bench_kernels.py at n = 1 (its one-token rows in both GEMV forms, float and int16 x);
# PROFILE_MODELS=a,b runs profile_decode.py (weights="quantized", ORC_DEBUG_FAST=1) on those models;
# AB_ENVS="A=1;A=2,B=3" runs bench/decode_ab.py (decode step times per setting) on AB_MODELS;
# GRAPH_PROFILE=a,b runs bench/graph_profile.py (each decode kernel's cost inside the graph) on those models;
# PREP_MODELS=a,b writes those model files in the background once orc is built (the bench waits for them);
# WAIT_CMD="..." runs (eval) after the rest, while llama.cpp may still be building (output to $OUT/wait_cmd.txt);
# NO_BENCH=1 stops there (llama.cpp's build, if started, goes on for a next call on the same machine).
set -uo pipefail
source "$(dirname "$0")/device_env.sh"
if [ -f .anchors/build_llama_bench.sh ] && [ ! -x /tmp/llama/build/bin/llama-bench ]; then
    setsid bash .anchors/build_llama_bench.sh .anchors/llama.cpp-0c1e57098.tar.gz </dev/null >/tmp/llama-build.log 2>&1 &
fi
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
( time python3 setup.py build_ext --inplace -j 12 ) >"$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; exit 1; }
python3 -m orc --version
if [ -n "${PREP_MODELS:-}" ]; then # write the benchmark's model files while the tests run and llama.cpp builds
    setsid python3 bench/bench_vs_llama.py --prepare-only --models "$PREP_MODELS" </dev/null >"$OUT/prepare.log" 2>&1 &
fi
if [ -z "${SKIP_TESTS:-}" ]; then
    eval "test_args=(${PYTEST_ARGS:-})" # shell words: PYTEST_ARGS='tests/x.py -k "a or b"'
    timeout "${TEST_TIMEOUT:-300}" python3 -m pytest -m gpu -q -rs --tb=short -p no:cacheprovider "${test_args[@]}" \
        >"$OUT/gpu_tests.log" 2>&1
    echo "gpu tests rc=$?"; grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/gpu_tests.log" | tail -30
fi
if [ -n "${TUNE:-}" ]; then # while llama.cpp builds: the GEMV under each ring depth (results never change)
    for st in 2 3 4 0; do
        echo "### bench_kernels ORC_GEMV_STAGES=$st (0: the launcher's choice)"
        ORC_GEMV_STAGES=$st timeout 150 python3 bench/bench_kernels.py --types "${TUNE_TYPES:-Q4_K,Q6_K,Q8_0}" \
            --n "${TUNE_NS:-1}" --no-attention 2>/dev/null | tee "$OUT/kernels_stages$st.txt" | grep -E "x[0-9]+ +[A-Z0-9_]+ +[0-9] "
    done
fi
if [ -n "${DECODE_AB:-}" ]; then # while llama.cpp builds: decode step times with programmatic dependent launch on / off
    for pdl in 1 0; do
        echo "### profile_decode ORC_PDL=$pdl"
        ORC_PDL=$pdl timeout 200 python3 bench/profile_decode.py --models "${DECODE_MODELS:-qwen05-q4_k_m,llama8b-q4_k}" \
            --weights quantized 2>&1 | tee "$OUT/decode_pdl$pdl.txt" | grep -E "^##|prompt:"
    done
fi
if [ -n "${EXACT_AB:-}" ]; then # the factored one-token GEMV against the per-weight form
    for ex in 0 1; do
        echo "### bench_kernels ORC_GEMV_EXACT=$ex"
        ORC_GEMV_EXACT=$ex timeout 150 python3 bench/bench_kernels.py --types "${TUNE_TYPES:-Q4_K,Q6_K,Q8_0}" \
            --n 1 --no-attention 2>/dev/null | tee "$OUT/kernels_exact$ex.txt" | grep -E "x[0-9]+ +[A-Z0-9_]+ +[0-9] "
    done
fi
if [ -n "${KERNELS:-}" ]; then # the GEMV at one token, float and int16 x (bench_kernels prints both forms)
    timeout 200 python3 bench/bench_kernels.py --n 1 --no-attention 2>/dev/null | tee "$OUT/kernels.txt" | grep -E "^\|| x[0-9]+ "
fi
if [ -n "${PROFILE_MODELS:-}" ]; then # where a decode step goes, per primitive
    ORC_DEBUG_FAST=1 timeout "${PROFILE_TIMEOUT:-300}" python3 bench/profile_decode.py --models "$PROFILE_MODELS" \
        --weights quantized 2>&1 | tee "$OUT/profile.txt" | grep -vE "^\| [a-z_]+ \| 0\.0 " | head -80
fi
if [ -n "${AB_ENVS:-}" ]; then # decode step times under launch switches, a process per setting
    IFS=';' read -ra settings <<<"$AB_ENVS"
    args=(); for st in "${settings[@]}"; do args+=(--env "$st"); done
    timeout "${AB_TIMEOUT:-240}" python3 bench/decode_ab.py --models "${AB_MODELS:-qwen05-q4_k_m,llama8b-q4_k}" \
        "${args[@]}" 2>&1 | tee "$OUT/decode_ab.txt" | grep -E "^\|"
fi
if [ -n "${GRAPH_PROFILE:-}" ]; then # each decode kernel's cost inside the graph (ORC_PROFILE_DUP)
    timeout "${GRAPH_PROFILE_TIMEOUT:-300}" python3 bench/graph_profile.py --models "$GRAPH_PROFILE" 2>&1 |
        tee "$OUT/graph_profile.txt" | grep -E "^\||launches a step|Sum of"
fi
if [ -n "${WAIT_CMD:-}" ]; then
    eval "$WAIT_CMD" >"$OUT/wait_cmd.txt" 2>&1
    grep -E "Duration|Issued Warp|No Eligible|Active Warps|Eligible Warps|Registers|Theoretical Occ|Achieved Occ|Stall|orc_" "$OUT/wait_cmd.txt" | head -60
fi
[ -n "${NO_BENCH:-}" ] && exit 0
for _ in $(seq "${LLAMA_WAIT:-420}"); do [ -f /tmp/llama/build.rc ] && break; sleep 1; done
echo "llama.cpp build rc=$(cat /tmp/llama/build.rc 2>/dev/null || echo 'not finished')"
timeout "${BENCH_TIMEOUT:-400}" python3 bench/bench_vs_llama.py --json "$OUT/bench_vs_llama.json" "$@" \
    2>&1 | tee "$OUT/bench_vs_llama.txt" | tail -"${TAIL:-14}"
