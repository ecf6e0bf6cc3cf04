/* unicode_tables.h - Unicode character classes for the tokenizer's split rules
 * (the data is generated into unicode_tables.c by tools/gen_unicode_tables.py). */
#ifndef ORC_UNICODE_TABLES_H
#define ORC_UNICODE_TABLES_H

#include <stddef.h>  /* size_t */
#include <stdint.h>  /* uint8_t, uint32_t */

/* Bit 16 is never set here: tokenizer_encode.c uses it to mark \r and \n. A letter (ORC_UC_L)
 * has ORC_UC_LU (Lu, Lt), ORC_UC_LL (Ll) or neither (Lm, Lo): o200k's word rule tells them apart. */
enum {
    ORC_UC_L = 1,   /* \p{L}: general category L* */
    ORC_UC_N = 2,   /* \p{N}: general category N* */
    ORC_UC_M = 4,   /* \p{M}: general category M* */
    ORC_UC_WS = 8,  /* \s: the White_Space property */
    ORC_UC_LU = 32, /* \p{Lu} or \p{Lt}: an uppercase or titlecase letter */
    ORC_UC_LL = 64, /* \p{Ll}: a lowercase letter */
};

typedef struct orc_unicode_range {
    uint32_t first, last; /* inclusive */
    uint8_t cls;          /* ORC_UC_* bits */
} orc_unicode_range;

extern const char orc_unicode_version[];
extern const uint8_t orc_unicode_ascii[128];
extern const orc_unicode_range orc_unicode_ranges[];
extern const size_t orc_unicode_n_ranges;

/* The class bits of code point `cp` (0 for anything else: punctuation, symbols,
 * unassigned code points, and values past U+10FFFF). */
static inline uint8_t orc_unicode_class(uint32_t cp) {
    if (cp < 128) return orc_unicode_ascii[cp];
    size_t lo = 0, hi = orc_unicode_n_ranges;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp < orc_unicode_ranges[mid].first) hi = mid;
        else if (cp > orc_unicode_ranges[mid].last) lo = mid + 1;
        else return orc_unicode_ranges[mid].cls;
    }
    return 0;
}

#endif /* ORC_UNICODE_TABLES_H */
