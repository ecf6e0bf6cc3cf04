/* gemv_q4k.cu - the GEMV kernels (gemv_kernel.cuh) for Q4_K: one file per
 * group of types so that the instantiations compile in parallel. */
#include "gemv/gemv_kernel.cuh"

namespace orc_gv {
cudaError_t launch_Q4_K(const plan &pl, cudaStream_t s) { return launch<orc_gv_Q4_K>(pl, s); }
} /* namespace orc_gv */
