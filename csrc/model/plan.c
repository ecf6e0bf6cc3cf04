/* plan.c - the tensor plan: which GGUF tensor fills each role of tensors.h, checked
 * against the shapes the configuration implies (HARDENING.md rows 16-18). */
#include <stdio.h>  /* snprintf */
#include <stdlib.h> /* calloc, free, strtol */
#include <string.h> /* strncmp */

#include "gguf/ggml_types.h"
#include "model/tensors.h"
#include "quant/quant.h"

bool orc_role_used(const orc_arch_desc *d, orc_tensor_slot slot) {
    const orc_tensor_role *r = &orc_tensor_roles[slot];
    if (r->scope == ORC_TS_GLOBAL) return true;
    for (int i = 0; i < d->n_blocks; i++)
        if ((r->blocks & (1u << d->blocks[i].kind)) && (r->opt == 0 || (d->blocks[i].opts & r->opt)) &&
            !(d->blocks[i].opts & r->unless))
            return true;
    return false;
}

static void shape_str(char *buf, size_t n, const int64_t *ne, uint32_t n_dims) {
    /* NumPy order, as the Python API shows shapes. */
    int k = snprintf(buf, n, "(");
    for (int d = (int)n_dims - 1; d >= 0 && k < (int)n; d--)
        k += snprintf(buf + k, n - (size_t)k, "%lld%s", (long long)ne[d], d ? ", " : (n_dims == 1 ? ",)" : ")"));
}

/* Look up `name`; check its shape is `want` (trailing 1s allowed) and its type one orc reads. */
static orc_status need(const orc_gguf *g, const char *name, const int64_t *want, int n_want, bool required,
                       const orc_gguf_tensor **out, orc_err *err) {
    const orc_gguf_tensor *t = orc_gguf_find_tensor(g, name);
    *out = NULL;
    if (!t) {
        if (required) return orc_fail(err, ORC_E_FORMAT, "missing tensor '%s'", name);
        return ORC_OK;
    }
    bool ok = true;
    for (int d = 0; d < 4; d++) {
        const int64_t w = d < n_want ? want[d] : 1;
        const int64_t have = d < (int)t->n_dims ? t->ne[d] : 1;
        ok = ok && w == have;
    }
    if (!ok) {
        char got[96], exp[96];
        shape_str(got, sizeof got, t->ne, t->n_dims);
        shape_str(exp, sizeof exp, want, (uint32_t)n_want);
        return orc_fail(err, ORC_E_FORMAT, "tensor '%s' has shape %s, expected %s", name, got, exp);
    }
    if (!orc_quant_supported(t->type)) {
        char buf[64];
        return orc_fail(err, ORC_E_UNSUPPORTED, "tensor '%s' has type %s, which orc cannot dequantize", name,
                        orc_type_name(t->type, buf, sizeof buf));
    }
    *out = t;
    return ORC_OK;
}

/* Tensors of blocks past block_count mean the file and its metadata disagree. */
static orc_status check_layer_count(const orc_gguf *g, const orc_config *c, orc_err *err) {
    for (uint64_t i = 0; i < orc_gguf_n_tensors(g); i++) {
        const char *nm = orc_gguf_tensor_at(g, i)->name_z;
        if (strncmp(nm, "blk.", 4) != 0) continue;
        char *end = NULL;
        long il = strtol(nm + 4, &end, 10);
        if (end == nm + 4 || *end != '.') continue;
        if (il >= c->n_layer)
            return orc_fail(err, ORC_E_FORMAT,
                            "tensor '%s' belongs to layer %ld but %s.block_count is %d: the metadata and the tensors "
                            "disagree",
                            nm, il, c->arch, (int)c->n_layer);
    }
    return ORC_OK;
}

orc_status orc_plan_build(const orc_gguf *g, const orc_arch_desc *d, orc_config *c, orc_plan *p, orc_err *err) {
    char name[96], key[128];
    orc_status st;
    memset(p, 0, sizeof *p);

    const orc_gguf_tensor *te = orc_gguf_find_tensor(g, "token_embd.weight");
    if (!te) return orc_fail(err, ORC_E_FORMAT, "missing tensor 'token_embd.weight'");
    if (te->n_dims < 2 || te->ne[1] <= 0 || te->ne[1] > (1 << 24))
        return orc_fail(err, ORC_E_FORMAT, "tensor 'token_embd.weight' must be 2-D with at most 2^24 rows");
    c->n_vocab = (int32_t)te->ne[1];
    snprintf(key, sizeof key, "%s.vocab_size", c->arch);
    if (orc_gguf_find_kv(g, key)) {
        int64_t vs;
        if ((st = orc_gguf_get_int(g, key, &vs, err)) != ORC_OK) return st;
        if (vs != c->n_vocab)
            return orc_fail(err, ORC_E_FORMAT, "'%s' is %lld but token_embd.weight has %d rows", key, (long long)vs,
                            (int)c->n_vocab);
    }
    /* The tokenizer and the embedding must agree on the vocabulary (llama.cpp requires it too). */
    const orc_gguf_kv *tok = orc_gguf_find_kv(g, "tokenizer.ggml.tokens");
    if (tok && tok->type == ORC_GGUF_ARRAY && tok->count != (uint64_t)c->n_vocab)
        return orc_fail(err, ORC_E_FORMAT, "tokenizer.ggml.tokens has %llu entries but token_embd.weight has %d rows",
                        (unsigned long long)tok->count, (int)c->n_vocab);
    if ((st = check_layer_count(g, c, err)) != ORC_OK) return st;

    p->n_layer = c->n_layer;
    p->n_slots = ORC_T_N_GLOBAL + c->n_layer * ORC_T_N_LAYER;
    p->t = calloc((size_t)p->n_slots, sizeof *p->t);
    if (!p->t) return orc_fail(err, ORC_E_NOMEM, "allocating the tensor plan");
    for (int slot = 0; slot < ORC_T_COUNT; slot++) {
        const orc_tensor_role *r = &orc_tensor_roles[slot];
        if (!orc_role_used(d, (orc_tensor_slot)slot)) continue;
        int64_t want[3];
        int n_want = 0;
        for (int k = 0; k < 3 && r->dims[k] != ORC_D_NONE; k++) want[n_want++] = orc_dim_size(c, r->dims[k]);
        const int32_t n_layers = r->scope == ORC_TS_GLOBAL ? 1 : c->n_layer;
        for (int32_t il = 0; il < n_layers; il++) {
            if (r->scope == ORC_TS_GLOBAL)
                snprintf(name, sizeof name, "%s", r->name);
            else
                snprintf(name, sizeof name, "blk.%d.%s", (int)il, r->name);
            st = need(g, name, want, n_want, r->required, &p->t[orc_plan_index((orc_tensor_slot)slot, il)], err);
            if (st != ORC_OK) {
                orc_plan_free(p);
                return st;
            }
        }
    }
    c->tied_output = p->t[ORC_T_OUTPUT] == NULL;
    c->rope_freqs = p->t[ORC_T_ROPE_FREQS] != NULL;
    return ORC_OK;
}

void orc_plan_free(orc_plan *p) {
    if (!p) return;
    free(p->t);
    p->t = NULL;
    p->n_slots = 0;
}
