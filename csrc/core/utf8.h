/* utf8.h - classifying UTF-8 sequences as the Unicode standard (and Python's strict decoder)
 * does: the tokenizer, the GGUF reader's key and name checks and the error records use it. */
#ifndef ORC_UTF8_H
#define ORC_UTF8_H

#include <stdbool.h> /* bool */
#include <stddef.h>  /* size_t */
#include <stdint.h>  /* uint8_t, uint32_t */

enum { ORC_UTF8_INVALID = 0, ORC_UTF8_OK = 1, ORC_UTF8_TRUNCATED = 2 };

/* Classify the sequence at s[0..n) (n >= 1): ORC_UTF8_OK with *len its length and *cp its code
 * point; ORC_UTF8_INVALID with *len the length of its maximal ill-formed subpart (>= 1);
 * ORC_UTF8_TRUNCATED when the n bytes are a valid but incomplete prefix. Table 3-7 of the
 * Unicode standard. */
static inline int orc_utf8_check(const uint8_t *s, size_t n, size_t *len, uint32_t *cp) {
    uint8_t c = s[0];
    if (c < 0x80) {
        *len = 1;
        *cp = c;
        return ORC_UTF8_OK;
    }
    size_t need;
    uint8_t lo = 0x80, hi = 0xBF;
    uint32_t v;
    if (c >= 0xC2 && c <= 0xDF) need = 1, v = c & 0x1F;
    else if (c == 0xE0) need = 2, lo = 0xA0, v = c & 0x0F;
    else if (c >= 0xE1 && c <= 0xEC) need = 2, v = c & 0x0F;
    else if (c == 0xED) need = 2, hi = 0x9F, v = c & 0x0F;
    else if (c >= 0xEE && c <= 0xEF) need = 2, v = c & 0x0F;
    else if (c == 0xF0) need = 3, lo = 0x90, v = c & 0x07;
    else if (c >= 0xF1 && c <= 0xF3) need = 3, v = c & 0x07;
    else if (c == 0xF4) need = 3, hi = 0x8F, v = c & 0x07;
    else {
        *len = 1;
        return ORC_UTF8_INVALID;
    }
    for (size_t k = 1; k <= need; k++) {
        if (k >= n) {
            *len = k;
            return ORC_UTF8_TRUNCATED;
        }
        uint8_t b = s[k];
        if (b < lo || b > hi) {
            *len = k;
            return ORC_UTF8_INVALID;
        }
        lo = 0x80, hi = 0xBF;
        v = (v << 6) | (b & 0x3F);
    }
    *len = need + 1;
    *cp = v;
    return ORC_UTF8_OK;
}

/* Is s[0..n) well-formed UTF-8 (no overlongs, no surrogates, nothing past U+10FFFF)? */
static inline bool orc_utf8_valid(const uint8_t *s, size_t n) {
    size_t i = 0, len;
    uint32_t cp;
    while (i < n) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        if (orc_utf8_check(s + i, n - i, &len, &cp) != ORC_UTF8_OK) return false;
        i += len;
    }
    return true;
}

#endif /* ORC_UTF8_H */
