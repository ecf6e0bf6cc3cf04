#!/usr/bin/env bash
# Build the tokenizer fuzzer (libFuzzer + AddressSanitizer + UBSan) into fuzz/out/:
#   fuzz/build_tokenizer.sh     -> fuzz/out/fuzz_tokenizer (libFuzzer) and fuzz/out/repro_tokenizer
#   fuzz/out/fuzz_tokenizer -max_total_time=600 fuzz/corpus-tok fuzz/corpus-tok-seeds
# Seeds: fuzz/make_tokenizer_seeds.py writes fuzz/corpus-tok-seeds (texts and vocabulary GGUFs).
set -euo pipefail
cd "$(dirname "$0")/.."
CC="${CC:-clang}"
mkdir -p fuzz/out
SRC="fuzz/fuzz_tokenizer.c csrc/tokenizer/tokenizer.c csrc/tokenizer/tokenizer_encode.c csrc/tokenizer/tokenizer_decode.c csrc/tokenizer/tokenizer_special.c csrc/tokenizer/unicode_tables.c csrc/gguf/gguf.c csrc/gguf/ggml_types.c csrc/core/error.c csrc/core/hash.c"
# ORC_TOK_POLL_BYTES=64: tokenize polls its cancel callback every 64 bytes (65536 in orc), so
# the fuzzer's short texts reach the cancellation path; ORC_TOK_SPECIAL_BLOCK=16: the special-token
# matcher works on 16 positions at a time (or the longest token), so tokens cross block edges.
FLAGS="-std=c11 -g -O1 -Icsrc -D_GNU_SOURCE -DORC_TOK_POLL_BYTES=64 -DORC_TOK_SPECIAL_BLOCK=16 -Wall -Wextra -Wno-unused-parameter -fno-omit-frame-pointer
       -fsanitize=address,undefined -fno-sanitize-recover=all"
$CC $FLAGS -fsanitize=fuzzer $SRC -o fuzz/out/fuzz_tokenizer -lm -pthread
$CC $FLAGS -DORC_FUZZ_MAIN $SRC -o fuzz/out/repro_tokenizer -lm -pthread
echo "built fuzz/out/fuzz_tokenizer and fuzz/out/repro_tokenizer"
