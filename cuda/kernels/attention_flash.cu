/* attention_flash.cu - FlashAttention-2 style prefill attention (attention_flash.cuh).
 *
 * Rows: with G = n_head / n_head_kv query heads per kv head, the M dimension of a block
 * is the (token, head of the group) pairs m = t * G + h % G that share kv head g, so a
 * GQA group reads each K/V tile once for all its heads, and even short prompts fill the
 * 64-row tiles. Grid: (ceil(n * G / 64) row tiles, heaviest first; n_head_kv).
 * Block: 4 warps, 16 rows each. The block stages its 64 query rows (rounded to the cache
 * dtype) in shared memory once, then walks the keys any of its rows can see in tiles of
 * BK (64; 32 for head size 256, for registers), double-buffered with 16-byte cp.async
 * (keys past the block's range are zero-filled, never read). Per tile and warp:
 *   S = Q K^T  (mma.sync m16n8k16, fragments from ldmatrix), scale / softcap / mask in
 *   float32 (base-2 exponents), online softmax (running max and lane-partial sums, the
 *   sink's term folded in as the initial state), P rounded to the cache dtype,
 *   O += P V (ldmatrix.trans of V).
 * A warp skips the tiles none of its rows can see. Shared-memory rows are padded by 16
 * bytes so that ldmatrix's 8 row addresses fall in distinct bank groups.
 */
#include "kernels/attention_flash_kernel.cuh"
#include "runtime/launch.cuh" /* orc_raise_smem_limit */

namespace {

using namespace orc_fa;

template <typename T, int D>
cudaError_t launch_fa(const orc_attn_flash_args *a, cudaStream_t s) {
    const cudaError_t e = orc_raise_smem_limit<orc_attn_flash_kernel<T, D>>((int)fa_cfg<D>::smem);
    if (e != cudaSuccess) return e;
    const int64_t rows = a->n * (a->n_head / a->n_head_kv);
    const int64_t tiles = (rows + kBQ - 1) / kBQ;
    if (tiles > 0x7fffffff || a->n_head_kv > 65535) return cudaErrorInvalidValue;
    const dim3 grid((unsigned)tiles, (unsigned)a->n_head_kv);
    orc_attn_flash_kernel<T, D><<<grid, kThreads, fa_cfg<D>::smem, s>>>(*a);
    return cudaGetLastError();
}

template <typename T>
cudaError_t launch_fa_t(const orc_attn_flash_args *a, cudaStream_t s) {
    switch (a->head_dim) {
    case 64: return launch_fa<T, 64>(a, s);
    case 80: return launch_fa<T, 80>(a, s);
    case 96: return launch_fa<T, 96>(a, s);
    case 128: return launch_fa<T, 128>(a, s);
    case 256: return launch_fa<T, 256>(a, s);
    default: return cudaErrorNotSupported;
    }
}

} /* namespace */

bool orc_attention_flash_supported(orc_dtype kv_dtype, int32_t head_dim, int32_t head_dim_v) {
    if (kv_dtype != ORC_DTYPE_F16 && kv_dtype != ORC_DTYPE_BF16) return false;
    if (head_dim != head_dim_v) return false;
    return head_dim == 64 || head_dim == 80 || head_dim == 96 || head_dim == 128 || head_dim == 256;
}

cudaError_t orc_launch_attention_flash(const orc_attn_flash_args *a, cudaStream_t s) {
    if (!a) return cudaErrorInvalidValue;
    if (a->n < 0 || a->n_head < 1 || a->n_head_kv < 1 || a->n_head % a->n_head_kv != 0 || a->window < 0 ||
        !(a->softcap >= 0.0f) || !(a->scale == a->scale))
        return cudaErrorInvalidValue;
    if (!orc_attention_flash_supported(a->kv_dtype, a->head_dim, a->head_dim_v)) return cudaErrorNotSupported;
    if ((uintptr_t)a->k_cache % 16 != 0 || (uintptr_t)a->v_cache % 16 != 0 || a->k_stride % 8 != 0 ||
        a->v_stride % 8 != 0)
        return cudaErrorNotSupported;
    if (a->n == 0) return cudaSuccess;
    if (!a->q || !a->out || !a->k_cache || !a->v_cache || !a->pos || !a->kv_base) return cudaErrorInvalidValue;
    if (a->q_stride < (int64_t)a->n_head * a->head_dim || a->out_stride < (int64_t)a->n_head * a->head_dim_v ||
        a->k_stride < (int64_t)a->n_head_kv * a->head_dim || a->v_stride < (int64_t)a->n_head_kv * a->head_dim_v)
        return cudaErrorInvalidValue;
    return a->kv_dtype == ORC_DTYPE_F16 ? launch_fa_t<__half>(a, s) : launch_fa_t<__nv_bfloat16>(a, s);
}
