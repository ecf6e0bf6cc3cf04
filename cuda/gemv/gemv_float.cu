/* gemv_float.cu - the GEMV kernels (gemv_kernel.cuh) for the float types: one file per
 * group of types so that the instantiations compile in parallel. */
#include "gemv/gemv_kernel.cuh"

namespace orc_gv {
cudaError_t launch_F16(const plan &pl, cudaStream_t s) { return launch<orc_gv_F16>(pl, s); }
cudaError_t launch_BF16(const plan &pl, cudaStream_t s) { return launch<orc_gv_BF16>(pl, s); }
cudaError_t launch_F32(const plan &pl, cudaStream_t s) { return launch<orc_gv_F32>(pl, s); }
} /* namespace orc_gv */
