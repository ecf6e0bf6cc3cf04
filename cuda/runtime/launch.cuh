/* launch.cuh - launching a kernel as a programmatic dependent of the kernel before it on the
 * stream (Hopper's programmatic dependent launch): the decode step's kernels are short, and
 * each would otherwise wait for the previous one to drain and then pay its own launch.
 *
 * The contract, for every kernel launched this way: it calls orc_pdl_wait() (simt.cuh) before
 * it reads anything an earlier kernel wrote and before it writes anything (an earlier kernel
 * may still be reading); before that point it may only read what no kernel writes (weights)
 * and fill its own shared memory (and read the step's inputs, positions and rows, which are
 * copied in before the step's first kernel). It may call orc_pdl_trigger() early so that its own
 * successor can start its pre-wait part. orc_pdl_wait() returns once the previous grid has
 * completed and its writes are visible, so the order of effects is the stream's order. CUDA
 * graphs capture these launches as programmatic edges; the graph-replay-is-bitwise-eager test
 * covers them. */
#ifndef ORC_LAUNCH_CUH
#define ORC_LAUNCH_CUH

#include <cuda_runtime.h>

/* Launch as dependents on this device? Compute capability >= 9 and ORC_PDL not "0" (read
 * once; set ORC_PDL=0 to compare). device.cu. */
bool orc_pdl_on();

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
    cudaError_t e = cudaLaunchKernelEx(&lc, kernel, static_cast<Args &&>(args)...);
    return e == cudaSuccess ? cudaGetLastError() : e;
}

#endif /* ORC_LAUNCH_CUH */
