/* test_gguf_api.c - checks the C API of the GGUF reader (csrc/gguf/gguf.h) that model and
 * tokenizer code use: typed getters, look-ups, array conversion, errors. Built and run by
 * tests/test_gguf_c_api.py on a file it generates (see there for the file's contents).
 * Prints "ok" and exits 0, or names the first failed check and exits 1. */
#include <math.h>    /* isnan */
#include <stdio.h>   /* printf */
#include <string.h>  /* strstr */

#include "gguf/ggml_types.h"
#include "gguf/gguf.h"

static int failures;

#define CHECK(cond)                                                        \
    do {                                                                   \
        if (!(cond)) {                                                     \
            printf("FAILED %s:%d: %s\n", __FILE__, __LINE__, #cond);       \
            failures++;                                                    \
        }                                                                  \
    } while (0)

static int has(const orc_err *e, const char *s) { return strstr(e->msg, s) != NULL; }

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    orc_gguf *g = NULL;
    orc_err err;
    orc_status st = orc_gguf_open(argv[1], &g, &err);
    if (st != ORC_OK) {
        printf("FAILED open: %s\n", err.msg);
        return 1;
    }
    int64_t i64;
    double d;
    bool b;
    orc_gguf_str s;
    const orc_gguf_kv *kv;

    /* integers of every width through get_int */
    CHECK(orc_gguf_get_int(g, "i.u8", &i64, &err) == ORC_OK && i64 == 200);
    CHECK(orc_gguf_get_int(g, "i.i8", &i64, &err) == ORC_OK && i64 == -100);
    CHECK(orc_gguf_get_int(g, "i.u16", &i64, &err) == ORC_OK && i64 == 60000);
    CHECK(orc_gguf_get_int(g, "i.i16", &i64, &err) == ORC_OK && i64 == -30000);
    CHECK(orc_gguf_get_int(g, "i.u32", &i64, &err) == ORC_OK && i64 == 4000000000LL);
    CHECK(orc_gguf_get_int(g, "i.i32", &i64, &err) == ORC_OK && i64 == -2000000000LL);
    CHECK(orc_gguf_get_int(g, "i.u64", &i64, &err) == ORC_OK && i64 == (1LL << 62));
    CHECK(orc_gguf_get_int(g, "i.i64", &i64, &err) == ORC_OK && i64 == -(1LL << 62));
    st = orc_gguf_get_int(g, "i.u64big", &i64, &err);
    CHECK(st == ORC_E_FORMAT && has(&err, "i.u64big") && has(&err, "exceeds int64"));
    st = orc_gguf_get_int(g, "f.f32", &i64, &err);
    CHECK(st == ORC_E_FORMAT && has(&err, "'f.f32'") && has(&err, "is FLOAT32, expected an integer"));
    st = orc_gguf_get_int(g, "no.such.key", &i64, &err);
    CHECK(st == ORC_E_NOT_FOUND && has(&err, "'no.such.key' is missing"));

    CHECK(orc_gguf_get_float(g, "f.f32", &d, &err) == ORC_OK && d == 0.5);
    CHECK(orc_gguf_get_float(g, "f.f64", &d, &err) == ORC_OK && d == -1e300);
    st = orc_gguf_get_float(g, "i.u8", &d, &err);
    CHECK(st == ORC_E_FORMAT && has(&err, "is UINT8, expected FLOAT32 or FLOAT64"));

    CHECK(orc_gguf_get_bool(g, "b.true", &b, &err) == ORC_OK && b);
    CHECK(orc_gguf_get_str(g, "general.architecture", &s, &err) == ORC_OK && orc_gguf_str_eq(s, "qwen2"));
    CHECK(!orc_gguf_str_eq(s, "qwen") && !orc_gguf_str_eq(s, "qwen22"));
    st = orc_gguf_get_str(g, "a.tokens", &s, &err);
    CHECK(st == ORC_E_FORMAT && has(&err, "is an ARRAY of 3 STRING, expected STRING"));

    /* arrays */
    CHECK(orc_gguf_get_array(g, "a.tokens", ORC_GGUF_STRING, false, &kv, &err) == ORC_OK && kv->count == 3 &&
          orc_gguf_str_eq(kv->strings[2], "c\xc3\xa9"));
    CHECK(orc_gguf_get_array(g, "a.i16", ORC_GGUF_INT64, true, &kv, &err) == ORC_OK && kv->count == 3 &&
          orc_gguf_array_int(kv, 0) == -1 && orc_gguf_array_int(kv, 2) == 300);
    st = orc_gguf_get_array(g, "a.i16", ORC_GGUF_INT64, false, &kv, &err);
    CHECK(st == ORC_E_FORMAT && has(&err, "expected an ARRAY of INT64"));
    st = orc_gguf_get_array(g, "a.scores", ORC_GGUF_INT64, true, &kv, &err);
    CHECK(st == ORC_E_FORMAT && has(&err, "expected an ARRAY of integers"));
    CHECK(orc_gguf_get_array(g, "a.scores", ORC_GGUF_FLOAT32, false, &kv, &err) == ORC_OK &&
          orc_gguf_array_float(kv, 1) == -2.25 && isnan(orc_gguf_array_float(kv, 2)));
    CHECK(orc_gguf_get_array(g, "a.u64", ORC_GGUF_INT64, true, &kv, &err) == ORC_OK &&
          orc_gguf_array_float(kv, 0) == 18446744073709551615.0);
    CHECK(orc_gguf_get_array(g, "a.empty", ORC_GGUF_STRING, false, &kv, &err) == ORC_OK && kv->count == 0);
    st = orc_gguf_get_array(g, "i.u8", ORC_GGUF_UINT8, false, &kv, &err);
    CHECK(st == ORC_E_FORMAT && has(&err, "is UINT8, expected an ARRAY of UINT8"));

    /* look-ups and indexes */
    CHECK(orc_gguf_find_kv(g, "general.architecture") == orc_gguf_kv_at(g, 0));
    CHECK(orc_gguf_kv_index(g, orc_gguf_find_kv(g, "a.empty")) == orc_gguf_n_kv(g) - 1);
    CHECK(orc_gguf_find_kv(g, "general") == NULL && orc_gguf_find_kv(g, "") == NULL && orc_gguf_find_kv(g, NULL) == NULL);
    CHECK(orc_gguf_kv_at(g, orc_gguf_n_kv(g)) == NULL);
    const orc_gguf_tensor *t = orc_gguf_find_tensor(g, "blk.0.attn_q.weight");
    CHECK(t != NULL && t->type == ORC_TYPE_Q8_0 && t->n_dims == 2 && t->ne[0] == 64 && t->ne[1] == 3 &&
          t->ne[2] == 1 && t->ne[3] == 1 && t->n_elements == 192 && t->nbytes == 6 * 34);
    CHECK(t && strcmp(t->name_z, "blk.0.attn_q.weight") == 0 && orc_gguf_tensor_index(g, t) == 1);
    CHECK(t && t->data == orc_gguf_base(g) + orc_gguf_data_offset(g) + t->offset);
    CHECK(t && t->data[0] == 0x11 && t->data[t->nbytes - 1] == 0x22); /* markers written by the test */
    CHECK(orc_gguf_find_tensor(g, "blk.0.attn_q") == NULL && orc_gguf_tensor_at(g, 99) == NULL);
    CHECK(orc_gguf_alignment(g) == 32 && orc_gguf_version(g) == 3);

    orc_gguf_close(g);
    orc_gguf_close(NULL);

    /* open errors name the path; IO errors leave errno */
    st = orc_gguf_open("/nonexistent/x.gguf", &g, &err);
    CHECK(st == ORC_E_IO && g == NULL && has(&err, "/nonexistent/x.gguf"));
    st = orc_gguf_open_buffer("GGUF", 4, &g, &err);
    CHECK(st == ORC_E_FORMAT && g == NULL && has(&err, "4 bytes, shorter than the 24-byte"));
    st = orc_gguf_open_buffer(NULL, 0, &g, &err);
    CHECK(st == ORC_E_FORMAT && has(&err, "empty file"));

    if (failures) return 1;
    printf("ok\n");
    return 0;
}
