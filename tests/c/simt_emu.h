/* simt_emu.h - a host emulator of the CUDA execution model, so that orc's kernels can be
 * tested without a GPU (test_gemv_emu.cpp, test_attn_emu.cpp run the real kernel sources).
 *
 * Each thread of a block is a fiber (ucontext) on one OS thread; blocks run one after
 * another. __syncthreads and __syncwarp are real barriers; warp shuffles, ldmatrix and
 * mma.sync exchange operands through per-warp buffers, with the fragment layouts of the PTX
 * ISA (ldmatrix: lane 8m + r gives row r of matrix m, lane l receives word l % 4 of row l / 4;
 * mma m16n8k16: A a0..a3 = (g, 2t), (g + 8, 2t), (g, 2t + 8), (g + 8, 2t + 8), B b0, b1 =
 * k 2t / 2t + 8 of column g, C c0..c3 = (g, 2t), (g, 2t + 1), (g + 8, 2t), (g + 8, 2t + 1),
 * g = lane / 4, t = lane % 4, pairs in the low half first). cp.async copies are deferred to
 * cp.async.wait_group (a stage read too early holds stale bytes), their sources checked
 * against the ranges the test declares readable, their destinations against the block's
 * shared memory, their alignment against 16. A sweep over all fibers in which none moves
 * is reported as a deadlock. Build with ORC_SIMT_EMU defined (runtime/simt.cuh then
 * includes this file), -ffp-contract=off, and preferably -fsanitize=address,undefined
 * (the fiber switches are annotated for AddressSanitizer).
 */
#ifndef ORC_SIMT_EMU_H
#define ORC_SIMT_EMU_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

#include <deque>
#include <functional>
#include <map>
#include <utility>
#include <vector>

#include "quant/quant_decode.h" /* orc_qd_h2f, orc_qd_f2h, orc_qd_f2bf: the f16/bf16 conversions */

#if defined(__SANITIZE_ADDRESS__)
#define ORC_EMU_ASAN 1
extern "C" {
void __sanitizer_start_switch_fiber(void **fake_stack_save, const void *bottom, size_t size);
void __sanitizer_finish_switch_fiber(void *fake_stack_save, const void **bottom_old, size_t *size_old);
}
#endif

/* ---- CUDA's spellings ------------------------------------------------------------------ */

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) alignas(n)

typedef int cudaError_t;
typedef void *cudaStream_t;
enum { cudaSuccess = 0 };

struct dim3 {
    unsigned x, y, z;
    dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};
struct float4 {
    float x, y, z, w;
};
struct float2 {
    float x, y;
};
struct uint4 {
    uint32_t x, y, z, w;
};
struct uint2 {
    uint32_t x, y;
};
struct __half {
    uint16_t bits;
};
struct __nv_bfloat16 {
    uint16_t bits;
};
struct __half2 {
    __half x, y;
};
struct __nv_bfloat162 {
    __nv_bfloat16 x, y;
};
static inline float __half2float(__half h) { return orc_qd_h2f(h.bits); }
static inline float __bfloat162float(__nv_bfloat16 h) { return orc_qd_bf2f(h.bits); }
static inline __half __float2half_rn(float v) { return __half{orc_qd_f2h(v)}; }
static inline __nv_bfloat16 __float2bfloat16_rn(float v) { return __nv_bfloat16{orc_qd_f2bf(v)}; }
static inline float4 make_float4(float a, float b, float c, float d) { return {a, b, c, d}; }
static inline float2 make_float2(float a, float b) { return {a, b}; }
static inline float2 __half22float2(__half2 h) { return {__half2float(h.x), __half2float(h.y)}; }
static inline float2 __bfloat1622float2(__nv_bfloat162 h) { return {__bfloat162float(h.x), __bfloat162float(h.y)}; }
static inline int min(int a, int b) { return a < b ? a : b; }
static inline int max(int a, int b) { return a > b ? a : b; }
template <class T>
static inline T __ldg(const T *p) {
    return *p;
}
static inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fdiv_rn(float a, float b) { return a / b; }
static inline float __fsqrt_rn(float a) { return sqrtf(a); }
/* The bit casts (__uint_as_float, __float_as_int, ...): one memcpy of four bytes. */
template <class To, class From>
static inline To orc_emu_bits(From v) {
    static_assert(sizeof(To) == sizeof(From), "a bit cast keeps the size");
    To r;
    memcpy(&r, &v, sizeof r);
    return r;
}
static inline float __uint_as_float(unsigned u) { return orc_emu_bits<float>(u); }
static inline float __int_as_float(int i) { return orc_emu_bits<float>(i); }

namespace emu {

constexpr size_t kStack = 256 * 1024;

struct Copy {
    void *dst;
    const void *src;
    uint32_t n;
};

struct Lane {
    ucontext_t ctx;
    char *stack = nullptr;
    bool done = false;
    std::vector<Copy> cur;
    std::deque<std::vector<Copy>> groups;
    bool waited = false; /* has passed orc_pdl_wait */
};

struct Block {
    std::vector<Lane> lanes;
    ucontext_t sched;
    const void *sched_bottom = nullptr;
    size_t sched_size = 0;
    int cur = 0, alive = 0, nwarps = 0;
    unsigned bx = 1, by = 1;
    unsigned bar_count = 0;
    uint64_t bar_gen = 0;
    std::vector<unsigned> wcount, walive;
    std::vector<uint64_t> wgen;
    std::vector<uint64_t> wbuf;   /* [warp][32][16] 64-bit words: operand exchange */
    uint64_t events = 0;          /* barrier arrivals, releases, exits: the deadlock detector's clock */
    char *smem = nullptr;
    size_t smem_size = 0;
    std::map<std::pair<int, size_t>, std::vector<char>> statics;
    std::function<void()> fn;
};

inline dim3 g_tid, g_bid, g_grid, g_bdim;
inline Block *g_blk = nullptr;
inline std::vector<std::pair<const char *, const char *>> g_readable; /* [lo, hi): what cp.async may read */
/* [lo, hi): what the previous kernel writes, which no cp.async may read before orc_pdl_wait */
inline std::vector<std::pair<const char *, const char *>> g_unready;
inline long g_errors = 0;
inline long g_copies = 0;

inline void error(const char *what) {
    if (g_errors++ < 20)
        fprintf(stderr, "simt_emu: %s (block %u,%u,%u thread %u)\n", what, g_bid.x, g_bid.y, g_bid.z, g_tid.x);
}

inline Lane &lane() { return g_blk->lanes[g_blk->cur]; }
inline unsigned tid_flat() { return (unsigned)g_blk->cur; }

/* Give the OS thread back to the block's scheduler. */
inline void yield() {
    Block &b = *g_blk;
    Lane &l = b.lanes[b.cur];
#ifdef ORC_EMU_ASAN
    __sanitizer_start_switch_fiber(nullptr, b.sched_bottom, b.sched_size);
#endif
    swapcontext(&l.ctx, &b.sched);
#ifdef ORC_EMU_ASAN
    __sanitizer_finish_switch_fiber(nullptr, nullptr, nullptr);
#endif
}

inline void syncthreads() {
    Block &b = *g_blk;
    const uint64_t gen = b.bar_gen;
    b.events++;
    if (++b.bar_count == (unsigned)b.alive) {
        b.bar_count = 0;
        b.bar_gen++;
    } else {
        while (b.bar_gen == gen) yield();
    }
}

inline void syncwarp() {
    Block &b = *g_blk;
    const unsigned w = tid_flat() / 32;
    const uint64_t gen = b.wgen[w];
    b.events++;
    if (++b.wcount[w] == b.walive[w]) {
        b.wcount[w] = 0;
        b.wgen[w]++;
    } else {
        while (b.wgen[w] == gen) yield();
    }
}

inline uint64_t *wslot(unsigned lane_in_warp) {
    return &g_blk->wbuf[((size_t)(tid_flat() / 32) * 32 + lane_in_warp) * 16];
}

inline void perform(const std::vector<Copy> &g) {
    for (const Copy &c : g) {
        memcpy(c.dst, c.src, c.n);
        memset(static_cast<char *>(c.dst) + c.n, 0, 16 - c.n);
    }
}

inline void *block_static(int line, size_t bytes) {
    std::vector<char> &v = g_blk->statics[{line, bytes}];
    if (v.empty()) v.assign(bytes + 16, (char)0xA5); /* uninitialized-looking */
    return v.data();
}

inline void lane_entry(int i) {
#ifdef ORC_EMU_ASAN
    __sanitizer_finish_switch_fiber(nullptr, &g_blk->sched_bottom, &g_blk->sched_size);
#endif
    Block &b = *g_blk;
    b.fn();
    Lane &l = b.lanes[i];
    while (!l.groups.empty()) { /* copies still in flight at exit complete anyway */
        perform(l.groups.front());
        l.groups.pop_front();
    }
    if (!l.cur.empty()) error("cp.async copies issued but never committed");
    l.done = true;
    b.alive--;
    b.walive[i / 32]--;
    b.events++;
    if (b.bar_count && b.bar_count >= (unsigned)b.alive) {
        b.bar_count = 0;
        b.bar_gen++;
    }
    const unsigned w = (unsigned)i / 32;
    if (b.wcount[w] && b.wcount[w] >= b.walive[w]) {
        b.wcount[w] = 0;
        b.wgen[w]++;
    }
#ifdef ORC_EMU_ASAN
    __sanitizer_start_switch_fiber(nullptr, b.sched_bottom, b.sched_size); /* this fiber ends */
#endif
}

/* A fiber for thread i (its own function: getcontext is setjmp-like for the compiler). */
__attribute__((noinline)) inline void init_lane(Block &b, int i) {
    Lane &l = b.lanes[i];
    l.stack = static_cast<char *>(malloc(kStack));
    getcontext(&l.ctx);
    l.ctx.uc_stack.ss_sp = l.stack;
    l.ctx.uc_stack.ss_size = kStack;
    l.ctx.uc_link = &b.sched;
    makecontext(&l.ctx, (void (*)())lane_entry, 1, i);
}

/* Run fn as one block of `block` threads, block index bid of grid, with dyn_smem bytes of
 * dynamic shared memory (filled with a pattern: kernels must not rely on zeros). */
inline void run_block(dim3 grid, dim3 block, dim3 bid, size_t dyn_smem, const std::function<void()> &fn) {
    Block b;
    const int n = (int)(block.x * block.y * block.z);
    b.lanes.resize(n);
    b.alive = n;
    b.nwarps = (n + 31) / 32;
    b.bx = block.x;
    b.by = block.y;
    b.wcount.assign(b.nwarps, 0);
    b.wgen.assign(b.nwarps, 0);
    b.walive.resize(b.nwarps);
    for (int w = 0; w < b.nwarps; w++) b.walive[w] = (unsigned)(n - 32 * w < 32 ? n - 32 * w : 32);
    b.wbuf.assign((size_t)b.nwarps * 32 * 16, 0);
    b.smem_size = (dyn_smem + 15) / 16 * 16;
    b.smem = static_cast<char *>(aligned_alloc(16, b.smem_size ? b.smem_size : 16));
    memset(b.smem, 0x5A, b.smem_size ? b.smem_size : 16);
    b.fn = fn;
    g_blk = &b;
    g_grid = grid;
    g_bdim = block;
    g_bid = bid;
    for (int i = 0; i < n; i++) init_lane(b, i);
    while (b.alive > 0) {
        const uint64_t before = b.events;
        for (int i = 0; i < n; i++) {
            if (b.lanes[i].done) continue;
            b.cur = i;
            g_tid = dim3((unsigned)i % b.bx, ((unsigned)i / b.bx) % b.by, (unsigned)i / (b.bx * b.by));
#ifdef ORC_EMU_ASAN
            __sanitizer_start_switch_fiber(nullptr, b.lanes[i].stack, kStack);
#endif
            swapcontext(&b.sched, &b.lanes[i].ctx);
#ifdef ORC_EMU_ASAN
            __sanitizer_finish_switch_fiber(nullptr, nullptr, nullptr);
#endif
        }
        if (b.alive > 0 && b.events == before) {
            error("deadlock: every thread waits at a barrier no one else will reach");
            exit(3);
        }
    }
    for (Lane &l : b.lanes) free(l.stack);
    free(b.smem);
    g_blk = nullptr;
}

/* Blocks run one after another, in index order, or the reverse when g_reverse_blocks is set (a
 * kernel whose blocks hand data to each other only through the launch's end gives the same
 * result either way; one that races shows it). */
inline bool g_reverse_blocks = false;
inline void launch(dim3 grid, dim3 block, size_t dyn_smem, const std::function<void()> &fn) {
    const unsigned long nb = (unsigned long)grid.x * grid.y * grid.z;
    for (unsigned long i = 0; i < nb; i++) {
        const unsigned long b = g_reverse_blocks ? nb - 1 - i : i;
        run_block(grid, block, dim3((unsigned)(b % grid.x), (unsigned)(b / grid.x % grid.y), (unsigned)(b / grid.x / grid.y)),
                  dyn_smem, fn);
    }
}

} /* namespace emu */

#define threadIdx (emu::g_tid)
#define blockIdx (emu::g_bid)
#define gridDim (emu::g_grid)
#define blockDim (emu::g_bdim)

static inline void __syncthreads() { emu::syncthreads(); }
static inline void __syncwarp(unsigned mask = 0xffffffffu) {
    (void)mask;
    emu::syncwarp();
}
template <class T>
static inline T __shfl_xor_sync(unsigned mask, T v, int off) {
    (void)mask;
    static_assert(sizeof(T) <= 8, "shuffle of a large type");
    const unsigned l = emu::tid_flat() % 32;
    memcpy(emu::wslot(l), &v, sizeof v);
    emu::syncwarp();
    T r;
    memcpy(&r, emu::wslot(l ^ (unsigned)off), sizeof r);
    emu::syncwarp();
    return r;
}

/* The mask-checked collectives below (one full-warp exchange each): every lane of `mask` must be
 * alive and calling, as the hardware requires. */
namespace emu {
inline void check_mask(unsigned mask) {
    Block &b = *g_blk;
    const unsigned w = tid_flat() / 32;
    if (!(mask >> (tid_flat() % 32) & 1u)) error("a warp collective called by a lane its mask leaves out");
    for (unsigned l = 0; l < 32; l++)
        if (mask >> l & 1u && (w * 32 + l >= b.lanes.size() || b.lanes[w * 32 + l].done))
            error("a warp collective's mask names a lane that has exited");
}
/* Each calling lane gives v; f(acc, other) folds the mask's lanes in lane order into acc. */
template <class T, class F>
inline T warp_fold(unsigned mask, T v, T acc, F f) {
    static_assert(sizeof(T) <= 8, "exchange of a large type");
    check_mask(mask);
    memcpy(wslot(tid_flat() % 32), &v, sizeof v);
    syncwarp();
    for (unsigned l = 0; l < 32; l++)
        if (mask >> l & 1u) {
            T o;
            memcpy(&o, wslot(l), sizeof o);
            acc = f(acc, o);
        }
    syncwarp();
    return acc;
}
} /* namespace emu */

template <class T>
static inline T __shfl_sync(unsigned mask, T v, int src, int width = 32) {
    static_assert(sizeof(T) <= 8, "shuffle of a large type");
    if (width != 32) emu::error("__shfl_sync: only width 32 is emulated");
    emu::check_mask(mask);
    memcpy(emu::wslot(emu::tid_flat() % 32), &v, sizeof v);
    emu::syncwarp();
    T r;
    memcpy(&r, emu::wslot((unsigned)src % 32), sizeof r);
    emu::syncwarp();
    return r;
}
static inline unsigned __ballot_sync(unsigned mask, int pred) {
    const unsigned me = emu::tid_flat() % 32;
    return emu::warp_fold(mask, pred ? 1u << me : 0u, 0u, [](unsigned acc, unsigned o) { return acc | o; });
}
/* The lanes of mask whose v equals this lane's. */
static inline unsigned __match_any_sync(unsigned mask, int v) {
    emu::check_mask(mask);
    const unsigned me = emu::tid_flat() % 32;
    memcpy(emu::wslot(me), &v, sizeof v);
    emu::syncwarp();
    unsigned r = 0;
    for (unsigned l = 0; l < 32; l++) {
        int o;
        memcpy(&o, emu::wslot(l), sizeof o);
        if (mask >> l & 1u && o == v) r |= 1u << l;
    }
    emu::syncwarp();
    return r;
}
static inline int __any_sync(unsigned mask, int pred) { return __ballot_sync(mask, pred) != 0; }
static inline int __all_sync(unsigned mask, int pred) { return __ballot_sync(mask, pred) == mask; }
static inline unsigned __reduce_max_sync(unsigned mask, unsigned v) {
    return emu::warp_fold(mask, v, 0u, [](unsigned a, unsigned o) { return o > a ? o : a; });
}
static inline unsigned __reduce_min_sync(unsigned mask, unsigned v) {
    return emu::warp_fold(mask, v, 0xffffffffu, [](unsigned a, unsigned o) { return o < a ? o : a; });
}
static inline int __reduce_max_sync(unsigned mask, int v) {
    return emu::warp_fold(mask, v, (int)0x80000000, [](int a, int o) { return o > a ? o : a; });
}
static inline int __reduce_min_sync(unsigned mask, int v) {
    return emu::warp_fold(mask, v, 0x7fffffff, [](int a, int o) { return o < a ? o : a; });
}
static inline int __popc(unsigned v) { return __builtin_popcount(v); }
static inline int __ffs(int v) { return __builtin_ffs(v); }
static inline unsigned __float_as_uint(float f) { return orc_emu_bits<unsigned>(f); }
static inline int __float_as_int(float f) { return orc_emu_bits<int>(f); }

/* ---- runtime/simt.cuh's primitives ----------------------------------------------------------- */

#define ORC_SHARED_ARRAY(T, name, n) T *name = static_cast<T *>(emu::block_static(__LINE__, sizeof(T) * (n)))
#define ORC_EXTERN_SHARED(T, name) T *name = reinterpret_cast<T *>(emu::g_blk->smem)

static inline void orc_cp16(void *smem, const void *gmem, uint32_t src_bytes) {
    emu::Block &b = *emu::g_blk;
    char *d = static_cast<char *>(smem);
    const char *s = static_cast<const char *>(gmem);
    emu::g_copies++;
    if (src_bytes > 16) emu::error("cp.async src-size > 16");
    if (d < b.smem || d + 16 > b.smem + b.smem_size) emu::error("cp.async destination outside the shared memory");
    if ((uintptr_t)d % 16 || (uintptr_t)s % 16) emu::error("cp.async address not 16-byte aligned");
    if (src_bytes) {
        bool ok = false;
        for (auto &r : emu::g_readable) ok |= s >= r.first && s + src_bytes <= r.second;
        if (!ok) emu::error("cp.async reads outside the buffers it may read");
        if (!emu::lane().waited)
            for (auto &r : emu::g_unready)
                if (s < r.second && s + src_bytes > r.first)
                    emu::error("cp.async before orc_pdl_wait reads what the previous kernel writes");
    }
    if (!(d < b.smem || d + 16 > b.smem + b.smem_size)) emu::lane().cur.push_back({d, s, src_bytes});
}
/* One grid at a time here: nothing to wait for, nobody to let start; a lane past the wait may
 * read g_unready. */
static inline void orc_pdl_wait() { emu::lane().waited = true; }
static inline void orc_pdl_trigger() {}
static inline void orc_cp_commit() {
    emu::Lane &l = emu::lane();
    l.groups.push_back(std::move(l.cur));
    l.cur.clear();
}
template <int N>
static inline void orc_cp_wait() {
    emu::Lane &l = emu::lane();
    while (l.groups.size() > (size_t)N) {
        emu::perform(l.groups.front());
        l.groups.pop_front();
    }
}

static inline void orc_ldsm_emu(const void *smem, uint32_t *r, bool trans) {
    const unsigned l = emu::tid_flat() % 32;
    emu::Block &b = *emu::g_blk;
    const char *p = static_cast<const char *>(smem);
    if (p < b.smem || p + 16 > b.smem + b.smem_size || (uintptr_t)p % 16) emu::error("ldmatrix row address bad");
    emu::wslot(l)[0] = (uint64_t)(uintptr_t)smem;
    emu::syncwarp();
    for (unsigned m = 0; m < 4; m++) {
        if (!trans) {
            const char *row = (const char *)(uintptr_t)emu::wslot(8 * m + l / 4)[0];
            memcpy(&r[m], row + 4 * (l % 4), 4);
        } else { /* transposed: column l / 4 of rows 2 (l % 4) and 2 (l % 4) + 1 */
            uint16_t lo, hi;
            memcpy(&lo, (const char *)(uintptr_t)emu::wslot(8 * m + 2 * (l % 4))[0] + 2 * (l / 4), 2);
            memcpy(&hi, (const char *)(uintptr_t)emu::wslot(8 * m + 2 * (l % 4) + 1)[0] + 2 * (l / 4), 2);
            r[m] = (uint32_t)lo | ((uint32_t)hi << 16);
        }
    }
    emu::syncwarp();
}
static inline void orc_ldsm_x4(const void *smem, uint32_t *r) { orc_ldsm_emu(smem, r, false); }
static inline void orc_ldsm_x4_t(const void *smem, uint32_t *r) { orc_ldsm_emu(smem, r, true); }

static inline float orc_emu_f16(uint32_t h) { return orc_qd_h2f((uint16_t)h); }
static inline float orc_emu_bf16(uint32_t h) { return orc_qd_bf2f((uint16_t)h); }

static inline void orc_mma_emu(float *c, const uint32_t *a, uint32_t b0, uint32_t b1, bool bf16) {
    const unsigned l = emu::tid_flat() % 32;
    uint64_t *mine = emu::wslot(l);
    for (int i = 0; i < 4; i++) mine[i] = a[i];
    mine[4] = b0;
    mine[5] = b1;
    emu::syncwarp();
    float A[16][16], B[16][8];
    auto cv = [&](uint32_t h) { return bf16 ? orc_emu_bf16(h) : orc_emu_f16(h); };
    for (unsigned L = 0; L < 32; L++) {
        const uint64_t *o = emu::wslot(L);
        const unsigned g = L / 4, t = L % 4;
        const unsigned rows[4] = {g, g + 8, g, g + 8}, cols[4] = {2 * t, 2 * t, 2 * t + 8, 2 * t + 8};
        for (int i = 0; i < 4; i++) {
            A[rows[i]][cols[i]] = cv((uint32_t)o[i] & 0xFFFFu);
            A[rows[i]][cols[i] + 1] = cv((uint32_t)o[i] >> 16);
        }
        B[2 * t][g] = cv((uint32_t)o[4] & 0xFFFFu);
        B[2 * t + 1][g] = cv((uint32_t)o[4] >> 16);
        B[2 * t + 8][g] = cv((uint32_t)o[5] & 0xFFFFu);
        B[2 * t + 9][g] = cv((uint32_t)o[5] >> 16);
    }
    const unsigned g = l / 4, t = l % 4;
    const unsigned rr[4] = {g, g, g + 8, g + 8}, cc[4] = {2 * t, 2 * t + 1, 2 * t, 2 * t + 1};
    for (int i = 0; i < 4; i++) {
        float s = c[i];
        for (int k = 0; k < 16; k++) s = fmaf(A[rr[i]][k], B[k][cc[i]], s);
        c[i] = s;
    }
    emu::syncwarp();
}
static inline void orc_mma_f16(float *c, const uint32_t *a, uint32_t b0, uint32_t b1) { orc_mma_emu(c, a, b0, b1, false); }
static inline void orc_mma_bf16(float *c, const uint32_t *a, uint32_t b0, uint32_t b1) { orc_mma_emu(c, a, b0, b1, true); }

/* dp2a (PTX ISA): c + sum over i < 2 of int16 half i of a times byte (sel + i) of b, b's bytes
 * zero- (U8) or sign-extended. */
template <bool U8>
static inline int orc_dp2a_emu(uint32_t a, uint32_t b, int c, int sel) {
    int64_t d = c;
    for (int i = 0; i < 2; i++) {
        const int64_t va = (int16_t)(uint16_t)(a >> (16 * i));
        const uint32_t byte = (b >> (8 * (sel + i))) & 0xFFu;
        const int64_t vb = U8 ? (int64_t)byte : (int64_t)(int8_t)(uint8_t)byte;
        d += va * vb;
    }
    return (int)(int32_t)(uint32_t)(uint64_t)d; /* wraps as the hardware's 32-bit sum would */
}
template <bool U8>
static inline int orc_dp2a_lo(uint32_t a, uint32_t b, int c) { return orc_dp2a_emu<U8>(a, b, c, 0); }
template <bool U8>
static inline int orc_dp2a_hi(uint32_t a, uint32_t b, int c) { return orc_dp2a_emu<U8>(a, b, c, 2); }

/* Blocks run one after another on one OS thread: stores are visible at once, counts need no atomics. */
static inline void orc_fence() {}
static inline unsigned orc_arrive(unsigned *count) { return (*count)++; }
static inline float orc_ldcg(const float *p) { return *p; }

static inline uint32_t orc_pack_f16(float lo, float hi) { return (uint32_t)orc_qd_f2h(lo) | ((uint32_t)orc_qd_f2h(hi) << 16); }
static inline uint32_t orc_pack_bf16(float lo, float hi) {
    return (uint32_t)orc_qd_f2bf(lo) | ((uint32_t)orc_qd_f2bf(hi) << 16);
}

static inline __half2 __floats2half2_rn(float lo, float hi) { return {__float2half_rn(lo), __float2half_rn(hi)}; }

/* The tensor-core fragments of <mma.h> (nvcuda::wmma), 16 x 16 x 16 with float16 operands and
 * float32 accumulators: their layout across a warp's lanes is unspecified, so each lane holds the
 * whole 16 x 16 matrix and computes the whole product (a k-order float32 sum per element); loads
 * and stores read and write the whole tile from every lane (the same values). */
namespace nvcuda {
namespace wmma {
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };
template <class Use, int M, int N, int K, class T, class Layout = void>
struct fragment {
    float v[16][16]; /* (row, column) of the logical matrix, as float (float16 values are exact) */
};
template <class Use, class T, class L>
inline void fill_fragment(fragment<Use, 16, 16, 16, T, L> &f, float x) {
    for (auto &r : f.v)
        for (float &e : r) e = x;
}
/* A row-major: element (i, k) at p[i ldm + k]; B col-major: element (k, j) at p[j ldm + k]. */
inline void load_matrix_sync(fragment<matrix_a, 16, 16, 16, __half, row_major> &f, const __half *p, unsigned ldm) {
    for (int i = 0; i < 16; i++)
        for (int k = 0; k < 16; k++) f.v[i][k] = __half2float(p[i * ldm + k]);
}
inline void load_matrix_sync(fragment<matrix_b, 16, 16, 16, __half, col_major> &f, const __half *p, unsigned ldm) {
    for (int k = 0; k < 16; k++)
        for (int j = 0; j < 16; j++) f.v[k][j] = __half2float(p[j * ldm + k]);
}
inline void mma_sync(fragment<accumulator, 16, 16, 16, float> &d, const fragment<matrix_a, 16, 16, 16, __half, row_major> &a,
                     const fragment<matrix_b, 16, 16, 16, __half, col_major> &b,
                     const fragment<accumulator, 16, 16, 16, float> &c) {
    float r[16][16];
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++) {
            float s = c.v[i][j];
            for (int k = 0; k < 16; k++) s = fmaf(a.v[i][k], b.v[k][j], s);
            r[i][j] = s;
        }
    memcpy(d.v, r, sizeof r);
}
inline void store_matrix_sync(float *p, const fragment<accumulator, 16, 16, 16, float> &f, unsigned ldm, layout_t l) {
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++) p[l == mem_col_major ? j * ldm + i : i * ldm + j] = f.v[i][j];
}
} /* namespace wmma */
} /* namespace nvcuda */

#endif /* ORC_SIMT_EMU_H */
