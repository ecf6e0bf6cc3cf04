/* gemv_q23k.cu - the GEMV kernels (gemv_kernel.cuh) for Q2_K and Q3_K: one file per
 * group of types so that the instantiations compile in parallel. */
#include "gemv/gemv_kernel.cuh"

namespace orc_gv {
cudaError_t launch_Q2_K(const plan &pl, cudaStream_t s) { return launch<orc_gv_Q2_K>(pl, s); }
cudaError_t launch_Q3_K(const plan &pl, cudaStream_t s) { return launch<orc_gv_Q3_K>(pl, s); }
} /* namespace orc_gv */
