/* test_hash.c - csrc/core/hash.h is SipHash-1-3 (reference vectors with the all-zero key, from
 * the Rust/`digest` implementations), its one-word form is the same function, and the process
 * key is drawn once. Built and run by tests/test_tokenizer_flood.py; prints "ok" or the failures. */
#include <stdio.h>  /* printf */
#include <string.h> /* strlen */

#include "core/hash.h"

static int failures;

#define CHECK(cond)                                                  \
    do {                                                             \
        if (!(cond)) {                                               \
            printf("FAILED %s:%d: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                              \
        }                                                            \
    } while (0)

int main(void) {
    const orc_hash_key zero = {0, 0};
    CHECK(orc_siphash13(&zero, "", 0) == 0xd1fba762150c532cull);
    CHECK(orc_siphash13(&zero, "siphash", 7) == 0x8264ceeccb16bcbeull);
    CHECK(orc_siphash13(&zero, "digest-sip_hash", 15) == 0xce31007e34130c0aull);
    orc_hash_key k = orc_hash_process_key(), k2 = orc_hash_process_key();
    CHECK(k.k0 == k2.k0 && k.k1 == k2.k1);   /* one key per process */
    CHECK(k.k0 != 0 || k.k1 != 0);           /* and not the zero key */
    for (uint64_t x = 1; x < (1ull << 40); x = x * 3 + 7) {
        CHECK(orc_siphash13_u64(&k, x) == orc_siphash13(&k, &x, sizeof x));
        if (failures) break;
    }
    /* keyed: another key, other values */
    CHECK(orc_siphash13(&k, "siphash", 7) != orc_siphash13(&zero, "siphash", 7));
    if (failures) return 1;
    printf("ok %016llx\n", (unsigned long long)k.k0);
    return 0;
}
