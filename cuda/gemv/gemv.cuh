/* gemv.cuh - fused dequantize + matrix-vector products on the stored GGUF blocks, for
 * small batches (decode, speculative verification, MoE experts):
 *
 *     y[t][r] = sum_c W[r][c] * x'[t][c]      t < n (1..8), r < rows
 *
 * with W in its ggml blocks (row r at w + r * row_bytes), float32 x, y and float32
 * accumulation; each weight is exactly the value orc.dequantize gives it (gemv_decode.cuh),
 * so the result differs from "dequantize, then multiply in float64" by float32 summation
 * only. Exception, for speed (one instruction of ~6 a weight): Q4_K at one token takes the
 * block scales out of the sum, y = sum over sub-blocks of (d*sc) * sum(q*x) - (dmin*m) * sum(x),
 * all float32 (the same real value, rounded differently; NMSE ~1e-14 against float64);
 * ORC_GEMV_EXACT=1 (read once) gives the per-weight form there too (and turns the integer form off).
 *
 * Integer form (x_int16, the CUDA backend's default; ORC_GEMV_X16=1 / 0 read once forces it on / off; one token, Q4_0, Q5_0, Q4_K, Q6_K, Q8_0, MXFP4, IQ4_NL, the
 * factored sum on integers): each 16 consecutive columns of x' (after the prologue below) are
 * rounded to xi * dx, dx = 2^(e - 15) with e the exponent of their largest magnitude
 * (amax = f 2^e, f in [0.5, 1)), xi = rint(x' / dx) in [-32767, 32767]: x' to about 16
 * significant bits of its block's largest value (float16 keeps 11 of each value). Then per
 * 16-column block of a sub-block, sum(q * xi) is exact in int32 (two dp2a a group of 4),
 * becomes float once, and y = sum over sub-blocks of scale * sum over its blocks of
 * (dx * that) - min * sum(xi * dx). A block holding a NaN or an infinity gives NaN; an
 * all-zero block contributes 0; blocks below 2^-134 lose precision to float32's subnormals.
 *
 * Optional parts, all in the same launch:
 *   prologue   x' = (x * inv_rms(x)) * norm_w, inv_rms = 1 / sqrt(mean(x^2) + eps), in float32
 *              (norm_w != NULL); else x' = x
 *   GLU        w_up != NULL: out = act(W x' + bias) * (W_up x' + bias_up)
 *   epilogue   out += bias[r] (plain), then out += res[t][r] (res may alias y)
 *   stacked    n_more > 0: up to 3 plain products of one x in one launch (see n_more)
 *   MoE        ids != NULL: W is [n_expert][rows][cols] (expert e at w + e * expert_stride),
 *              output vector o = t * k + j is expert ids[t * ids_stride + j] applied to x[t];
 *              bias / bias_up are [n_expert][bias_expert_stride]. An id outside
 *              [0, n_expert) makes its output vector NaN (the kernel reads no weights for it).
 *
 * Determinism: every output element is reduced by one warp in a fixed order; when the
 * columns are split over S slices (narrow matrices, or n * cols too large for shared
 * memory), the slices' partial sums go to the caller's scratch and the last block to finish
 * of those sharing rows adds them in slice order (an atomic count says which block is last;
 * it decides who adds, never the order). S depends only on the shape (type, rows, cols, n,
 * MoE k): results are bitwise identical run to run, whatever the stream, grid or GPU
 * occupancy. No floating-point atomics.
 *
 * Launch: as a programmatic dependent of the previous kernel on the stream (sm_90; see
 * runtime/launch.cuh): the first weight copies are in flight before the kernel waits for the
 * previous one, and x, res, ids and the outputs are touched only after.
 *
 * Memory: 16-byte cp.async copies of whole 16-byte chunks of the matrix into per-warp
 * shared-memory rings (several steps in flight), never reading outside
 * [w + e * expert_stride, that + (rows - 1) * row_bytes + packed row bytes): the last
 * chunk is zero-filled past the end. docs/perf_kernels.md has the design and the numbers.
 */
#ifndef ORC_GEMV_CUH
#define ORC_GEMV_CUH

#ifndef ORC_SIMT_EMU /* the host emulator (tests/c/simt_emu.h) defines cudaError_t & co. */
#include <cuda_runtime.h>
#endif
#include <stddef.h>
#include <stdint.h>

/* GLU activations: act(g) * u. 0 and 1 are backend.h's ORC_BACKEND_ACT_SILU / _GELU_TANH. */
enum {
    ORC_GEMV_ACT_SILU = 0,       /* g / (1 + exp(-g)) * u                                      */
    ORC_GEMV_ACT_GELU_TANH = 1,  /* 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3))) * u          */
    ORC_GEMV_ACT_SWIGLU_OAI = 2, /* gpt-oss: g = min(g, 7), u = clamp(u, -7, 7), g / (1 + exp(-1.702 g)) * (u + 1) */
};

/* How a launch overlaps its neighbours on the stream (programmatic dependent launch,
 * runtime/launch.cuh). NEXT: it waits for the previous kernel before reading x or writing
 * anything, and lets the next kernel start (and fetch its weights) at once. FIRST: the first of
 * independent products of one x (a layer's q/k and its v in another type): as NEXT, but the next
 * launch may start only once x is complete. SIBLING: follows a FIRST or SIBLING launch whose
 * outputs it neither reads nor writes (and a scratch of its own): it runs beside it, reading x
 * at once, and waits for it at its end, so that whatever follows sees both done. */
enum { ORC_GEMV_PDL_NEXT = 0, ORC_GEMV_PDL_FIRST = 1, ORC_GEMV_PDL_SIBLING = 2 };

#define ORC_GEMV_MAX_N 8 /* tokens per launch */
#define ORC_GEMV_MAX_K 8 /* experts per token (MoE) */
#define ORC_GEMV_MAX_MORE 2 /* stacked matrices beside the first (q, k, v) */

typedef struct orc_gemv_args {
    int32_t type;         /* ggml type of W (and W_up): see orc_gemv_supported */
    const void *w;        /* device; 16-byte aligned */
    const void *w_up;     /* GLU: the up matrix, same type/shape/strides; NULL: plain product */
    int64_t rows, cols;   /* cols a multiple of the block size (F16/BF16: of 16, F32: of 8) */
    int64_t row_bytes;    /* bytes from one row to the next; 0: packed (cols / block * type size);
                           * else >= packed and a multiple of gcd(type size, 16) */
    int32_t n;            /* tokens, 1..ORC_GEMV_MAX_N */
    const float *x;       /* [n][x_stride]; must not overlap y (or more_y), res or the scratch */
    int64_t x_stride;     /* floats, >= cols */
    float *y;             /* [n or n*k][y_stride] */
    int64_t y_stride;     /* floats, >= rows */
    const float *bias;    /* [rows] (MoE: [n_expert][bias_expert_stride]) or NULL; GLU: the gate's */
    const float *bias_up; /* GLU: the up matrix's bias, or NULL */
    const float *res;     /* [n or n*k][res_stride] added last, or NULL; may equal y (in place) */
    int64_t res_stride;
    const float *norm_w;  /* [cols]: RMSNorm prologue with these weights; NULL: none */
    float norm_eps;
    int32_t act;          /* GLU only: ORC_GEMV_ACT_* */
    /* mixture of experts (ids != NULL): */
    const int32_t *ids;   /* device [n][ids_stride], the first k of each row used (written: route_logits) */
    int32_t k;            /* experts per token, 1..ORC_GEMV_MAX_K */
    int64_t ids_stride;   /* ints, >= k */
    int32_t n_expert;
    int64_t expert_stride;      /* bytes between experts; a multiple of 16 */
    int64_t bias_expert_stride; /* floats between experts' biases */
    /* The router's top-k in the launch (route_logits != NULL; GLU only): ids is then an output. Each
     * block ranks its token's n_expert (<= 256) router logits itself with the top-k launch's own
     * code (kernels/moe_route_warp.cuh route_warp: the same ids and weights, bit for bit), and
     * one block a token writes its k ids to ids and their weights to route_w [n][k]. */
    const float *route_logits;  /* [n][n_expert] */
    int32_t route_kind;         /* orc_router_kind */
    int32_t route_norm;         /* renormalise the k weights (norm_topk_prob) */
    float *route_w;
    /* stacked products (plain only: no w_up, res or ids): n_more further matrices of the same
     * type, cols and row_bytes in the same launch, e.g. a layer's k and v beside q; matrix i's
     * rows follow the previous ones' (the split is chosen for the total), its outputs go to
     * more_y[i] ([n][more_y_stride[i]]) with more_bias[i] (or NULL) added. */
    int32_t n_more;             /* 0..ORC_GEMV_MAX_MORE */
    const void *more_w[2];
    int64_t more_rows[2];
    float *more_y[2];
    int64_t more_y_stride[2];
    const float *more_bias[2];
    /* 1: the integer form where the type has it (one token, Q4_0 / Q5_0 / Q4_K / Q6_K / Q8_0 / MXFP4 / IQ4_NL; elsewhere
     * ignored): x' rounded to int16 per 16 columns, see "Integer form" above */
    int32_t x_int16;
    /* split-K counts and partial sums: orc_gemv_scratch_bytes(a) bytes of device memory (NULL if
     * 0), zero-filled once when allocated (every launch leaves its counts at zero again); one
     * launch at a time per scratch (launches on one stream are) */
    void *scratch;
    size_t scratch_bytes;
    int32_t pdl_role; /* ORC_GEMV_PDL_*: NEXT unless the caller knows its neighbours (above) */
} orc_gemv_args;

/* Does the GEMV handle weights of ggml type `ggml_type`? F32, F16, BF16, Q4_0, Q4_1, Q5_0,
 * Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS, MXFP4. */
bool orc_gemv_supported(int32_t ggml_type);

/* Does the one-token GEMV of that type have the integer form (x_int16; its decoder's Q::QI)? */
bool orc_gemv_has_integer_form(int32_t ggml_type);

/* cudaSuccess if `a` describes a launch orc_launch_gemv accepts (ignoring the scratch);
 * else cudaErrorInvalidValue (or cudaErrorNotSupported for an unsupported type) with the
 * reason in why[why_size] when why is not NULL. Checks shapes, strides, alignment (w,
 * expert_stride, row_bytes), n, k, act; not the device pointers' validity. */
cudaError_t orc_gemv_check(const orc_gemv_args *a, char *why, size_t why_size);

/* Bytes of scratch a launch with these arguments needs (0 when the columns are not
 * split). A function of type, rows, cols, n, GLU and MoE k only: allocate the maximum
 * over a session's shapes once. */
size_t orc_gemv_scratch_bytes(const orc_gemv_args *a);

/* Queue the product on stream s; returns the launch status (cudaErrorInvalidValue for
 * arguments orc_gemv_check refuses or too little scratch). Allocates nothing, so it can be
 * captured into a CUDA graph. */
cudaError_t orc_launch_gemv(const orc_gemv_args *a, cudaStream_t s);

#endif /* ORC_GEMV_CUH */
