#!/usr/bin/env bash
# Build orc on the GPU machine and run the GPU test subset, in one device call:
#   tools/device_test.sh [extra pytest args]
# Carried wheels (.whl/, e.g. gguf) are installed to /tmp/site first when present.
# Everything is tee'd to $OUT/log when $OUT is set.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp/orc-out}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 ORC_CUDA=1 ORC_WERROR=1 ORC_CUDA_ARCHS="${ORC_CUDA_ARCHS:-90}"
{
    if ls .whl/*.whl >/dev/null 2>&1; then
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
        export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
    fi
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    python3 setup.py build_ext --inplace -j 8 >"$OUT/build.log" 2>&1 || { tail -50 "$OUT/build.log"; exit 1; }
    python3 -m orc --version
    python3 -m pytest -m gpu -q -rs "$@"
} 2>&1 | tee -a "$OUT/log"
exit "${PIPESTATUS[0]}"
