/* elementwise.cu - gathers, adds, activations and conversions: the kernels
 * where every element is independent. Grid-stride loops, so any length works. */
#include "runtime/dtype.cuh"
#include "runtime/launch.cuh" /* orc_launch_dependent */
#include "runtime/simt.cuh"   /* orc_pdl_enter */
#include "kernels/glu_act.cuh" /* orc_glu_act */
#include "kernels/kernels.cuh"

#define FOR_EACH(i, len) for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (len); i += (int64_t)gridDim.x * blockDim.x)

__global__ void orc_get_rows_kernel(const void *table, orc_dtype dt, int64_t cols, const int32_t *ids, int64_t n,
                                    float scale, float *out) {
    FOR_EACH(i, n * cols) {
        int64_t r = i / cols, c = i % cols;
        out[i] = orc_load_f32(table, dt, (int64_t)ids[r] * cols + c) * scale;
    }
}

cudaError_t orc_launch_get_rows(const void *table, orc_dtype dt, int64_t cols, const int32_t *ids, int64_t n,
                                float scale, float *out, cudaStream_t s) {
    orc_get_rows_kernel<<<orc_grid_1d(n * cols, 256), 256, 0, s>>>(table, dt, cols, ids, n, scale, out);
    return cudaGetLastError();
}

__global__ void orc_add_bias_kernel(float *x, const float *bias, int64_t len, int64_t cols) {
    FOR_EACH(i, len) x[i] += bias[i % cols];
}

cudaError_t orc_launch_add_bias(float *x, const float *bias, int64_t n, int64_t cols, cudaStream_t s) {
    orc_add_bias_kernel<<<orc_grid_1d(n * cols, 256), 256, 0, s>>>(x, bias, n * cols, cols);
    return cudaGetLastError();
}

__global__ void orc_add_kernel(const float *a, const float *b, float *out, int64_t len) {
    FOR_EACH(i, len) out[i] = a[i] + b[i];
}

cudaError_t orc_launch_add(const float *a, const float *b, float *out, int64_t len, cudaStream_t s) {
    orc_add_kernel<<<orc_grid_1d(len, 256), 256, 0, s>>>(a, b, out, len);
    return cudaGetLastError();
}

/* act(gate) * up, ORC_ACT_* (kernels/glu_act.cuh: the CPU's operations in its order) */
__global__ void orc_glu_kernel(const float *gate, const float *up, float *out, int64_t len, int act) {
    FOR_EACH(i, len) out[i] = orc_glu_act(act, gate[i], up[i]);
}

cudaError_t orc_launch_glu(const float *gate, const float *up, float *out, int64_t len, int act, cudaStream_t s) {
    orc_glu_kernel<<<orc_grid_1d(len, 256), 256, 0, s>>>(gate, up, out, len, act);
    return cudaGetLastError();
}

__global__ void orc_softcap_kernel(float *x, int64_t len, float cap) {
    FOR_EACH(i, len) x[i] = cap * tanhf(x[i] / cap);
}

cudaError_t orc_launch_softcap(float *x, int64_t len, float cap, cudaStream_t s) {
    orc_softcap_kernel<<<orc_grid_1d(len, 256), 256, 0, s>>>(x, len, cap);
    return cudaGetLastError();
}

__global__ void orc_from_f32_kernel(const float *src, void *dst, orc_dtype dt, int64_t len) {
    FOR_EACH(i, len) orc_store_from_f32(dst, dt, i, src[i]);
}

cudaError_t orc_launch_convert_from_f32(const float *src, void *dst, orc_dtype dt, int64_t len, cudaStream_t s) {
    orc_from_f32_kernel<<<orc_grid_1d(len, 256), 256, 0, s>>>(src, dst, dt, len);
    return cudaGetLastError();
}

__global__ void orc_to_f32_kernel(const void *src, orc_dtype dt, float *dst, int64_t len) {
    FOR_EACH(i, len) dst[i] = orc_load_f32(src, dt, i);
}

cudaError_t orc_launch_convert_to_f32(const void *src, orc_dtype dt, float *dst, int64_t len, cudaStream_t s) {
    orc_to_f32_kernel<<<orc_grid_1d(len, 256), 256, 0, s>>>(src, dt, dst, len);
    return cudaGetLastError();
}

__global__ void orc_raw_as_f16_kernel(const uint16_t *raw, uint64_t n_half, void *dst, orc_dtype dt, int64_t len) {
    FOR_EACH(i, len) {
        __half h = __ushort_as_half(raw[(uint64_t)i % n_half]);
        if (dt == ORC_DTYPE_F16)
            ((__half *)dst)[i] = h;
        else
            orc_store_from_f32(dst, dt, i, __half2float(h));
    }
}

cudaError_t orc_launch_raw_as_f16(const uint16_t *raw, uint64_t n_half, void *dst, orc_dtype dt, int64_t len,
                                  cudaStream_t s) {
    orc_raw_as_f16_kernel<<<orc_grid_1d(len, 256), 256, 0, s>>>(raw, n_half, dst, dt, len);
    return cudaGetLastError();
}

/* K and V rows of n tokens into cache rows rows[i], converted to the cache dtype: one launch for both. */
__global__ void orc_kv_store_kernel(const float *k, const float *v, void *kc, void *vc, orc_dtype dt, int64_t kcols,
                                    int64_t vcols, int64_t n, const int32_t *rows) {
    orc_pdl_enter();
    const int64_t nk = n * kcols;
    FOR_EACH(i, nk + n * vcols) {
        if (i < nk) {
            const int64_t t = i / kcols, c = i % kcols;
            orc_store_from_f32(kc, dt, (int64_t)rows[t] * kcols + c, k[i]);
        } else {
            const int64_t j = i - nk, t = j / vcols, c = j % vcols;
            orc_store_from_f32(vc, dt, (int64_t)rows[t] * vcols + c, v[j]);
        }
    }
}

cudaError_t orc_launch_kv_store(const float *k, const float *v, void *kc, void *vc, orc_dtype dt, int64_t kcols,
                                int64_t vcols, int64_t n, const int32_t *rows, cudaStream_t s) {
    if (n <= 0) return cudaSuccess;
    return orc_launch_dependent(orc_kv_store_kernel, dim3(orc_grid_1d(n * (kcols + vcols), 256)), dim3(256), 0, s, k, v,
                                kc, vc, dt, kcols, vcols, n, rows);
}
