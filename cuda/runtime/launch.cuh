/* launch.cuh - launching a kernel as a programmatic dependent of the kernel before it on the
 * stream (Hopper's programmatic dependent launch): the decode step's kernels are short, and
 * each would otherwise wait for the previous one to drain and then pay its own launch.
 *
 * The contract, for every kernel launched this way: it calls orc_pdl_wait() (simt.cuh) before
 * it reads anything an earlier kernel wrote and before it writes anything (an earlier kernel
 * may still be reading); before that point it may only read what no kernel writes (weights)
 * and fill its own shared memory (and read the step's inputs, positions and rows, which are
 * copied in before the step's first kernel, and KV-cache rows other than the step's kv_row:
 * only this step's KV store writes a cache during the step, and every earlier step's kernels
 * completed before this step's input copy began). It may call orc_pdl_trigger() early so that its own
 * successor can start its pre-wait part. orc_pdl_wait() returns once the previous grid has
 * completed and its writes are visible, so the order of effects is the stream's order. CUDA
 * graphs capture these launches as programmatic edges; the graph-replay-is-bitwise-eager test
 * covers them. */
#ifndef ORC_LAUNCH_CUH
#define ORC_LAUNCH_CUH

#include <cuda_runtime.h>

#include <atomic>

/* What launch geometry needs to know about the current device, queried once a device so that
 * launches inside a CUDA-graph capture make no runtime queries but cudaGetDevice. device.cu. */
struct orc_dev_facts {
    int nsm, smem_per_sm, regs_per_sm, optin; /* optin: the most shared memory a block may ask for */
};
cudaError_t orc_device_facts(orc_dev_facts *out);

/* Let KERNEL's launches ask for `bytes` of dynamic shared memory (above 48 KiB it must be
 * raised), once a device. */
template <auto KERNEL>
cudaError_t orc_raise_smem_limit(int bytes) {
    static std::atomic<unsigned long long> done{0}; /* devices (bit dev & 63) already raised */
    int dev = 0;
    cudaError_t e = cudaGetDevice(&dev);
    if (e != cudaSuccess) return e;
    const unsigned long long bit = 1ull << (dev & 63);
    if (done.load(std::memory_order_acquire) & bit) return cudaSuccess;
    if ((e = cudaFuncSetAttribute(KERNEL, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes)) != cudaSuccess) return e;
    done.fetch_or(bit, std::memory_order_release);
    return cudaSuccess;
}

/* Launch as dependents on this device? Compute capability >= 9 and ORC_PDL not "0" (read
 * once; set ORC_PDL=0 to compare). device.cu. */
bool orc_pdl_on();

/* A timing aid, off unless ORC_PROFILE_DUP is set when the first kernel launches (device.cu):
 * how many times to launch `kernel`: 2 where its name matches the pattern ORC_PROFILE_DUP holds
 * now (re-read each launch, so that one process can time several), else 1. "=NAME" matches the
 * whole name, else every '+'-separated part must occur in it; ',' separates alternatives; '?'
 * matches none and names each kernel once, '??' names every launch. The step time a second
 * launch adds is that kernel's cost inside a replayed graph, which each kernel timed alone (Nsight
 * Compute) does not predict. Results are wrong while a kernel runs twice (in-place updates apply
 * twice); orc says so on stderr. bench/graph_profile.py drives it. */
int orc_profile_launches(const void *kernel);

template <typename... Params, typename... Args>
cudaError_t orc_launch_dependent(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t s,
                                 Args &&...args) {
    cudaLaunchConfig_t lc = {};
    cudaLaunchAttribute attr[1];
    lc.gridDim = grid;
    lc.blockDim = block;
    lc.dynamicSmemBytes = smem;
    lc.stream = s;
    if (orc_pdl_on()) {
        attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
        attr[0].val.programmaticStreamSerializationAllowed = 1;
        lc.attrs = attr;
        lc.numAttrs = 1;
    }
    const int times = orc_profile_launches((const void *)kernel);
    cudaError_t e = cudaSuccess;
    for (int i = 0; i < times && e == cudaSuccess; i++) e = cudaLaunchKernelEx(&lc, kernel, args...);
    return e == cudaSuccess ? cudaGetLastError() : e;
}

#endif /* ORC_LAUNCH_CUH */
