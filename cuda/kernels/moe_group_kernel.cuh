/* moe_group_kernel.cuh - a prefill's (token, expert) slots grouped by expert on the device, for
 * the grouped expert products (moe_grouped.cu's orc_launch_moe_group launches it), on
 * runtime/simt.cuh's primitives so that tests/c/test_moe_group_emu.cpp runs this same code on
 * the host emulator.
 *
 * Why on the device: grouping on the host costs a copy of the ids, a stream synchronisation and
 * the host's loop, three times a layer (gate, up, down): 144 round trips in a Qwen3-30B-A3B
 * prefill, each leaving the GPU idle while the host works and the next launches queue up.
 *
 * What it writes is the host grouping's (backend_cuda.cu, ORC_MOE_GROUP_HOST=1), bit for bit:
 * - order[q]: the slots sorted by expert, stable (an expert's slots in increasing slot order);
 * - tiles[3 t .. 3 t + 2] = expert, first position in order, slots (1..tn): each expert's run of
 *   positions cut into tiles of tn, experts in increasing order; tiles t >= the count, up to
 *   max_tiles (the grid the products launch, sized by orc_moe_group_max_tiles), get 0 slots, and
 *   the product kernels' blocks on them leave at once.
 * A slot whose id is outside [0, n_expert) (none reaches here from the router, whose ids are lane
 * indices, and moe_topk_ids cannot be patched; a bug could) sorts after every expert's and gets
 * no tile: its output row is written NaN here, so that the logits say so instead of holding a
 * stale row.
 *
 * One block of 32 warps. Warp w owns a contiguous run of slots; pass 1 counts its slots per
 * expert into cnt[expert][w] (__match_any_sync groups a chunk's lanes by id; the lowest lane of
 * each group adds the group's size: one writer per word). One exclusive scan over cnt in
 * (expert, warp) order then gives every (expert, warp) its first position, which is what makes
 * the order stable; pass 2 walks the same chunks again and places each slot at its group's next
 * positions, ranked within the chunk by its lane. */
#ifndef ORC_MOE_GROUP_KERNEL_CUH
#define ORC_MOE_GROUP_KERNEL_CUH

#include <stdint.h>

#include "runtime/simt.cuh" /* ORC_SHARED_ARRAY; the emulator's stand-ins */

namespace orc_moe_group {

constexpr int THREADS = 1024, WARPS = THREADS / 32;
constexpr int MAX_EXPERTS = 256; /* cnt: (256 + 1) x 32 words of shared memory */
constexpr unsigned FULL = 0xffffffffu;

/* Tiles any grouping of `slots` over n_expert experts can need: each expert's run gives
 * ceil(c / tn) <= c / tn + 1 tiles, at least one slot each. */
inline int64_t max_tiles(int64_t slots, int64_t n_expert, int64_t tn) {
    const int64_t bound = slots / tn + (n_expert < slots ? n_expert : slots);
    return bound < slots ? bound : slots;
}

/* Exclusive prefix sum of one value a thread over the block, in thread order; *total gets the
 * sum. Every thread calls it; ws: WARPS + 1 words, free again when it returns. */
__device__ __forceinline__ int block_scan(int v, int *ws, int *total) {
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    int inc = v;
    for (int d = 1; d < 32; d <<= 1) {
        const int o = __shfl_sync(FULL, inc, lane >= d ? lane - d : lane);
        if (lane >= d) inc += o;
    }
    if (lane == 31) ws[warp] = inc;
    __syncthreads();
    if (warp == 0) {
        const int s = ws[lane];
        int si = s;
        for (int d = 1; d < 32; d <<= 1) {
            const int o = __shfl_sync(FULL, si, lane >= d ? lane - d : lane);
            if (lane >= d) si += o;
        }
        __syncwarp();
        ws[lane] = si - s;
        if (lane == 31) ws[WARPS] = si;
    }
    __syncthreads();
    const int r = ws[warp] + inc - v;
    *total = ws[WARPS];
    __syncthreads();
    return r;
}

/* out: [slots][rows] float32, touched only in the rows of slots with an id out of range. */
__global__ void __launch_bounds__(THREADS)
    moe_group_kernel(const int32_t *ids, int64_t slots, int32_t n_expert, int32_t tn, int64_t n_tiles_max,
                     int64_t rows, int32_t *order, int32_t *tiles, float *out) {
    ORC_SHARED_ARRAY(int, cnt, (MAX_EXPERTS + 1) * WARPS); /* [bucket][warp]: counts, then cursors */
    ORC_SHARED_ARRAY(int, start, MAX_EXPERTS + 2);          /* a bucket's first position in order */
    ORC_SHARED_ARRAY(int, ws, WARPS + 1);
    const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
    const int nb = n_expert + 1; /* bucket n_expert: ids out of range */
    const int m = nb * WARPS;
    for (int i = tid; i < m; i += THREADS) cnt[i] = 0;
    __syncthreads();

    const int64_t per = (slots + 32 * WARPS - 1) / (32 * WARPS) * 32; /* a warp's run: whole chunks */
    const int64_t lo = warp * per, hi = lo + per < slots ? lo + per : slots;
    auto bucket = [&](int64_t i) {
        const int32_t e = ids[i];
        return (uint32_t)e < (uint32_t)n_expert ? (int)e : n_expert;
    };
    for (int64_t b = lo; b < hi; b += 32) { /* pass 1: counts (b is the same in every lane) */
        const int64_t i = b + lane;
        const int e = i < hi ? bucket(i) : -1;
        const unsigned peers = __match_any_sync(FULL, e);
        if (e >= 0 && lane == __ffs((int)peers) - 1) cnt[e * WARPS + warp] += __popc(peers);
        __syncwarp();
    }
    __syncthreads();

    /* cnt becomes each (bucket, warp)'s first position: a run of words a thread, scanned */
    const int per_t = (m + THREADS - 1) / THREADS, j0 = tid * per_t, j1 = j0 + per_t < m ? j0 + per_t : m;
    int sum = 0, total;
    for (int j = j0; j < j1; j++) sum += cnt[j];
    int run = block_scan(sum, ws, &total);
    for (int j = j0; j < j1; j++) {
        const int c = cnt[j];
        cnt[j] = run;
        run += c;
    }
    __syncthreads();
    for (int e = tid; e < nb; e += THREADS) start[e] = cnt[e * WARPS];
    if (tid == 0) start[nb] = (int)slots;
    __syncthreads();

    /* tiles: expert e (thread e) has ceil(c / tn) of them, after those of the experts below it */
    const int c_e = tid < n_expert ? start[tid + 1] - start[tid] : 0;
    const int nt = (c_e + tn - 1) / tn;
    const int t0 = block_scan(nt, ws, &total);
    for (int j = 0; j < nt; j++) {
        const int64_t t = t0 + j;
        if (t >= n_tiles_max) break; /* cannot happen: n_tiles_max bounds every grouping */
        const int q = start[tid] + j * tn;
        tiles[3 * t] = tid;
        tiles[3 * t + 1] = q;
        tiles[3 * t + 2] = start[tid + 1] - q < tn ? start[tid + 1] - q : tn;
    }
    for (int64_t t = total + tid; t < n_tiles_max; t += THREADS) {
        tiles[3 * t] = 0;
        tiles[3 * t + 1] = 0;
        tiles[3 * t + 2] = 0;
    }

    for (int64_t b = lo; b < hi; b += 32) { /* pass 2: positions */
        const int64_t i = b + lane;
        const int e = i < hi ? bucket(i) : -1;
        const unsigned peers = __match_any_sync(FULL, e);
        if (e >= 0) order[cnt[e * WARPS + warp] + __popc(peers & ((1u << lane) - 1u))] = (int32_t)i;
        __syncwarp();
        if (e >= 0 && lane == __ffs((int)peers) - 1) cnt[e * WARPS + warp] += __popc(peers);
        __syncwarp();
        if (e == n_expert)
            for (int64_t r = 0; r < rows; r++) out[i * rows + r] = __int_as_float(0x7fc00000);
    }
}

} /* namespace orc_moe_group */

#endif /* ORC_MOE_GROUP_KERNEL_CUH */
