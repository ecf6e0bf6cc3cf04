/* kernels.cuh - launchers for the CUDA backend's kernels (one .cu file per
 * family: elementwise.cu, norm.cu, rope.cu, attention.cu). Each
 * launcher queues work on `stream` and returns the launch status; faults inside
 * a kernel surface at the backend's next synchronizing call.
 * Activations are float32 row-major; weights/caches are float32/float16/bfloat16
 * as orc_dtype says. */
#ifndef ORC_KERNELS_CUH
#define ORC_KERNELS_CUH

#include <cuda_runtime.h>
#include <stdint.h>

#include "core/dtype.h" /* orc_dtype */
#include "kernels/attention_rope.h" /* orc_attn_rope */

/* elementwise.cu */
cudaError_t orc_launch_get_rows(const void *table, orc_dtype dt, int64_t cols, const int32_t *ids, int64_t n,
                                float scale, float *out, cudaStream_t s);
cudaError_t orc_launch_add_bias(float *x, const float *bias, int64_t n, int64_t cols, cudaStream_t s);
cudaError_t orc_launch_add(const float *a, const float *b, float *out, int64_t len, cudaStream_t s);
/* act: orc_act (arch.h): SILU, GELU_TANH, SWIGLU_OAI */
cudaError_t orc_launch_glu(const float *gate, const float *up, float *out, int64_t len, int act, cudaStream_t s);
cudaError_t orc_launch_softcap(float *x, int64_t len, float cap, cudaStream_t s);
/* argmax.cu: per row of x (rows x cols, row stride `stride` floats) out[row][4] = {index of the
 * greatest finite value (the first of equal ones; -1 if none), that value, the count of non-finite
 * values, the first one's index (-1 if none)} as float32. `scratch`: orc_argmax_scratch_bytes(rows)
 * bytes, zero-filled once before the first launch (its counts return to zero after each). */
size_t orc_argmax_scratch_bytes(int64_t rows);
cudaError_t orc_launch_argmax(const float *x, int64_t stride, int64_t rows, int64_t cols, float *out, void *scratch,
                              cudaStream_t s);
/* float32 -> dtype (round to nearest even) and dtype -> float32 */
cudaError_t orc_launch_convert_from_f32(const float *src, void *dst, orc_dtype dt, int64_t len, cudaStream_t s);
cudaError_t orc_launch_convert_to_f32(const void *src, orc_dtype dt, float *dst, int64_t len, cudaStream_t s);
/* K and V rows of n tokens into cache rows rows[i] (device int32 [n]). */
cudaError_t orc_launch_kv_store(const float *k, const float *v, void *kc, void *vc, orc_dtype dt, int64_t kcols,
                                int64_t vcols, int64_t n, const int32_t *rows, cudaStream_t s);
/* out[i] = dequantized row ids[i] of a GGUF-block table (type, row_bytes, cols) * scale. */
cudaError_t orc_launch_get_rows_q(int32_t type, const void *table, uint64_t row_bytes, int64_t cols,
                                  const int32_t *ids, int64_t n, float scale, float *out, cudaStream_t s);
/* The fault under test: `n_half` stored float16 words, cycled, as `len` values of dt. */
cudaError_t orc_launch_raw_as_f16(const uint16_t *raw, uint64_t n_half, void *dst, orc_dtype dt, int64_t len,
                                  cudaStream_t s);

/* norm.cu: rows of `width` (x viewed as [rows][width]); out may alias x. */
cudaError_t orc_launch_rms_norm(const float *x, const float *w, float *out, int64_t rows, int64_t width, float eps,
                                cudaStream_t s);

/* Positions and cache rows are device arrays (explicit step inputs), never host values:
 * a recorded CUDA graph replays the same kernels with new inputs. */

/* rope.cu: x [n][n_heads][head_dim] in place (rows row_stride apart), token i at position
 * pos[i]; inv_freq [n_rot/2] on the device; cos and sin multiplied by mscale (YaRN). */
cudaError_t orc_launch_rope(float *x, int64_t n, int32_t n_heads, int32_t head_dim, int32_t n_rot, int neox,
                            const int32_t *pos, float freq_scale, float mscale, const float *inv_freq,
                            int64_t row_stride, cudaStream_t s);

/* rope.cu: rope(q), rope(k) and the k/v cache stores in one launch (same arithmetic); v is
 * [n][v_cols] contiguous, the caches [rows][n_head_kv*head_dim] / [rows][v_cols]. With q_norm
 * and k_norm ([head_dim] each; else NULL) a per-head RMSNorm of q and k comes first,
 * bit-identical to orc_launch_rms_norm on each. */
cudaError_t orc_launch_rope_kv_store(float *q, float *k, const float *v, void *kc, void *vc, orc_dtype dt, int64_t n,
                                     int32_t n_head, int32_t n_head_kv, int32_t head_dim, int32_t n_rot, int neox,
                                     const int32_t *pos, const int32_t *rows, float freq_scale, float mscale,
                                     const float *inv_freq, int64_t q_stride, int64_t k_stride, int64_t v_cols,
                                     const float *q_norm, const float *k_norm, float eps, cudaStream_t s);

/* attention.cu. kv_row (the rows this step's KV store writes, or NULL) lets a split fetch every
 * other key row before the previous kernel completes. rope (or NULL): the fused rope + KV store
 * (attention_rope.h; q is then the raw q), cudaErrorNotSupported where the launch cannot take it
 * (not one query, no prefetch, or ORC_ATTN_FUSE_ROPE=0): the caller then runs orc_launch_rope_kv_store
 * and this launch without it. Split mode (n * n_head < n_sm) splits each query's keys into fixed chunks;
 * orc_attention_splits gives the count for a launch bounded by n_keys_max keys (0: no
 * split), and the splits need orc_attention_partials_floats(...) floats of scratch, zero-filled
 * once when allocated (its counts; every launch leaves them at zero); one launch at a time per
 * scratch. */
int32_t orc_attention_splits(int64_t n, int32_t n_head, int64_t n_keys_max, int32_t n_sm);
int64_t orc_attention_partials_floats(int64_t n, int32_t n_head, int32_t head_dim_v, int32_t n_split);
cudaError_t orc_launch_attention(const float *q, int64_t q_stride, const void *k_cache, const void *v_cache,
                                 orc_dtype kv_dt, int64_t k_stride, int64_t v_stride, float *out, int64_t out_stride,
                                 float *partials, int32_t n_split, int64_t n, const int32_t *pos,
                                 const int32_t *kv_base, const int32_t *kv_row, int32_t n_head, int32_t n_head_kv,
                                 int32_t head_dim, int32_t head_dim_v, float scale, float softcap, int32_t window,
                                 const float *sinks, const orc_attn_rope *rope, cudaStream_t s);
/* The softmax weights for the attn_probs hook: probs [n][n_head][keys]. */
cudaError_t orc_launch_attention_probs(const float *q, int64_t q_stride, const void *k_cache, orc_dtype kv_dt,
                                       int64_t k_stride, int64_t n, const int32_t *pos, const int32_t *kv_base,
                                       int32_t n_head, int32_t n_head_kv, int32_t head_dim, float scale, float softcap,
                                       int32_t window, const float *sinks, float *probs, int64_t keys,
                                       cudaStream_t s);


/* moe.cu: the mixture-of-experts primitives of backend.h (moe_route, matmul_id, moe_combine);
 * ids are int32 [n][k], slots s = t*k + j; bias (float32 [n_expert][rows_per], or NULL) is
 * added to each slot's product. */
cudaError_t orc_launch_moe_route(const float *logits, int64_t n, int32_t n_expert, int32_t k, int kind, bool norm,
                                 int32_t *ids, float *w, cudaStream_t s);
cudaError_t orc_launch_matmul_id(const float *x, bool per_slot, const void *w, orc_dtype w_dtype, int32_t w_qtype,
                                 uint64_t row_bytes, const float *bias, const int32_t *ids, int64_t n, int32_t k,
                                 int64_t rows_per, int64_t cols, bool round_inputs, float *out, cudaStream_t s);
/* Grouped expert products: gather x's slot rows in `order` (converted to dt), scatter results back
 * (+ bias[ids[slot]]). */
cudaError_t orc_launch_moe_gather(const float *x, bool per_slot, const int32_t *order, int64_t n_slots, int32_t k,
                                  int64_t cols, void *xg, orc_dtype dt, cudaStream_t s);
cudaError_t orc_launch_moe_scatter(const float *yg, const int32_t *order, const int32_t *ids, const float *bias,
                                   int64_t n_slots, int64_t rows, float *out, cudaStream_t s);
cudaError_t orc_launch_moe_combine(const float *y, const float *w, int64_t n, int32_t k, int64_t cols,
                                   const float *res, float *out, cudaStream_t s);

/* moe_grouped.cu: all of a step's expert products in one tensor-core launch, float16 inputs
 * and weights as the grouped cuBLAS products round them. Slots sorted by expert (`order`),
 * cut into tiles of at most orc_moe_grouped_tile_slots() slots of one expert: tiles[3 t ..]
 * = expert, first position in `order`, count. out[slot][row] in slot order, + bias[expert][row]
 * where bias is set (float32 [n_expert][rows_per]). */
int orc_moe_grouped_tile_slots(void);
bool orc_moe_grouped_supports(int32_t w_qtype, orc_dtype w_dtype, int64_t cols);
cudaError_t orc_launch_moe_grouped(const float *x, bool per_slot, int32_t k, const void *w, orc_dtype w_dtype,
                                   int32_t w_qtype, uint64_t row_bytes, int64_t rows_per, int64_t cols,
                                   const int32_t *order, const int32_t *tiles, int32_t n_tiles, const float *bias,
                                   float *out, cudaStream_t s);
/* The pipelined grouped product (moe_mma_kernel.cuh): stored blocks only (w 16-byte aligned, cols a
 * multiple of 64), xg the inputs gathered in `order` as float16 (orc_launch_moe_gather), w_bytes
 * the whole expert tensor's; the same tiles and out as orc_launch_moe_grouped. */
bool orc_moe_mma_supports(int32_t w_qtype, const void *w, int64_t cols);
cudaError_t orc_launch_moe_mma(const void *xg, const void *w, int32_t w_qtype, uint64_t row_bytes, uint64_t w_bytes,
                               int64_t rows_per, int64_t cols, const int32_t *order, const int32_t *tiles,
                               int32_t n_tiles, const float *bias, float *out, cudaStream_t s);
/* Its GLU mode: act(gate experts . x + bias_gate, up experts . x + bias_up) (act: ORC_ACT_*, the
 * GLU kernel's), float16 [sorted position][rows_per] in act_out: the down product's xg. w_gate and
 * w_up of one type and shape; biases float32 [n_expert][rows_per] or NULL. */
cudaError_t orc_launch_moe_mma_glu(const void *xg, const void *w_gate, const void *w_up, int32_t w_qtype,
                                   uint64_t row_bytes, uint64_t w_bytes, int64_t rows_per, int64_t cols,
                                   const int32_t *tiles, int32_t n_tiles, const float *bias_gate, const float *bias_up,
                                   int act, void *act_out, cudaStream_t s);
/* The grouping on the device (moe_group_kernel.cuh), for n_expert <= orc_moe_group_max_experts():
 * order and tiles as the host grouping writes them, tiles n..max-1 empty (0 slots), where max =
 * orc_moe_group_max_tiles(...) is the n_tiles to launch the products with; the out rows [rows]
 * of slots whose id is out of range written NaN. order: slots words, tiles: 3 x max. */
int32_t orc_moe_group_max_experts(void);
int64_t orc_moe_group_max_tiles(int64_t n_slots, int32_t n_expert);
cudaError_t orc_launch_moe_group(const int32_t *ids, int64_t n_slots, int32_t n_expert, int64_t rows, int32_t *order,
                                 int32_t *tiles, float *out, cudaStream_t s);

#endif /* ORC_KERNELS_CUH */
