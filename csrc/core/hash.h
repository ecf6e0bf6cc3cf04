/* hash.h - a keyed hash for tables whose keys come from files or from callers (token texts,
 * merge pairs, words of a text to tokenize): SipHash-1-3 under a random per-process key.
 *
 * Why keyed: an unkeyed hash (orc used FNV-1a) lets anyone who writes a vocabulary or a text
 * choose keys that all land in one probe chain, turning an O(n) table build into O(n^2)
 * (a 2 MB vocabulary took 15 s to load). SipHash is a pseudo-random function of its 128-bit
 * key: without the key, colliding inputs cannot be chosen, so probe chains stay as short as
 * for random keys. SipHash-1-3 (one compression round, three finalization rounds) is the
 * variant CPython (3.11+, PEP 456) and Rust's HashMap use for exactly this purpose, at about
 * the cost of FNV-1a for short strings.
 *
 * Nothing may depend on the hash values (they change from process to process): the tables
 * using them give the same results whatever the key, only their speed depends on it.
 */
#ifndef ORC_HASH_H
#define ORC_HASH_H

#include <stddef.h> /* size_t */
#include <stdint.h> /* uint64_t */
#include <string.h> /* memcpy */

#ifdef __cplusplus
extern "C" {
#endif

typedef struct orc_hash_key {
    uint64_t k0, k1;
} orc_hash_key;

/* The process's key: 16 bytes from getrandom() (or /dev/urandom), drawn once, on first use,
 * thread-safely. If the system gives no randomness at all, a mix of the time, the process id
 * and addresses (weaker, never a failure). */
orc_hash_key orc_hash_process_key(void);

#define ORC_SIP_ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define ORC_SIP_ROUND(v0, v1, v2, v3)                                                                    \
    do {                                                                                                 \
        v0 += v1, v1 = ORC_SIP_ROTL(v1, 13), v1 ^= v0, v0 = ORC_SIP_ROTL(v0, 32);                        \
        v2 += v3, v3 = ORC_SIP_ROTL(v3, 16), v3 ^= v2;                                                   \
        v0 += v3, v3 = ORC_SIP_ROTL(v3, 21), v3 ^= v0;                                                   \
        v2 += v1, v1 = ORC_SIP_ROTL(v1, 17), v1 ^= v2, v2 = ORC_SIP_ROTL(v2, 32);                        \
    } while (0)

/* The last block `b` (length << 56 | the tail bytes) and the three finalization rounds. */
static inline uint64_t orc_sip_finish(uint64_t v0, uint64_t v1, uint64_t v2, uint64_t v3, uint64_t b) {
    v3 ^= b;
    ORC_SIP_ROUND(v0, v1, v2, v3);
    v0 ^= b;
    v2 ^= 0xff;
    ORC_SIP_ROUND(v0, v1, v2, v3);
    ORC_SIP_ROUND(v0, v1, v2, v3);
    ORC_SIP_ROUND(v0, v1, v2, v3);
    return v0 ^ v1 ^ v2 ^ v3;
}

/* SipHash-1-3 of n bytes at p (the reference algorithm; words are read little-endian on
 * little-endian machines, native order elsewhere: only the distribution matters here). */
static inline uint64_t orc_siphash13(const orc_hash_key *key, const void *p, size_t n) {
    const uint8_t *s = (const uint8_t *)p;
    uint64_t v0 = 0x736f6d6570736575ull ^ key->k0, v1 = 0x646f72616e646f6dull ^ key->k1;
    uint64_t v2 = 0x6c7967656e657261ull ^ key->k0, v3 = 0x7465646279746573ull ^ key->k1;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t m;
        memcpy(&m, s + i, 8);
        v3 ^= m;
        ORC_SIP_ROUND(v0, v1, v2, v3);
        v0 ^= m;
    }
    uint64_t b = (uint64_t)n << 56;
    switch (n - i) {
    case 7: b |= (uint64_t)s[i + 6] << 48; /* fall through */
    case 6: b |= (uint64_t)s[i + 5] << 40; /* fall through */
    case 5: b |= (uint64_t)s[i + 4] << 32; /* fall through */
    case 4: b |= (uint64_t)s[i + 3] << 24; /* fall through */
    case 3: b |= (uint64_t)s[i + 2] << 16; /* fall through */
    case 2: b |= (uint64_t)s[i + 1] << 8;  /* fall through */
    case 1: b |= (uint64_t)s[i]; break;
    default: break;
    }
    return orc_sip_finish(v0, v1, v2, v3, b);
}

/* SipHash-1-3 of one 64-bit word (as the 8 bytes of x in native order): the same function as
 * orc_siphash13(key, &x, 8), unrolled for integer keys. */
static inline uint64_t orc_siphash13_u64(const orc_hash_key *key, uint64_t x) {
    uint64_t v0 = 0x736f6d6570736575ull ^ key->k0, v1 = 0x646f72616e646f6dull ^ key->k1;
    uint64_t v2 = 0x6c7967656e657261ull ^ key->k0, v3 = 0x7465646279746573ull ^ key->k1;
    v3 ^= x;
    ORC_SIP_ROUND(v0, v1, v2, v3);
    v0 ^= x;
    return orc_sip_finish(v0, v1, v2, v3, (uint64_t)8 << 56);
}

#undef ORC_SIP_ROUND
#undef ORC_SIP_ROTL

#ifdef __cplusplus
}
#endif

#endif /* ORC_HASH_H */
