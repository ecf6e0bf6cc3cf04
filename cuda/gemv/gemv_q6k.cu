/* gemv_q6k.cu - the GEMV kernels (gemv_kernel.cuh) for Q6_K: one file per
 * group of types so that the instantiations compile in parallel. */
#include "gemv/gemv_kernel.cuh"

namespace orc_gv {
cudaError_t launch_Q6_K(const plan &pl, cudaStream_t s) { return launch<orc_gv_Q6_K>(pl, s); }
} /* namespace orc_gv */
