/* program.c - the layer program: one forward chunk through the embedding, the blocks of
 * each layer (attention, dense FFN, ...) as the architecture's description lists them,
 * the final norm and the logits, with a hook point after every step.
 *
 * This is the only description of the architectures' forward pass in orc: both backends
 * run it, so CPU-vs-GPU comparisons test the primitives, and the hook points name the
 * same steps on both. A hook point can hand the activation back (capture) or replace it
 * before the forward continues (patch). */
#include <stdlib.h> /* malloc */
#include <string.h> /* memcpy */
#include <time.h>   /* clock_gettime */

#include "model/model_internal.h"

#define CHECK(call)                    \
    do {                               \
        orc_status st_ = (call);       \
        if (st_ != ORC_OK) return st_; \
    } while (0)

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A primitive, timed when profiling (bracketed by syncs: the numbers include launch and
 * synchronisation costs; they say where the time goes, not how fast a plain run is). */
#define OP(kind, call)                                                \
    do {                                                              \
        if (m->params.profile) {                                      \
            CHECK(m->be->ops->sync(m->be, f->err));                   \
            double t0_ = now_seconds();                               \
            CHECK(call);                                              \
            CHECK(m->be->ops->sync(m->be, f->err));                   \
            m->prof_seconds[ORC_P_##kind] += now_seconds() - t0_;     \
            m->prof_calls[ORC_P_##kind]++;                            \
        } else {                                                      \
            CHECK(call);                                              \
        }                                                             \
    } while (0)

/* A fused launch: `st = call`, timed as "fused" when profiling; a launch the backend refused
 * (ORC_E_UNSUPPORTED: the primitives run instead) is counted as "fused_refused". */
#define FUSED(st, call)                                                             \
    do {                                                                            \
        double t0_ = 0;                                                             \
        if (m->params.profile) {                                                    \
            CHECK(m->be->ops->sync(m->be, f->err));                                 \
            t0_ = now_seconds();                                                    \
        }                                                                           \
        (st) = (call);                                                              \
        if (m->params.profile && (st) == ORC_OK) {                                  \
            CHECK(m->be->ops->sync(m->be, f->err));                                 \
            m->prof_seconds[ORC_P_FUSED] += now_seconds() - t0_;                    \
            m->prof_calls[ORC_P_FUSED]++;                                           \
        } else if (m->params.profile && (st) == ORC_E_UNSUPPORTED) {                \
            m->prof_calls[ORC_P_FUSED_REFUSED]++;                                   \
        }                                                                           \
    } while (0)

static bool hook_wanted(const orc_fwd *f, int32_t index, bool *captured, bool *patched) {
    *captured = f->cap && index >= 0 && index < f->cap->n_hooks && f->cap->dst[index];
    *patched = f->patch && index >= 0 && index < f->patch->n_hooks &&
               (f->patch->replace[index] || (f->patch->want && f->patch->want[index]));
    return *captured || *patched;
}

/* Is step `step` of layer il patched in this call? (Fused launches then run unfused.) */
static bool step_patched(const orc_fwd *f, int32_t il, orc_step step) {
    const int32_t index = f->s->m->hook_index[il * ORC_S_COUNT + step];
    bool captured, patched;
    return hook_wanted(f, index, &captured, &patched) && patched;
}

/* Hook `index` on rows [0, n) of t (t->cols floats a row): patch it, then capture it. */
static orc_status hook_at(orc_fwd *f, int32_t index, orc_tensor *t, int64_t n) {
    bool captured, patched;
    if (!hook_wanted(f, index, &captured, &patched)) return ORC_OK;
    orc_backend *be = f->s->m->be;
    const int64_t w = t->cols;
    float *dst = captured ? f->cap->dst[index] + f->row0 * w : NULL;
    if (!patched) return be->ops->download(be, t, 0, n, dst, f->err);
    if (t->dtype == ORC_DTYPE_I32)
        return orc_fail(f->err, ORC_E_INVALID, "%s cannot be patched (it holds indices; patch moe_topk_w or moe_router)",
                        f->s->m->hooks[index].name);
    float *buf = dst ? dst : malloc((size_t)(n * w) * sizeof(float));
    if (!buf) return orc_fail(f->err, ORC_E_NOMEM, "a patch buffer of %lld floats", (long long)(n * w));
    orc_status st;
    const float *rep = f->patch->replace[index];
    if (rep) {
        memcpy(buf, rep + f->row0 * w, (size_t)(n * w) * sizeof(float));
        st = ORC_OK;
    } else {
        st = be->ops->download(be, t, 0, n, buf, f->err);
        if (st == ORC_OK) st = f->patch->fn(f->patch->user, index, f->row0, n, w, buf, f->err);
    }
    if (st == ORC_OK) st = be->ops->upload(be, t, 0, n, buf, f->err);
    if (buf != dst) free(buf);
    return st;
}

/* What every block works with: the session, its model, exec and primitives, the config,
 * and the chunk's token count. */
#define PROGRAM_LOCALS(f)                          \
    orc_session *s = (f)->s;                       \
    orc_model *m = s->m;                           \
    orc_exec *e = s->ex;                           \
    const orc_backend_ops *o = m->be->ops;         \
    const orc_config *c = &m->cfg;                 \
    const int64_t n = (f)->bt.n;                   \
    (void)e, (void)o, (void)c, (void)n

#define HOOK(step, t) CHECK(hook_at(f, m->hook_index[il * ORC_S_COUNT + ORC_S_##step], (t), n))
#define W(slot) orc_model_w(m, ORC_T_##slot, il)

/* ---- fused products (backends with ORC_OP_FUSED, a few tokens: the fast path)
 *
 * A fused launch replaces a run of primitives only when no hook inside the run is captured
 * or patched; the choice depends on the call's hooks and shapes alone, so a recorded step
 * and an eager step without hooks launch the same kernels. A backend may still refuse a
 * launch (ORC_E_UNSUPPORTED for a type or shape it has no kernel for): the primitives run. */
#define FUSE_MAX_TOKENS 8

static bool fusing(const orc_fwd *f) {
    return f->bt.n <= FUSE_MAX_TOKENS && orc_backend_supports(f->s->m->be, ORC_OP_FUSED);
}

static bool step_on(const orc_fwd *f, int32_t il, orc_step step) {
    const int32_t index = il < 0 ? -1 : f->s->m->hook_index[il * ORC_S_COUNT + step];
    bool captured, patched;
    return hook_wanted(f, index, &captured, &patched);
}

/* out = W . x' (+ bias) (+ res), x' = rms_norm(x) * norm when norm is set (else x): one fused
 * launch, or the primitives. `xn` holds rms_norm(x) once computed here (*xn_done). */
static orc_status linear_n(orc_fwd *f, int64_t n, const orc_tensor *x, const orc_tensor *norm, bool *xn_done,
                           const orc_tensor *w, const orc_tensor *bias, orc_tensor *res, orc_tensor *out) {
    orc_session *s = f->s;
    orc_model *m = s->m;
    const orc_backend_ops *o = m->be->ops;
    if (fusing(f) && o->matvec) {
        orc_status st;
        FUSED(st, o->matvec(s->ex, x, norm, m->cfg.rms_eps, w, bias, res, n, out, f->err));
        if (st != ORC_E_UNSUPPORTED) return st;
    }
    const orc_tensor *in = x;
    if (norm) {
        if (!*xn_done) OP(RMS_NORM, o->rms_norm(s->ex, x, norm, n, m->cfg.n_embd, m->cfg.rms_eps, &s->xn, f->err));
        *xn_done = true;
        in = &s->xn;
    }
    OP(MATMUL, o->matmul(s->ex, in, w, n, out, f->err));
    if (bias) OP(ADD_BIAS, o->add_bias(s->ex, out, bias, n, f->err));
    if (res) OP(ADD, o->add(s->ex, res, out, n, out, f->err));
    return ORC_OK;
}

/* linear() over the chunk's tokens. */
static orc_status linear(orc_fwd *f, const orc_tensor *x, const orc_tensor *norm, bool *xn_done, const orc_tensor *w,
                         const orc_tensor *bias, orc_tensor *res, orc_tensor *out) {
    return linear_n(f, f->bt.n, x, norm, xn_done, w, bias, res, out);
}

/* The attention primitive on layer il's cache (a function of its own: the caller frees
 * the probabilities buffer whatever happens). */
static orc_status attention(orc_fwd *f, int32_t il, const orc_attn_params *ap, orc_tensor *probs) {
    orc_session *s = f->s;
    orc_model *m = s->m;
    OP(ATTENTION, m->be->ops->attention(s->ex, &s->q, &s->kc[il], &s->vc[il], &f->bt, ap, &s->att, probs, f->err));
    return ORC_OK;
}

/* x += proj, the block's output; with ORC_OPT_POST_NORM (gemma3) proj is RMS-normed by the
 * block's post-norm first (its hook `post_step`). */
static orc_status add_block_output(orc_fwd *f, int32_t il, uint32_t opts, orc_tensor_slot post, orc_step post_step) {
    PROGRAM_LOCALS(f);
    if (opts & ORC_OPT_POST_NORM) {
        OP(RMS_NORM, o->rms_norm(e, &s->proj, orc_model_w(m, post, il), n, c->n_embd, c->rms_eps, &s->proj, f->err));
        CHECK(hook_at(f, m->hook_index[il * ORC_S_COUNT + post_step], &s->proj, n));
    }
    OP(ADD, o->add(e, &s->x, &s->proj, n, &s->x, f->err));
    return ORC_OK;
}

/* The q/k norms (qwen3, gemma3), rope and the KV store (one launch where the backend has it), then
 * attention (with its probabilities when captured): each step's hook in between. */
static orc_status rope_then_attention(orc_fwd *f, int32_t il, uint32_t opts, bool one_launch, const orc_rope_params *rp,
                                      const orc_tensor *inv_freq, const orc_attn_params *ap, bool want_probs,
                                      bool patch_probs, int32_t probs_hook) {
    PROGRAM_LOCALS(f);
    const bool norm_in_launch = (opts & ORC_OPT_QK_NORM) && one_launch && !step_on(f, il, ORC_S_Q_NORM) &&
                                !step_on(f, il, ORC_S_K_NORM);
    /* A decode step whose q_rope, k_rope and probabilities nobody reads: the rope and KV store
     * inside the attention launch where the backend takes the shape (the same bits). */
    const bool qk_norm_ok = !(opts & ORC_OPT_QK_NORM) || norm_in_launch;
    if (one_launch && qk_norm_ok && fusing(f) && o->rope_attention && !want_probs && !step_on(f, il, ORC_S_Q_ROPE) &&
        !step_on(f, il, ORC_S_K_ROPE)) {
        orc_status fused = ORC_E_UNSUPPORTED;
        FUSED(fused, o->rope_attention(e, &s->q, &s->k, &s->v, &s->kc[il], &s->vc[il], &f->bt, rp, inv_freq,
                                       norm_in_launch ? W(Q_NORM) : NULL, norm_in_launch ? W(K_NORM) : NULL,
                                       c->rms_eps, ap, &s->att, f->err));
        if (fused != ORC_E_UNSUPPORTED) return fused;
    }
    if ((opts & ORC_OPT_QK_NORM) && !norm_in_launch) {
        OP(RMS_NORM, o->rms_norm(e, &s->q, W(Q_NORM), n, c->head_dim, c->rms_eps, &s->q, f->err));
        HOOK(Q_NORM, &s->q);
        OP(RMS_NORM, o->rms_norm(e, &s->k, W(K_NORM), n, c->head_dim, c->rms_eps, &s->k, f->err));
        HOOK(K_NORM, &s->k);
    }
    if (one_launch) {
        OP(ROPE, o->rope_kv_store(e, &s->q, &s->k, &s->v, &s->kc[il], &s->vc[il], &f->bt, c->n_head, c->n_head_kv,
                                  c->head_dim, rp, inv_freq, norm_in_launch ? W(Q_NORM) : NULL,
                                  norm_in_launch ? W(K_NORM) : NULL, c->rms_eps, f->err));
        HOOK(Q_ROPE, &s->q);
        HOOK(K_ROPE, &s->k);
    } else {
        OP(ROPE, o->rope(e, &s->q, &f->bt, c->n_head, c->head_dim, rp, inv_freq, f->err));
        HOOK(Q_ROPE, &s->q);
        OP(ROPE, o->rope(e, &s->k, &f->bt, c->n_head_kv, c->head_dim, rp, inv_freq, f->err));
        HOOK(K_ROPE, &s->k);
        OP(KV_STORE, o->kv_store(e, &s->kc[il], &s->vc[il], &s->k, &s->v, &f->bt, f->err));
    }

    /* Attention probabilities only when captured: [n][n_head][call_keys] rows. */
    orc_tensor probs = {0};
    if (want_probs) {
        if (patch_probs)
            return orc_fail(f->err, ORC_E_INVALID, "%s cannot be patched (patch attn_out instead)",
                            m->hooks[probs_hook].name);
        CHECK(o->alloc(m->be, &probs, ORC_DTYPE_F32, n, (int64_t)c->n_head * f->call_keys, "attention probabilities",
                       f->err));
    }
    orc_status st = attention(f, il, ap, probs.data ? &probs : NULL);
    if (st == ORC_OK && probs.data) st = hook_at(f, probs_hook, &probs, n);
    o->free(m->be, &probs);
    CHECK(st);
    return ORC_OK;
}

static orc_status block_attn(orc_fwd *f, int32_t il, uint32_t opts) {
    PROGRAM_LOCALS(f);
    const bool swa = orc_config_layer_swa(c, il);
    const orc_rope_params rp = {
        .n_rot = c->n_rot,
        .neox = c->rope_type == ORC_ROPE_NEOX,
        .base = swa ? c->rope_theta_swa : c->rope_theta,
        .freq_scale = swa ? c->rope_freq_scale_swa : c->rope_freq_scale,
        .yarn_factor = c->yarn_factor,
        .yarn_beta_fast = c->yarn_beta_fast,
        .yarn_beta_slow = c->yarn_beta_slow,
        .yarn_attn_factor = c->yarn_factor > 0 ? c->yarn_attn_factor : 1.0f,
        .yarn_orig_ctx = c->yarn_orig_ctx,
        .yarn_round = c->yarn_round,
    };
    const orc_tensor *inv_freq = &m->rope_inv[swa ? 1 : 0];
    const orc_attn_params ap = {
        .n_head = c->n_head, .n_head_kv = c->n_head_kv, .head_dim = c->head_dim, .head_dim_v = c->head_dim_v,
        .scale = c->attn_scale, .softcap = c->attn_softcap, .window = swa ? c->sliding_window : 0,
        .sinks = (opts & ORC_OPT_SINKS) ? W(SINKS) : NULL,
    };
    /* q, k, v: the norm fused into each product's input unless attn_norm is hooked */
    bool xn_done = false;
    const orc_tensor *norm = W(ATTN_NORM);
    if (!fusing(f) || step_on(f, il, ORC_S_ATTN_NORM)) {
        OP(RMS_NORM, o->rms_norm(e, &s->x, norm, n, c->n_embd, c->rms_eps, &s->xn, f->err));
        HOOK(ATTN_NORM, &s->xn);
        xn_done = true;
    }
    const orc_tensor *qkv_in = xn_done ? &s->xn : &s->x, *qkv_norm = xn_done ? NULL : norm;
    orc_status stacked = ORC_E_UNSUPPORTED;
    if (fusing(f) && o->matvec_stack) { /* q, k, v from one read of x: their hooks are outputs, so still exact */
        const orc_tensor *ws[3] = {W(WQ), W(WK), W(WV)}, *bs[3] = {W(BQ), W(BK), W(BV)};
        orc_tensor *outs[3] = {&s->q, &s->k, &s->v};
        FUSED(stacked, o->matvec_stack(e, qkv_in, qkv_norm, c->rms_eps, ws, bs, 3, n, outs, f->err));
        if (stacked != ORC_OK && stacked != ORC_E_UNSUPPORTED) return stacked;
    }
    if (stacked == ORC_E_UNSUPPORTED) CHECK(linear(f, qkv_in, qkv_norm, &xn_done, W(WQ), W(BQ), NULL, &s->q));
    HOOK(Q, &s->q);
    if (stacked == ORC_E_UNSUPPORTED) CHECK(linear(f, qkv_in, qkv_norm, &xn_done, W(WK), W(BK), NULL, &s->k));
    HOOK(K, &s->k);
    if (stacked == ORC_E_UNSUPPORTED) CHECK(linear(f, qkv_in, qkv_norm, &xn_done, W(WV), W(BV), NULL, &s->v));
    HOOK(V, &s->v);
    /* One launch where the backend has it; a patched q_rope / k_rope must reach what follows,
     * so patches run the three primitives. The q/k norms join it unless their hooks are on
     * (bit-identical either way: backend.h). */
    const bool one_launch = o->rope_kv_store && !step_patched(f, il, ORC_S_Q_ROPE) && !step_patched(f, il, ORC_S_K_ROPE);
    const int32_t probs_hook = m->hook_index[il * ORC_S_COUNT + ORC_S_ATTN_PROBS];
    bool cap_probs, patch_probs;
    const bool want_probs = hook_wanted(f, probs_hook, &cap_probs, &patch_probs);
    CHECK(rope_then_attention(f, il, opts, one_launch, &rp, inv_freq, &ap, want_probs, patch_probs, probs_hook));
    HOOK(ATTN_OUT, &s->att);
    bool unused = true;
    if (!(opts & ORC_OPT_POST_NORM) && fusing(f) && !step_on(f, il, ORC_S_ATTN_PROJ)) {
        CHECK(linear(f, &s->att, NULL, &unused, W(WO), W(BO), &s->x, &s->x)); /* x += W . att + b */
    } else {
        CHECK(linear(f, &s->att, NULL, &unused, W(WO), W(BO), NULL, &s->proj));
        HOOK(ATTN_PROJ, &s->proj);
        CHECK(add_block_output(f, il, opts, ORC_T_ATTN_POST_NORM, ORC_S_ATTN_POST_NORM));
    }
    HOOK(RESID_MID, &s->x);
    return ORC_OK;
}

static orc_status block_ffn(orc_fwd *f, int32_t il, uint32_t opts) {
    PROGRAM_LOCALS(f);
    /* norm, gate, up and the activation in one launch unless one of them is hooked */
    orc_status st = ORC_E_UNSUPPORTED;
    if (fusing(f) && o->matvec_glu && !step_on(f, il, ORC_S_FFN_NORM) && !step_on(f, il, ORC_S_FFN_GATE) &&
        !step_on(f, il, ORC_S_FFN_UP))
        FUSED(st, o->matvec_glu(e, &s->x, W(FFN_NORM), c->rms_eps, W(W_GATE), W(W_UP), c->ffn_act, n, &s->act, f->err));
    if (st == ORC_E_UNSUPPORTED) {
        OP(RMS_NORM, o->rms_norm(e, &s->x, W(FFN_NORM), n, c->n_embd, c->rms_eps, &s->xn, f->err));
        HOOK(FFN_NORM, &s->xn);
        bool done = true;
        CHECK(linear(f, &s->xn, NULL, &done, W(W_GATE), NULL, NULL, &s->gate));
        HOOK(FFN_GATE, &s->gate);
        CHECK(linear(f, &s->xn, NULL, &done, W(W_UP), NULL, NULL, &s->up));
        HOOK(FFN_UP, &s->up);
        OP(GLU, o->glu(e, &s->gate, &s->up, n, c->ffn_act, &s->act, f->err));
    } else {
        CHECK(st);
    }
    HOOK(FFN_ACT, &s->act);
    bool unused = true;
    if (!(opts & ORC_OPT_POST_NORM) && fusing(f) && !step_on(f, il, ORC_S_FFN_OUT)) {
        CHECK(linear(f, &s->act, NULL, &unused, W(W_DOWN), NULL, &s->x, &s->x)); /* x += W . act */
        return ORC_OK;
    }
    CHECK(linear(f, &s->act, NULL, &unused, W(W_DOWN), NULL, NULL, &s->proj));
    HOOK(FFN_OUT, &s->proj);
    return add_block_output(f, il, opts, ORC_T_FFN_POST_NORM, ORC_S_FFN_POST_NORM);
}

/* A mixture-of-experts FFN: the router picks k experts a token (orc_router_kind), each
 * selected expert runs its gated FFN on the token, and the outputs are summed with the
 * router's weights. Slots are (token, j) pairs, row t*k + j of the per-slot buffers. */
/* The selected experts' gate/up products and activation in one launch (eact), the FFN norm in its
 * prologue unless xn holds it; with `route`, the router's top-k in it too. */
static orc_status expert_gate_up(orc_fwd *f, int32_t il, bool xn_done, const orc_tensor *norm,
                                 const orc_moe_route_in *route) {
    PROGRAM_LOCALS(f);
    return o->matvec_glu_id(e, xn_done ? &s->xn : &s->x, xn_done ? NULL : norm, c->rms_eps, W(GATE_EXPS), W(UP_EXPS),
                            W(GATE_EXPS_B), W(UP_EXPS_B), &s->topk_ids, route, n, c->n_expert_used, c->ffn_act,
                            &s->eact, f->err);
}

static orc_status block_moe(orc_fwd *f, int32_t il, uint32_t opts) {
    PROGRAM_LOCALS(f);
    const int32_t K = c->n_expert_used;
    const int64_t NS = n * K;
    const orc_tensor *norm = (opts & ORC_OPT_NORM_PA) ? W(FFN_NORM_PA) : W(FFN_NORM);
    /* the selected experts: fused launches that read only their blocks, or the primitives; fused,
     * the router's and the gate/up launch's prologues apply the FFN norm (unless it is hooked) */
    const bool fuse = fusing(f) && NS <= FUSE_MAX_TOKENS && o->matvec_glu_id && o->matvec_slots;
    bool xn_done = false;
    if (fuse && !step_on(f, il, ORC_S_FFN_NORM)) {
        CHECK(linear(f, &s->x, norm, &xn_done, W(ROUTER), W(ROUTER_B), NULL, &s->router));
    } else {
        OP(RMS_NORM, o->rms_norm(e, &s->x, norm, n, c->n_embd, c->rms_eps, &s->xn, f->err));
        xn_done = true;
        HOOK(FFN_NORM, &s->xn);
        OP(MATMUL, o->matmul(e, &s->xn, W(ROUTER), n, &s->router, f->err));
        if (W(ROUTER_B)) OP(ADD_BIAS, o->add_bias(e, &s->router, W(ROUTER_B), n, f->err));
    }
    HOOK(MOE_ROUTER, &s->router);
    /* the top-k inside the gate/up launch where the backend takes it and its hooks are off (the
     * same ids and weights); else its own launch first */
    const orc_moe_route_in route = {.logits = &s->router, .kind = c->router, .norm = c->norm_topk_prob, .w = &s->topk_w};
    const bool route_in_glu = fuse && !step_on(f, il, ORC_S_MOE_TOPK_IDS) && !step_on(f, il, ORC_S_MOE_TOPK_W);
    orc_status st = ORC_E_UNSUPPORTED;
    if (route_in_glu) FUSED(st, expert_gate_up(f, il, xn_done, norm, &route));
    if (st == ORC_E_UNSUPPORTED) {
        OP(MOE, o->moe_route(e, &s->router, n, K, c->router, c->norm_topk_prob, &s->topk_ids, &s->topk_w, f->err));
        HOOK(MOE_TOPK_IDS, &s->topk_ids);
        HOOK(MOE_TOPK_W, &s->topk_w);
        if (fuse) FUSED(st, expert_gate_up(f, il, xn_done, norm, NULL));
    }
    if (st == ORC_E_UNSUPPORTED && !xn_done) {
        OP(RMS_NORM, o->rms_norm(e, &s->x, norm, n, c->n_embd, c->rms_eps, &s->xn, f->err));
        xn_done = true;
    }
    /* many slots: the three products and the GLU in one call where the backend has it (no hook
     * lies between moe_topk_w and moe_experts) */
    bool ffn_done = false;
    if (st == ORC_E_UNSUPPORTED && !fuse && o->moe_ffn) {
        FUSED(st, o->moe_ffn(e, &s->xn, W(GATE_EXPS), W(UP_EXPS), W(DOWN_EXPS), W(GATE_EXPS_B), W(UP_EXPS_B),
                             W(DOWN_EXPS_B), &s->topk_ids, n, K, c->ffn_act, &s->ey, f->err));
        if (st != ORC_E_UNSUPPORTED) CHECK(st);
        ffn_done = st == ORC_OK;
    }
    if (!ffn_done) {
        if (st == ORC_E_UNSUPPORTED) {
            OP(MATMUL, o->matmul_id(e, &s->xn, false, W(GATE_EXPS), W(GATE_EXPS_B), &s->topk_ids, n, K, &s->egate,
                                    f->err));
            OP(MATMUL, o->matmul_id(e, &s->xn, false, W(UP_EXPS), W(UP_EXPS_B), &s->topk_ids, n, K, &s->eup, f->err));
            OP(GLU, o->glu(e, &s->egate, &s->eup, NS, c->ffn_act, &s->eact, f->err));
        } else {
            CHECK(st);
        }
        st = ORC_E_UNSUPPORTED;
        if (fuse)
            FUSED(st, o->matvec_slots(e, &s->eact, W(DOWN_EXPS), W(DOWN_EXPS_B), &s->topk_ids, n, K, &s->ey, f->err));
        if (st == ORC_E_UNSUPPORTED) {
            OP(MATMUL, o->matmul_id(e, &s->eact, true, W(DOWN_EXPS), W(DOWN_EXPS_B), &s->topk_ids, n, K, &s->ey,
                                    f->err));
        } else {
            CHECK(st);
        }
    }
    /* moe_experts: each selected expert's output before weighting, a token's K rows side by side */
    orc_tensor per_token = s->ey;
    per_token.rows = n;
    per_token.cols = (int64_t)K * s->ey.cols;
    per_token.row_bytes = (uint64_t)K * s->ey.row_bytes;
    per_token.nbytes = 0;
    HOOK(MOE_EXPERTS, &per_token);
    /* The residual add folded into the weighted sum (the same roundings) unless ffn_out is
     * hooked or a post-FFN norm comes between. */
    if (!(opts & ORC_OPT_POST_NORM) && !step_on(f, il, ORC_S_FFN_OUT)) {
        OP(MOE, o->moe_combine(e, &s->ey, &s->topk_w, n, K, &s->x, &s->x, f->err));
        return ORC_OK;
    }
    OP(MOE, o->moe_combine(e, &s->ey, &s->topk_w, n, K, NULL, &s->proj, f->err));
    HOOK(FFN_OUT, &s->proj);
    return add_block_output(f, il, opts, ORC_T_FFN_POST_NORM, ORC_S_FFN_POST_NORM);
}

#undef W

/* Logits of the chunk's selected rows, LOGITS rows at a time; the "logits" hook sees them. */
static orc_status logits_out(orc_fwd *f) {
    orc_session *s = f->s;
    orc_model *m = s->m;
    orc_exec *e = s->ex;
    const orc_backend_ops *o = m->be->ops;
    const orc_config *c = &m->cfg;
    const orc_tensor *out_w = orc_model_w(m, ORC_T_OUTPUT, 0);
    if (!out_w) out_w = orc_model_w(m, ORC_T_TOK_EMBD, 0);
    for (int64_t j0 = 0; j0 < f->n_lrows; j0 += s->logits.rows) {
        const int64_t k = f->n_lrows - j0 < s->logits.rows ? f->n_lrows - j0 : s->logits.rows;
        orc_tensor xin;
        if (f->norm_in_logits) { /* rows of the residual stream, the norm in the product */
            xin = orc_tensor_rows(&s->x, f->lrow[j0], k);
            bool unused = true;
            CHECK(linear_n(f, k, &xin, orc_model_w(m, ORC_T_OUTPUT_NORM, 0), &unused, out_w, NULL, NULL, &s->logits));
            goto computed;
        }
        if (f->lrows_contiguous) {
            xin = orc_tensor_rows(&s->xn, f->lrow[j0], k);
        } else {
            CHECK(o->upload(m->be, &s->in_lidx, 0, k, f->lrow + j0, f->err));
            OP(GET_ROWS, o->get_rows(e, &s->xn, &s->in_lidx, k, 1.0f, &s->lrows, f->err));
            xin = orc_tensor_rows(&s->lrows, 0, k);
        }
        OP(MATMUL, o->matmul(e, &xin, out_w, k, &s->logits, f->err));
    computed:
        if (c->final_softcap > 0) OP(SOFTCAP, o->softcap(e, &s->logits, k, c->final_softcap, f->err));
        /* The logits hook sees every row of the chunk in order (then lrow is 0..n-1). */
        const int64_t saved_row0 = f->row0;
        f->row0 = saved_row0 + j0;
        orc_status st = hook_at(f, m->hook_logits, &s->logits, k);
        f->row0 = saved_row0;
        CHECK(st);
        /* "argmax": each row reduced on the backend (after the hook: a patched row is the one chosen from). */
        if (f->argmax) OP(ARGMAX, o->argmax(e, &s->logits, k, &s->greedy, f->err));
        if (f->keep_logits) continue; /* a recorded step: downloaded after the replay */
        const orc_tensor *res = f->argmax ? &s->greedy : &s->logits;
        const int64_t width = f->argmax ? ORC_ARGMAX_FLOATS : c->n_vocab;
        for (int64_t j = 0; j < k; j++) {
            if (f->ldst[j0 + j] < 0) continue; /* computed for the logits hook only */
            /* Consecutive destinations download together. */
            int64_t run = 1;
            while (j + run < k && f->ldst[j0 + j + run] == f->ldst[j0 + j] + run) run++;
            OP(DOWNLOAD, o->download(m->be, res, j, run, f->logits + (int64_t)f->ldst[j0 + j] * width, f->err));
            j += run - 1;
        }
    }
    return ORC_OK;
}

orc_status orc_program_run(orc_fwd *f) {
    PROGRAM_LOCALS(f);

    OP(GET_ROWS, o->get_rows(e, orc_model_w(m, ORC_T_TOK_EMBD, 0), &f->bt.ids, n, c->embd_scale, &s->x, f->err));
    CHECK(hook_at(f, m->hook_embd, &s->x, n));
    for (int32_t il = 0; il < c->n_layer; il++) {
        for (int b = 0; b < m->desc->n_blocks; b++) {
            const orc_block_use *u = &m->desc->blocks[b];
            switch (u->kind) {
            case ORC_BLOCK_ATTN: CHECK(block_attn(f, il, u->opts)); break;
            case ORC_BLOCK_FFN: CHECK(block_ffn(f, il, u->opts)); break;
            case ORC_BLOCK_MOE: CHECK(block_moe(f, il, u->opts)); break;
            default:
                return orc_fail(f->err, ORC_E_UNSUPPORTED, "the %s architecture uses a block orc does not run yet",
                                c->arch);
            }
        }
        HOOK(RESID_POST, &s->x);
        if (f->cancel && f->cancel(f->user))
            return orc_fail(f->err, ORC_E_INTERRUPTED, "forward interrupted at layer %d", (int)il);
    }
    /* the final norm is fused into the output product unless output_norm is hooked */
    bool captured, patched;
    f->norm_in_logits = fusing(f) && f->lrows_contiguous && !hook_wanted(f, m->hook_output_norm, &captured, &patched);
    if (!f->norm_in_logits) {
        OP(RMS_NORM, o->rms_norm(e, &s->x, orc_model_w(m, ORC_T_OUTPUT_NORM, 0), n, c->n_embd, c->rms_eps, &s->xn,
                                 f->err));
        CHECK(hook_at(f, m->hook_output_norm, &s->xn, n));
    }
    return logits_out(f);
}
