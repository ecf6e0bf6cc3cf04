/* fuzz_gguf.c - libFuzzer entry for the GGUF reader (csrc/gguf/gguf.c): open the input as a
 * buffer and, when it is accepted, touch everything the reader hands out (every key,
 * value, string byte, tensor info and tensor byte; every typed look-up), so the
 * sanitizers see any read the validation let through. Every tensor of a type orc can
 * dequantize is also scanned for NaN/Inf (csrc/quant/scan.c) both ways, which must agree;
 * every error message must be valid UTF-8 (csrc/core/error.c).
 *
 * Build and run: fuzz/build.sh, then fuzz/out/fuzz_gguf fuzz/corpus-run fuzz/corpus.
 * Built without -fsanitize=fuzzer (-DORC_FUZZ_MAIN) it is a reproducer:
 * fuzz_gguf FILE... runs each file once.
 */
#include <stdint.h>  /* uint8_t */
#include <stdio.h>   /* FILE, fopen */
#include <stdlib.h>  /* malloc */
#include <string.h>  /* memcpy */

#include "core/utf8.h"
#include "gguf/gguf.h"
#include "quant/quant.h"
#include "quant/scan.h"

static volatile uint64_t g_sink; /* keeps the reads from being optimised away */

static uint64_t touch(const void *p, uint64_t n) {
    const uint8_t *b = p;
    uint64_t h = 0;
    for (uint64_t i = 0; i < n; i++) h = h * 31 + b[i];
    return h;
}

static void walk(const orc_gguf *g) {
    orc_err err;
    uint64_t h = orc_gguf_version(g) + orc_gguf_alignment(g) + orc_gguf_data_offset(g);
    uint64_t size = orc_gguf_file_size(g);
    if (orc_gguf_data_offset(g) < size) h += orc_gguf_base(g)[orc_gguf_data_offset(g)];
    char key[65536 + 1];
    for (uint64_t i = 0; i < orc_gguf_n_kv(g); i++) {
        const orc_gguf_kv *kv = orc_gguf_kv_at(g, i);
        h += touch(kv->key.ptr, kv->key.len) + kv->offset + orc_gguf_kv_index(g, kv);
        h += (uint64_t)orc_gguf_vtype_name(kv->type)[0];
        if (kv->elem_type == ORC_GGUF_STRING) {
            for (uint64_t j = 0; j < kv->count; j++) h += touch(kv->strings[j].ptr, kv->strings[j].len);
        } else {
            for (uint64_t j = 0; j < kv->count; j++) {
                h += (uint64_t)orc_gguf_array_int(kv, j);
                double d = orc_gguf_array_float(kv, j);
                h += d == d ? 1 : 0;
            }
        }
        memcpy(key, kv->key.ptr, kv->key.len);
        key[kv->key.len] = '\0';
        if (orc_gguf_find_kv(g, key) != kv) __builtin_trap(); /* the index must find every key */
        int64_t iv;
        double dv;
        bool bv;
        orc_gguf_str sv;
        const orc_gguf_kv *av;
        if (orc_gguf_get_int(g, key, &iv, &err) == ORC_OK) h += (uint64_t)iv;
        if (orc_gguf_get_float(g, key, &dv, &err) == ORC_OK) h += dv == dv;
        if (orc_gguf_get_bool(g, key, &bv, &err) == ORC_OK) h += bv;
        if (orc_gguf_get_str(g, key, &sv, &err) == ORC_OK) h += touch(sv.ptr, sv.len);
        if (orc_gguf_get_array(g, key, ORC_GGUF_INT64, true, &av, &err) == ORC_OK) h += av->count;
        if (orc_gguf_get_array(g, key, ORC_GGUF_STRING, false, &av, &err) == ORC_OK) h += av->count;
    }
    for (uint64_t i = 0; i < orc_gguf_n_tensors(g); i++) {
        const orc_gguf_tensor *t = orc_gguf_tensor_at(g, i);
        h += touch(t->name.ptr, t->name.len) + touch(t->name_z, t->name.len + 1);
        h += touch(t->data, t->nbytes) + t->offset + (uint64_t)t->type + (uint64_t)t->n_elements + t->info_offset;
        if (orc_gguf_find_tensor(g, t->name_z) != t) __builtin_trap();
        if (orc_gguf_tensor_index(g, t) != i) __builtin_trap();
        if (orc_quant_supported(t->type) && t->n_elements <= (1 << 20)) {
            orc_scan_result full, fast;
            if (orc_scan_nonfinite(t->type, t->data, t->nbytes, t->n_elements, ORC_SCAN_FULL, NULL, &full, &err) !=
                ORC_OK)
                __builtin_trap(); /* the reader validated the size: the scan cannot refuse it */
            if (orc_scan_nonfinite(t->type, t->data, t->nbytes, t->n_elements, ORC_SCAN_SCALES, NULL, &fast, &err) !=
                    ORC_OK ||
                full.count != fast.count || full.first_index != fast.first_index)
                __builtin_trap();
            h += full.count;
        }
    }
    if (orc_gguf_kv_at(g, orc_gguf_n_kv(g)) || orc_gguf_tensor_at(g, orc_gguf_n_tensors(g))) __builtin_trap();
    h += orc_gguf_find_kv(g, "general.architecture") != NULL;
    h += orc_gguf_find_tensor(g, "token_embd.weight") != NULL;
    g_sink += h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    orc_gguf *g = NULL;
    orc_err err;
    err.msg[0] = '\0';
    /* a private copy of exactly `size` bytes, so ASan catches any read past the end */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    memcpy(copy, data, size);
    if (orc_gguf_open_buffer(copy, size, &g, &err) == ORC_OK) {
        walk(g);
        orc_gguf_close(g);
    } else {
        if (err.msg[0] == '\0' || err.status == ORC_OK) __builtin_trap(); /* every failure says why */
        if (!orc_utf8_valid((const uint8_t *)err.msg, strlen(err.msg))) __builtin_trap(); /* in valid UTF-8 */
        g_sink += touch(err.msg, strlen(err.msg));
    }
    free(copy);
    return 0;
}

#ifdef ORC_FUZZ_MAIN
int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (!f) {
            perror(argv[i]);
            return 1;
        }
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
        if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
            fprintf(stderr, "%s: read failed\n", argv[i]);
            return 1;
        }
        fclose(f);
        LLVMFuzzerTestOneInput(buf, (size_t)n);
        orc_gguf *g = NULL;
        orc_err err;
        if (orc_gguf_open_buffer(buf, (size_t)n, &g, &err) == ORC_OK)
            printf("%s: accepted (%llu keys, %llu tensors)\n", argv[i], (unsigned long long)orc_gguf_n_kv(g),
                   (unsigned long long)orc_gguf_n_tensors(g));
        else
            printf("%s: rejected: %s\n", argv[i], err.msg);
        orc_gguf_close(g);
        free(buf);
    }
    return 0;
}
#endif
