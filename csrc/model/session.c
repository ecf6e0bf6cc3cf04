/* session.c - sessions: the KV cache and token history of one or more sequences, the
 * forward driver (checks, chunking, the step inputs of each chunk, logits selection) and
 * recorded one-token steps.
 *
 * A recorded step (CUDA graph) is the eager step's kernels launched at once: the step's
 * ids and positions are device inputs written before the launch, and the only launch
 * shape that differs (attention's key range: the whole cache instead of n_past + 1) adds
 * key splits that contribute exact zeros. So replay == eager, bit for bit. */
#include <stdio.h>  /* snprintf */
#include <stdlib.h> /* calloc, free */
#include <string.h> /* memcpy */

#include "model/model_internal.h"

#define LOGITS_ROWS 32 /* rows of logits computed at once: bounds scratch for large vocabularies */

void orc_session_params_init(orc_session_params *p) {
    memset(p, 0, sizeof *p);
    p->n_ctx = 4096;
    p->n_batch = 512;
    p->n_seq = 1;
    p->kv_dtype = ORC_DTYPE_F32;
    p->graphs = true;
}

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

static void session_free_buffers(orc_session *s) {
    orc_backend *be = s->m->be;
    if (be) {
        for (int32_t il = 0; s->kc && s->vc && il < s->m->cfg.n_layer; il++) {
            be->ops->free(be, &s->kc[il]);
            be->ops->free(be, &s->vc[il]);
        }
        orc_tensor *bufs[] = {&s->x,       &s->xn,      &s->q,      &s->k,      &s->v,       &s->att,
                              &s->proj,    &s->gate,    &s->up,     &s->act,    &s->logits,  &s->lrows,
                              &s->in_ids,  &s->in_pos,  &s->in_row, &s->in_base, &s->in_lidx, &s->router,
                              &s->topk_ids, &s->topk_w, &s->egate,  &s->eup,    &s->eact,    &s->ey,
                              &s->greedy};
        for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) be->ops->free(be, bufs[i]);
        for (int g = 0; g < 2; g++)
            if (s->graph[g]) be->ops->graph_free(s->ex, s->graph[g]);
        be->ops->exec_destroy(s->ex);
    }
    s->graph[0] = s->graph[1] = NULL;
    s->ex = NULL;
    free(s->kc);
    free(s->vc);
    s->kc = s->vc = NULL;
    free(s->h_ids); /* one allocation for every host staging array */
    s->h_ids = s->h_pos = s->h_row = s->h_base = s->h_lidx = s->h_runs = NULL;
    atomic_fetch_sub(&s->m->kv_bytes, s->kv_bytes);
    atomic_fetch_sub(&s->m->scratch_bytes, s->scratch_bytes);
    s->kv_bytes = s->scratch_bytes = 0;
}

void orc_session_close(orc_session *s) {
    if (!s) return;
    if (orc_model_lock(s->m, NULL) != ORC_OK) return; /* from a callback of this model: refused */
    if (!s->closed) {
        s->closed = true;
        session_free_buffers(s);
    }
    orc_model_unlock(s->m);
}

void orc_session_free(orc_session *s) {
    if (!s) return;
    orc_session_close(s);
    free(s->n_past);
    free(s->history);
    orc_model_release(s->m);
    free(s);
}

bool orc_session_is_closed(const orc_session *s) { return s->closed; }

/* One scratch tensor of a session: where it goes, its shape, what an allocation error calls it. */
typedef struct scratch_spec {
    orc_tensor *t;
    orc_dtype dt;
    int64_t rows, cols;
    const char *what;
} scratch_spec;

static orc_status alloc_scratch(orc_session *s, const scratch_spec *specs, size_t count, orc_err *err) {
    orc_backend *be = s->m->be;
    for (size_t i = 0; i < count; i++) {
        orc_status st = be->ops->alloc(be, specs[i].t, specs[i].dt, specs[i].rows, specs[i].cols, specs[i].what, err);
        if (st != ORC_OK) return st;
        s->scratch_bytes += specs[i].t->nbytes;
    }
    return ORC_OK;
}

static orc_status alloc_buffers(orc_session *s, orc_err *err) {
    orc_model *m = s->m;
    orc_backend *be = m->be;
    const orc_config *c = &m->cfg;
    orc_status st;
    const int64_t B = s->p.n_batch, E = c->n_embd, F = c->n_ff > 0 ? c->n_ff : 1;
    const int64_t NQ = (int64_t)c->n_head * c->head_dim, NK = (int64_t)c->n_head_kv * c->head_dim,
                  NV = (int64_t)c->n_head_kv * c->head_dim_v, NO = (int64_t)c->n_head * c->head_dim_v;
    const int64_t rows = (int64_t)s->p.n_seq * s->p.n_ctx;
    s->kc = calloc((size_t)c->n_layer, sizeof *s->kc);
    s->vc = calloc((size_t)c->n_layer, sizeof *s->vc);
    s->h_ids = malloc((size_t)(6 * B + 1) * sizeof(int32_t));
    if (!s->kc || !s->vc || !s->h_ids) return orc_fail(err, ORC_E_NOMEM, "allocating a session");
    s->h_pos = s->h_ids + B;
    s->h_row = s->h_pos + B;
    s->h_base = s->h_row + B;
    s->h_lidx = s->h_base + B;
    s->h_runs = s->h_lidx + B; /* B + 1 */
    char what[64];
    for (int32_t il = 0; il < c->n_layer; il++) {
        snprintf(what, sizeof what, "the KV cache (layer %d keys)", (int)il);
        if ((st = be->ops->alloc(be, &s->kc[il], s->p.kv_dtype, rows, NK, what, err)) != ORC_OK) return st;
        s->kv_bytes += s->kc[il].nbytes;
        snprintf(what, sizeof what, "the KV cache (layer %d values)", (int)il);
        if ((st = be->ops->alloc(be, &s->vc[il], s->p.kv_dtype, rows, NV, what, err)) != ORC_OK) return st;
        s->kv_bytes += s->vc[il].nbytes;
    }
    const int64_t LR = B < LOGITS_ROWS ? B : LOGITS_ROWS;
    const scratch_spec bufs[] = {
        {&s->x, ORC_DTYPE_F32, B, E, "session scratch (residual)"},
        {&s->xn, ORC_DTYPE_F32, B, E, "session scratch (norm)"},
        {&s->q, ORC_DTYPE_F32, B, NQ, "session scratch (q)"},
        {&s->k, ORC_DTYPE_F32, B, NK, "session scratch (k)"},
        {&s->v, ORC_DTYPE_F32, B, NV, "session scratch (v)"},
        {&s->att, ORC_DTYPE_F32, B, NO, "session scratch (attention)"},
        {&s->proj, ORC_DTYPE_F32, B, E, "session scratch (projection)"},
        {&s->gate, ORC_DTYPE_F32, B, F, "session scratch (ffn gate)"},
        {&s->up, ORC_DTYPE_F32, B, F, "session scratch (ffn up)"},
        {&s->act, ORC_DTYPE_F32, B, F, "session scratch (ffn act)"},
        {&s->logits, ORC_DTYPE_F32, LR, c->n_vocab, "session scratch (logits)"},
        {&s->lrows, ORC_DTYPE_F32, LR, E, "session scratch (logit rows)"},
        {&s->greedy, ORC_DTYPE_F32, LR, ORC_ARGMAX_FLOATS, "session scratch (argmax of the logits)"},
        {&s->in_ids, ORC_DTYPE_I32, B, 1, "step inputs (ids)"},
        {&s->in_pos, ORC_DTYPE_I32, B, 1, "step inputs (positions)"},
        {&s->in_row, ORC_DTYPE_I32, B, 1, "step inputs (cache rows)"},
        {&s->in_base, ORC_DTYPE_I32, B, 1, "step inputs (sequence bases)"},
        {&s->in_lidx, ORC_DTYPE_I32, LR, 1, "step inputs (logit rows)"},
    };
    const bool moe = (m->block_used & ORC_B_MOE) != 0;
    const int64_t NE = c->n_expert, KE = c->n_expert_used, FE = c->n_ff_exp;
    const scratch_spec moe_bufs[] = {
        {&s->router, ORC_DTYPE_F32, B, NE, "session scratch (router logits)"},
        {&s->topk_ids, ORC_DTYPE_I32, B, KE, "session scratch (selected experts)"},
        {&s->topk_w, ORC_DTYPE_F32, B, KE, "session scratch (expert weights)"},
        {&s->egate, ORC_DTYPE_F32, B * KE, FE, "session scratch (expert gate)"},
        {&s->eup, ORC_DTYPE_F32, B * KE, FE, "session scratch (expert up)"},
        {&s->eact, ORC_DTYPE_F32, B * KE, FE, "session scratch (expert act)"},
        {&s->ey, ORC_DTYPE_F32, B * KE, E, "session scratch (expert outputs)"},
    };
    if ((st = alloc_scratch(s, bufs, sizeof bufs / sizeof bufs[0], err)) != ORC_OK) return st;
    if (moe && (st = alloc_scratch(s, moe_bufs, sizeof moe_bufs / sizeof moe_bufs[0], err)) != ORC_OK) return st;
    /* Inputs are [B][1] int32 tensors: one row per token. */
    const orc_exec_shape shape = {
        .max_tokens = B,
        /* widest matmul input row; MoE slot inputs count k rows a token */
        .max_cols = max64(max64(max64(E, F), max64(NQ, NK)),
                          max64(max64(NV, NO), moe ? KE * max64(E, FE) + NE : 0)),
        .max_keys = s->p.n_ctx,
        .moe_slots = moe ? B * KE : 0,
        .moe_width = moe ? max64(E, FE) : 0,
        .n_head = c->n_head,
        .head_dim_v = c->head_dim_v,
    };
    return be->ops->exec_create(be, &shape, &s->ex, err);
}

orc_status orc_session_create(orc_model *m, const orc_session_params *p, orc_session **out, orc_err *err) {
    *out = NULL;
    if (p->n_ctx <= 0) return orc_fail(err, ORC_E_INVALID, "n_ctx must be positive, got %d", (int)p->n_ctx);
    if (p->n_batch <= 0) return orc_fail(err, ORC_E_INVALID, "n_batch must be positive, got %d", (int)p->n_batch);
    if (p->n_seq <= 0 || p->n_seq > 65536) return orc_fail(err, ORC_E_INVALID, "n_seq must be in [1, 65536], got %d", (int)p->n_seq);
    if ((int64_t)p->n_ctx * p->n_seq > INT32_MAX)
        return orc_fail(err, ORC_E_INVALID, "n_ctx * n_seq (%lld) is too large", (long long)p->n_ctx * p->n_seq);
    if (p->kv_dtype_set && p->kv_dtype != ORC_DTYPE_F32 && p->kv_dtype != ORC_DTYPE_F16 && p->kv_dtype != ORC_DTYPE_BF16)
        return orc_fail(err, ORC_E_INVALID, "kv_dtype must be float32, float16 or bfloat16");
    orc_session *s = calloc(1, sizeof *s);
    if (!s) return orc_fail(err, ORC_E_NOMEM, "allocating a session");
    s->p = *p;
    if (!p->kv_dtype_set) s->p.kv_dtype = m->params.backend == ORC_BACKEND_CUDA ? ORC_DTYPE_F16 : ORC_DTYPE_F32;
    s->p.kv_dtype_set = true;
    const int64_t cap = (int64_t)p->n_ctx * p->n_seq;
    if (s->p.n_batch > cap) s->p.n_batch = (int32_t)cap;
    s->n_past = calloc((size_t)p->n_seq, sizeof *s->n_past);
    s->history = malloc((size_t)cap * sizeof *s->history);
    s->last_path = "none yet";
    orc_model_retain(m);
    s->m = m;
    if (!s->n_past || !s->history) {
        orc_session_free(s);
        return orc_fail(err, ORC_E_NOMEM, "allocating a session");
    }
    orc_status st = orc_model_lock(m, err);
    if (st != ORC_OK) {
        s->closed = true;
        orc_session_free(s);
        return st;
    }
    if (m->closed) {
        st = orc_fail(err, ORC_E_STATE, "the model was closed");
    } else {
        st = alloc_buffers(s, err);
        atomic_fetch_add(&m->kv_bytes, s->kv_bytes); /* session_free_buffers subtracts them */
        atomic_fetch_add(&m->scratch_bytes, s->scratch_bytes);
    }
    if (st != ORC_OK) {
        session_free_buffers(s);
        s->closed = true;
    }
    orc_model_unlock(m);
    if (st != ORC_OK) {
        orc_session_free(s);
        return st;
    }
    *out = s;
    return ORC_OK;
}

/* Checks every call makes, under the lock. */
static orc_status check_usable(const orc_session *s, orc_err *err) {
    if (s->m->closed) return orc_fail(err, ORC_E_STATE, "the model of this session was closed");
    if (s->closed) return orc_fail(err, ORC_E_STATE, "the session was closed");
    return ORC_OK;
}

orc_status orc_session_fork(orc_session *s, orc_session **out, orc_err *err) {
    *out = NULL;
    orc_session_params p = s->p;
    p.n_batch = s->p.n_batch;
    orc_session *o = NULL;
    orc_status st = orc_session_create(s->m, &p, &o, err);
    if (st != ORC_OK) return st;
    if ((st = orc_model_lock(s->m, err)) != ORC_OK) {
        orc_session_free(o);
        return st;
    }
    orc_backend *be = s->m->be;
    st = check_usable(s, err);
    const int64_t rows = (int64_t)s->p.n_seq * s->p.n_ctx;
    for (int32_t il = 0; st == ORC_OK && il < s->m->cfg.n_layer; il++) {
        if ((st = be->ops->copy_rows(be, &s->kc[il], 0, &o->kc[il], 0, rows, err)) != ORC_OK) break;
        st = be->ops->copy_rows(be, &s->vc[il], 0, &o->vc[il], 0, rows, err);
    }
    if (st == ORC_OK) st = be->ops->sync(be, err);
    if (st == ORC_OK) {
        memcpy(o->n_past, s->n_past, (size_t)s->p.n_seq * sizeof *s->n_past);
        memcpy(o->history, s->history, (size_t)rows * sizeof *s->history);
        atomic_store(&o->n_past0, s->n_past[0]);
    }
    orc_model_unlock(s->m);
    if (st != ORC_OK) {
        orc_session_free(o);
        return st;
    }
    *out = o;
    return ORC_OK;
}

int32_t orc_session_n_past(const orc_session *s) { return atomic_load(&((orc_session *)s)->n_past0); }
int32_t orc_session_n_ctx(const orc_session *s) { return s->p.n_ctx; }
orc_dtype orc_session_kv_dtype(const orc_session *s) { return s->p.kv_dtype; }
bool orc_session_graphs(const orc_session *s) { return s->p.graphs && !s->graph_failed; }
const char *orc_session_last_path(const orc_session *s) { return s->last_path; }
int64_t orc_session_call_keys(const orc_session *s, int32_t n) { return (int64_t)orc_session_n_past(s) + n; }

orc_status orc_session_history(orc_session *s, int32_t *out, int32_t cap, int32_t *n, orc_err *err) {
    orc_status st = orc_model_lock(s->m, err);
    if (st != ORC_OK) return st;
    const int32_t np = s->n_past[0];
    *n = np;
    memcpy(out, s->history, (size_t)(np < cap ? np : cap) * sizeof *out);
    orc_model_unlock(s->m);
    return ORC_OK;
}

orc_status orc_session_rewind(orc_session *s, int32_t n, orc_err *err) {
    orc_status st = orc_model_lock(s->m, err);
    if (st != ORC_OK) return st;
    if ((st = check_usable(s, err)) == ORC_OK) {
        if (n < 0 || n > s->n_past[0]) {
            st = orc_fail(err, ORC_E_RANGE, "cannot rewind %d tokens: the session holds %d", (int)n, (int)s->n_past[0]);
        } else {
            s->n_past[0] -= n;
            atomic_store(&s->n_past0, s->n_past[0]);
        }
    }
    orc_model_unlock(s->m);
    return st;
}

orc_status orc_session_reset(orc_session *s, orc_err *err) {
    orc_status st = orc_model_lock(s->m, err);
    if (st != ORC_OK) return st;
    if ((st = check_usable(s, err)) == ORC_OK) {
        memset(s->n_past, 0, (size_t)s->p.n_seq * sizeof *s->n_past);
        atomic_store(&s->n_past0, 0);
    }
    orc_model_unlock(s->m);
    return st;
}

/* ------------------------------------------------------------------------ the driver */

typedef struct call {
    const int32_t *ids;
    const int32_t *seq; /* per token; NULL: all sequence 0 */
    int32_t n;
    orc_logits_mode mode;
    float *logits;
    const orc_capture *cap;
    const orc_patch *patch;
    orc_cancel_fn cancel;
    void *user;
    int32_t n_seq_used; /* forward_batch: sequences in the call */
} call;

static bool hook_is_on(const call *c, int32_t i) {
    return (c->cap && c->cap->dst[i]) ||
           (c->patch && (c->patch->replace[i] || (c->patch->want && c->patch->want[i])));
}

/* Fill the chunk's step inputs (tokens [t0, t0 + k) of the call) and upload them. pos_of[t]
 * is each call token's position. */
static orc_status chunk_inputs(orc_session *s, const call *c, const int32_t *pos_of, int32_t t0, int32_t k,
                               orc_fwd *f, orc_err *err) {
    orc_backend *be = s->m->be;
    int32_t n_runs = 0, max_keys = 0;
    for (int32_t i = 0; i < k; i++) {
        const int32_t t = t0 + i, sq = c->seq ? c->seq[t] : 0;
        s->h_ids[i] = c->ids[t];
        s->h_pos[i] = pos_of[t];
        s->h_base[i] = sq * s->p.n_ctx;
        s->h_row[i] = s->h_base[i] + pos_of[t];
        if (pos_of[t] + 1 > max_keys) max_keys = pos_of[t] + 1;
        if (i == 0 || s->h_base[i] != s->h_base[i - 1] || s->h_pos[i] != s->h_pos[i - 1] + 1) s->h_runs[n_runs++] = i;
    }
    s->h_runs[n_runs] = k;
    orc_status st;
    if ((st = be->ops->upload(be, &s->in_ids, 0, k, s->h_ids, err)) != ORC_OK) return st;
    if ((st = be->ops->upload(be, &s->in_pos, 0, k, s->h_pos, err)) != ORC_OK) return st;
    if ((st = be->ops->upload(be, &s->in_row, 0, k, s->h_row, err)) != ORC_OK) return st;
    if ((st = be->ops->upload(be, &s->in_base, 0, k, s->h_base, err)) != ORC_OK) return st;
    f->bt = (orc_batch){
        .n = k, .ids = s->in_ids, .pos = s->in_pos, .kv_row = s->in_row, .kv_base = s->in_base,
        .n_keys_max = max_keys, .n_runs = n_runs, .run_start = s->h_runs,
    };
    return ORC_OK;
}

/* The one-token step of sequence 0, recorded once and replayed (see the top of the file).
 * Returns ORC_E_UNSUPPORTED (err untouched) when this step must run eagerly. */
static orc_status step_graph(orc_session *s, const call *c, orc_err *err) {
    orc_model *m = s->m;
    const orc_backend_ops *o = m->be->ops;
    const char *why = c->cap || c->patch              ? "eager (hooks captured or patched)"
                      : m->params.profile             ? "eager (profiling)"
                      : s->p.n_seq != 1               ? "eager (batch)"
                      : c->n > 1                      ? "eager (more than one token)"
                      : !s->p.graphs                  ? "eager (graphs=False)"
                      : c->mode == ORC_LOGITS_NONE    ? "eager (no logits)"
                      : s->graph_failed               ? "eager (recording a graph failed once)"
                      : !orc_backend_supports(m->be, ORC_OP_GRAPHS) ? "eager (the backend records no graphs)"
                                                                    : NULL;
    if (why) {
        s->last_path = why;
        return ORC_E_UNSUPPORTED;
    }
    const int32_t pos = s->n_past[0];
    const bool argmax = c->mode == ORC_LOGITS_ARGMAX;
    void **graph = &s->graph[argmax];
    orc_fwd f = {.s = s, .argmax = argmax, .keep_logits = true, .err = err};
    static const int32_t zero = 0;
    f.lrow = &zero;
    f.ldst = &zero;
    f.n_lrows = 1;
    f.lrows_contiguous = true;
    orc_status st = chunk_inputs(s, c, &pos, 0, 1, &f, err);
    if (st != ORC_OK) return st;
    if (!s->graph[0] && !s->graph[1] && s->eager_steps == 0) {
        /* The first one-token step runs eagerly: kernels that set themselves up on their first
         * launch (device queries) do so outside the recording. Same kernels, same results. */
        s->eager_steps++;
        s->last_path = "eager (the first one-token step; the next ones replay a recorded graph)";
        return ORC_E_UNSUPPORTED;
    }
    if (!*graph) {
        f.bt.n_keys_max = s->p.n_ctx; /* one recording serves every position */
        orc_err rec_err = {0};
        st = o->record_begin(s->ex, &rec_err);
        if (st == ORC_OK) {
            orc_status rst = orc_program_run(&f);
            orc_status est = o->record_end(s->ex, graph, rec_err.status ? NULL : &rec_err);
            if (rst != ORC_OK || est != ORC_OK) st = rst != ORC_OK ? rst : est;
        }
        if (st != ORC_OK) {
            /* Recording is an optimisation: on any failure stay eager from now on. */
            if (*graph) o->graph_free(s->ex, *graph);
            *graph = NULL;
            s->graph_failed = true;
            s->last_path = "eager (recording a graph failed once)";
            orc_err_clear(err);
            return ORC_E_UNSUPPORTED;
        }
    }
    if ((st = o->graph_launch(s->ex, *graph, err)) != ORC_OK) return st;
    s->last_path = "graph replay";
    return o->download(m->be, argmax ? &s->greedy : &s->logits, 0, 1, c->logits, err);
}

static orc_status run_call(orc_session *s, const call *c, orc_err *err) {
    orc_model *m = s->m;
    const orc_config *cfg = &m->cfg;
    const int32_t B = s->p.n_batch;
    orc_status st = ORC_OK;
    if (c->n <= 0) return orc_fail(err, ORC_E_INVALID, "forward needs at least one token");
    for (int32_t i = 0; i < c->n; i++)
        if (c->ids[i] < 0 || c->ids[i] >= cfg->n_vocab)
            return orc_fail(err, ORC_E_RANGE, "token id %d at position %d is out of range [0, %d)", (int)c->ids[i], (int)i,
                            (int)cfg->n_vocab);
    if (c->cap && c->cap->n_hooks != m->n_hooks) return orc_fail(err, ORC_E_INTERNAL, "capture table size mismatch");
    if (c->patch && c->patch->n_hooks != m->n_hooks) return orc_fail(err, ORC_E_INTERNAL, "patch table size mismatch");
    /* pos_of[n]: each token's position; ldst[n]: its logits row in the output (-1: none);
     * lrow[B], cdst[B]: one chunk's logit rows and their destinations. */
    int32_t *pos_of = malloc(((size_t)c->n * 2 + (size_t)B * 2) * sizeof(int32_t));
    int32_t *count = calloc((size_t)s->p.n_seq, sizeof *count);
    if (!pos_of || !count) {
        free(pos_of);
        free(count);
        return orc_fail(err, ORC_E_NOMEM, "allocating a forward of %d tokens", (int)c->n);
    }
    int32_t *ldst = pos_of + c->n, *lrow = ldst + c->n, *cdst = lrow + B;
    int32_t call_keys = 0;
    for (int32_t i = 0; i < c->n; i++) {
        const int32_t sq = c->seq ? c->seq[i] : 0;
        if (sq < 0 || sq >= s->p.n_seq) {
            st = orc_fail(err, ORC_E_RANGE, "sequence %d out of range [0, %d)", (int)sq, (int)s->p.n_seq);
            goto done;
        }
        pos_of[i] = s->n_past[sq] + count[sq]++;
        if (pos_of[i] + 1 > call_keys) call_keys = pos_of[i] + 1;
    }
    for (int32_t sq = 0; sq < s->p.n_seq; sq++) {
        if ((int64_t)s->n_past[sq] + count[sq] > s->p.n_ctx) {
            st = orc_fail(err, ORC_E_RANGE,
                          "%d tokens after %d already in the session exceed n_ctx = %d (rewind, reset, or use a larger "
                          "n_ctx)",
                          (int)count[sq], (int)s->n_past[sq], (int)s->p.n_ctx);
            goto done;
        }
    }

    if (c->cap && c->cap->keys < call_keys) {
        st = orc_fail(err, ORC_E_STATE,
                      "the capture buffers were sized for %lld keys but the call sees %d (the session moved on "
                      "between sizing and the call)",
                      (long long)c->cap->keys, (int)call_keys);
        goto done;
    }
    st = c->seq ? ORC_E_UNSUPPORTED : step_graph(s, c, err);
    if (st != ORC_E_UNSUPPORTED) {
        if (st == ORC_OK) goto commit;
        goto done;
    }
    st = ORC_OK;

    /* Which rows get logits: every row when the logits hook is on, else what the mode asks. */
    const bool all_rows = c->mode == ORC_LOGITS_ALL || hook_is_on(c, m->hook_logits);
    for (int32_t i = 0; i < c->n; i++) ldst[i] = c->mode == ORC_LOGITS_ALL ? i : -1;
    if (c->mode == ORC_LOGITS_LAST || c->mode == ORC_LOGITS_ARGMAX) {
        if (!c->seq) {
            ldst[c->n - 1] = 0;
        } else { /* the last token of each sequence */
            for (int32_t i = 0; i < c->n; i++)
                if (i == c->n - 1 || c->seq[i + 1] != c->seq[i]) ldst[i] = c->seq[i];
        }
    }
    if (c->seq) s->last_path = "eager (batch)"; /* else step_graph said why */
    orc_fwd f = {.s = s, .cap = c->cap, .patch = c->patch, .call_keys = c->cap ? c->cap->keys : call_keys,
                 .logits = c->logits, .argmax = c->mode == ORC_LOGITS_ARGMAX,
                 .cancel = c->cancel, .user = c->user, .err = err};
    for (int32_t t0 = 0; t0 < c->n; t0 += B) {
        const int32_t k = c->n - t0 < B ? c->n - t0 : B;
        if ((st = chunk_inputs(s, c, pos_of, t0, k, &f, err)) != ORC_OK) goto done;
        f.row0 = t0;
        int32_t nl = 0;
        bool contiguous = true;
        for (int32_t i = 0; i < k; i++) {
            if (!all_rows && ldst[t0 + i] < 0) continue;
            contiguous = contiguous && (nl == 0 || lrow[nl - 1] == i - 1);
            lrow[nl] = i;
            cdst[nl] = ldst[t0 + i];
            nl++;
        }
        f.lrow = lrow;
        f.ldst = cdst;
        f.n_lrows = nl;
        f.lrows_contiguous = contiguous;
        if ((st = orc_program_run(&f)) != ORC_OK) goto done;
    }
    if ((st = m->be->ops->sync(m->be, err)) != ORC_OK) goto done;
commit:
    for (int32_t i = 0; i < c->n; i++) {
        const int32_t sq = c->seq ? c->seq[i] : 0;
        s->history[(int64_t)sq * s->p.n_ctx + pos_of[i]] = c->ids[i];
    }
    for (int32_t sq = 0; sq < s->p.n_seq; sq++) s->n_past[sq] += count[sq];
    atomic_store(&s->n_past0, s->n_past[0]);
done:
    free(pos_of);
    free(count);
    return st;
}

orc_status orc_session_forward(orc_session *s, const int32_t *ids, int32_t n, orc_logits_mode mode, float *logits,
                               const orc_capture *cap, const orc_patch *patch, orc_cancel_fn cancel, void *user,
                               orc_err *err) {
    orc_status st = orc_model_lock(s->m, err);
    if (st != ORC_OK) return st;
    if ((st = check_usable(s, err)) == ORC_OK) {
        const call c = {.ids = ids, .n = n, .mode = mode, .logits = logits, .cap = cap, .patch = patch,
                        .cancel = cancel, .user = user};
        st = run_call(s, &c, err);
    }
    orc_model_unlock(s->m);
    return st;
}

orc_status orc_session_forward_batch(orc_session *s, const int32_t *ids, const int32_t *lens, int32_t n_seq,
                                     orc_logits_mode mode, float *logits, const orc_capture *cap,
                                     orc_cancel_fn cancel, void *user, orc_err *err) {
    if (n_seq <= 0) return orc_fail(err, ORC_E_INVALID, "forward_batch needs at least one sequence");
    if (n_seq > s->p.n_seq)
        return orc_fail(err, ORC_E_INVALID, "%d sequences in a session made for %d", (int)n_seq, (int)s->p.n_seq);
    int64_t total = 0;
    for (int32_t i = 0; i < n_seq; i++) {
        if (lens[i] <= 0) return orc_fail(err, ORC_E_INVALID, "sequence %d is empty", (int)i);
        total += lens[i];
    }
    if (total > INT32_MAX / 4) return orc_fail(err, ORC_E_INVALID, "too many tokens (%lld)", (long long)total);
    int32_t *seq = malloc((size_t)total * sizeof *seq);
    if (!seq) return orc_fail(err, ORC_E_NOMEM, "allocating a batch of %lld tokens", (long long)total);
    for (int32_t i = 0, t = 0; i < n_seq; i++)
        for (int32_t j = 0; j < lens[i]; j++) seq[t++] = i;
    orc_status st = orc_model_lock(s->m, err);
    if (st == ORC_OK) {
        if ((st = check_usable(s, err)) == ORC_OK) {
            memset(s->n_past, 0, (size_t)s->p.n_seq * sizeof *s->n_past);
            atomic_store(&s->n_past0, 0);
            const call c = {.ids = ids, .seq = seq, .n = (int32_t)total, .mode = mode, .logits = logits, .cap = cap,
                            .cancel = cancel, .user = user, .n_seq_used = n_seq};
            st = run_call(s, &c, err);
        }
        orc_model_unlock(s->m);
    }
    free(seq);
    return st;
}
