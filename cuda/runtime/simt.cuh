/* simt.cuh - the device primitives of orc's pipelined kernels (cuda/gemv/, the flash
 * attention): 16-byte cp.async with zero fill, its commit/wait groups, ldmatrix, mma.sync
 * m16n8k16 (f16 and bf16, float32 accumulate), the two-way integer dot products (dp2a), the
 * fence / atomic / L2 load of a grid's "last block finishes" step, and block-shared declarations.
 *
 * They live here, one definition each, so that the same kernel sources also run under the
 * host SIMT emulator of tests/c/simt_emu.h (built with ORC_SIMT_EMU): the kernel tests that
 * run without a GPU (tests/test_gpu_kernels.py) execute the real kernel code lane by lane,
 * with these primitives emulated per the PTX ISA. */
#ifndef ORC_SIMT_CUH
#define ORC_SIMT_CUH

#ifdef ORC_SIMT_EMU
#include "simt_emu.h" /* tests/c: the host emulation of everything below and of CUDA's builtins */
#else

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

/* A block-shared array (statically sized) and the kernel's dynamic shared memory. */
#define ORC_SHARED_ARRAY(T, name, n) __shared__ T name[n]
#define ORC_EXTERN_SHARED(T, name) extern __shared__ __align__(16) T name[]

/* 16 bytes global -> shared, asynchronously; src_bytes < 16 zero-fills the rest (0: reads
 * nothing). Both addresses 16-byte aligned. Completes at orc_cp_wait. */
__device__ __forceinline__ void orc_cp16(void *smem, const void *gmem, uint32_t src_bytes) {
    const uint32_t d = (uint32_t)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(d), "l"(gmem), "r"(src_bytes) : "memory");
}
__device__ __forceinline__ void orc_cp_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
/* Wait until at most N of this thread's committed groups are pending. */
template <int N>
__device__ __forceinline__ void orc_cp_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

/* Programmatic dependent launch (sm_90; no-ops before, and in a grid launched without the
 * attribute): orc_pdl_wait blocks until the grids this one depends on have completed and their
 * writes are visible, so nothing a previous kernel wrote may be read before it; orc_pdl_trigger
 * lets the next grid, if launched with the attribute, start its own pre-wait part (its blocks
 * take SM room only as this grid's blocks free it). */
__device__ __forceinline__ void orc_pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void orc_pdl_trigger() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

/* ldmatrix .x4 (.trans): this lane gives the shared address of row (lane & 7) of matrix
 * (lane >> 3); r[m] receives matrix m's row lane / 4, 32-bit word lane % 4 (transposed:
 * of the transposed matrix). */
__device__ __forceinline__ void orc_ldsm_x4(const void *smem, uint32_t *r) {
    const uint32_t a = (uint32_t)__cvta_generic_to_shared(smem);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a));
}
__device__ __forceinline__ void orc_ldsm_x4_t(const void *smem, uint32_t *r) {
    const uint32_t a = (uint32_t)__cvta_generic_to_shared(smem);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a));
}

/* c[0..3] += A (16x16, a[4]) x B (16x8, b0 b1), float32 accumulate. */
__device__ __forceinline__ void orc_mma_f16(float *c, const uint32_t *a, uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ void orc_mma_bf16(float *c, const uint32_t *a, uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/* Two floats as packed f16 / bf16 (round to nearest even), lo in the low half. */
__device__ __forceinline__ uint32_t orc_pack_f16(float lo, float hi) {
    union {
        __half2 h;
        uint32_t u;
    } c;
    c.h = __floats2half2_rn(lo, hi);
    return c.u;
}
__device__ __forceinline__ uint32_t orc_pack_bf16(float lo, float hi) {
    union {
        __nv_bfloat162 h;
        uint32_t u;
    } c;
    c.h = __floats2bfloat162_rn(lo, hi);
    return c.u;
}

/* c + a.lo16 * b.byte0 + a.hi16 * b.byte1 (lo) or with bytes 2 and 3 (hi): a holds two signed
 * 16-bit values, b four bytes (U8: unsigned, else signed); exact in int32 (the callers keep
 * the sums in range). */
template <bool HI, bool U8>
__device__ __forceinline__ int orc_dp2a(uint32_t a, uint32_t b, int c) {
    int d;
    if (HI && U8) asm("dp2a.hi.s32.u32 %0, %1, %2, %3;\n" : "=r"(d) : "r"(a), "r"(b), "r"(c));
    if (HI && !U8) asm("dp2a.hi.s32.s32 %0, %1, %2, %3;\n" : "=r"(d) : "r"(a), "r"(b), "r"(c));
    if (!HI && U8) asm("dp2a.lo.s32.u32 %0, %1, %2, %3;\n" : "=r"(d) : "r"(a), "r"(b), "r"(c));
    if (!HI && !U8) asm("dp2a.lo.s32.s32 %0, %1, %2, %3;\n" : "=r"(d) : "r"(a), "r"(b), "r"(c));
    return d;
}
template <bool U8>
__device__ __forceinline__ int orc_dp2a_lo(uint32_t a, uint32_t b, int c) { return orc_dp2a<false, U8>(a, b, c); }
template <bool U8>
__device__ __forceinline__ int orc_dp2a_hi(uint32_t a, uint32_t b, int c) { return orc_dp2a<true, U8>(a, b, c); }

/* The last-arriving block's step (orc_block_is_last below): each thread fences its global
 * stores before the block counts itself in with orc_arrive (which returns the count before
 * this arrival); the block that sees the count complete fences again and reads the others'
 * stores through L2 (orc_ldcg: L1 is not coherent across SMs). */
__device__ __forceinline__ void orc_fence() { __threadfence(); }
__device__ __forceinline__ unsigned orc_arrive(unsigned *count) { return atomicAdd(count, 1u); }
__device__ __forceinline__ float orc_ldcg(const float *p) { return __ldcg(p); }

#endif /* ORC_SIMT_EMU */

/* The first statement of a kernel launched as a dependent (runtime/launch.cuh) that has nothing
 * to fetch before its inputs exist: let the next grid launch (its blocks wait in their own
 * orc_pdl_wait, or prefetch weights, while this one runs), then wait for the previous grid. */
__device__ __forceinline__ void orc_pdl_enter() {
    orc_pdl_trigger();
    orc_pdl_wait();
}

/* Called by every thread of a block once its global stores are done: true in the one block
 * whose arrival completes `n` on *count (which it resets to zero for the next launch, nobody
 * else touching it in this one); that block may then read the others' stores with orc_ldcg.
 * On the primitives above, so the emulator runs it too. */
__device__ __forceinline__ bool orc_block_is_last(unsigned *count, unsigned n) {
    ORC_SHARED_ARRAY(int, last, 1);
    orc_fence(); /* this thread's stores, visible before the block counts itself in */
    __syncthreads();
    if (threadIdx.x == 0) {
        last[0] = orc_arrive(count) == n - 1;
        if (last[0]) *count = 0u;
    }
    __syncthreads();
    if (!last[0]) return false;
    orc_fence();
    return true;
}

#endif /* ORC_SIMT_CUH */
