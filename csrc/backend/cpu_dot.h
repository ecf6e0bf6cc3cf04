/* cpu_dot.h - the CPU backend's inner products: float32 rows, and rows of GGUF blocks
 * decoded in registers (weights="quantized").
 *
 * Every product sums in the same eight float32 lanes x four accumulators, in the same
 * order, whatever the weights are stored as: a quantized row's product is bit for bit
 * orc_cpu_dot(x, dequantized row), so weights="quantized" computes exactly what
 * weights="dequantized" float32 computes, only without the float32 copy.
 */
#ifndef ORC_CPU_DOT_H
#define ORC_CPU_DOT_H

#include <stdbool.h>
#include <stdint.h>

/* a . b over n floats (any n). */
float orc_cpu_dot(const float *a, const float *b, int64_t n);

/* Does `type` have a vector block decoder here? (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K,
 * Q6_K, IQ4_NL, MXFP4.) Other types go through orc_dequantize and orc_cpu_dot: the same
 * numbers, slower. */
bool orc_cpu_qrow_vectorized(int32_t type);

/* x . dequantize(row) for a row of n elements of a vectorized type (n a multiple of the
 * block size, which validation at load guarantees): bit for bit
 * orc_cpu_dot(x, orc_dequantize(row), n), without writing the dequantized row. */
float orc_cpu_qdot(int32_t type, const uint8_t *row, const float *x, int64_t n);

/* The n float32 values of a row of a vectorized type: exactly what orc_dequantize writes. */
void orc_cpu_qrow_f32(int32_t type, const uint8_t *row, int64_t n, float *out);

#endif /* ORC_CPU_DOT_H */
