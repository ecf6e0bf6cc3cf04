/* tokenizer_encode.c - text to token ids: special tokens cut out (tokenizer_special.c), the
 * pre-tokenizers' split rules, byte-level BPE per word, SentencePiece BPE per fragment.
 *
 * The pre-tokenizer regexes (Hugging Face tokenizer.json) are not interpreted: each one is written
 * out below as the sequence of alternatives a backtracking regex engine tries, over code points
 * classified by unicode_tables.c; the comments give the regex. tests/test_tokenizer.py checks the
 * word boundaries against HF's regex engine.
 */
#include "tokenizer/tokenizer.h"

#include <stdlib.h> /* malloc, calloc, realloc, free */
#include <string.h> /* memcpy */

#include "tokenizer/tokenizer_internal.h" /* struct orc_tokenizer, look-ups, UTF-8 helpers */
#include "tokenizer/unicode_tables.h"     /* orc_unicode_class */

/* ------------------------------------------------------------------------------------------
 * Pre-tokenizers: where each word of a text fragment ends
 * ------------------------------------------------------------------------------------------ */

enum { C_L = ORC_UC_L, C_N = ORC_UC_N, C_M = ORC_UC_M, C_WS = ORC_UC_WS, C_RN = 16, C_LU = ORC_UC_LU, C_LL = ORC_UC_LL };

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
static size_t ws_run_to(const cpbuf *b, size_t i, size_t n) {
    size_t j = i;
    while (j < n && (b->cls[j] & C_WS)) j++;
    if (j < n && j - i > 1) j--;
    return j;
}

static size_t ws_run(const cpbuf *b, size_t i) { return ws_run_to(b, i, b->n); }

/* GPT-2:  's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * over the code points [i, n). */
static size_t next_gpt2_to(const cpbuf *b, size_t i, size_t n) {
    const uint32_t *cp = b->cp;
    const uint8_t *cl = b->cls;
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
    return ws_run_to(b, i, n);
}

static size_t next_gpt2(const cpbuf *b, size_t i) { return next_gpt2_to(b, i, b->n); }

/* SmolLM (llama.cpp's SMOLLM rule, HF's Digits(individual_digits) then ByteLevel): every
 * digit is a piece of its own; the GPT-2 rule splits the text between digits. */
static size_t next_smollm(const cpbuf *b, size_t i) {
    if (b->cls[i] & C_N) return i + 1;
    size_t end = i;
    while (end < b->n && !(b->cls[end] & C_N)) end++;
    return next_gpt2_to(b, i, end);
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

/* The alternatives after the words, shared by Llama 3's family and o200k, at i:
 *   \p{N}{1,max_digits}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 * not_punct: what ends the punctuation run (\s, \p{L}, \p{N}; Qwen3.5 adds \p{M}); slash: the
 * run's tail is [\r\n/]* (o200k) instead of [\r\n]*. */
static size_t digits_punct_space(const cpbuf *b, size_t i, size_t max_digits, uint8_t not_punct, bool slash) {
    const uint8_t *cl = b->cls;
    size_t n = b->n;
    if (cl[i] & C_N) {
        size_t k = i + 1;
        while (k < n && k - i < max_digits && (cl[k] & C_N)) k++;
        return k;
    }
    size_t k = i;
    if (b->cp[i] == ' ' && i + 1 < n && !(cl[i + 1] & not_punct)) k = i + 1;
    if (!(cl[k] & not_punct)) {
        while (++k < n && !(cl[k] & not_punct)) {}
        while (k < n && ((cl[k] & C_RN) || (slash && b->cp[k] == '/'))) k++;
        return k;
    }
    /* whitespace: \s*[\r\n]+ ends after the last \r or \n of the run */
    size_t j = i;
    while (j < n && (cl[j] & C_WS)) j++;
    for (size_t p = j; p > i; p--)
        if (cl[p - 1] & C_RN) return p;
    return ws_run(b, i);
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
    return digits_punct_space(b, i, max_digits, C_WS | C_L | C_N | (marks ? C_M : 0), false);
}

/* o200k (tokenizer.ggml.pre "gpt-4o": tiktoken's o200k_base and o200k_harmony, gpt-oss):
 *   [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?
 *  |[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?
 *  |\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
 * "Upper" below is the first bracket (Lu Lt Lm Lo M), "lower" the second (Ll Lm Lo M): modifier
 * and other letters and marks are both, so a backtracking engine can give them back. */
static inline bool o200k_upper(uint8_t c) { return (c & C_M) || ((c & C_L) && !(c & C_LL)); }
static inline bool o200k_lower(uint8_t c) { return (c & C_M) || ((c & C_L) && !(c & C_LU)); }

/* The contraction suffix (?i:'s|...)? after a word that ends at k. */
static size_t o200k_suffix(const cpbuf *b, size_t k) {
    size_t e = k < b->n ? contraction_ci(b, k) : 0;
    return e ? e : k;
}

/* First alternative from j (after the optional prefix): upper* lower+ suffix?, or 0.
 * upper* first takes the whole run [j, u); the engine then gives characters back until one
 * that is "lower" can start lower+: the last such position p in [j, u] (u itself only for an
 * Ll, since it is not "upper"), from where lower+ runs greedily. */
static size_t o200k_alt1(const cpbuf *b, size_t j) {
    const uint8_t *cl = b->cls;
    size_t n = b->n, u = j;
    while (u < n && o200k_upper(cl[u])) u++;
    size_t p = u;
    if (!(u < n && (cl[u] & C_LL))) {
        while (p > j && !o200k_lower(cl[p - 1])) p--;
        if (p == j) return 0;
        p--;
    }
    size_t k = p;
    while (k < n && o200k_lower(cl[k])) k++;
    return o200k_suffix(b, k);
}

/* Second alternative from j: upper+ lower* suffix?, or 0. */
static size_t o200k_alt2(const cpbuf *b, size_t j) {
    const uint8_t *cl = b->cls;
    size_t n = b->n, k = j;
    while (k < n && o200k_upper(cl[k])) k++;
    if (k == j) return 0;
    while (k < n && o200k_lower(cl[k])) k++;
    return o200k_suffix(b, k);
}

static size_t next_o200k(const cpbuf *b, size_t i) {
    const uint8_t *cl = b->cls;
    size_t n = b->n;
    uint8_t c = cl[i];
    /* [^\r\n\p{L}\p{N}]? is tried with the character first, then without */
    bool prefix = !(c & (C_L | C_N | C_RN)) && i + 1 < n;
    size_t e;
    if ((prefix && (e = o200k_alt1(b, i + 1))) || (e = o200k_alt1(b, i))) return e;
    if ((prefix && (e = o200k_alt2(b, i + 1))) || (e = o200k_alt2(b, i))) return e;
    return digits_punct_space(b, i, 3, C_WS | C_L | C_N, true); /* marks are punctuation here */
}

static size_t next_word(const orc_tokenizer *t, const cpbuf *b, size_t i) {
    switch (t->pre) {
    case PRE_GPT2: return next_gpt2(b, i);
    case PRE_LLAMA3: return next_llama3(b, i, 3, false);
    case PRE_QWEN2: return next_llama3(b, i, 1, false);
    case PRE_QWEN35: return next_llama3(b, i, 1, true);
    case PRE_SMOLLM: return next_smollm(b, i);
    case PRE_O200K: return next_o200k(b, i);
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
    /* cancellation: cancel(user) every POLL_BYTES of text */
    orc_tok_cancel_fn cancel;
    void *user;
    size_t since_poll;
} work;

#ifndef ORC_TOK_POLL_BYTES
#define ORC_TOK_POLL_BYTES 65536 /* the fuzzer builds with a small value to reach the cancel path */
#endif
#define POLL_BYTES ((size_t)ORC_TOK_POLL_BYTES)

/* Text positions the special-token matcher handles at a time (at least the longest special
 * token); the fuzzer makes it small so that tokens cross block boundaries. */
#ifndef ORC_TOK_SPECIAL_BLOCK
#define ORC_TOK_SPECIAL_BLOCK 65536
#endif
#define SPECIAL_BLOCK ((size_t)ORC_TOK_SPECIAL_BLOCK)

/* Count `bytes` of text as done; every POLL_BYTES, ask the cancel callback. */
static orc_status work_poll(work *w, size_t bytes, orc_err *err) {
    if (!w->cancel) return ORC_OK;
    w->since_poll += bytes;
    if (w->since_poll < POLL_BYTES) return ORC_OK;
    w->since_poll = 0;
    return w->cancel(w->user) ? orc_fail(err, ORC_E_INTERRUPTED, "tokenize was interrupted") : ORC_OK;
}

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
    uint64_t h = hash_bytes(&t->hkey, s, n);
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
        if (st == ORC_OK) st = work_poll(w, z - a, err);
        if (st) return st;
        i = j;
    }
    return ORC_OK;
}

orc_status orc_pretokenize(const orc_tokenizer *t, const char *text, size_t len, size_t **ends, size_t *n_words,
                           orc_err *err) {
    orc_status st = ORC_OK;
    cpbuf b = {0};
    *ends = NULL;
    *n_words = 0;
    if (t->model != ORC_TOK_BPE) return orc_fail(err, ORC_E_INVALID, "a SentencePiece vocabulary has no pre-tokenizer");
    if (len > (size_t)INT32_MAX) return orc_fail(err, ORC_E_INVALID, "text of %zu bytes is too long (limit 2 GiB)", len);
    if (cpbuf_fill(&b, (const uint8_t *)text, len) < 0) {
        st = orc_fail(err, ORC_E_NOMEM, "out of memory");
        goto cleanup;
    }
    size_t *e = malloc((b.n ? b.n : 1) * sizeof *e), k = 0;
    if (!e) {
        st = orc_fail(err, ORC_E_NOMEM, "out of memory");
        goto cleanup;
    }
    for (size_t i = 0; i < b.n;) {
        size_t j = next_word(t, &b, i);
        if (j <= i) j = i + 1;
        e[k++] = b.off[j];
        i = j;
    }
    *ends = e;
    *n_words = k;
cleanup:
    cpbuf_free(&b);
    return st;
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
            if (st == ORC_OK) st = work_poll(w, i - start, err);
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
    return orc_tokenize_cancellable(t, text, len, add_special, parse_special, NULL, NULL, ids, n_ids, err);
}

orc_status orc_tokenize_cancellable(const orc_tokenizer *t, const char *text, size_t len, bool add_special,
                                    bool parse_special, orc_tok_cancel_fn cancel, void *user, int32_t **ids,
                                    size_t *n_ids, orc_err *err) {
    orc_status st = ORC_OK;
    idvec out = {0};
    work w = {0};
    w.cancel = cancel;
    w.user = user;
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
    /* cut special tokens out (leftmost-longest), tokenize the text between them; the longest
     * special token starting at each position comes from the matcher, a block at a time */
    size_t start = 0;
    bool after_special = true;
    if (t->ac.n > 0 && len > 0) {
        size_t block = (size_t)t->ac.max_len > SPECIAL_BLOCK ? (size_t)t->ac.max_len : SPECIAL_BLOCK;
        if (block > len) block = len;
        int32_t *longest = malloc(block * sizeof *longest);
        if (!longest) {
            st = orc_fail(err, ORC_E_NOMEM, "out of memory");
            goto cleanup;
        }
        size_t i = 0;
        for (size_t from = 0; from < len && st == ORC_OK; from += block) {
            size_t to = len - from < block ? len : from + block;
            if (i >= to) continue; /* inside a token that started in an earlier block */
            special_ac_longest(t, s, len, from, to, parse_special, longest);
            while (i < to) {
                int32_t id = longest[i - from];
                if (id < 0) {
                    i++;
                    continue;
                }
                st = text_fragment(t, &w, s + start, i - start, after_special, &out, err);
                if (st) break;
                if (idvec_push(&out, id) < 0) {
                    st = orc_fail(err, ORC_E_NOMEM, "out of memory");
                    break;
                }
                size_t m;
                (void)tok_text(t, id, &m);
                st = work_poll(&w, m, err);
                if (st) break;
                after_special = true;
                i += m;
                start = i;
            }
            if (st == ORC_OK) st = work_poll(&w, to - from, err);
        }
        free(longest);
        if (st) goto cleanup;
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

