/* gemv_iq.cu - the GEMV kernels (gemv_kernel.cuh) for the non-linear 4-bit types (IQ4_NL, IQ4_XS, MXFP4): one file per
 * group of types so that the instantiations compile in parallel. */
#include "gemv/gemv_kernel.cuh"

namespace orc_gv {
cudaError_t launch_IQ4_NL(const plan &pl, cudaStream_t s) { return launch<orc_gv_IQ4_NL>(pl, s); }
cudaError_t launch_IQ4_XS(const plan &pl, cudaStream_t s) { return launch<orc_gv_IQ4_XS>(pl, s); }
cudaError_t launch_MXFP4(const plan &pl, cudaStream_t s) { return launch<orc_gv_MXFP4>(pl, s); }
} /* namespace orc_gv */
