/* timing.cuh - timing device work for the benchmark entry points (gpu_kernels.h): one
 * eager warm-up, then `repeats` timed runs of `launches` enqueues each, between CUDA events
 * on a private stream; with use_graph the launches are captured once into a CUDA graph and
 * the graph is replayed (microsecond kernels: no CPU launch overhead in the numbers). The
 * per-launch median, minimum and maximum go to the orc_gpu_timing. */
#ifndef ORC_TIMING_CUH
#define ORC_TIMING_CUH

#include <cuda_runtime.h>

#include <algorithm> /* std::sort */

#include "backend/gpu_kernels.h" /* orc_gpu_timing */
#include "runtime/cuda_check.cuh"

#define ORC_TIMING_MAX_REPEATS 1000

/* enqueue(i, stream) -> cudaError_t queues launch i (0 <= i < launches); `what` names it in
 * error messages. */
template <class F>
orc_status orc_time_launches(const char *what, int launches, int repeats, bool use_graph, F &&enqueue,
                             orc_gpu_timing *out, orc_err *err) {
    orc_status st = ORC_OK;
    cudaStream_t s = nullptr;
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    cudaEvent_t e0 = nullptr, e1 = nullptr;
    bool capturing = false;
    cudaError_t e = cudaSuccess;
    float ms[ORC_TIMING_MAX_REPEATS];
    if (launches < 1 || repeats < 1 || repeats > ORC_TIMING_MAX_REPEATS)
        return orc_fail(err, ORC_E_INVALID, "%s: need launches >= 1 and 1 <= repeats <= %d", what,
                        ORC_TIMING_MAX_REPEATS);
    ORC_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    ORC_CUDA_CHECK(cudaEventCreate(&e0));
    ORC_CUDA_CHECK(cudaEventCreate(&e1));
    e = enqueue(0, s); /* eager warm-up: module load, attributes, first-touch */
    if (e != cudaSuccess) {
        st = orc_cuda_fail(err, e, what, __FILE__, __LINE__);
        goto cleanup;
    }
    ORC_CUDA_CHECK(cudaStreamSynchronize(s));
    if (use_graph) {
        ORC_CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
        capturing = true;
        for (int i = 0; i < launches; i++) {
            e = enqueue(i, s);
            if (e != cudaSuccess) {
                st = orc_cuda_fail(err, e, what, __FILE__, __LINE__);
                goto cleanup;
            }
        }
        capturing = false;
        ORC_CUDA_CHECK(cudaStreamEndCapture(s, &graph));
        ORC_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
        ORC_CUDA_CHECK(cudaGraphLaunch(exec, s)); /* warm-up of the graph */
        ORC_CUDA_CHECK(cudaStreamSynchronize(s));
    }
    for (int r = 0; r < repeats; r++) {
        ORC_CUDA_CHECK(cudaEventRecord(e0, s));
        if (use_graph) {
            ORC_CUDA_CHECK(cudaGraphLaunch(exec, s));
        } else {
            for (int i = 0; i < launches; i++) {
                e = enqueue(i, s);
                if (e != cudaSuccess) {
                    st = orc_cuda_fail(err, e, what, __FILE__, __LINE__);
                    goto cleanup;
                }
            }
        }
        ORC_CUDA_CHECK(cudaEventRecord(e1, s));
        ORC_CUDA_CHECK(cudaEventSynchronize(e1));
        ORC_CUDA_CHECK(cudaEventElapsedTime(&ms[r], e0, e1));
        ms[r] /= (float)launches;
    }
    std::sort(ms, ms + repeats);
    out->ms_median = repeats % 2 ? ms[repeats / 2] : 0.5 * (ms[repeats / 2 - 1] + ms[repeats / 2]);
    out->ms_min = ms[0];
    out->ms_max = ms[repeats - 1];
    out->launches = launches;
    out->repeats = repeats;
cleanup:
    if (capturing) {
        cudaGraph_t junk = nullptr;
        (void)cudaStreamEndCapture(s, &junk);
        if (junk) (void)cudaGraphDestroy(junk);
    }
    if (exec) (void)cudaGraphExecDestroy(exec);
    if (graph) (void)cudaGraphDestroy(graph);
    if (e0) (void)cudaEventDestroy(e0);
    if (e1) (void)cudaEventDestroy(e1);
    if (s) {
        (void)cudaStreamSynchronize(s);
        (void)cudaStreamDestroy(s);
    }
    (void)cudaGetLastError();
    return st;
}

#endif /* ORC_TIMING_CUH */
