/* tokenizer_special.c - finding special tokens in a text in linear time.
 *
 * Special (control, user-defined, unknown) tokens are cut out of the text leftmost-longest:
 * scanning left to right, at each position the longest special token starting there is taken.
 * Walking a trie from every position costs O(text x longest token) when a token is a long run
 * the text repeats (a user-defined token of a million 'a's and then a 'b', over a text of 'a's:
 * quadratic, hours for megabytes), and the file chooses the tokens. So the longest token
 * starting at each position is computed instead by one pass of an Aho-Corasick automaton over the
 * text read backwards, built from the tokens reversed: after reading text[j..] backwards, the
 * automaton's state names the longest reversed token that is a suffix of what it read, i.e. the
 * longest token that starts at j. Text is processed in blocks of B >= the longest token's length
 * (the state at j depends on at most that many bytes after j), so memory stays O(B) and the work
 * O(text + text / B x longest) = O(text). Children are sorted arrays (binary search), the root
 * a direct table, so a step is O(log 256) amortized.
 */
#include <stdlib.h> /* malloc, calloc, realloc, free */
#include <string.h> /* memset */

#include "tokenizer/tokenizer_internal.h" /* struct orc_tokenizer, special_ac, tok_text */

/* Build-time trie of the reversed tokens, children as sibling lists. */
typedef struct build_node {
    int32_t child, sibling, token;
    uint8_t byte;
} build_node;

void special_ac_free(special_ac *a) {
    free(a->child_start);
    free(a->child_byte);
    free(a->child_node);
    free(a->fail);
    free(a->out_all);
    free(a->out_user);
    memset(a, 0, sizeof *a);
}

static int cmp_child(const void *x, const void *y) {
    const build_node *a = *(build_node *const *)x, *b = *(build_node *const *)y;
    return (int)a->byte - (int)b->byte;
}

/* The child of state s on byte c, or -1. */
static inline int32_t ac_child(const special_ac *a, int32_t s, uint8_t c) {
    int32_t lo = a->child_start[s], hi = a->child_start[s + 1];
    while (lo < hi) {
        int32_t mid = lo + (hi - lo) / 2;
        if (a->child_byte[mid] == c) return a->child_node[mid];
        if (a->child_byte[mid] < c) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

/* The goto-with-failure transition: the state after reading c in state s. */
static inline int32_t ac_next(const special_ac *a, int32_t s, uint8_t c) {
    for (;;) {
        if (s == 0) return a->root_next[c];
        int32_t n = ac_child(a, s, c);
        if (n >= 0) return n;
        s = a->fail[s];
    }
}

orc_status special_ac_build(orc_tokenizer *t, orc_err *err) {
    orc_status st = ORC_OK;
    special_ac *a = &t->ac;
    build_node *nodes = NULL, **kids = NULL;
    int32_t *queue = NULL;
    size_t n = 1, cap = 1024;
    memset(a, 0, sizeof *a);
    for (int b = 0; b < 256; b++) a->root_next[b] = 0;

    /* 1. the trie of reversed texts; a text given twice keeps its first id */
    nodes = malloc(cap * sizeof *nodes);
    if (!nodes) return orc_fail(err, ORC_E_NOMEM, "out of memory building the special-token matcher");
    nodes[0] = (build_node){.child = -1, .sibling = -1, .token = -1, .byte = 0};
    size_t max_len = 0;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        if (!is_special_type(t->type[id])) continue;
        size_t len;
        const uint8_t *s = (const uint8_t *)tok_text(t, id, &len);
        if (len == 0) continue;
        if (len > max_len) max_len = len;
        int32_t node = 0;
        for (size_t k = len; k-- > 0;) {
            int32_t c = nodes[node].child, last = -1;
            while (c >= 0 && nodes[c].byte != s[k]) last = c, c = nodes[c].sibling;
            if (c < 0) {
                if (n == cap) {
                    if (cap > (size_t)INT32_MAX / 2) {
                        st = orc_fail(err, ORC_E_NOMEM, "special tokens: too many bytes for the matcher");
                        goto cleanup;
                    }
                    build_node *p = realloc(nodes, cap * 2 * sizeof *p);
                    if (!p) {
                        st = orc_fail(err, ORC_E_NOMEM, "out of memory building the special-token matcher");
                        goto cleanup;
                    }
                    nodes = p, cap *= 2;
                }
                c = (int32_t)n++;
                nodes[c] = (build_node){.child = -1, .sibling = -1, .token = -1, .byte = s[k]};
                if (last >= 0) nodes[last].sibling = c;
                else nodes[node].child = c;
            }
            node = c;
        }
        if (nodes[node].token < 0) nodes[node].token = id;
    }
    if (n == 1) goto cleanup; /* no special tokens: a->n stays 0 */

    /* 2. breadth-first numbering with sorted children (CSR), so every state's children are one
     * sorted run and a parent comes before its children (the order failure links need) */
    const size_t ns = n;
    a->child_start = malloc((ns + 1) * sizeof *a->child_start);
    a->child_byte = malloc(ns * sizeof *a->child_byte);
    a->child_node = malloc(ns * sizeof *a->child_node);
    a->fail = malloc(ns * sizeof *a->fail);
    a->out_all = malloc(ns * sizeof *a->out_all);
    a->out_user = malloc(ns * sizeof *a->out_user);
    queue = malloc(ns * sizeof *queue);   /* build node of each state */
    kids = malloc(256 * sizeof *kids);
    if (!a->child_start || !a->child_byte || !a->child_node || !a->fail || !a->out_all || !a->out_user || !queue ||
        !kids) {
        st = orc_fail(err, ORC_E_NOMEM, "out of memory building the special-token matcher");
        goto cleanup;
    }
    size_t head = 0, tail = 1, edges = 0;
    queue[0] = 0;
    while (head < tail) {
        int32_t bn = queue[head];
        size_t nk = 0;
        for (int32_t c = nodes[bn].child; c >= 0; c = nodes[c].sibling) kids[nk++] = &nodes[c];
        qsort(kids, nk, sizeof *kids, cmp_child);
        a->child_start[head] = (int32_t)edges;
        for (size_t k = 0; k < nk; k++) {
            a->child_byte[edges] = kids[k]->byte;
            a->child_node[edges] = (int32_t)tail;
            edges++;
            queue[tail++] = (int32_t)(kids[k] - nodes);
        }
        head++;
    }
    a->child_start[ns] = (int32_t)edges;
    a->n = (int32_t)ns;
    a->max_len = (int32_t)max_len;
    for (int32_t e = a->child_start[0]; e < a->child_start[1]; e++) a->root_next[a->child_byte[e]] = a->child_node[e];

    /* 3. failure links and the longest token that is a suffix of each state, in BFS order */
    a->fail[0] = 0;
    a->out_all[0] = a->out_user[0] = -1;
    for (int32_t s = 0; s < a->n; s++) {
        for (int32_t e = a->child_start[s]; e < a->child_start[s + 1]; e++) {
            int32_t c = a->child_node[e];
            uint8_t x = a->child_byte[e];
            int32_t f = 0;
            if (s != 0) {
                f = a->fail[s];
                for (;;) {
                    int32_t g = f == 0 ? a->root_next[x] : ac_child(a, f, x);
                    if (g > 0) {
                        f = g;
                        break;
                    }
                    if (f == 0) break;
                    f = a->fail[f];
                }
            }
            a->fail[c] = f;
            int32_t tok = nodes[queue[c]].token;
            a->out_all[c] = tok >= 0 ? tok : a->out_all[f];
            /* user-defined tokens are cut even without parse_special; a state whose own text is a
             * control token falls back to the longest user-defined suffix, as the old trie walk
             * (which looked at each prefix's first id) did */
            a->out_user[c] = (tok >= 0 && t->type[tok] == ORC_TOKEN_USER_DEFINED) ? tok : a->out_user[f];
        }
    }
cleanup:
    if (st) special_ac_free(a);
    free(nodes);
    free(queue);
    free(kids);
    return st;
}

void special_ac_longest(const orc_tokenizer *t, const uint8_t *s, size_t n, size_t from, size_t to,
                        bool parse_special, int32_t *ids) {
    const special_ac *a = &t->ac;
    const int32_t *out = parse_special ? a->out_all : a->out_user;
    size_t end = to + (size_t)a->max_len < n ? to + (size_t)a->max_len : n;
    int32_t st = 0;
    for (size_t j = end; j-- > from;) {
        st = ac_next(a, st, s[j]);
        if (j < to) ids[j - from] = out[st];
    }
}
