/* tokenizer.c - byte-level BPE and SentencePiece-style BPE over GGUF vocabularies.
 *
 * The reference is Hugging Face tokenizers (and llama.cpp, whose published test vectors were
 * made with it). The pre-tokenizer regexes are not interpreted: each one is written out below
 * as the sequence of alternatives the regex engine tries, over code points classified by
 * unicode_tables.c; the comments give the regex. See tokenizer.h for the model.
 */
#include "tokenizer.h"

#include <math.h>    /* isnan */
#include <stdlib.h>  /* malloc, calloc, realloc, free */
#include <string.h>  /* memcpy, memcmp, strlen */

#include "unicode_tables.h" /* orc_unicode_class */

/* ------------------------------------------------------------------------------------------
 * Small containers
 * ------------------------------------------------------------------------------------------ */

typedef struct idvec {
    int32_t *v;
    size_t n, cap;
} idvec;

static int idvec_reserve(idvec *a, size_t extra) {
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

static int idvec_push(idvec *a, int32_t x) {
    if (a->n == a->cap && idvec_reserve(a, 1) < 0) return -1;
    a->v[a->n++] = x;
    return 0;
}

typedef struct bytebuf {
    uint8_t *p;
    size_t n, cap;
} bytebuf;

static int bytebuf_reserve(bytebuf *b, size_t extra) {
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

static int bytebuf_add(bytebuf *b, const void *src, size_t n) {
    if (bytebuf_reserve(b, n) < 0) return -1;
    if (n) memcpy(b->p + b->n, src, n);
    b->n += n;
    return 0;
}

static uint64_t hash_bytes(const void *p, size_t n) {
    const uint8_t *s = p;
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a, then a final mix so that low bits are good */
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ull;
    }
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ull;
    h ^= h >> 32;
    return h;
}

static uint64_t hash_u64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

static uint64_t pow2_at_least(uint64_t n) {
    uint64_t c = 16;
    while (c < n) c *= 2;
    return c;
}

/* ------------------------------------------------------------------------------------------
 * UTF-8
 * ------------------------------------------------------------------------------------------ */

enum { UTF8_INVALID = 0, UTF8_OK = 1, UTF8_TRUNCATED = 2 };

/* Classify the sequence at s[0..n) (n >= 1): UTF8_OK with *len its length; UTF8_INVALID with
 * *len the length of its maximal ill-formed subpart (>= 1); UTF8_TRUNCATED when the n bytes are
 * a valid but incomplete prefix. Table 3-7 of the Unicode standard. */
static int utf8_check(const uint8_t *s, size_t n, size_t *len, uint32_t *cp) {
    uint8_t c = s[0];
    if (c < 0x80) {
        *len = 1;
        *cp = c;
        return UTF8_OK;
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
        return UTF8_INVALID;
    }
    for (size_t k = 1; k <= need; k++) {
        if (k >= n) {
            *len = k;
            return UTF8_TRUNCATED;
        }
        uint8_t b = s[k];
        if (b < lo || b > hi) {
            *len = k;
            return UTF8_INVALID;
        }
        lo = 0x80, hi = 0xBF;
        v = (v << 6) | (b & 0x3F);
    }
    *len = need + 1;
    *cp = v;
    return UTF8_OK;
}

static size_t utf8_put(uint8_t *o, uint32_t cp) {
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

size_t orc_utf8_sanitize(const uint8_t *in, size_t n, bool final, uint8_t *out, size_t *consumed) {
    size_t i = 0, o = 0;
    while (i < n) {
        size_t len;
        uint32_t cp;
        int r = utf8_check(in + i, n - i, &len, &cp);
        if (r == UTF8_OK) {
            memcpy(out + o, in + i, len);
            o += len;
        } else if (r == UTF8_TRUNCATED && !final) {
            break; /* may still complete: hold back */
        } else {
            out[o++] = 0xEF, out[o++] = 0xBF, out[o++] = 0xBD; /* U+FFFD */
        }
        i += len;
    }
    *consumed = i;
    return o;
}

/* ------------------------------------------------------------------------------------------
 * The tokenizer
 * ------------------------------------------------------------------------------------------ */

typedef enum pre_kind { PRE_NONE = 0, PRE_GPT2, PRE_LLAMA3, PRE_QWEN2, PRE_QWEN35 } pre_kind;

static const struct {
    const char *name;
    pre_kind kind;
} pre_names[] = {
    {"gpt-2", PRE_GPT2},        {"gpt2", PRE_GPT2},   {"llama-bpe", PRE_LLAMA3},      {"llama3", PRE_LLAMA3},
    {"llama-v3", PRE_LLAMA3},   {"qwen2", PRE_QWEN2}, {"deepseek-r1-qwen", PRE_QWEN2}, {"qwen35", PRE_QWEN35},
};
#define PRE_SUPPORTED_LIST "gpt-2, llama-bpe (llama3, llama-v3), qwen2, deepseek-r1-qwen, qwen35"

typedef struct merge_entry {
    uint64_t key; /* (left id << 32) | right id; UINT64_MAX: empty */
    int32_t rank;
    int32_t result;
} merge_entry;

typedef struct trie_node {
    int32_t child;   /* first child, -1 if none */
    int32_t sibling; /* next sibling, -1 if none */
    int32_t token;   /* token ending here, -1 if none */
    uint8_t byte;
} trie_node;

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

    int32_t *map; /* stored text -> id, open addressing, -1 empty */
    uint64_t map_mask;

    merge_entry *merges; /* BPE: (left, right) -> rank, result */
    uint64_t merge_mask;
    uint64_t n_merges_used, n_merges_skipped;

    int32_t byte_tok[256]; /* the token of each single byte: GPT-2 byte alphabet / <0xNN> */
    uint32_t byte_enc[256]; /* BPE: GPT-2's byte -> code point map */

    trie_node *trie; /* special and user-defined tokens */
    size_t n_trie, cap_trie;
    int32_t trie_root[256];

    uint32_t *spm_join; /* SPM: code points X such that some normal piece contains "X\u2581" */
    size_t n_spm_join;

    int32_t special[ORC_SPECIAL_COUNT];
    bool add_bos, add_eos, add_space_prefix, ignore_merges;
    int32_t *eog;
    size_t n_eog;
    char *chat_template;
    size_t chat_template_len;
};

static const char *const special_keys[ORC_SPECIAL_COUNT] = {
    "tokenizer.ggml.bos_token_id",     "tokenizer.ggml.eos_token_id",     "tokenizer.ggml.eot_token_id",
    "tokenizer.ggml.eom_token_id",     "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.padding_token_id",
    "tokenizer.ggml.seperator_token_id", "tokenizer.ggml.mask_token_id",
};

const char *orc_special_key(orc_special s) {
    return (s >= 0 && s < ORC_SPECIAL_COUNT) ? special_keys[s] : "invalid";
}

const char *orc_token_type_name(int type) {
    static const char *const names[ORC_TOKEN_TYPE_COUNT] = {"undefined", "normal", "unknown", "control",
                                                            "user_defined", "unused", "byte"};
    return (type >= 0 && type < ORC_TOKEN_TYPE_COUNT) ? names[type] : "invalid";
}

static inline const char *tok_text(const orc_tokenizer *t, int32_t id, size_t *len) {
    *len = (size_t)(t->text_off[id + 1] - t->text_off[id]);
    return t->text + t->text_off[id];
}

static inline bool is_special_type(uint8_t ty) {
    return ty == ORC_TOKEN_CONTROL || ty == ORC_TOKEN_USER_DEFINED || ty == ORC_TOKEN_UNKNOWN;
}

/* Stored text -> id (first occurrence), or -1. */
static int32_t map_find(const orc_tokenizer *t, const void *s, size_t n) {
    uint64_t i = hash_bytes(s, n) & t->map_mask;
    for (;;) {
        int32_t id = t->map[i];
        if (id < 0) return -1;
        size_t len;
        const char *tx = tok_text(t, id, &len);
        if (len == n && memcmp(tx, s, n) == 0) return id;
        i = (i + 1) & t->map_mask;
    }
}

static int32_t map_find_normal(const orc_tokenizer *t, const void *s, size_t n) {
    int32_t id = map_find(t, s, n);
    return (id >= 0 && t->type[id] == ORC_TOKEN_NORMAL) ? id : -1;
}

static bool merge_find(const orc_tokenizer *t, int32_t a, int32_t b, int32_t *rank, int32_t *result) {
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    uint64_t i = hash_u64(key) & t->merge_mask;
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

void orc_tokenizer_free(orc_tokenizer *t) {
    if (!t) return;
    free(t->text);
    free(t->text_off);
    free(t->piece);
    free(t->piece_off);
    free(t->type);
    free(t->score);
    free(t->map);
    free(t->merges);
    free(t->trie);
    free(t->eog);
    free(t->spm_join);
    free(t->chat_template);
    free(t);
}

void orc_tokenizer_spec_init(orc_tokenizer_spec *spec) {
    memset(spec, 0, sizeof *spec);
    for (int i = 0; i < ORC_SPECIAL_COUNT; i++) spec->special[i] = ORC_TOKEN_NONE;
    spec->add_bos = spec->add_eos = spec->add_space_prefix = -1;
}

/* A short, printable rendering of a (possibly hostile) string for error messages. */
static const char *printable(const char *s, size_t n, char *buf, size_t cap) {
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7F && c != '\'' && c != '\\') {
            buf[o++] = (char)c;
        } else {
            static const char hex[] = "0123456789abcdef";
            buf[o++] = '\\', buf[o++] = 'x', buf[o++] = hex[c >> 4], buf[o++] = hex[c & 15];
        }
        if (i + 1 < n && o + 5 >= cap) {
            buf[o++] = '.', buf[o++] = '.';
            break;
        }
    }
    buf[o < cap ? o : cap - 1] = '\0';
    return buf;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* "<0xNN>" -> NN, or -1. */
static int parse_byte_token(const char *s, size_t n) {
    if (n != 6 || s[0] != '<' || s[1] != '0' || s[2] != 'x' || s[5] != '>') return -1;
    int hi = hexval(s[3]), lo = hexval(s[4]);
    return (hi < 0 || lo < 0) ? -1 : hi * 16 + lo;
}

/* GPT-2's bytes_to_unicode: printable bytes stand for themselves, the others are moved to
 * U+0100 upwards in byte order, so every byte is a visible character. */
static void gpt2_byte_map(uint32_t enc[256]) {
    uint32_t next = 256;
    for (int b = 0; b < 256; b++) {
        bool keep = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        enc[b] = keep ? (uint32_t)b : next++;
    }
}

static orc_status trie_add(orc_tokenizer *t, int32_t id, orc_err *err) {
    size_t len;
    const uint8_t *s = (const uint8_t *)tok_text(t, id, &len);
    int32_t node = -1; /* -1: the root, whose children are trie_root[byte] */
    for (size_t i = 0; i < len; i++) {
        int32_t c = node < 0 ? t->trie_root[s[i]] : t->trie[node].child, last = -1;
        while (c >= 0 && t->trie[c].byte != s[i]) {
            last = c;
            c = t->trie[c].sibling;
        }
        if (c < 0) {
            if (t->n_trie == t->cap_trie) {
                size_t cap = t->cap_trie ? t->cap_trie * 2 : 1024;
                trie_node *p = realloc(t->trie, cap * sizeof *p);
                if (!p) return orc_fail(err, ORC_E_NOMEM, "out of memory building the special-token trie");
                t->trie = p;
                t->cap_trie = cap;
            }
            c = (int32_t)t->n_trie++;
            t->trie[c] = (trie_node){.child = -1, .sibling = -1, .token = -1, .byte = s[i]};
            if (node < 0) t->trie_root[s[i]] = c;
            else if (last >= 0) t->trie[last].sibling = c;
            else t->trie[node].child = c;
        }
        node = c;
    }
    if (node >= 0 && t->trie[node].token < 0) t->trie[node].token = id;
    return ORC_OK;
}

/* Longest special token starting at s[i] that may be cut here (user-defined always, control
 * and unknown only when parse_special); returns its length, 0 if none. */
static size_t special_match(const orc_tokenizer *t, const uint8_t *s, size_t n, size_t i, bool parse_special,
                            int32_t *id) {
    int32_t node = t->trie_root[s[i]];
    size_t j = i + 1, best = 0;
    while (node >= 0) {
        int32_t tk = t->trie[node].token;
        if (tk >= 0 && (parse_special || t->type[tk] == ORC_TOKEN_USER_DEFINED)) {
            best = j - i;
            *id = tk;
        }
        if (j == n) break;
        int32_t c = t->trie[node].child;
        while (c >= 0 && t->trie[c].byte != s[j]) c = t->trie[c].sibling;
        node = c;
        j++;
    }
    return best;
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* Texts that end a turn; the first one present is the EOT token when the file names none. */
static const char *const eog_texts[] = {
    "<|eot_id|>", "<|im_end|>", "<end_of_turn>", "<|end|>", "<|endoftext|>", "<|end_of_text|>", "<|eom_id|>",
    "<EOT>", ("<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"), /* DeepSeek */
};

static orc_status build_eog(orc_tokenizer *t, orc_err *err) {
    size_t n_texts = sizeof eog_texts / sizeof eog_texts[0];
    t->eog = malloc((3 + n_texts) * sizeof *t->eog);
    if (!t->eog) return orc_fail(err, ORC_E_NOMEM, "out of memory");
    if (t->special[ORC_SPECIAL_EOT] < 0) {
        for (size_t k = 0; k < n_texts; k++) {
            int32_t id = map_find(t, eog_texts[k], strlen(eog_texts[k]));
            if (id >= 0 && t->type[id] == ORC_TOKEN_CONTROL) {
                t->special[ORC_SPECIAL_EOT] = id;
                break;
            }
        }
    }
    size_t n = 0;
    const orc_special from_meta[] = {ORC_SPECIAL_EOS, ORC_SPECIAL_EOT, ORC_SPECIAL_EOM};
    for (size_t k = 0; k < 3; k++)
        if (t->special[from_meta[k]] >= 0) t->eog[n++] = t->special[from_meta[k]];
    for (size_t k = 0; k < n_texts; k++) {
        int32_t id = map_find(t, eog_texts[k], strlen(eog_texts[k]));
        if (id >= 0 && t->type[id] == ORC_TOKEN_CONTROL) t->eog[n++] = id;
    }
    qsort(t->eog, n, sizeof *t->eog, cmp_i32);
    size_t m = 0;
    for (size_t k = 0; k < n; k++)
        if (m == 0 || t->eog[m - 1] != t->eog[k]) t->eog[m++] = t->eog[k];
    t->n_eog = m;
    return ORC_OK;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* The characters X for which some normal piece contains "X\u2581" (X != U+2581): the places
 * where spm_fragment may not cut the text. */
static orc_status build_spm_join(orc_tokenizer *t, orc_err *err) {
    size_t cap = 0;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        if (t->type[id] != ORC_TOKEN_NORMAL) continue;
        size_t len;
        const uint8_t *s = (const uint8_t *)tok_text(t, id, &len);
        uint32_t prev = 0x2581;
        for (size_t i = 0; i < len;) {
            size_t l;
            uint32_t cp;
            if (utf8_check(s + i, len - i, &l, &cp) != UTF8_OK) cp = 0x110000u + s[i], l = 1;
            if (cp == 0x2581 && prev != 0x2581 && i > 0) {
                if (t->n_spm_join == cap) {
                    cap = cap ? cap * 2 : 16;
                    uint32_t *p = realloc(t->spm_join, cap * sizeof *p);
                    if (!p) return orc_fail(err, ORC_E_NOMEM, "out of memory");
                    t->spm_join = p;
                }
                t->spm_join[t->n_spm_join++] = prev;
            }
            prev = cp;
            i += l;
        }
    }
    if (t->n_spm_join) {
        qsort(t->spm_join, t->n_spm_join, sizeof *t->spm_join, cmp_u32);
        size_t m = 0;
        for (size_t k = 0; k < t->n_spm_join; k++)
            if (m == 0 || t->spm_join[m - 1] != t->spm_join[k]) t->spm_join[m++] = t->spm_join[k];
        t->n_spm_join = m;
    }
    return ORC_OK;
}

static bool str_is(orc_gguf_str s, const char *z) {
    size_t n = strlen(z);
    return s.ptr && s.len == n && memcmp(s.ptr, z, n) == 0;
}

/* Decode a BPE token's stored text through the inverse GPT-2 byte map; false when a character
 * is outside the byte alphabet (such a token can never come out of byte-level BPE). */
static bool gpt2_decode(const int16_t *inv, const char *s, size_t n, bytebuf *out) {
    size_t i = 0;
    while (i < n) {
        size_t len;
        uint32_t cp;
        if (utf8_check((const uint8_t *)s + i, n - i, &len, &cp) != UTF8_OK) return false;
        if (cp >= 324 || inv[cp] < 0) return false;
        uint8_t b = (uint8_t)inv[cp];
        if (bytebuf_add(out, &b, 1) < 0) return false;
        i += len;
    }
    return true;
}

static orc_status build_pieces(orc_tokenizer *t, orc_err *err) {
    orc_status st = ORC_OK;
    bytebuf buf = {0};
    int16_t inv[324];
    for (int i = 0; i < 324; i++) inv[i] = -1;
    if (t->model == ORC_TOK_BPE)
        for (int b = 0; b < 256; b++) inv[t->byte_enc[b]] = (int16_t)b;
    t->piece_off = malloc(((size_t)t->n_vocab + 1) * sizeof *t->piece_off);
    if (!t->piece_off) {
        st = orc_fail(err, ORC_E_NOMEM, "out of memory for token pieces");
        goto cleanup;
    }
    for (int32_t id = 0; id < t->n_vocab; id++) {
        t->piece_off[id] = buf.n;
        size_t len;
        const char *s = tok_text(t, id, &len);
        uint8_t ty = t->type[id];
        int ok = 0;
        if (ty == ORC_TOKEN_BYTE) {
            uint8_t b = (uint8_t)parse_byte_token(s, len); /* validated at load */
            ok = bytebuf_add(&buf, &b, 1) == 0;
        } else if (ty == ORC_TOKEN_NORMAL || ty == ORC_TOKEN_UNDEFINED || ty == ORC_TOKEN_UNUSED) {
            if (t->model == ORC_TOK_BPE) {
                size_t mark = buf.n;
                if (!gpt2_decode(inv, s, len, &buf)) {
                    buf.n = mark; /* not byte-level text: show it as stored */
                    ok = bytebuf_add(&buf, s, len) == 0;
                } else {
                    ok = 1;
                }
            } else { /* SentencePiece: U+2581 stands for a space */
                ok = 1;
                for (size_t i = 0; i < len && ok;) {
                    if (i + 3 <= len && memcmp(s + i, "\xe2\x96\x81", 3) == 0) {
                        ok = bytebuf_add(&buf, " ", 1) == 0;
                        i += 3;
                    } else {
                        ok = bytebuf_add(&buf, s + i, 1) == 0;
                        i++;
                    }
                }
            }
        } else { /* control, user-defined, unknown: their text */
            ok = bytebuf_add(&buf, s, len) == 0;
        }
        if (!ok) {
            st = orc_fail(err, ORC_E_NOMEM, "out of memory for token pieces");
            goto cleanup;
        }
    }
    t->piece_off[t->n_vocab] = buf.n;
    if (bytebuf_reserve(&buf, 1) < 0) {
        st = orc_fail(err, ORC_E_NOMEM, "out of memory for token pieces");
        goto cleanup;
    }
    t->piece = (char *)buf.p;
    buf.p = NULL;
cleanup:
    free(buf.p);
    return st;
}

static orc_status build_merges(orc_tokenizer *t, const orc_tokenizer_spec *spec, orc_err *err) {
    orc_status st = ORC_OK;
    bytebuf cat = {0};
    if (spec->n_merges > (uint64_t)INT32_MAX) /* ranks are int32; also bounds the table below */
        return orc_fail(err, ORC_E_FORMAT, "tokenizer.ggml.merges has %llu entries (more than INT32_MAX)",
                        (unsigned long long)spec->n_merges);
    uint64_t cap = pow2_at_least(spec->n_merges * 2 + 16);
    if (cap > SIZE_MAX / sizeof(merge_entry))
        return orc_fail(err, ORC_E_NOMEM, "tokenizer.ggml.merges: %llu merges do not fit in memory",
                        (unsigned long long)spec->n_merges);
    t->merges = malloc((size_t)cap * sizeof *t->merges);
    if (!t->merges) return orc_fail(err, ORC_E_NOMEM, "out of memory for %llu merges", (unsigned long long)spec->n_merges);
    for (uint64_t i = 0; i < cap; i++) t->merges[i].key = UINT64_MAX;
    t->merge_mask = cap - 1;
    for (uint64_t r = 0; r < spec->n_merges; r++) {
        orc_gguf_str m = spec->merges[r];
        /* "left right", split at the first space after the first byte (a merge's left side
         * may itself begin with a space in vocabularies that are not byte-level) */
        size_t sp = 0;
        for (size_t k = 1; k < m.len; k++)
            if (m.ptr[k] == ' ') {
                sp = k;
                break;
            }
        if (sp == 0 || sp + 1 >= m.len) {
            char pb[80];
            st = orc_fail(err, ORC_E_FORMAT, "tokenizer.ggml.merges[%llu] = '%s' is not of the form 'left right'",
                          (unsigned long long)r, printable(m.ptr, m.len, pb, sizeof pb));
            goto cleanup;
        }
        int32_t a = map_find(t, m.ptr, sp), b = map_find(t, m.ptr + sp + 1, m.len - sp - 1);
        cat.n = 0;
        if (bytebuf_add(&cat, m.ptr, sp) < 0 || bytebuf_add(&cat, m.ptr + sp + 1, m.len - sp - 1) < 0) {
            st = orc_fail(err, ORC_E_NOMEM, "out of memory");
            goto cleanup;
        }
        int32_t c = map_find(t, cat.p, cat.n);
        if (a < 0 || b < 0 || c < 0) {
            /* A merge whose parts or result are not tokens can never produce a token
             * (Hugging Face refuses such a file); it is not used. */
            t->n_merges_skipped++;
            continue;
        }
        uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
        uint64_t i = hash_u64(key) & t->merge_mask;
        while (t->merges[i].key != UINT64_MAX && t->merges[i].key != key) i = (i + 1) & t->merge_mask;
        if (t->merges[i].key == key) continue; /* a repeated pair keeps its first (best) rank */
        t->merges[i] = (merge_entry){.key = key, .rank = (int32_t)r, .result = c};
        t->n_merges_used++;
    }
cleanup:
    free(cat.p);
    return st;
}

orc_status orc_tokenizer_from_spec(const orc_tokenizer_spec *spec, orc_tokenizer **out, orc_err *err) {
    orc_status st = ORC_OK;
    orc_tokenizer *t = NULL;
    char pb[96];
    *out = NULL;

    t = calloc(1, sizeof *t);
    if (!t) return orc_fail(err, ORC_E_NOMEM, "out of memory");

    /* model and pre-tokenizer */
    if (!spec->model.ptr) {
        st = orc_fail(err, ORC_E_NOT_FOUND, "tokenizer.ggml.model is missing: the file has no tokenizer");
        goto fail;
    }
    if (str_is(spec->model, "gpt2")) {
        t->model = ORC_TOK_BPE;
    } else if (str_is(spec->model, "llama")) {
        t->model = ORC_TOK_SPM;
    } else {
        st = orc_fail(err, ORC_E_UNSUPPORTED,
                      "tokenizer.ggml.model = '%s' is not supported (supported: 'gpt2' byte-level BPE, "
                      "'llama' SentencePiece BPE)",
                      printable(spec->model.ptr, spec->model.len, pb, sizeof pb));
        goto fail;
    }
    strcpy(t->model_name, t->model == ORC_TOK_BPE ? "gpt2" : "llama");
    if (spec->pre.ptr) printable(spec->pre.ptr, spec->pre.len, t->pre_name, sizeof t->pre_name);
    if (t->model == ORC_TOK_BPE) {
        if (!spec->pre.ptr) {
            st = orc_fail(err, ORC_E_UNSUPPORTED,
                          "tokenizer.ggml.pre is missing: a byte-level BPE vocabulary needs its pre-tokenizer "
                          "named, and orc will not guess one (supported: " PRE_SUPPORTED_LIST ")");
            goto fail;
        }
        for (size_t k = 0; k < sizeof pre_names / sizeof pre_names[0]; k++)
            if (str_is(spec->pre, pre_names[k].name)) t->pre = pre_names[k].kind;
        if (t->pre == PRE_NONE) {
            st = orc_fail(err, ORC_E_UNSUPPORTED,
                          "tokenizer.ggml.pre = '%s' is not a supported pre-tokenizer (supported: " PRE_SUPPORTED_LIST
                          "); refusing rather than splitting the text differently from the model's tokenizer",
                          printable(spec->pre.ptr, spec->pre.len, pb, sizeof pb));
            goto fail;
        }
        t->ignore_merges = (t->pre == PRE_LLAMA3);
    }

    /* tokens */
    if (spec->n_vocab == 0 || !spec->tokens) {
        st = orc_fail(err, ORC_E_FORMAT, "tokenizer.ggml.tokens is missing or empty");
        goto fail;
    }
    if (spec->n_vocab > (uint64_t)INT32_MAX) {
        st = orc_fail(err, ORC_E_FORMAT, "tokenizer.ggml.tokens has %llu entries (token ids are int32)",
                      (unsigned long long)spec->n_vocab);
        goto fail;
    }
    t->n_vocab = (int32_t)spec->n_vocab;
    size_t nv = (size_t)t->n_vocab;
    uint64_t total = 0;
    for (size_t i = 0; i < nv; i++) {
        if (spec->tokens[i].len > (1u << 20)) {
            st = orc_fail(err, ORC_E_FORMAT, "tokenizer.ggml.tokens[%zu] is %llu bytes long (limit 1 MiB)", i,
                          (unsigned long long)spec->tokens[i].len);
            goto fail;
        }
        total += spec->tokens[i].len;
    }
    if (total > SIZE_MAX / 2) {
        st = orc_fail(err, ORC_E_FORMAT, "tokenizer.ggml.tokens: %llu bytes of token text", (unsigned long long)total);
        goto fail;
    }
    t->text = malloc((size_t)total + 1);
    t->text_off = malloc((nv + 1) * sizeof *t->text_off);
    t->type = malloc(nv);
    t->score = malloc(nv * sizeof *t->score);
    uint64_t map_cap = pow2_at_least((uint64_t)nv * 2);
    t->map = malloc((size_t)map_cap * sizeof *t->map);
    if (!t->text || !t->text_off || !t->type || !t->score || !t->map) {
        st = orc_fail(err, ORC_E_NOMEM, "out of memory for a vocabulary of %zu tokens", nv);
        goto fail;
    }
    uint64_t off = 0;
    for (size_t i = 0; i < nv; i++) {
        t->text_off[i] = off;
        if (spec->tokens[i].len) memcpy(t->text + off, spec->tokens[i].ptr, (size_t)spec->tokens[i].len);
        off += spec->tokens[i].len;
    }
    t->text_off[nv] = off;
    t->text[off] = '\0';

    for (size_t i = 0; i < nv; i++) {
        int32_t ty = spec->token_types ? spec->token_types[i] : ORC_TOKEN_NORMAL;
        if (ty < 0 || ty >= ORC_TOKEN_TYPE_COUNT) {
            st = orc_fail(err, ORC_E_FORMAT, "tokenizer.ggml.token_type[%zu] = %d is not a token type (0..6)", i,
                          (int)ty);
            goto fail;
        }
        t->type[i] = (uint8_t)ty;
        float sc = spec->scores ? spec->scores[i] : 0.0f;
        if (isnan(sc)) {
            st = orc_fail(err, ORC_E_FORMAT, "tokenizer.ggml.scores[%zu] is NaN", i);
            goto fail;
        }
        t->score[i] = sc;
    }

    /* text -> id; the first of repeated texts wins */
    t->map_mask = map_cap - 1;
    for (uint64_t i = 0; i < map_cap; i++) t->map[i] = -1;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        size_t len;
        const char *s = tok_text(t, id, &len);
        if (len == 0) continue;
        uint64_t i = hash_bytes(s, len) & t->map_mask;
        bool dup = false;
        while (t->map[i] >= 0) {
            size_t l2;
            const char *s2 = tok_text(t, t->map[i], &l2);
            if (l2 == len && memcmp(s, s2, len) == 0) {
                dup = true;
                break;
            }
            i = (i + 1) & t->map_mask;
        }
        if (!dup) t->map[i] = id;
    }

    /* byte tokens */
    for (int b = 0; b < 256; b++) t->byte_tok[b] = -1;
    bool any_byte_type = false;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        if (t->type[id] != ORC_TOKEN_BYTE) continue;
        size_t len;
        const char *s = tok_text(t, id, &len);
        int b = parse_byte_token(s, len);
        if (b < 0) {
            st = orc_fail(err, ORC_E_FORMAT,
                          "tokenizer.ggml.tokens[%d] = '%s' has token type BYTE but is not of the form <0xNN>",
                          (int)id, printable(s, len, pb, sizeof pb));
            goto fail;
        }
        any_byte_type = true;
        if (t->model == ORC_TOK_SPM && t->byte_tok[b] < 0) t->byte_tok[b] = id;
    }
    if (t->model == ORC_TOK_SPM && !any_byte_type) {
        /* no token types: byte fallback by text */
        for (int b = 0; b < 256; b++) {
            static const char hex[] = "0123456789ABCDEF";
            char s[6] = {'<', '0', 'x', hex[b >> 4], hex[b & 15], '>'};
            t->byte_tok[b] = map_find(t, s, 6);
        }
    }
    if (t->model == ORC_TOK_BPE) {
        gpt2_byte_map(t->byte_enc);
        for (int b = 0; b < 256; b++) {
            uint8_t u[4];
            size_t n = utf8_put(u, t->byte_enc[b]);
            t->byte_tok[b] = map_find(t, u, n);
        }
    }

    if (t->model == ORC_TOK_SPM) {
        st = build_spm_join(t, err);
        if (st) goto fail;
    }

    /* special token ids */
    for (int s = 0; s < ORC_SPECIAL_COUNT; s++) {
        int64_t id = spec->special[s];
        if (id != ORC_TOKEN_NONE && (id < 0 || id >= t->n_vocab)) {
            st = orc_fail(err, ORC_E_FORMAT, "%s = %lld is out of range for a vocabulary of %d tokens",
                          special_keys[s], (long long)id, (int)t->n_vocab);
            goto fail;
        }
        t->special[s] = (int32_t)id;
    }
    if (t->model == ORC_TOK_SPM) { /* SentencePiece's fixed ids, as llama.cpp assumes them */
        const int32_t defaults[3][2] = {{ORC_SPECIAL_BOS, 1}, {ORC_SPECIAL_EOS, 2}, {ORC_SPECIAL_UNK, 0}};
        for (int k = 0; k < 3; k++)
            if (t->special[defaults[k][0]] < 0 && defaults[k][1] < t->n_vocab) t->special[defaults[k][0]] = defaults[k][1];
    }

    /* flags */
    bool def_bos = (t->model == ORC_TOK_SPM) || (t->pre == PRE_LLAMA3);
    t->add_bos = spec->add_bos < 0 ? def_bos : spec->add_bos != 0;
    t->add_eos = spec->add_eos > 0;
    t->add_space_prefix = t->model == ORC_TOK_SPM && (spec->add_space_prefix < 0 || spec->add_space_prefix != 0);
    if (t->add_bos && t->special[ORC_SPECIAL_BOS] < 0) {
        if (spec->add_bos > 0) {
            st = orc_fail(err, ORC_E_FORMAT,
                          "tokenizer.ggml.add_bos_token is true but there is no tokenizer.ggml.bos_token_id");
            goto fail;
        }
        t->add_bos = false;
    }
    if (t->add_eos && t->special[ORC_SPECIAL_EOS] < 0) {
        st = orc_fail(err, ORC_E_FORMAT,
                      "tokenizer.ggml.add_eos_token is true but there is no tokenizer.ggml.eos_token_id");
        goto fail;
    }

    /* merges */
    if (t->model == ORC_TOK_BPE) {
        if (!spec->merges && spec->n_merges) {
            st = orc_fail(err, ORC_E_INVALID, "spec: n_merges > 0 but merges is NULL");
            goto fail;
        }
        st = build_merges(t, spec, err);
        if (st) goto fail;
    }

    /* special-token trie */
    for (int b = 0; b < 256; b++) t->trie_root[b] = -1;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        if (!is_special_type(t->type[id])) continue;
        st = trie_add(t, id, err);
        if (st) goto fail;
    }

    st = build_pieces(t, err);
    if (st) goto fail;
    st = build_eog(t, err);
    if (st) goto fail;

    if (spec->chat_template.ptr) {
        t->chat_template = malloc((size_t)spec->chat_template.len + 1);
        if (!t->chat_template) {
            st = orc_fail(err, ORC_E_NOMEM, "out of memory");
            goto fail;
        }
        memcpy(t->chat_template, spec->chat_template.ptr, (size_t)spec->chat_template.len);
        t->chat_template[spec->chat_template.len] = '\0';
        t->chat_template_len = (size_t)spec->chat_template.len;
    }

    *out = t;
    return ORC_OK;
fail:
    orc_tokenizer_free(t);
    return st;
}

/* ------------------------------------------------------------------------------------------
 * Reading the spec from GGUF
 * ------------------------------------------------------------------------------------------ */

orc_status orc_tokenizer_from_gguf(const orc_gguf *g, orc_tokenizer **out, orc_err *err) {
    orc_status st = ORC_OK;
    orc_tokenizer_spec spec;
    float *scores = NULL;
    int32_t *types = NULL;
    orc_tokenizer_spec_init(&spec);
    *out = NULL;

    st = orc_gguf_get_str(g, "tokenizer.ggml.model", &spec.model, err);
    if (st) goto cleanup;
    if (orc_gguf_find_kv(g, "tokenizer.ggml.pre")) {
        st = orc_gguf_get_str(g, "tokenizer.ggml.pre", &spec.pre, err);
        if (st) goto cleanup;
    }

    const orc_gguf_kv *kv = NULL;
    st = orc_gguf_get_array(g, "tokenizer.ggml.tokens", ORC_GGUF_STRING, false, &kv, err);
    if (st) {
        if (st == ORC_E_NOT_FOUND) st = orc_fail(err, ORC_E_FORMAT, "tokenizer.ggml.tokens is missing");
        goto cleanup;
    }
    spec.n_vocab = kv->count;
    spec.tokens = kv->strings;
    if (spec.n_vocab == 0 || spec.n_vocab > (uint64_t)INT32_MAX) {
        st = orc_fail(err, ORC_E_FORMAT, "tokenizer.ggml.tokens has %llu entries", (unsigned long long)kv->count);
        goto cleanup;
    }

    if (orc_gguf_find_kv(g, "tokenizer.ggml.scores")) {
        st = orc_gguf_get_array(g, "tokenizer.ggml.scores", ORC_GGUF_FLOAT32, false, &kv, err);
        if (st) goto cleanup;
        if (kv->count != spec.n_vocab) {
            st = orc_fail(err, ORC_E_FORMAT,
                          "tokenizer.ggml.scores has %llu entries but tokenizer.ggml.tokens has %llu",
                          (unsigned long long)kv->count, (unsigned long long)spec.n_vocab);
            goto cleanup;
        }
        scores = malloc((size_t)spec.n_vocab * sizeof *scores);
        if (!scores) {
            st = orc_fail(err, ORC_E_NOMEM, "out of memory");
            goto cleanup;
        }
        memcpy(scores, kv->data, (size_t)spec.n_vocab * sizeof *scores); /* the map may be unaligned */
        spec.scores = scores;
    }
    if (orc_gguf_find_kv(g, "tokenizer.ggml.token_type")) {
        st = orc_gguf_get_array(g, "tokenizer.ggml.token_type", ORC_GGUF_INT32, false, &kv, err);
        if (st) goto cleanup;
        if (kv->count != spec.n_vocab) {
            st = orc_fail(err, ORC_E_FORMAT,
                          "tokenizer.ggml.token_type has %llu entries but tokenizer.ggml.tokens has %llu",
                          (unsigned long long)kv->count, (unsigned long long)spec.n_vocab);
            goto cleanup;
        }
        types = malloc((size_t)spec.n_vocab * sizeof *types);
        if (!types) {
            st = orc_fail(err, ORC_E_NOMEM, "out of memory");
            goto cleanup;
        }
        memcpy(types, kv->data, (size_t)spec.n_vocab * sizeof *types);
        spec.token_types = types;
    }
    if (orc_gguf_find_kv(g, "tokenizer.ggml.merges")) {
        st = orc_gguf_get_array(g, "tokenizer.ggml.merges", ORC_GGUF_STRING, false, &kv, err);
        if (st) goto cleanup;
        spec.n_merges = kv->count;
        spec.merges = kv->strings;
    } else if (str_is(spec.model, "gpt2")) {
        st = orc_fail(err, ORC_E_FORMAT, "tokenizer.ggml.merges is missing (required when tokenizer.ggml.model = gpt2)");
        goto cleanup;
    }

    for (int s = 0; s < ORC_SPECIAL_COUNT; s++) {
        if (!orc_gguf_find_kv(g, special_keys[s])) continue;
        int64_t v;
        st = orc_gguf_get_int(g, special_keys[s], &v, err);
        if (st) goto cleanup;
        if (v < 0 || (uint64_t)v >= spec.n_vocab) {
            st = orc_fail(err, ORC_E_FORMAT, "%s = %lld is out of range for a vocabulary of %llu tokens",
                          special_keys[s], (long long)v, (unsigned long long)spec.n_vocab);
            goto cleanup;
        }
        spec.special[s] = v;
    }
    const struct {
        const char *key;
        int *dst;
    } flags[] = {
        {"tokenizer.ggml.add_bos_token", &spec.add_bos},
        {"tokenizer.ggml.add_eos_token", &spec.add_eos},
        {"tokenizer.ggml.add_space_prefix", &spec.add_space_prefix},
    };
    for (size_t k = 0; k < sizeof flags / sizeof flags[0]; k++) {
        if (!orc_gguf_find_kv(g, flags[k].key)) continue;
        bool b;
        st = orc_gguf_get_bool(g, flags[k].key, &b, err);
        if (st) goto cleanup;
        *flags[k].dst = b ? 1 : 0;
    }
    if (orc_gguf_find_kv(g, "tokenizer.chat_template")) {
        st = orc_gguf_get_str(g, "tokenizer.chat_template", &spec.chat_template, err);
        if (st) goto cleanup;
    }

    st = orc_tokenizer_from_spec(&spec, out, err);
cleanup:
    free(scores);
    free(types);
    return st;
}

/* ------------------------------------------------------------------------------------------
 * Properties
 * ------------------------------------------------------------------------------------------ */

orc_tok_model orc_tokenizer_model(const orc_tokenizer *t) { return t->model; }
const char *orc_tokenizer_model_name(const orc_tokenizer *t) { return t->model_name; }
const char *orc_tokenizer_pre_name(const orc_tokenizer *t) { return t->pre_name; }
int32_t orc_tokenizer_vocab_size(const orc_tokenizer *t) { return t->n_vocab; }
int32_t orc_tokenizer_special(const orc_tokenizer *t, orc_special s) {
    return (s >= 0 && s < ORC_SPECIAL_COUNT) ? t->special[s] : ORC_TOKEN_NONE;
}
bool orc_tokenizer_add_bos(const orc_tokenizer *t) { return t->add_bos; }
bool orc_tokenizer_add_eos(const orc_tokenizer *t) { return t->add_eos; }
bool orc_tokenizer_add_space_prefix(const orc_tokenizer *t) { return t->add_space_prefix; }

const int32_t *orc_tokenizer_eog(const orc_tokenizer *t, size_t *n) {
    *n = t->n_eog;
    return t->eog;
}

bool orc_tokenizer_is_eog(const orc_tokenizer *t, int32_t id) {
    size_t lo = 0, hi = t->n_eog;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (t->eog[mid] == id) return true;
        if (t->eog[mid] < id) lo = mid + 1;
        else hi = mid;
    }
    return false;
}

const char *orc_tokenizer_chat_template(const orc_tokenizer *t, size_t *len) {
    *len = t->chat_template_len;
    return t->chat_template;
}

static orc_status check_id(const orc_tokenizer *t, int32_t id, orc_err *err) {
    if (id < 0 || id >= t->n_vocab)
        return orc_fail(err, ORC_E_RANGE, "token id %d is out of range [0, %d)", (int)id, (int)t->n_vocab);
    return ORC_OK;
}

orc_status orc_token_text(const orc_tokenizer *t, int32_t id, const char **text, size_t *len, orc_err *err) {
    orc_status st = check_id(t, id, err);
    if (st) return st;
    *text = tok_text(t, id, len);
    return ORC_OK;
}

orc_status orc_token_piece(const orc_tokenizer *t, int32_t id, const char **bytes, size_t *len, orc_err *err) {
    orc_status st = check_id(t, id, err);
    if (st) return st;
    *bytes = t->piece + t->piece_off[id];
    *len = (size_t)(t->piece_off[id + 1] - t->piece_off[id]);
    return ORC_OK;
}

orc_status orc_token_get_type(const orc_tokenizer *t, int32_t id, orc_token_type *type, orc_err *err) {
    orc_status st = check_id(t, id, err);
    if (st) return st;
    *type = (orc_token_type)t->type[id];
    return ORC_OK;
}

orc_status orc_token_score(const orc_tokenizer *t, int32_t id, float *score, orc_err *err) {
    orc_status st = check_id(t, id, err);
    if (st) return st;
    *score = t->score[id];
    return ORC_OK;
}

int32_t orc_token_lookup(const orc_tokenizer *t, const char *text, size_t len) {
    return len ? map_find(t, text, len) : ORC_TOKEN_NONE;
}

/* ------------------------------------------------------------------------------------------
 * Pre-tokenizers: where each word of a text fragment ends
 * ------------------------------------------------------------------------------------------ */

enum { C_L = ORC_UC_L, C_N = ORC_UC_N, C_M = ORC_UC_M, C_WS = ORC_UC_WS, C_RN = 16 };

typedef struct cpbuf {
    uint32_t *cp;  /* code points (an invalid byte b becomes 0x110000 + b: class "other") */
    uint8_t *cls;  /* C_* bits */
    uint32_t *off; /* byte offset of each code point, [n + 1] */
    size_t n, cap;
} cpbuf;

static int cpbuf_fill(cpbuf *b, const uint8_t *s, size_t len) {
    if (len + 1 > b->cap) {
        size_t cap = len + 1;
        uint32_t *cp = realloc(b->cp, cap * sizeof *cp);
        if (cp) b->cp = cp;
        uint8_t *cls = realloc(b->cls, cap);
        if (cls) b->cls = cls;
        uint32_t *off = realloc(b->off, cap * sizeof *off);
        if (off) b->off = off;
        if (!cp || !cls || !off) return -1;
        b->cap = cap;
    }
    size_t i = 0, n = 0;
    while (i < len) {
        uint8_t c = s[i];
        uint32_t cp;
        size_t l;
        if (c < 0x80) {
            cp = c, l = 1;
        } else if (utf8_check(s + i, len - i, &l, &cp) != UTF8_OK) {
            cp = 0x110000u + c, l = 1;
        }
        b->cp[n] = cp;
        uint8_t cl = orc_unicode_class(cp);
        if (cp == '\r' || cp == '\n') cl |= C_RN;
        b->cls[n] = cl;
        b->off[n] = (uint32_t)i;
        n++;
        i += l;
    }
    b->off[n] = (uint32_t)len;
    b->n = n;
    return 0;
}

static void cpbuf_free(cpbuf *b) {
    free(b->cp);
    free(b->cls);
    free(b->off);
}

/* The end of the whitespace run at i, for the alternatives "\s+(?!\S)|\s+": the run, but
 * one short when a non-space follows and the run has more than one character (that last
 * space then prefixes the next word). */
static size_t ws_run(const cpbuf *b, size_t i) {
    size_t j = i;
    while (j < b->n && (b->cls[j] & C_WS)) j++;
    if (j < b->n && j - i > 1) j--;
    return j;
}

/* GPT-2:  's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
static size_t next_gpt2(const cpbuf *b, size_t i) {
    const uint32_t *cp = b->cp;
    const uint8_t *cl = b->cls;
    size_t n = b->n;
    uint32_t c = cp[i];
    if (c == '\'' && i + 1 < n) {
        uint32_t c1 = cp[i + 1];
        if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return i + 2;
        if (i + 2 < n) {
            uint32_t c2 = cp[i + 2];
            if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return i + 3;
        }
    }
    size_t k = (c == ' ' && i + 1 < n) ? i + 1 : i;
    uint8_t ck = cl[k];
    if (ck & C_L) {
        while (++k < n && (cl[k] & C_L)) {}
        return k;
    }
    if (ck & C_N) {
        while (++k < n && (cl[k] & C_N)) {}
        return k;
    }
    if (!(ck & (C_L | C_N | C_WS))) {
        while (++k < n && !(cl[k] & (C_L | C_N | C_WS))) {}
        return k;
    }
    return ws_run(b, i);
}

/* (?i:'s|'t|'re|'ve|'m|'ll|'d) with Unicode simple case folding (U+017F LATIN SMALL LETTER
 * LONG S folds to 's'); returns the end, or 0. */
static uint32_t fold_ascii(uint32_t c) {
    if (c >= 'A' && c <= 'Z') return c + 32;
    if (c == 0x17F) return 's';
    return c;
}

static size_t contraction_ci(const cpbuf *b, size_t i) {
    if (b->cp[i] != '\'' || i + 1 >= b->n) return 0;
    uint32_t c1 = fold_ascii(b->cp[i + 1]);
    if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return i + 2;
    if (i + 2 < b->n) {
        uint32_t c2 = fold_ascii(b->cp[i + 2]);
        if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return i + 3;
    }
    return 0;
}

/* Llama 3 (max_digits 3), Qwen2 (max_digits 1):
 *   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,max}| ?[^\s\p{L}\p{N}]+[\r\n]*
 *   |\s*[\r\n]+|\s+(?!\S)|\s+
 * Qwen3.5 (marks): \p{L} becomes [\p{L}\p{M}] in the letter run, and marks leave the class of
 * the punctuation run:  ...|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|... */
static size_t next_llama3(const cpbuf *b, size_t i, size_t max_digits, bool marks) {
    const uint8_t *cl = b->cls;
    size_t n = b->n;
    size_t e = contraction_ci(b, i);
    if (e) return e;
    uint8_t letter = marks ? (C_L | C_M) : C_L;
    uint8_t c = cl[i];
    if (c & letter) {
        size_t k = i;
        while (++k < n && (cl[k] & letter)) {}
        return k;
    }
    if (!(c & (C_L | C_N | C_RN)) && i + 1 < n && (cl[i + 1] & letter)) {
        size_t k = i + 1;
        while (++k < n && (cl[k] & letter)) {}
        return k;
    }
    if (c & C_N) {
        size_t k = i + 1;
        while (k < n && k - i < max_digits && (cl[k] & C_N)) k++;
        return k;
    }
    uint8_t not_punct = C_WS | C_L | C_N | (marks ? C_M : 0);
    size_t k = i;
    if (b->cp[i] == ' ' && i + 1 < n && !(cl[i + 1] & not_punct)) k = i + 1;
    if (!(cl[k] & not_punct)) {
        while (++k < n && !(cl[k] & not_punct)) {}
        while (k < n && (cl[k] & C_RN)) k++;
        return k;
    }
    /* whitespace: \s*[\r\n]+ ends after the last \r or \n of the run */
    size_t j = i;
    while (j < n && (cl[j] & C_WS)) j++;
    for (size_t p = j; p > i; p--)
        if (cl[p - 1] & C_RN) return p;
    return ws_run(b, i);
}

static size_t next_word(const orc_tokenizer *t, const cpbuf *b, size_t i) {
    switch (t->pre) {
    case PRE_GPT2: return next_gpt2(b, i);
    case PRE_LLAMA3: return next_llama3(b, i, 3, false);
    case PRE_QWEN2: return next_llama3(b, i, 1, false);
    case PRE_QWEN35: return next_llama3(b, i, 1, true);
    default: return b->n; /* unreachable: the constructor refuses other kinds */
    }
}

/* ------------------------------------------------------------------------------------------
 * Byte-level BPE over one word
 * ------------------------------------------------------------------------------------------ */

typedef struct bpe_cand {
    int32_t rank, left, right, lid, rid, result;
} bpe_cand;

typedef struct spm_cand {
    float score;
    int32_t left, right;
    uint32_t size;
} spm_cand;

/* Scratch space for one tokenize call. */
typedef struct work {
    int32_t *sym, *prev, *next; /* BPE: token id per symbol (-1 dead); SPM: sym = byte start */
    uint32_t *len;              /* SPM: byte length per symbol (0 dead) */
    size_t cap_sym;
    bpe_cand *heap;
    spm_cand *sheap;
    size_t n_heap, cap_heap, cap_sheap; /* one of the two heaps is in use per call */
    bytebuf enc; /* encoded word / escaped fragment */
    cpbuf cps;
    /* per-call cache of tokenized words (English text repeats its words a lot) */
    struct cache_entry {
        uint64_t hash;
        const uint8_t *word;
        uint32_t len, ids_off, n_ids;
    } *cache;
    uint64_t cache_mask;
    size_t cache_used;
    idvec cache_ids;
} work;

static void work_free(work *w) {
    free(w->sym);
    free(w->prev);
    free(w->next);
    free(w->len);
    free(w->heap);
    free(w->sheap);
    free(w->enc.p);
    cpbuf_free(&w->cps);
    free(w->cache);
    free(w->cache_ids.v);
}

static int work_symbols(work *w, size_t n) {
    if (n <= w->cap_sym) return 0;
    size_t cap = w->cap_sym ? w->cap_sym : 64;
    while (cap < n) cap *= 2;
    int32_t *a = realloc(w->sym, cap * sizeof *a);
    if (a) w->sym = a;
    int32_t *p = realloc(w->prev, cap * sizeof *p);
    if (p) w->prev = p;
    int32_t *x = realloc(w->next, cap * sizeof *x);
    if (x) w->next = x;
    uint32_t *l = realloc(w->len, cap * sizeof *l);
    if (l) w->len = l;
    if (!a || !p || !x || !l) return -1;
    w->cap_sym = cap;
    return 0;
}

static inline bool bpe_less(const bpe_cand *a, const bpe_cand *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static int bpe_push(work *w, bpe_cand c) {
    if (w->n_heap == w->cap_heap) {
        size_t cap = w->cap_heap ? w->cap_heap * 2 : 64;
        bpe_cand *h = realloc(w->heap, cap * sizeof *h);
        if (!h) return -1;
        w->heap = h;
        w->cap_heap = cap;
    }
    size_t i = w->n_heap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!bpe_less(&c, &w->heap[p])) break;
        w->heap[i] = w->heap[p];
        i = p;
    }
    w->heap[i] = c;
    return 0;
}

static bpe_cand bpe_pop(work *w) {
    bpe_cand top = w->heap[0], last = w->heap[--w->n_heap];
    size_t i = 0, n = w->n_heap;
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= n) break;
        size_t m = (l + 1 < n && bpe_less(&w->heap[l + 1], &w->heap[l])) ? l + 1 : l;
        if (!bpe_less(&w->heap[m], &last)) break;
        w->heap[i] = w->heap[m];
        i = m;
    }
    if (n) w->heap[i] = last;
    return top;
}

static int bpe_try(const orc_tokenizer *t, work *w, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return 0;
    int32_t rank, result;
    if (!merge_find(t, w->sym[l], w->sym[r], &rank, &result)) return 0;
    return bpe_push(w, (bpe_cand){rank, l, r, w->sym[l], w->sym[r], result});
}

static orc_status bpe_word(const orc_tokenizer *t, work *w, const uint8_t *s, size_t n, idvec *out, orc_err *err) {
    if (t->ignore_merges) { /* a word that is itself a token is taken whole (Llama 3) */
        w->enc.n = 0;
        if (bytebuf_reserve(&w->enc, n * 2) < 0) return orc_fail(err, ORC_E_NOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) w->enc.n += utf8_put(w->enc.p + w->enc.n, t->byte_enc[s[i]]);
        int32_t id = map_find_normal(t, w->enc.p, w->enc.n);
        if (id >= 0) return idvec_push(out, id) < 0 ? orc_fail(err, ORC_E_NOMEM, "out of memory") : ORC_OK;
    }
    if (n > INT32_MAX || work_symbols(w, n) < 0) return orc_fail(err, ORC_E_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        int32_t id = t->byte_tok[s[i]];
        if (id < 0)
            return orc_fail(err, ORC_E_UNSUPPORTED, "byte 0x%02x has no token in this vocabulary (its GPT-2 "
                                                    "byte character is missing from tokenizer.ggml.tokens)",
                            s[i]);
        w->sym[i] = id;
        w->prev[i] = (int32_t)i - 1;
        w->next[i] = (i + 1 < n) ? (int32_t)i + 1 : -1;
    }
    w->n_heap = 0;
    for (size_t i = 1; i < n; i++)
        if (bpe_try(t, w, (int32_t)i - 1, (int32_t)i) < 0) return orc_fail(err, ORC_E_NOMEM, "out of memory");
    while (w->n_heap) {
        bpe_cand c = bpe_pop(w);
        if (w->sym[c.left] != c.lid || w->next[c.left] != c.right || w->sym[c.right] != c.rid) continue; /* stale */
        w->sym[c.left] = c.result;
        w->sym[c.right] = -1;
        int32_t nx = w->next[c.right];
        w->next[c.left] = nx;
        if (nx >= 0) w->prev[nx] = c.left;
        if (bpe_try(t, w, w->prev[c.left], c.left) < 0 || bpe_try(t, w, c.left, nx) < 0)
            return orc_fail(err, ORC_E_NOMEM, "out of memory");
    }
    for (int32_t i = 0; i >= 0; i = w->next[i])
        if (idvec_push(out, w->sym[i]) < 0) return orc_fail(err, ORC_E_NOMEM, "out of memory");
    return ORC_OK;
}

/* bpe_word through the per-call cache. */
static orc_status bpe_word_cached(const orc_tokenizer *t, work *w, const uint8_t *s, size_t n, idvec *out,
                                  orc_err *err) {
    if (!w->cache || n > 64) return bpe_word(t, w, s, n, out, err);
    uint64_t h = hash_bytes(s, n);
    uint64_t i = h & w->cache_mask;
    while (w->cache[i].word) {
        struct cache_entry *e = &w->cache[i];
        if (e->hash == h && e->len == n && memcmp(e->word, s, n) == 0) {
            if (idvec_reserve(out, e->n_ids) < 0) return orc_fail(err, ORC_E_NOMEM, "out of memory");
            memcpy(out->v + out->n, w->cache_ids.v + e->ids_off, e->n_ids * sizeof(int32_t));
            out->n += e->n_ids;
            return ORC_OK;
        }
        i = (i + 1) & w->cache_mask;
    }
    size_t before = out->n;
    orc_status st = bpe_word(t, w, s, n, out, err);
    if (st) return st;
    size_t k = out->n - before;
    if (w->cache_used * 4 < (w->cache_mask + 1) * 3 && w->cache_ids.n + k < UINT32_MAX) {
        if (idvec_reserve(&w->cache_ids, k) < 0) return orc_fail(err, ORC_E_NOMEM, "out of memory");
        memcpy(w->cache_ids.v + w->cache_ids.n, out->v + before, k * sizeof(int32_t));
        w->cache[i] = (struct cache_entry){h, s, (uint32_t)n, (uint32_t)w->cache_ids.n, (uint32_t)k};
        w->cache_ids.n += k;
        w->cache_used++;
    }
    return ORC_OK;
}

static orc_status bpe_fragment(const orc_tokenizer *t, work *w, const uint8_t *s, size_t len, idvec *out,
                               orc_err *err) {
    if (cpbuf_fill(&w->cps, s, len) < 0) return orc_fail(err, ORC_E_NOMEM, "out of memory");
    const cpbuf *b = &w->cps;
    size_t i = 0;
    while (i < b->n) {
        size_t j = next_word(t, b, i);
        if (j <= i) j = i + 1; /* cannot happen; guards against a loop */
        uint32_t a = b->off[i], z = b->off[j];
        orc_status st = bpe_word_cached(t, w, s + a, z - a, out, err);
        if (st) return st;
        i = j;
    }
    return ORC_OK;
}

/* ------------------------------------------------------------------------------------------
 * SentencePiece BPE over one fragment
 * ------------------------------------------------------------------------------------------ */

static inline bool spm_less(const spm_cand *a, const spm_cand *b) { /* "a pops before b" */
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static int spm_push(work *w, spm_cand c) {
    if (w->n_heap == w->cap_sheap) {
        size_t cap = w->cap_sheap ? w->cap_sheap * 2 : 64;
        spm_cand *h = realloc(w->sheap, cap * sizeof *h);
        if (!h) return -1;
        w->sheap = h;
        w->cap_sheap = cap;
    }
    size_t i = w->n_heap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!spm_less(&c, &w->sheap[p])) break;
        w->sheap[i] = w->sheap[p];
        i = p;
    }
    w->sheap[i] = c;
    return 0;
}

static spm_cand spm_pop(work *w) {
    spm_cand top = w->sheap[0], last = w->sheap[--w->n_heap];
    size_t i = 0, n = w->n_heap;
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= n) break;
        size_t m = (l + 1 < n && spm_less(&w->sheap[l + 1], &w->sheap[l])) ? l + 1 : l;
        if (!spm_less(&w->sheap[m], &last)) break;
        w->sheap[i] = w->sheap[m];
        i = m;
    }
    if (n) w->sheap[i] = last;
    return top;
}

static int spm_try(const orc_tokenizer *t, work *w, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return 0;
    uint32_t size = w->len[l] + w->len[r];
    int32_t id = map_find_normal(t, w->enc.p + w->sym[l], size);
    if (id < 0) return 0;
    return spm_push(w, (spm_cand){t->score[id], l, r, size});
}

/* SentencePiece BPE over e[0..n) of the escaped fragment in w->enc (symbol offsets are
 * relative to w->enc.p, so `e` must point into it). */
static orc_status spm_chunk(const orc_tokenizer *t, work *w, size_t base, size_t n, idvec *out, orc_err *err) {
    const uint8_t *e = w->enc.p;
    /* one symbol per UTF-8 character (an invalid byte is a symbol of its own) */
    if (work_symbols(w, n) < 0) return orc_fail(err, ORC_E_NOMEM, "out of memory");
    size_t ns = 0;
    for (size_t i = base; i < base + n;) {
        size_t l;
        uint32_t cp;
        if (e[i] < 0x80) l = 1;
        else if (utf8_check(e + i, base + n - i, &l, &cp) != UTF8_OK) l = 1;
        w->sym[ns] = (int32_t)i;
        w->len[ns] = (uint32_t)l;
        w->prev[ns] = (int32_t)ns - 1;
        w->next[ns] = -1;
        if (ns) w->next[ns - 1] = (int32_t)ns;
        ns++;
        i += l;
    }
    w->n_heap = 0;
    for (size_t i = 1; i < ns; i++)
        if (spm_try(t, w, (int32_t)i - 1, (int32_t)i) < 0) return orc_fail(err, ORC_E_NOMEM, "out of memory");
    while (w->n_heap) {
        spm_cand c = spm_pop(w);
        if (w->len[c.left] == 0 || w->len[c.right] == 0 || w->next[c.left] != c.right ||
            w->len[c.left] + w->len[c.right] != c.size)
            continue; /* stale */
        w->len[c.left] += w->len[c.right];
        w->len[c.right] = 0;
        int32_t nx = w->next[c.right];
        w->next[c.left] = nx;
        if (nx >= 0) w->prev[nx] = c.left;
        if (spm_try(t, w, w->prev[c.left], c.left) < 0 || spm_try(t, w, c.left, nx) < 0)
            return orc_fail(err, ORC_E_NOMEM, "out of memory");
    }
    for (int32_t i = ns ? 0 : -1; i >= 0; i = w->next[i]) {
        const uint8_t *p = e + w->sym[i];
        int32_t id = map_find_normal(t, p, w->len[i]);
        if (id >= 0) {
            if (idvec_push(out, id) < 0) return orc_fail(err, ORC_E_NOMEM, "out of memory");
            continue;
        }
        for (uint32_t k = 0; k < w->len[i]; k++) { /* byte fallback, else <unk> */
            int32_t b = t->byte_tok[p[k]];
            if (b < 0) b = t->special[ORC_SPECIAL_UNK];
            if (b < 0)
                return orc_fail(err, ORC_E_UNSUPPORTED,
                                "byte 0x%02x has no piece, no <0x%02X> byte token and the vocabulary has no "
                                "unknown token",
                                p[k], p[k]);
            if (idvec_push(out, b) < 0) return orc_fail(err, ORC_E_NOMEM, "out of memory");
            if (b == t->special[ORC_SPECIAL_UNK]) break; /* one <unk> per character */
        }
    }
    return ORC_OK;
}

static bool spm_joins(const orc_tokenizer *t, uint32_t cp) {
    size_t lo = 0, hi = t->n_spm_join;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (t->spm_join[mid] == cp) return true;
        if (t->spm_join[mid] < cp) lo = mid + 1;
        else hi = mid;
    }
    return false;
}

static orc_status spm_fragment(const orc_tokenizer *t, work *w, const uint8_t *s, size_t len, bool prefix_space,
                               idvec *out, orc_err *err) {
    /* escape: a leading space if asked, and every ' ' as U+2581 */
    w->enc.n = 0;
    if (len > SIZE_MAX / 3 - 3 || bytebuf_reserve(&w->enc, len * 3 + 3) < 0)
        return orc_fail(err, ORC_E_NOMEM, "out of memory");
    if (prefix_space) memcpy(w->enc.p, "\xe2\x96\x81", 3), w->enc.n = 3;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == ' ') memcpy(w->enc.p + w->enc.n, "\xe2\x96\x81", 3), w->enc.n += 3;
        else w->enc.p[w->enc.n++] = s[i];
    }
    const uint8_t *e = w->enc.p;
    size_t n = w->enc.n;
    if (n > INT32_MAX) return orc_fail(err, ORC_E_INVALID, "text fragment too long (%zu bytes)", n);
    /* Merging runs over the whole fragment (no pre-tokenizer), but a boundary X|U+2581 that no
     * piece spans (no normal token contains "X\u2581", X != U+2581) can never be merged across,
     * so the fragment is cut there into independent chunks: the same result as one pass, with
     * a small heap instead of one as large as the text. */
    size_t start = 0;
    uint32_t prev = 0x2581;
    for (size_t i = 0; i < n;) {
        size_t l;
        uint32_t cp;
        if (e[i] < 0x80) cp = e[i], l = 1;
        else if (utf8_check(e + i, n - i, &l, &cp) != UTF8_OK) cp = 0x110000u + e[i], l = 1;
        if (cp == 0x2581 && prev != 0x2581 && i > start && !spm_joins(t, prev)) {
            orc_status st = spm_chunk(t, w, start, i - start, out, err);
            if (st) return st;
            start = i;
        }
        prev = cp;
        i += l;
    }
    return start < n ? spm_chunk(t, w, start, n - start, out, err) : ORC_OK;
}

/* ------------------------------------------------------------------------------------------
 * Tokenize
 * ------------------------------------------------------------------------------------------ */

static orc_status text_fragment(const orc_tokenizer *t, work *w, const uint8_t *s, size_t len, bool after_special,
                                idvec *out, orc_err *err) {
    if (len == 0) return ORC_OK;
    if (t->model == ORC_TOK_BPE) return bpe_fragment(t, w, s, len, out, err);
    return spm_fragment(t, w, s, len, t->add_space_prefix && after_special, out, err);
}

orc_status orc_tokenize(const orc_tokenizer *t, const char *text, size_t len, bool add_special, bool parse_special,
                        int32_t **ids, size_t *n_ids, orc_err *err) {
    orc_status st = ORC_OK;
    idvec out = {0};
    work w = {0};
    *ids = NULL;
    *n_ids = 0;
    if (!text && len) return orc_fail(err, ORC_E_INVALID, "text is NULL");
    if (len > (size_t)INT32_MAX) return orc_fail(err, ORC_E_INVALID, "text of %zu bytes is too long (limit 2 GiB)", len);
    const uint8_t *s = (const uint8_t *)text;

    if (t->model == ORC_TOK_BPE && len >= 4096) { /* the word cache pays off on longer texts */
        uint64_t cap = pow2_at_least(len / 4);
        if (cap > (1u << 17)) cap = 1u << 17;
        w.cache = calloc((size_t)cap, sizeof *w.cache);
        if (w.cache) w.cache_mask = cap - 1; /* no cache is only slower */
    }
    if (idvec_reserve(&out, len / 3 + 8) < 0) {
        st = orc_fail(err, ORC_E_NOMEM, "out of memory");
        goto cleanup;
    }
    if (add_special && t->add_bos && idvec_push(&out, t->special[ORC_SPECIAL_BOS]) < 0) {
        st = orc_fail(err, ORC_E_NOMEM, "out of memory");
        goto cleanup;
    }
    /* cut special tokens out (leftmost-longest), tokenize the text between them */
    size_t start = 0;
    bool after_special = true;
    for (size_t i = 0; i < len;) {
        int32_t id;
        size_t m = t->trie_root[s[i]] >= 0 ? special_match(t, s, len, i, parse_special, &id) : 0;
        if (!m) {
            i++;
            continue;
        }
        st = text_fragment(t, &w, s + start, i - start, after_special, &out, err);
        if (st) goto cleanup;
        if (idvec_push(&out, id) < 0) {
            st = orc_fail(err, ORC_E_NOMEM, "out of memory");
            goto cleanup;
        }
        after_special = true;
        i += m;
        start = i;
    }
    if (start < len) {
        st = text_fragment(t, &w, s + start, len - start, after_special, &out, err);
        if (st) goto cleanup;
    }
    if (add_special && t->add_eos && idvec_push(&out, t->special[ORC_SPECIAL_EOS]) < 0) {
        st = orc_fail(err, ORC_E_NOMEM, "out of memory");
        goto cleanup;
    }
    *ids = out.v;
    *n_ids = out.n;
    out.v = NULL;
cleanup:
    free(out.v);
    work_free(&w);
    return st;
}

/* ------------------------------------------------------------------------------------------
 * Detokenize
 * ------------------------------------------------------------------------------------------ */

void orc_detok_init(orc_detok_state *st) {
    memset(st, 0, sizeof *st);
    st->at_start = true;
}

/* Append the bytes of ids[0..n) to `raw`, updating the space-prefix state. */
static orc_status detok_raw(const orc_tokenizer *t, orc_detok_state *st, const int32_t *ids, size_t n, bool special,
                            bytebuf *raw, orc_err *err) {
    for (size_t k = 0; k < n; k++) {
        int32_t id = ids[k];
        if (id < 0 || id >= t->n_vocab)
            return orc_fail(err, ORC_E_RANGE, "token id %d at position %zu is out of range [0, %d)", (int)id, k,
                            (int)t->n_vocab);
        uint8_t ty = t->type[id];
        const char *p = t->piece + t->piece_off[id];
        size_t len = (size_t)(t->piece_off[id + 1] - t->piece_off[id]);
        if (is_special_type(ty)) {
            st->at_start = true;
            if (!special && ty != ORC_TOKEN_USER_DEFINED) continue;
        } else if (len) {
            if (t->add_space_prefix && st->at_start && p[0] == ' ') p++, len--;
            st->at_start = false;
        }
        if (bytebuf_add(raw, p, len) < 0) return orc_fail(err, ORC_E_NOMEM, "out of memory");
    }
    return ORC_OK;
}

orc_status orc_detokenize_bytes(const orc_tokenizer *t, const int32_t *ids, size_t n, bool special, char **out,
                                size_t *out_len, orc_err *err) {
    bytebuf raw = {0};
    orc_detok_state st;
    orc_detok_init(&st);
    *out = NULL;
    *out_len = 0;
    orc_status s = detok_raw(t, &st, ids, n, special, &raw, err);
    if (!s && bytebuf_reserve(&raw, 0) < 0) s = orc_fail(err, ORC_E_NOMEM, "out of memory");
    if (s) {
        free(raw.p);
        return s;
    }
    raw.p[raw.n] = '\0';
    *out = (char *)raw.p;
    *out_len = raw.n;
    return ORC_OK;
}

orc_status orc_detok_push(const orc_tokenizer *t, orc_detok_state *st, const int32_t *ids, size_t n, bool special,
                          bool final, char **out, size_t *out_len, orc_err *err) {
    orc_status s = ORC_OK;
    bytebuf raw = {0};
    uint8_t *o = NULL;
    *out = NULL;
    *out_len = 0;
    orc_detok_state next = *st; /* committed only on success */
    if (bytebuf_add(&raw, next.pending, next.n_pending) < 0) {
        s = orc_fail(err, ORC_E_NOMEM, "out of memory");
        goto cleanup;
    }
    next.n_pending = 0;
    s = detok_raw(t, &next, ids, n, special, &raw, err);
    if (s) goto cleanup;
    if (raw.n > (SIZE_MAX - 16) / 3 || !(o = malloc(raw.n * 3 + 16))) {
        s = orc_fail(err, ORC_E_NOMEM, "out of memory");
        goto cleanup;
    }
    size_t consumed;
    size_t w = orc_utf8_sanitize(raw.p, raw.n, final, o, &consumed);
    size_t rest = raw.n - consumed; /* < 4: a valid, incomplete sequence */
    memcpy(next.pending, raw.p + consumed, rest);
    next.n_pending = (uint8_t)rest;
    o[w] = '\0';
    *out = (char *)o;
    *out_len = w;
    o = NULL;
    *st = next;
cleanup:
    free(raw.p);
    free(o);
    return s;
}

orc_status orc_detokenize(const orc_tokenizer *t, const int32_t *ids, size_t n, bool special, char **out,
                          size_t *out_len, orc_err *err) {
    orc_detok_state st;
    orc_detok_init(&st);
    return orc_detok_push(t, &st, ids, n, special, true, out, out_len, err);
}
