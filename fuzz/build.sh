#!/usr/bin/env bash
# Build the GGUF reader fuzzer (libFuzzer + AddressSanitizer + UBSan) into fuzz/out/:
#   fuzz/build.sh                       -> fuzz/out/fuzz_gguf (libFuzzer) and fuzz/out/repro_gguf
#   fuzz/out/fuzz_gguf -dict=fuzz/gguf.dict -max_total_time=1800 fuzz/corpus-run fuzz/corpus
#   fuzz/out/repro_gguf crash-file...   (the same checks, no libFuzzer: replays inputs)
# Needs clang with the libFuzzer runtime (Debian: clang-14 + libclang-rt-14-dev or
# libclang-common-14-dev).
set -euo pipefail
cd "$(dirname "$0")/.."
CC="${CC:-clang}"
mkdir -p fuzz/out
SRC="fuzz/fuzz_gguf.c csrc/gguf/gguf.c csrc/gguf/ggml_types.c csrc/core/error.c csrc/core/dtype.c csrc/core/threadpool.c
     csrc/quant/quant.c csrc/quant/scan.c"
FLAGS="-std=c11 -g -O1 -Icsrc -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -fno-omit-frame-pointer
       -fsanitize=address,undefined -fno-sanitize-recover=all"
$CC $FLAGS -fsanitize=fuzzer $SRC -o fuzz/out/fuzz_gguf -lm -pthread
$CC $FLAGS -DORC_FUZZ_MAIN $SRC -o fuzz/out/repro_gguf -lm -pthread
echo "built fuzz/out/fuzz_gguf and fuzz/out/repro_gguf"
