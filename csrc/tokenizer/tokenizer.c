/* tokenizer.c - building a tokenizer from GGUF tokenizer metadata (or a spec of plain arrays):
 * validation of every key (HARDENING row 18), the vocabulary and merge hash tables, the
 * special-token matcher (tokenizer_special.c), each token's decoded bytes; and the read-only
 * accessors.
 * Encoding is in tokenizer_encode.c, decoding in tokenizer_decode.c; tokenizer.h has the model.
 */
#include "tokenizer/tokenizer.h"

#include <math.h>   /* isnan */
#include <stdlib.h> /* malloc, calloc, realloc, free, qsort */
#include <string.h> /* memcpy, memcmp, strlen */

#include "tokenizer/tokenizer_internal.h" /* struct orc_tokenizer, look-ups, UTF-8 helpers */

static const struct {
    const char *name;
    pre_kind kind;
} pre_names[] = {
    {"gpt-2", PRE_GPT2},        {"gpt2", PRE_GPT2},   {"llama-bpe", PRE_LLAMA3},      {"llama3", PRE_LLAMA3},
    {"llama-v3", PRE_LLAMA3},   {"qwen2", PRE_QWEN2}, {"deepseek-r1-qwen", PRE_QWEN2}, {"qwen35", PRE_QWEN35}, {"smollm", PRE_SMOLLM},
    {"gpt-4o", PRE_O200K},
};
#define PRE_SUPPORTED_LIST "gpt-2, llama-bpe (llama3, llama-v3), qwen2, deepseek-r1-qwen, qwen35, smollm, gpt-4o"

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
    special_ac_free(&t->ac);
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

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* Texts that end a turn; the first one present is the EOT token when the file names none.
 * Harmony (gpt-oss): <|return|> ends the answer and <|call|> a tool call, while <|end|> only
 * ends one message (the analysis comes before the final answer): with both of the former
 * present <|end|> does not end generation (llama.cpp's rule too). */
static const char *const eog_texts[] = {
    "<|eot_id|>", "<|im_end|>", "<end_of_turn>", "<|return|>", "<|call|>", "<|end|>", "<|endoftext|>",
    "<|end_of_text|>", "<|eom_id|>", "<EOT>",
    ("<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"), /* DeepSeek */
};

static int32_t control_id(const orc_tokenizer *t, const char *text) {
    int32_t id = map_find(t, text, strlen(text));
    return id >= 0 && t->type[id] == ORC_TOKEN_CONTROL ? id : -1;
}

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
    const int32_t harmony_end =
        control_id(t, "<|return|>") >= 0 && control_id(t, "<|call|>") >= 0 ? control_id(t, "<|end|>") : -1;
    size_t m = 0;
    for (size_t k = 0; k < n; k++)
        if ((m == 0 || t->eog[m - 1] != t->eog[k]) && t->eog[k] != harmony_end) t->eog[m++] = t->eog[k];
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
        uint64_t i = hash_u64(&t->hkey, key) & t->merge_mask;
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
    t->hkey = orc_hash_process_key();

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
        uint64_t i = hash_bytes(&t->hkey, s, len) & t->map_mask;
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

    /* special-token matcher */
    st = special_ac_build(t, err);
    if (st) goto fail;

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

/* An optional per-token numeric array (scores, token types): absent -> *out stays NULL;
 * present -> checked to have n_vocab elements of `type` and copied (the map may be
 * unaligned). */
static orc_status copy_vocab_array(const orc_gguf *g, const char *key, orc_gguf_vtype type, uint64_t n_vocab,
                                   size_t elem_size, void **out, orc_err *err) {
    const orc_gguf_kv *kv;
    *out = NULL;
    if (!orc_gguf_find_kv(g, key)) return ORC_OK;
    orc_status st = orc_gguf_get_array(g, key, type, false, &kv, err);
    if (st) return st;
    if (kv->count != n_vocab)
        return orc_fail(err, ORC_E_FORMAT, "%s has %llu entries but tokenizer.ggml.tokens has %llu", key,
                        (unsigned long long)kv->count, (unsigned long long)n_vocab);
    *out = malloc((size_t)n_vocab * elem_size);
    if (!*out) return orc_fail(err, ORC_E_NOMEM, "out of memory");
    memcpy(*out, kv->data, (size_t)n_vocab * elem_size);
    return ORC_OK;
}

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

    st = copy_vocab_array(g, "tokenizer.ggml.scores", ORC_GGUF_FLOAT32, spec.n_vocab, sizeof *scores,
                          (void **)&scores, err);
    if (st) goto cleanup;
    spec.scores = scores;
    st = copy_vocab_array(g, "tokenizer.ggml.token_type", ORC_GGUF_INT32, spec.n_vocab, sizeof *types,
                          (void **)&types, err);
    if (st) goto cleanup;
    spec.token_types = types;
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

