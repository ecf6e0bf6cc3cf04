/* gemv_legacy.cu - the GEMV kernels (gemv_kernel.cuh) for the legacy 32-element types: one file per
 * group of types so that the instantiations compile in parallel. */
#include "gemv/gemv_kernel.cuh"

namespace orc_gv {
cudaError_t launch_Q4_0(const plan &pl, cudaStream_t s) { return launch<orc_gv_Q4_0>(pl, s); }
cudaError_t launch_Q4_1(const plan &pl, cudaStream_t s) { return launch<orc_gv_Q4_1>(pl, s); }
cudaError_t launch_Q5_0(const plan &pl, cudaStream_t s) { return launch<orc_gv_Q5_0>(pl, s); }
cudaError_t launch_Q5_1(const plan &pl, cudaStream_t s) { return launch<orc_gv_Q5_1>(pl, s); }
cudaError_t launch_Q8_0(const plan &pl, cudaStream_t s) { return launch<orc_gv_Q8_0>(pl, s); }
} /* namespace orc_gv */
