/* tokenizer_internal.h - what the tokenizer's source files share: the tokenizer's layout, small
 * growable arrays, hashing, UTF-8 helpers and vocabulary look-ups. Not part of the API. */
#ifndef ORC_TOKENIZER_INTERNAL_H
#define ORC_TOKENIZER_INTERNAL_H

#include <stdlib.h> /* realloc */
#include <string.h> /* memcpy, memcmp */

#include "core/hash.h" /* orc_siphash13, orc_hash_key */
#include "core/utf8.h" /* orc_utf8_check */
#include "tokenizer/tokenizer.h"

/* ------------------------------------------------------------------------------------------
 * Small containers
 * ------------------------------------------------------------------------------------------ */

typedef struct idvec {
    int32_t *v;
    size_t n, cap;
} idvec;

static inline int idvec_reserve(idvec *a, size_t extra) {
    if (a->n + extra <= a->cap) return 0;
    size_t cap = a->cap ? a->cap : 64;
    while (cap < a->n + extra) {
        if (cap > SIZE_MAX / 2 / sizeof(int32_t)) return -1;
        cap *= 2;
    }
    int32_t *v = realloc(a->v, cap * sizeof *v);
    if (!v) return -1;
    a->v = v;
    a->cap = cap;
    return 0;
}

static inline int idvec_push(idvec *a, int32_t x) {
    if (a->n == a->cap && idvec_reserve(a, 1) < 0) return -1;
    a->v[a->n++] = x;
    return 0;
}

typedef struct bytebuf {
    uint8_t *p;
    size_t n, cap;
} bytebuf;

static inline int bytebuf_reserve(bytebuf *b, size_t extra) {
    if (extra > SIZE_MAX - b->n - 1) return -1;
    if (b->n + extra + 1 <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + extra + 1) {
        if (cap > SIZE_MAX / 2) return -1;
        cap *= 2;
    }
    uint8_t *p = realloc(b->p, cap);
    if (!p) return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

static inline int bytebuf_add(bytebuf *b, const void *src, size_t n) {
    if (bytebuf_reserve(b, n) < 0) return -1;
    if (n) memcpy(b->p + b->n, src, n);
    b->n += n;
    return 0;
}

/* Every table the tokenizer fills from a file or a text (token texts, merge pairs, the word
 * cache of tokenize) is keyed by the process's SipHash key (core/hash.h): their contents
 * choose the keys, so an unkeyed hash would let them choose the collisions too. */
static inline uint64_t hash_bytes(const orc_hash_key *key, const void *p, size_t n) {
    return orc_siphash13(key, p, n);
}

static inline uint64_t hash_u64(const orc_hash_key *key, uint64_t x) { return orc_siphash13_u64(key, x); }

static inline uint64_t pow2_at_least(uint64_t n) {
    uint64_t c = 16;
    while (c < n) c *= 2;
    return c;
}

/* ------------------------------------------------------------------------------------------
 * UTF-8
 * ------------------------------------------------------------------------------------------ */

/* Classification of a sequence: core/utf8.h (shared with the GGUF reader and error messages). */
enum { UTF8_INVALID = ORC_UTF8_INVALID, UTF8_OK = ORC_UTF8_OK, UTF8_TRUNCATED = ORC_UTF8_TRUNCATED };

static inline int utf8_check(const uint8_t *s, size_t n, size_t *len, uint32_t *cp) {
    return orc_utf8_check(s, n, len, cp);
}

static inline size_t utf8_put(uint8_t *o, uint32_t cp) {
    if (cp < 0x80) {
        o[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (uint8_t)(0xC0 | (cp >> 6));
        o[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (uint8_t)(0xE0 | (cp >> 12));
        o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (uint8_t)(0xF0 | (cp >> 18));
    o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

/* ------------------------------------------------------------------------------------------
 * The tokenizer
 * ------------------------------------------------------------------------------------------ */

typedef enum pre_kind { PRE_NONE = 0, PRE_GPT2, PRE_LLAMA3, PRE_QWEN2, PRE_QWEN35, PRE_SMOLLM, PRE_O200K } pre_kind;

typedef struct merge_entry {
    uint64_t key; /* (left id << 32) | right id; UINT64_MAX: empty */
    int32_t rank;
    int32_t result;
} merge_entry;

/* The special-token matcher (tokenizer_special.c): an Aho-Corasick automaton over the special
 * tokens' reversed texts. State 0 is the root; n == 0 when there are no special tokens. */
typedef struct special_ac {
    int32_t n;            /* states */
    int32_t *child_start; /* [n + 1]: the children of s are entries child_start[s] .. child_start[s + 1] */
    uint8_t *child_byte;  /* [n - 1], sorted within each state */
    int32_t *child_node;
    int32_t *fail;               /* the state of the longest proper suffix */
    int32_t *out_all, *out_user; /* longest special / user-defined token that is a suffix, or -1 */
    int32_t root_next[256];      /* the root's children (0: none) */
    int32_t max_len;             /* the longest special token, in bytes */
} special_ac;

struct orc_tokenizer {
    orc_tok_model model;
    pre_kind pre;
    char model_name[16];
    char pre_name[64];
    int32_t n_vocab;

    char *text;         /* stored token texts, concatenated */
    uint64_t *text_off; /* [n_vocab + 1] */
    char *piece;        /* decoded bytes of each token, concatenated */
    uint64_t *piece_off;
    uint8_t *type; /* orc_token_type */
    float *score;

    orc_hash_key hkey; /* the key of map, merges and tokenize's word cache */

    int32_t *map; /* stored text -> id, open addressing, -1 empty */
    uint64_t map_mask;

    merge_entry *merges; /* BPE: (left, right) -> rank, result */
    uint64_t merge_mask;
    uint64_t n_merges_used, n_merges_skipped;

    int32_t byte_tok[256]; /* the token of each single byte: GPT-2 byte alphabet / <0xNN> */
    uint32_t byte_enc[256]; /* BPE: GPT-2's byte -> code point map */

    special_ac ac; /* special and user-defined tokens */

    uint32_t *spm_join; /* SPM: code points X such that some normal piece contains "X\u2581" */
    size_t n_spm_join;

    int32_t special[ORC_SPECIAL_COUNT];
    bool add_bos, add_eos, add_space_prefix, ignore_merges;
    int32_t *eog;
    size_t n_eog;
    char *chat_template;
    size_t chat_template_len;
};

static inline const char *tok_text(const orc_tokenizer *t, int32_t id, size_t *len) {
    *len = (size_t)(t->text_off[id + 1] - t->text_off[id]);
    return t->text + t->text_off[id];
}

static inline bool is_special_type(uint8_t ty) {
    return ty == ORC_TOKEN_CONTROL || ty == ORC_TOKEN_USER_DEFINED || ty == ORC_TOKEN_UNKNOWN;
}

/* Stored text -> id (first occurrence), or -1. */
static inline int32_t map_find(const orc_tokenizer *t, const void *s, size_t n) {
    uint64_t i = hash_bytes(&t->hkey, s, n) & t->map_mask;
    for (;;) {
        int32_t id = t->map[i];
        if (id < 0) return -1;
        size_t len;
        const char *tx = tok_text(t, id, &len);
        if (len == n && memcmp(tx, s, n) == 0) return id;
        i = (i + 1) & t->map_mask;
    }
}

static inline int32_t map_find_normal(const orc_tokenizer *t, const void *s, size_t n) {
    int32_t id = map_find(t, s, n);
    return (id >= 0 && t->type[id] == ORC_TOKEN_NORMAL) ? id : -1;
}

static inline bool merge_find(const orc_tokenizer *t, int32_t a, int32_t b, int32_t *rank, int32_t *result) {
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    uint64_t i = hash_u64(&t->hkey, key) & t->merge_mask;
    for (;;) {
        const merge_entry *e = &t->merges[i];
        if (e->key == UINT64_MAX) return false;
        if (e->key == key) {
            *rank = e->rank;
            *result = e->result;
            return true;
        }
        i = (i + 1) & t->merge_mask;
    }
}

/* tokenizer_special.c */
orc_status special_ac_build(orc_tokenizer *t, orc_err *err); /* after the texts and types are in */
void special_ac_free(special_ac *a);
/* ids[i - from] = the longest special token starting at s[i] (any kind with parse_special, else
 * user-defined only), or -1, for i in [from, to); s[0..n) is the whole text. O(to - from +
 * longest special token). */
void special_ac_longest(const orc_tokenizer *t, const uint8_t *s, size_t n, size_t from, size_t to,
                        bool parse_special, int32_t *ids);

#endif /* ORC_TOKENIZER_INTERNAL_H */
