// All-position logits of a token list from llama.cpp, for tools/check_moe_llama_cpp.py: one batch,
// CPU, float32 KV cache, no flash attention, so that the comparison with the float64 NumPy forward
// sees llama.cpp's model conventions rather than its storage precision.
//   llama_logits MODEL.gguf IDS.bin OUT.bin     (IDS: int32 tokens; OUT: float32 [n_tokens, n_vocab])
#include "llama.h"
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: model ids.bin out.bin\n"); return 1; }
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    struct llama_model *model = llama_model_load_from_file(argv[1], mp);
    if (!model) { fprintf(stderr, "load failed\n"); return 2; }
    FILE *f = fopen(argv[2], "rb");
    if (!f) { fprintf(stderr, "cannot open %s\n", argv[2]); return 1; }
    static int ids[4096];
    int n = (int)fread(ids, 4, 4096, f);
    fclose(f);
    if (n <= 0 || n > 512) { fprintf(stderr, "%d tokens: 1..512 supported\n", n); return 1; }
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = 512; cp.n_batch = 512; cp.n_ubatch = 512; cp.type_k = GGML_TYPE_F32; cp.type_v = GGML_TYPE_F32;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED; cp.n_threads = 2; cp.n_threads_batch = 2;
    struct llama_context *ctx = llama_init_from_model(model, cp);
    if (!ctx) { fprintf(stderr, "context failed\n"); return 3; }
    struct llama_batch b = llama_batch_init(n, 0, 1);
    for (int i = 0; i < n; i++) { b.token[i] = ids[i]; b.pos[i] = i; b.n_seq_id[i] = 1; b.seq_id[i][0] = 0; b.logits[i] = 1; }
    b.n_tokens = n;
    if (llama_decode(ctx, b)) { fprintf(stderr, "decode failed\n"); return 4; }
    const struct llama_vocab *v = llama_model_get_vocab(model);
    int nv = llama_vocab_n_tokens(v);
    FILE *o = fopen(argv[3], "wb");
    if (!o) { fprintf(stderr, "cannot write %s\n", argv[3]); return 1; }
    for (int i = 0; i < n; i++) fwrite(llama_get_logits_ith(ctx, i), 4, nv, o);
    fclose(o);
    printf("%d tokens, vocab %d\n", n, nv);
    llama_batch_free(b);
    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
