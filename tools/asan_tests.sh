#!/usr/bin/env bash
# Build orc._orc with AddressSanitizer + UBSan (gcc, ORC_SANITIZE=address,undefined) out of
# tree, and run the GGUF reader's test suite against it, so every hostile file of
# HARDENING.md rows 1-14 and every agreement test also runs under the sanitizers.
#   tools/asan_tests.sh [pytest args...]      (default: the reader's tests)
# The in-place build in orc/ is left alone: the sanitized module is built into
# build/asan-lib and run from a scratch copy of orc/ and tests/ (with csrc/ and tools/, which
# the tests that build C programs or check generated files read).
# LeakSanitizer runs too, with CPython's own allocations at exit suppressed
# (tools/lsan_python.supp); PYTHONMALLOC=malloc so ASan sees every Python allocation.
# ORC_ASAN_EXTRA="opt=value:..." is appended to ASAN_OPTIONS (e.g. fast_unwind_on_malloc=0 for
# full leak stacks, detect_leaks=0).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SCRATCH=$(mktemp -d /tmp/orc-asan.XXXXXX)
trap 'rm -rf "$SCRATCH"' EXIT

ORC_SANITIZE=address,undefined ORC_CUDA=0 ORC_WERROR=1 ORC_DEBUG=1 \
    python setup.py build_ext --build-temp build/asan-temp --build-lib build/asan-lib -q >"$SCRATCH/build.log" 2>&1 \
    || { tail -40 "$SCRATCH/build.log"; exit 1; }
cp -r orc tests csrc tools "$SCRATCH/"  # csrc, tools: for the tests that build C programs or check generated files
rm -f "$SCRATCH"/orc/_orc*.so
cp build/asan-lib/orc/_orc*.so "$SCRATCH/orc/"

PY=$(python -c 'import sys; print(sys.executable)')  # not a shim script: it would run sanitized too
LIBASAN=$(gcc -print-file-name=libasan.so)
LIBUBSAN=$(gcc -print-file-name=libubsan.so)
[ -e "$LIBASAN" ] || { echo "libasan not found (gcc -print-file-name=libasan.so)"; exit 1; }

if [ $# -eq 0 ]; then
    set -- tests/test_gguf_reader.py tests/test_gguf_hardening.py
fi
cd "$SCRATCH"
export LD_PRELOAD="$LIBASAN $LIBUBSAN"
export PYTHONMALLOC=malloc
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1${ORC_ASAN_EXTRA:+:$ORC_ASAN_EXTRA}"
export LSAN_OPTIONS="suppressions=$ROOT/tools/lsan_python.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export ORC_STALE_CHECK=0
"$PY" -c "import orc; assert orc.build_info()['sanitize'] == 'address,undefined', orc.build_info()['sanitize']; print('sanitized build:', orc.build_info()['sanitize'])"
"$PY" -m pytest -q -p no:cacheprovider "$@"
