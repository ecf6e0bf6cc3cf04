/* gpu_dequant.h - dequantization on the GPU (cuda/dequant.cu): every type of
 * quant.h, into float32, float16 or bfloat16 device buffers, bit-identical to the
 * CPU path (the decoders of quant_decode.h, or dequant_fast.cuh's equivalents). The CUDA backend calls
 * orc_cuda_dequantize at load; orc.dequantize(device="cuda") and the tests use the
 * host wrapper; bench/bench_dequant.py uses the timing entry point.
 * In a build without CUDA every function fails with ORC_E_NO_CUDA (gpu_dequant_none.c).
 */
#ifndef ORC_GPU_DEQUANT_H
#define ORC_GPU_DEQUANT_H

#include <stdint.h>

#include "core/orc.h"
#include "quant/quant.h"  /* orc_dtype */

#ifdef __cplusplus
extern "C" {
#endif

/* Dequantize `n` elements of ggml type `type` at device pointer `d_src` (`src_bytes`
 * exactly their size) into `d_dst` (n * orc_dtype_size(dtype) bytes), asynchronously
 * on `stream` (a cudaStream_t; NULL for the legacy default stream). Arguments are
 * checked as orc_quant_validate does. `d_src` may have any alignment and `d_dst` any
 * multiple of the output element size; 16-byte aligned buffers take the vectorized
 * path. Launch errors are reported here, faults inside the kernel at the next
 * synchronizing call on the stream. */
orc_status orc_cuda_dequantize(int32_t type, const void *d_src, uint64_t src_bytes, int64_t n, orc_dtype dtype,
                               void *d_dst, void *stream, orc_err *err);

/* The same from host memory to host memory: allocates device buffers, copies in,
 * runs, copies back, synchronizes and frees (on every path). */
orc_status orc_cuda_dequantize_host(int32_t type, const void *src, uint64_t src_bytes, int64_t n, orc_dtype dtype,
                                    void *dst, orc_err *err);

/* orc_cuda_dequantize_host with the device copies placed `src_offset` and `dst_offset`
 * bytes past 256-byte aligned bases (< 256; dst_offset a multiple of the output
 * element size): the tests use it to run the unaligned paths. */
orc_status orc_cuda_dequantize_host_at(int32_t type, const void *src, uint64_t src_bytes, int64_t n, orc_dtype dtype,
                                       void *dst, uint32_t src_offset, uint32_t dst_offset, orc_err *err);

/* Timing for the benchmark: the blocks in `src` (host) are copied to the device once;
 * the kernel runs `iters` times after one warm-up, timed with CUDA events; then a
 * cudaMemcpy device-to-device of copy_bytes = (src_bytes + dst_bytes) / 2 runs `iters`
 * times, so that both move the same number of bytes (read + written). */
typedef struct orc_cuda_dequant_timing {
    double kernel_ms_mean, kernel_ms_min; /* per launch */
    double copy_ms_mean, copy_ms_min;     /* per copy of copy_bytes */
    uint64_t src_bytes, dst_bytes, copy_bytes;
} orc_cuda_dequant_timing;

orc_status orc_cuda_dequantize_bench(int32_t type, const void *src, uint64_t src_bytes, int64_t n, orc_dtype dtype,
                                     int iters, orc_cuda_dequant_timing *out, orc_err *err);

#ifdef __cplusplus
}
#endif

#endif /* ORC_GPU_DEQUANT_H */
