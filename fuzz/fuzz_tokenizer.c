/* fuzz_tokenizer.c - libFuzzer entry for the tokenizer (csrc/tokenizer/tokenizer.c).
 *
 * The first input byte picks what the rest is:
 *   even: a GGUF file: open it from the buffer, build its tokenizer when it has one, and run
 *         every accepted tokenizer over a few texts and over the input itself;
 *   odd:  text for two small built-in vocabularies (byte-level BPE with the next byte choosing
 *         the pre-tokenizer, and SentencePiece), checking the invariants:
 *         byte-level BPE round-trips any bytes exactly; streaming detokenization in chunks
 *         (cut where the input says) equals detokenizing all at once; ids are in range; the
 *         special tokens cut out are those a slow leftmost-longest walk finds (built with
 *         ORC_TOK_SPECIAL_BLOCK=16, so matches cross the matcher's block edges).
 * Every error message must be valid UTF-8. Odd inputs are also tokenized with a cancel callback
 * that stops at the k-th poll (the input says k; built with ORC_TOK_POLL_BYTES=64, so short
 * texts are polled too): either the same ids as without it, or ORC_E_INTERRUPTED with nothing
 * returned.
 * A broken invariant traps, so the fuzzer reports it with its input.
 *
 * Build and run: fuzz/build_tokenizer.sh, then
 *   fuzz/out/fuzz_tokenizer -max_total_time=600 fuzz/corpus-tok fuzz/corpus
 * Built with -DORC_FUZZ_MAIN it replays files: repro_tokenizer FILE...
 */
#include <stdint.h> /* uint8_t */
#include <stdio.h>  /* FILE */
#include <stdlib.h> /* malloc, free */
#include <string.h> /* memcmp */

#include "core/utf8.h"
#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"

#define CHECK(c)                                                                                                      \
    do {                                                                                                              \
        if (!(c)) __builtin_trap();                                                                                   \
    } while (0)

/* The special tokens the reference split finds in text (leftmost-longest, by trying every special
 * token at every position: the slow way tokenizer_special.c's automaton must agree with), in
 * order. */
static size_t reference_specials(const orc_tokenizer *tok, const uint8_t *text, size_t n, bool parse_special,
                                 int32_t *out) {
    int32_t sp[64], nsp = 0, nv = orc_tokenizer_vocab_size(tok);
    bool on[64];
    orc_err err;
    for (int32_t id = 0; id < nv && nsp < 64; id++) {
        orc_token_type ty;
        CHECK(orc_token_get_type(tok, id, &ty, &err) == ORC_OK);
        if (ty == ORC_TOKEN_CONTROL || ty == ORC_TOKEN_USER_DEFINED || ty == ORC_TOKEN_UNKNOWN) {
            on[nsp] = parse_special || ty == ORC_TOKEN_USER_DEFINED;
            sp[nsp++] = id;
        }
    }
    size_t k = 0, i = 0;
    while (i < n) {
        int32_t best = -1;
        size_t best_len = 0, off_len[64], n_off = 0;
        for (int32_t q = 0; q < nsp; q++) {
            const char *p;
            size_t len;
            CHECK(orc_token_text(tok, sp[q], &p, &len, &err) == ORC_OK);
            if (len == 0 || len > n - i || len <= best_len || memcmp(p, text + i, len) != 0) continue;
            /* a text given twice keeps its first id, enabled or not: a later one is a duplicate */
            bool dup = false;
            for (size_t d = 0; d < n_off; d++) dup |= off_len[d] == len;
            if (dup) continue;
            if (on[q]) best = sp[q], best_len = len;
            else off_len[n_off++] = len;
        }
        if (best >= 0) out[k++] = best, i += best_len;
        else i++;
    }
    return k;
}

/* Tokenize, check ids, detokenize whole and in chunks (cut by `cuts`), compare. */
static void exercise(const orc_tokenizer *tok, const uint8_t *text, size_t n, const uint8_t *cuts, size_t ncuts,
                     int round_trip, int32_t first_special) {
    for (int mode = 0; mode < 4; mode++) {
        bool add_special = mode & 1, parse_special = mode & 2;
        int32_t *ids = NULL;
        size_t nid = 0;
        orc_err err;
        if (orc_tokenize(tok, (const char *)text, n, add_special, parse_special, &ids, &nid, &err) != ORC_OK) {
            CHECK(ids == NULL);
            CHECK(orc_utf8_valid((const uint8_t *)err.msg, strlen(err.msg)));
            continue;
        }
        int32_t nv = orc_tokenizer_vocab_size(tok);
        for (size_t i = 0; i < nid; i++) CHECK(ids[i] >= 0 && ids[i] < nv);
        if (first_special >= 0) { /* the built-in vocabularies: specials are ids >= first_special */
            int32_t *want = malloc((n + 1) * sizeof *want), k = 0;
            CHECK(want != NULL);
            size_t nw = reference_specials(tok, text, n, parse_special, want);
            bool bos = add_special && orc_tokenizer_add_bos(tok);
            for (size_t i = bos ? 1 : 0; i < nid; i++)
                if (ids[i] >= first_special) CHECK((size_t)k < nw && ids[i] == want[k++]);
            CHECK((size_t)k == nw);
            free(want);
        }
        char *raw = NULL, *whole = NULL;
        size_t nraw = 0, nwhole = 0;
        CHECK(orc_detokenize_bytes(tok, ids, nid, true, &raw, &nraw, &err) == ORC_OK);
        if (round_trip && !add_special && !parse_special) CHECK(nraw == n && memcmp(raw, text, n) == 0);
        CHECK(orc_detokenize(tok, ids, nid, true, &whole, &nwhole, &err) == ORC_OK);
        /* streaming in chunks */
        orc_detok_state st;
        orc_detok_init(&st);
        char *acc = malloc(nwhole + 1);
        size_t nacc = 0, pos = 0, c = 0;
        bool empty_push = false;
        CHECK(acc != NULL);
        while (pos <= nid) {
            size_t step = ncuts ? cuts[c++ % ncuts] % 5 : 1;
            if (step == 0 && empty_push) step = 1; /* one empty push at a time, then progress */
            empty_push = step == 0;
            if (pos + step > nid) step = nid - pos;
            bool final = pos + step == nid;
            char *part = NULL;
            size_t npart = 0;
            CHECK(orc_detok_push(tok, &st, ids + pos, step, true, final, &part, &npart, &err) == ORC_OK);
            CHECK(nacc + npart <= nwhole);
            memcpy(acc + nacc, part, npart);
            nacc += npart;
            free(part);
            pos += step;
            if (final) break;
        }
        CHECK(nacc == nwhole && memcmp(acc, whole, nwhole) == 0);
        free(acc);
        free(raw);
        free(whole);
        free(ids);
    }
    /* single-token look-ups at the edges */
    const char *p;
    size_t len;
    orc_err err;
    CHECK(orc_token_piece(tok, -1, &p, &len, &err) == ORC_E_RANGE);
    CHECK(orc_token_piece(tok, orc_tokenizer_vocab_size(tok), &p, &len, &err) == ORC_E_RANGE);
    CHECK(orc_token_text(tok, 0, &p, &len, &err) == ORC_OK);
}

static orc_gguf_str S(const char *s) {
    orc_gguf_str r = {s, strlen(s)};
    return r;
}

/* A byte-level BPE vocabulary: the 256 byte characters, a few merges, three specials. */
static orc_tokenizer *make_bpe(const char *pre) {
    static char bytes[256][4];
    orc_gguf_str toks[256 + 16];
    int32_t types[256 + 16];
    size_t n = 0;
    uint32_t next = 256;
    for (int b = 0; b < 256; b++) {
        bool keep = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        uint32_t cp = keep ? (uint32_t)b : next++;
        char *o = bytes[b];
        size_t l;
        if (cp < 0x80) o[0] = (char)cp, l = 1;
        else o[0] = (char)(0xC0 | (cp >> 6)), o[1] = (char)(0x80 | (cp & 0x3F)), l = 2;
        toks[n] = (orc_gguf_str){o, l};
        types[n++] = ORC_TOKEN_NORMAL;
    }
    const char *extra[] = {"\xc4\xa0t", "he", "\xc4\xa0the", "in", ("\xc4\xa0" "a"), "12", "\xc4\x8a\xc4\x8a"};
    for (size_t k = 0; k < sizeof extra / sizeof extra[0]; k++) toks[n] = S(extra[k]), types[n++] = ORC_TOKEN_NORMAL;
    const char *specials[] = {"<|endoftext|>", "<|im_start|>", "<tool>"};
    int32_t stypes[] = {ORC_TOKEN_CONTROL, ORC_TOKEN_CONTROL, ORC_TOKEN_USER_DEFINED};
    for (int k = 0; k < 3; k++) toks[n] = S(specials[k]), types[n++] = stypes[k];
    orc_gguf_str merges[] = {S("\xc4\xa0 t"), S("h e"), S("\xc4\xa0t he"), S("i n"), S("\xc4\xa0 " "a"), S("1 2"),
                             S("\xc4\x8a \xc4\x8a")};
    orc_tokenizer_spec spec;
    orc_tokenizer_spec_init(&spec);
    spec.model = S("gpt2");
    spec.pre = S(pre);
    spec.n_vocab = n;
    spec.tokens = toks;
    spec.token_types = types;
    spec.n_merges = sizeof merges / sizeof merges[0];
    spec.merges = merges;
    spec.special[ORC_SPECIAL_BOS] = 256 + 7;
    spec.special[ORC_SPECIAL_EOS] = 256 + 7;
    spec.add_bos = 1;
    orc_tokenizer *t = NULL;
    orc_err err;
    CHECK(orc_tokenizer_from_spec(&spec, &t, &err) == ORC_OK);
    return t;
}

/* A SentencePiece vocabulary: <unk> <s> </s>, byte tokens, a few pieces with scores. */
static orc_tokenizer *make_spm(void) {
    static char bytes[256][7];
    orc_gguf_str toks[3 + 256 + 16];
    int32_t types[3 + 256 + 16];
    float scores[3 + 256 + 16];
    size_t n = 0;
    const char *head[] = {"<unk>", "<s>", "</s>"};
    int32_t htypes[] = {ORC_TOKEN_UNKNOWN, ORC_TOKEN_CONTROL, ORC_TOKEN_CONTROL};
    for (int k = 0; k < 3; k++) toks[n] = S(head[k]), types[n] = htypes[k], scores[n++] = 0;
    for (int b = 0; b < 256; b++) {
        snprintf(bytes[b], sizeof bytes[b], "<0x%02X>", b);
        toks[n] = S(bytes[b]), types[n] = ORC_TOKEN_BYTE, scores[n++] = 0;
    }
    const char *pieces[] = {"\xe2\x96\x81", "\xe2\x96\x81t", "h", "e", "he", "\xe2\x96\x81the", "t", "a",
                            "\xe2\x96\x81\xe2\x96\x81", "\xe4\xbd\xa0", ("\xe2\x96\x81" "a"), ">\xe2\x96\x81<"};
    for (size_t k = 0; k < sizeof pieces / sizeof pieces[0]; k++)
        toks[n] = S(pieces[k]), types[n] = ORC_TOKEN_NORMAL, scores[n++] = -(float)k;
    orc_tokenizer_spec spec;
    orc_tokenizer_spec_init(&spec);
    spec.model = S("llama");
    spec.n_vocab = n;
    spec.tokens = toks;
    spec.token_types = types;
    spec.scores = scores;
    orc_tokenizer *t = NULL;
    orc_err err;
    CHECK(orc_tokenizer_from_spec(&spec, &t, &err) == ORC_OK);
    return t;
}

/* The pre-tokenizer's words cover the text: ends strictly increasing, the last at n. */
static void exercise_pretokenize(const orc_tokenizer *tok, const uint8_t *text, size_t n) {
    size_t *ends = NULL, nw = 0;
    orc_err err;
    CHECK(orc_pretokenize(tok, (const char *)text, n, &ends, &nw, &err) == ORC_OK);
    for (size_t i = 0; i < nw; i++) CHECK(ends[i] > (i ? ends[i - 1] : 0) && ends[i] <= n);
    CHECK(nw ? ends[nw - 1] == n : n == 0);
    free(ends);
}

static int cancel_after(void *user) {
    int *left = user;
    return (*left)-- <= 0;
}

#ifndef ORC_TOK_POLL_BYTES
#error "build with -DORC_TOK_POLL_BYTES=64 (fuzz/build_tokenizer.sh)"
#endif

/* Tokenize `text` with and without a cancel callback that stops at the k-th poll. */
static void exercise_cancel(const orc_tokenizer *tok, const uint8_t *text, size_t n, int k) {
    int32_t *want = NULL, *got = NULL;
    size_t nwant = 0, ngot = 0;
    orc_err err;
    orc_status s0 = orc_tokenize(tok, (const char *)text, n, true, true, &want, &nwant, &err);
    int left = k;
    orc_status s1 =
        orc_tokenize_cancellable(tok, (const char *)text, n, true, true, cancel_after, &left, &got, &ngot, &err);
    if (s1 == ORC_E_INTERRUPTED) {
        /* k + 1 polls happened, so (k + 1) * ORC_TOK_POLL_BYTES bytes were counted: each text byte
         * at most 5 times (once by the special-token blocks, once as a special token or as at most
         * 3 escaped bytes of a SentencePiece fragment, which also gets a 3-byte prefix) */
        CHECK(got == NULL && ngot == 0 && (size_t)(k + 1) * ORC_TOK_POLL_BYTES <= 5 * n + 3 * (n + 1));
        CHECK(orc_utf8_valid((const uint8_t *)err.msg, strlen(err.msg)));
    } else {
        CHECK(s1 == s0);
        if (s0 == ORC_OK) CHECK(ngot == nwant && memcmp(got, want, nwant * sizeof *want) == 0);
    }
    free(want);
    free(got);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    if ((data[0] & 1) == 0) {
        /* the reader keeps pointers into the buffer: give it its own copy */
        uint8_t *copy = malloc(size - 1);
        if (!copy) return 0;
        memcpy(copy, data + 1, size - 1);
        orc_gguf *g = NULL;
        orc_err err;
        if (orc_gguf_open_buffer(copy, size - 1, &g, &err) == ORC_OK) {
            orc_tokenizer *t = NULL;
            if (orc_tokenizer_from_gguf(g, &t, &err) == ORC_OK) {
                static const char *texts[] = {"Hello world", " <|im_start|>x\n\n  y 123 \xf0\x9f\xa6\x99", ""};
                for (int k = 0; k < 3; k++) exercise(t, (const uint8_t *)texts[k], strlen(texts[k]), NULL, 0, 0, -1);
                exercise(t, copy, size - 1 < 512 ? size - 1 : 512, data, size, 0, -1);
                orc_tokenizer_free(t);
            } else {
                CHECK(t == NULL);
                CHECK(orc_utf8_valid((const uint8_t *)err.msg, strlen(err.msg)));
            }
            orc_gguf_close(g);
        }
        free(copy);
        return 0;
    }
    static const char *pres[] = {"gpt-2", "llama-bpe", "qwen2", "qwen35", "smollm", "gpt-4o"};
    const uint8_t *text = data + 2;
    size_t n = size - 2;
    orc_tokenizer *bpe = make_bpe(pres[data[1] % (sizeof pres / sizeof pres[0])]);
    exercise(bpe, text, n, data, size < 16 ? size : 16, 1, 256 + 7);
    exercise_pretokenize(bpe, text, n);
    orc_tokenizer *spm = make_spm();
    exercise(spm, text, n, data, size < 16 ? size : 16, 0, -1);
    exercise_cancel(bpe, text, n, data[0] >> 4);
    exercise_cancel(spm, text, n, (data[0] >> 1) & 7);
    orc_tokenizer_free(bpe);
    orc_tokenizer_free(spm);
    return 0;
}

#ifdef ORC_FUZZ_MAIN
int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (!f) continue;
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
        if (buf && fread(buf, 1, (size_t)n, f) == (size_t)n) LLVMFuzzerTestOneInput(buf, (size_t)n);
        free(buf);
        fclose(f);
        printf("%s: ok\n", argv[i]);
    }
    return 0;
}
#endif
