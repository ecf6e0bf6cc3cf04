/* tokenizer.h - text <-> token ids for the vocabularies GGUF files carry.
 *
 * Two models, named by tokenizer.ggml.model:
 *   "gpt2"   byte-level BPE (GPT-2, Llama 3, Qwen2, DeepSeek-R1-Distill-Qwen): the text is split
 *            into words by the pre-tokenizer that tokenizer.ggml.pre names (a regex in Hugging
 *            Face tokenizers, hand-written here with the same semantics), each word's bytes
 *            are mapped to the GPT-2 byte alphabet and merged by tokenizer.ggml.merges rank.
 *   "llama"  SentencePiece-style BPE (Llama 2, TinyLlama, Gemma): spaces become U+2581, pairs
 *            of symbols are merged by the score of the merged piece, characters with no
 *            piece fall back to the <0xNN> byte tokens.
 * Before either runs, special tokens are cut out of the text (leftmost-longest match):
 * user-defined tokens always, control and unknown tokens only when parse_special is set.
 *
 * Ids are int32 (as in llama.cpp); a vocabulary has at most INT32_MAX tokens. The tokenizer
 * copies what it needs: it does not keep the GGUF file or the spec alive. It is immutable
 * after construction, so any number of threads may tokenize with it at once.
 */
#ifndef ORC_TOKENIZER_H
#define ORC_TOKENIZER_H

#include <stdbool.h>  /* bool */
#include <stddef.h>   /* size_t */
#include <stdint.h>   /* int32_t */

#include "gguf/gguf.h"     /* orc_gguf, orc_gguf_str */
#include "core/orc.h"      /* orc_status, orc_err */

#ifdef __cplusplus
extern "C" {
#endif

typedef struct orc_tokenizer orc_tokenizer;

/* tokenizer.ggml.token_type values (llama.cpp's llama_token_type). */
typedef enum orc_token_type {
    ORC_TOKEN_UNDEFINED = 0,
    ORC_TOKEN_NORMAL = 1,
    ORC_TOKEN_UNKNOWN = 2,
    ORC_TOKEN_CONTROL = 3,
    ORC_TOKEN_USER_DEFINED = 4,
    ORC_TOKEN_UNUSED = 5,
    ORC_TOKEN_BYTE = 6,
    ORC_TOKEN_TYPE_COUNT
} orc_token_type;

const char *orc_token_type_name(int type); /* "normal", "control", ...; "invalid" out of range */

typedef enum orc_tok_model {
    ORC_TOK_BPE = 0, /* tokenizer.ggml.model = "gpt2"  */
    ORC_TOK_SPM = 1, /* tokenizer.ggml.model = "llama" */
} orc_tok_model;

/* The special tokens a vocabulary may name; index into orc_tokenizer_spec.special. */
typedef enum orc_special {
    ORC_SPECIAL_BOS, ORC_SPECIAL_EOS, ORC_SPECIAL_EOT, ORC_SPECIAL_EOM, ORC_SPECIAL_UNK,
    ORC_SPECIAL_PAD, ORC_SPECIAL_SEP, ORC_SPECIAL_MASK,
    ORC_SPECIAL_COUNT
} orc_special;

/* The GGUF key of each special token id ("tokenizer.ggml.bos_token_id", ...). */
const char *orc_special_key(orc_special s);

#define ORC_TOKEN_NONE (-1)

/* Everything the tokenizer is built from, as plain arrays: what orc_tokenizer_from_gguf reads
 * from the tokenizer.ggml.* keys, or what a caller assembles (tests, other containers). */
typedef struct orc_tokenizer_spec {
    orc_gguf_str model;          /* tokenizer.ggml.model: "gpt2" or "llama" */
    orc_gguf_str pre;            /* tokenizer.ggml.pre; .ptr == NULL when absent */
    uint64_t n_vocab;
    const orc_gguf_str *tokens;  /* tokenizer.ggml.tokens [n_vocab] */
    const float *scores;         /* tokenizer.ggml.scores [n_vocab], or NULL (all 0) */
    const int32_t *token_types;  /* tokenizer.ggml.token_type [n_vocab], or NULL (all normal) */
    uint64_t n_merges;
    const orc_gguf_str *merges;  /* tokenizer.ggml.merges [n_merges] ("left right"); gpt2 only */
    int64_t special[ORC_SPECIAL_COUNT]; /* ids, or ORC_TOKEN_NONE when the key is absent */
    int add_bos, add_eos, add_space_prefix; /* 1/0, or -1 when absent: the model's default */
    orc_gguf_str chat_template;  /* tokenizer.chat_template; .ptr == NULL when absent */
} orc_tokenizer_spec;

/* A spec with no tokens, every special id ORC_TOKEN_NONE and every flag -1. */
void orc_tokenizer_spec_init(orc_tokenizer_spec *spec);

/* Validate the spec (HARDENING row 18: ids in range, well-formed byte tokens and merges,
 * known model and pre-tokenizer) and build the tokenizer. Errors name the GGUF key. */
orc_status orc_tokenizer_from_spec(const orc_tokenizer_spec *spec, orc_tokenizer **out, orc_err *err);

/* Read the tokenizer.ggml.* keys of an open file. A file with no tokenizer.ggml.model is
 * ORC_E_NOT_FOUND; keys of the wrong type or arrays of the wrong element type or length are
 * ORC_E_FORMAT; an unknown model or pre-tokenizer is ORC_E_UNSUPPORTED. */
orc_status orc_tokenizer_from_gguf(const orc_gguf *g, orc_tokenizer **out, orc_err *err);

void orc_tokenizer_free(orc_tokenizer *tok); /* NULL is fine */

/* ---- properties ---- */
orc_tok_model orc_tokenizer_model(const orc_tokenizer *tok);
const char *orc_tokenizer_model_name(const orc_tokenizer *tok); /* "gpt2" / "llama" */
const char *orc_tokenizer_pre_name(const orc_tokenizer *tok);   /* as stored; "" when absent */
int32_t orc_tokenizer_vocab_size(const orc_tokenizer *tok);
int32_t orc_tokenizer_special(const orc_tokenizer *tok, orc_special s); /* ORC_TOKEN_NONE if none */
bool orc_tokenizer_add_bos(const orc_tokenizer *tok);
bool orc_tokenizer_add_eos(const orc_tokenizer *tok);
bool orc_tokenizer_add_space_prefix(const orc_tokenizer *tok);
/* End-of-generation ids: EOS, EOT, EOM and the control tokens whose text marks the end of a
 * turn (<|im_end|>, <|eot_id|>, <end_of_turn>, <|endoftext|>, ...), sorted, no duplicates. */
const int32_t *orc_tokenizer_eog(const orc_tokenizer *tok, size_t *n);
bool orc_tokenizer_is_eog(const orc_tokenizer *tok, int32_t id);
/* tokenizer.chat_template, or NULL (with *len = 0) when absent. */
const char *orc_tokenizer_chat_template(const orc_tokenizer *tok, size_t *len);

/* ---- single tokens (ORC_E_RANGE for an id outside [0, vocab_size)) ---- */
/* The token's text as stored in the vocabulary ("Ġthe", "▁the", "<0x0A>", "<|im_end|>"). */
orc_status orc_token_text(const orc_tokenizer *tok, int32_t id, const char **text, size_t *len, orc_err *err);
/* The bytes the token decodes to (" the", "\n", "<|im_end|>"); may be part of a UTF-8 sequence. */
orc_status orc_token_piece(const orc_tokenizer *tok, int32_t id, const char **bytes, size_t *len, orc_err *err);
orc_status orc_token_get_type(const orc_tokenizer *tok, int32_t id, orc_token_type *type, orc_err *err);
orc_status orc_token_score(const orc_tokenizer *tok, int32_t id, float *score, orc_err *err);
/* The id of a token whose stored text is exactly `text` (first one if repeated), or ORC_TOKEN_NONE. */
int32_t orc_token_lookup(const orc_tokenizer *tok, const char *text, size_t len);

/* ---- tokenize ---- */
/* Tokenize `len` bytes of `text` (UTF-8; invalid bytes are kept as single bytes). add_special:
 * add BOS/EOS as the vocabulary asks (add_bos/add_eos). parse_special: also cut control
 * tokens (<|im_start|>, <bos>, ...) out of the text; user-defined tokens always are.
 * On success *ids is a malloc'd array the caller frees with free(). */
orc_status orc_tokenize(const orc_tokenizer *tok, const char *text, size_t len, bool add_special,
                        bool parse_special, int32_t **ids, size_t *n_ids, orc_err *err);

/* A cancel callback: called about every 64 KiB of text tokenized; nonzero stops the call with
 * ORC_E_INTERRUPTED (the binding looks for Ctrl-C there). */
typedef int (*orc_tok_cancel_fn)(void *user);

/* orc_tokenize, polling `cancel(user)` as it goes (cancel may be NULL). */
orc_status orc_tokenize_cancellable(const orc_tokenizer *tok, const char *text, size_t len, bool add_special,
                                    bool parse_special, orc_tok_cancel_fn cancel, void *user, int32_t **ids,
                                    size_t *n_ids, orc_err *err);

/* The words the pre-tokenizer cuts `text` into (byte-level BPE only; no special-token
 * handling): *ends is a malloc'd array of each word's end offset in bytes. For debugging
 * tokenization and for testing the split rules against a regex engine. */
orc_status orc_pretokenize(const orc_tokenizer *tok, const char *text, size_t len, size_t **ends, size_t *n_words,
                           orc_err *err);

/* ---- detokenize ----
 * Token pieces are concatenated as bytes. Where the vocabulary adds a space prefix
 * (SentencePiece, add_space_prefix), the one space that tokenize put at the start of the text
 * and after each special token is removed again, so detokenize(tokenize(s)) == s.
 * special: render control and unknown tokens' text; when false they produce nothing. */

/* The raw bytes (possibly invalid UTF-8). *out is malloc'd (NUL-terminated; *out_len excludes it). */
orc_status orc_detokenize_bytes(const orc_tokenizer *tok, const int32_t *ids, size_t n, bool special,
                                char **out, size_t *out_len, orc_err *err);

/* Streaming detokenization: each push returns only complete, valid UTF-8. Bytes that may still
 * become a character are held back; bytes that can never be valid become U+FFFD, one for each
 * maximal ill-formed subsequence (as Python's bytes.decode('utf-8', 'replace') does), so the
 * concatenated pushes equal orc_detokenize of all the ids. `final` flushes what is held back. */
typedef struct orc_detok_state {
    uint8_t pending[4];
    uint8_t n_pending;
    bool at_start;  /* the next text token begins a text run (strip the prefix space) */
} orc_detok_state;

void orc_detok_init(orc_detok_state *st);
orc_status orc_detok_push(const orc_tokenizer *tok, orc_detok_state *st, const int32_t *ids, size_t n,
                          bool special, bool final, char **out, size_t *out_len, orc_err *err);
/* The whole sequence at once, as valid UTF-8 (a push with final = true on a fresh state). */
orc_status orc_detokenize(const orc_tokenizer *tok, const int32_t *ids, size_t n, bool special, char **out,
                          size_t *out_len, orc_err *err);

/* Copy `in` to `out` replacing ill-formed UTF-8 by U+FFFD (one per maximal ill-formed
 * subsequence). `out` needs room for 3 * n bytes. Returns the bytes written; *consumed is the
 * bytes of `in` used: all of them when `final`, else all but a valid, incomplete sequence at
 * the end (at most 3 bytes), which the caller keeps for the next call. */
size_t orc_utf8_sanitize(const uint8_t *in, size_t n, bool final, uint8_t *out, size_t *consumed);

#ifdef __cplusplus
}
#endif

#endif /* ORC_TOKENIZER_H */
