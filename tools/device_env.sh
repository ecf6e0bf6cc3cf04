# Sourced by the tools/device_*.sh scripts: the environment every device call starts with.
# $OUT (default /tmp/orc-out) receives the logs; CUDA is built for sm_90 with warnings as
# errors; carried wheels (.whl/) go to /tmp/site; carried models (.models/) become the cache.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT="${OUT:-/tmp/orc-out}"; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 ORC_CUDA=1 ORC_WERROR=1 ORC_CUDA_ARCHS="${ORC_CUDA_ARCHS:-90}"
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site
fi
[ -d .models ] && export ORC_MODEL_CACHE="$PWD/.models" ORC_FIXTURES_OFFLINE=1
# The tests and the benchmark's model writers need gguf-py; the device has no network, so it comes as a
# carried wheel. Stop now, not after the build, when it is missing (carry [".whl"]; README's device notes).
if ! python3 -c "import gguf" >/dev/null 2>&1; then
    echo "device_env.sh: gguf is not importable: carry .whl/ (python3 -m pip download gguf==0.19.0 --no-deps -d .whl)" >&2
    exit 2
fi
