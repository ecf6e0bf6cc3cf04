/* tokenizer_decode.c - token ids to text: the tokens' bytes joined, the SentencePiece prefix
 * space removed, UTF-8 repaired (U+FFFD per maximal ill-formed subsequence, as Python's
 * errors='replace'), and the streaming form that holds back incomplete characters.
 */
#include "tokenizer/tokenizer.h"

#include <stdlib.h> /* malloc, free */
#include <string.h> /* memcpy, memset */

#include "tokenizer/tokenizer_internal.h" /* struct orc_tokenizer, bytebuf, utf8_check */

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

