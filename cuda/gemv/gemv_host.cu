/* gemv_host.cu - the GEMV entry points of gpu_kernels.h: run one launch from host buffers
 * (tests), time it with the weights rotated over copies that together exceed the L2 many
 * times (benchmark), and the device-to-device copy ceiling. */
#include <stdio.h>
#include <string.h>

#include "backend/gpu_kernels.h"
#include "gemv/gemv.cuh"
#include "gguf/ggml_types.h" /* orc_type_nbytes, orc_type_name */
#include "runtime/cuda_check.cuh"
#include "runtime/timing.cuh"

namespace {

constexpr uint64_t kRotateBytes = 256ull << 20; /* weights the benchmark rotates over: > 4x a 50 MB L2 */
constexpr int kMaxCopies = 4096;
constexpr uint64_t kMaxRotateMemory = 8ull << 30; /* device memory the copies may take */

/* A job's device buffers. w / w_up hold `copies` copies of the weights, `wstride` bytes apart. */
struct gv_dev {
    uint8_t *w = nullptr, *wu = nullptr;
    float *x = nullptr, *y = nullptr, *res = nullptr, *bias = nullptr, *bias_up = nullptr, *norm = nullptr;
    int32_t *ids = nullptr;
    void *scratch = nullptr;
    size_t wbytes = 0, wstride = 0; /* one copy; distance between copies */
    int copies = 0;
    size_t ybytes = 0;
    orc_gemv_args a;
};

void gv_free(gv_dev *d) {
    void *p[] = {d->w, d->wu, d->x, d->y, d->res, d->bias, d->bias_up, d->norm, d->ids, d->scratch};
    for (void *q : p)
        if (q) (void)cudaFree(q);
    *d = gv_dev();
}

/* Check the job, allocate and fill the device buffers (weights `copies` times). */
orc_status gv_setup(const orc_gpu_gemv_job *j, int copies, gv_dev *d, orc_err *err) {
    orc_status st = ORC_OK;
    char why[512], tb[64];
    uint64_t row_bytes = 0;
    const bool moe = j && j->ids != nullptr, glu = j && j->w_up != nullptr;
    int64_t nvec = 0, x_stride = 0, y_stride = 0, n_mat = 1;
    uint64_t mat = 0, want = 0;
    size_t nbias = 0;
    if (!j || !j->w || !j->x || !j->y) return orc_fail(err, ORC_E_INVALID, "orc_gpu_gemv: NULL job, w, x or y");
    if (!orc_gemv_supported(j->type))
        return orc_fail(err, ORC_E_UNSUPPORTED, "orc_gpu_gemv: no GEMV kernel for type %s",
                        orc_type_name(j->type, tb, sizeof tb));
    if (j->rows < 1 || j->cols < 1 || j->n < 1 || j->n > ORC_GEMV_MAX_N)
        return orc_fail(err, ORC_E_INVALID, "orc_gpu_gemv: rows %lld, cols %lld, n %d out of range",
                        (long long)j->rows, (long long)j->cols, (int)j->n);
    if (orc_type_nbytes(j->type, j->cols, &row_bytes, err) != ORC_OK) return orc_err_prefix(err, "orc_gpu_gemv: ");
    if (moe && (j->k < 1 || j->k > ORC_GEMV_MAX_K || j->n_expert < 1))
        return orc_fail(err, ORC_E_INVALID, "orc_gpu_gemv: MoE k %d (1..%d), n_expert %d", (int)j->k, ORC_GEMV_MAX_K,
                        (int)j->n_expert);
    if (j->res && j->res_in_y) return orc_fail(err, ORC_E_INVALID, "orc_gpu_gemv: res given with res_in_y");
    n_mat = moe ? j->n_expert : 1;
    mat = row_bytes * (uint64_t)j->rows;
    want = mat * (uint64_t)n_mat;
    if (j->w_bytes != want)
        return orc_fail(err, ORC_E_INVALID, "orc_gpu_gemv: w has %llu bytes, %s %lld x %lld%s needs %llu",
                        (unsigned long long)j->w_bytes, orc_type_name(j->type, tb, sizeof tb), (long long)j->rows,
                        (long long)j->cols, moe ? " x n_expert" : "", (unsigned long long)want);
    nvec = moe ? (int64_t)j->n * j->k : j->n;
    x_stride = j->x_stride ? j->x_stride : j->cols;
    y_stride = j->y_stride ? j->y_stride : j->rows;
    if (x_stride < j->cols || y_stride < j->rows)
        return orc_fail(err, ORC_E_INVALID, "orc_gpu_gemv: x_stride %lld < cols or y_stride %lld < rows",
                        (long long)x_stride, (long long)y_stride);

    /* Experts 16-byte aligned on the device (the kernel's requirement), copies 256 apart. */
    d->wbytes = moe ? (size_t)n_mat * ((mat + 15) / 16 * 16) : (size_t)mat;
    d->wstride = (d->wbytes + 255) / 256 * 256;
    d->copies = copies;
    d->ybytes = (size_t)nvec * y_stride * sizeof(float);
    nbias = (size_t)n_mat * j->rows;
    ORC_CUDA_CHECK(cudaMalloc((void **)&d->w, d->wstride * copies));
    if (glu) ORC_CUDA_CHECK(cudaMalloc((void **)&d->wu, d->wstride * copies));
    {
        const size_t pitch = moe ? (mat + 15) / 16 * 16 : mat; /* experts' distance on the device */
        ORC_CUDA_CHECK(cudaMemcpy2D(d->w, pitch, j->w, mat, mat, n_mat, cudaMemcpyHostToDevice));
        if (glu) ORC_CUDA_CHECK(cudaMemcpy2D(d->wu, pitch, j->w_up, mat, mat, n_mat, cudaMemcpyHostToDevice));
    }
    for (int c = 1; c < copies; c++) {
        ORC_CUDA_CHECK(cudaMemcpy(d->w + c * d->wstride, d->w, d->wbytes, cudaMemcpyDeviceToDevice));
        if (glu) ORC_CUDA_CHECK(cudaMemcpy(d->wu + c * d->wstride, d->wu, d->wbytes, cudaMemcpyDeviceToDevice));
    }
    ORC_CUDA_CHECK(cudaMalloc((void **)&d->x, (size_t)j->n * x_stride * sizeof(float)));
    ORC_CUDA_CHECK(cudaMemcpy(d->x, j->x, (size_t)j->n * x_stride * sizeof(float), cudaMemcpyHostToDevice));
    ORC_CUDA_CHECK(cudaMalloc((void **)&d->y, d->ybytes));
    ORC_CUDA_CHECK(cudaMemcpy(d->y, j->y, d->ybytes, cudaMemcpyHostToDevice)); /* poison, or the residual */
    if (j->res) {
        ORC_CUDA_CHECK(cudaMalloc((void **)&d->res, d->ybytes));
        ORC_CUDA_CHECK(cudaMemcpy(d->res, j->res, d->ybytes, cudaMemcpyHostToDevice));
    }
    if (j->bias) {
        ORC_CUDA_CHECK(cudaMalloc((void **)&d->bias, nbias * sizeof(float)));
        ORC_CUDA_CHECK(cudaMemcpy(d->bias, j->bias, nbias * sizeof(float), cudaMemcpyHostToDevice));
    }
    if (j->bias_up) {
        ORC_CUDA_CHECK(cudaMalloc((void **)&d->bias_up, nbias * sizeof(float)));
        ORC_CUDA_CHECK(cudaMemcpy(d->bias_up, j->bias_up, nbias * sizeof(float), cudaMemcpyHostToDevice));
    }
    if (j->norm_w) {
        ORC_CUDA_CHECK(cudaMalloc((void **)&d->norm, (size_t)j->cols * sizeof(float)));
        ORC_CUDA_CHECK(cudaMemcpy(d->norm, j->norm_w, (size_t)j->cols * sizeof(float), cudaMemcpyHostToDevice));
    }
    if (moe) {
        ORC_CUDA_CHECK(cudaMalloc((void **)&d->ids, (size_t)j->n * j->k * sizeof(int32_t)));
        ORC_CUDA_CHECK(cudaMemcpy(d->ids, j->ids, (size_t)j->n * j->k * sizeof(int32_t), cudaMemcpyHostToDevice));
    }

    memset(&d->a, 0, sizeof d->a);
    d->a.type = j->type;
    d->a.w = d->w;
    d->a.w_up = d->wu;
    d->a.rows = j->rows;
    d->a.cols = j->cols;
    d->a.n = j->n;
    d->a.x = d->x;
    d->a.x_stride = x_stride;
    d->a.y = d->y;
    d->a.y_stride = y_stride;
    d->a.bias = d->bias;
    d->a.bias_up = d->bias_up;
    d->a.res = j->res_in_y ? d->y : d->res;
    d->a.res_stride = y_stride;
    d->a.norm_w = d->norm;
    d->a.norm_eps = j->norm_eps;
    d->a.act = j->act;
    d->a.x_int16 = j->x_int16;
    if (moe) {
        d->a.ids = d->ids;
        d->a.k = j->k;
        d->a.ids_stride = j->k;
        d->a.n_expert = j->n_expert;
        d->a.expert_stride = (int64_t)((mat + 15) / 16 * 16);
        d->a.bias_expert_stride = j->rows;
    }
    if (orc_gemv_check(&d->a, why, sizeof why) != cudaSuccess) {
        st = orc_fail(err, ORC_E_INVALID, "orc_gpu_gemv: %s", why);
        goto cleanup;
    }
    d->a.scratch_bytes = orc_gemv_scratch_bytes(&d->a);
    if (d->a.scratch_bytes) { /* zero-filled once: the split-K counts start (and stay) at zero */
        ORC_CUDA_CHECK(cudaMalloc(&d->scratch, d->a.scratch_bytes));
        ORC_CUDA_CHECK(cudaMemset(d->scratch, 0, d->a.scratch_bytes));
        ORC_CUDA_CHECK(cudaDeviceSynchronize()); /* before launches on any stream */
    }
    d->a.scratch = d->scratch;
    return ORC_OK;
cleanup:
    gv_free(d);
    return st;
}

} /* namespace */

extern "C" orc_status orc_gpu_gemv_run(const orc_gpu_gemv_job *j, orc_err *err) {
    orc_status st = ORC_OK;
    gv_dev d;
    st = gv_setup(j, 1, &d, err);
    if (st != ORC_OK) return st;
    ORC_CUDA_CHECK(orc_launch_gemv(&d.a, 0));
    ORC_CUDA_CHECK(cudaDeviceSynchronize()); /* faults inside the kernel surface here */
    ORC_CUDA_CHECK(cudaMemcpy(j->y, d.y, d.ybytes, cudaMemcpyDeviceToHost));
cleanup:
    gv_free(&d);
    return st;
}

extern "C" orc_status orc_gpu_gemv_integer_form(int32_t type, int32_t *has, orc_err *err) {
    if (!has) return orc_fail(err, ORC_E_INVALID, "orc_gpu_gemv_integer_form: NULL has");
    *has = orc_gemv_has_integer_form(type) ? 1 : 0;
    return ORC_OK;
}

extern "C" orc_status orc_gpu_gemv_bench(const orc_gpu_gemv_job *j, int32_t repeats, orc_gpu_timing *out,
                                         orc_err *err) {
    orc_status st = ORC_OK;
    gv_dev d;
    uint64_t row_bytes = 0, mat = 0, per_copy = 0;
    int copies = 1, launches = 1;
    bool used[4096];
    int distinct = 0;
    if (!out) return orc_fail(err, ORC_E_INVALID, "orc_gpu_gemv_bench: NULL out");
    memset(out, 0, sizeof *out);
    if (!j || orc_type_nbytes(j->type, j->cols, &row_bytes, nullptr) != ORC_OK || j->rows < 1)
        return orc_gpu_gemv_run(j, err); /* the same checks and messages */
    mat = row_bytes * (uint64_t)j->rows;
    per_copy = (j->ids ? mat * (uint64_t)j->n_expert : mat) * (j->w_up ? 2 : 1);
    /* bytes a launch must read: the weights of the distinct experts it uses */
    if (j->ids) {
        memset(used, 0, sizeof used);
        for (int64_t i = 0; i < (int64_t)j->n * j->k; i++)
            if (j->ids[i] >= 0 && j->ids[i] < j->n_expert && j->ids[i] < 4096 && !used[j->ids[i]]) {
                used[j->ids[i]] = true;
                distinct++;
            }
        out->bytes = mat * (uint64_t)distinct * (j->w_up ? 2 : 1);
    } else {
        out->bytes = mat * (j->w_up ? 2 : 1);
    }
    /* enough copies that what successive launches read exceeds the L2 many times over */
    copies = out->bytes ? (int)((kRotateBytes + out->bytes - 1) / out->bytes) : 1;
    if ((uint64_t)copies * per_copy > kMaxRotateMemory) copies = (int)(kMaxRotateMemory / per_copy);
    if (copies > kMaxCopies) copies = kMaxCopies;
    if (copies < 1) copies = 1;
    launches = copies < 20 ? 20 : copies;
    st = gv_setup(j, copies, &d, err);
    if (st != ORC_OK) return st;
    out->copies = copies;
    {
        const orc_gemv_args base = d.a;
        auto enqueue = [&](int i, cudaStream_t s) {
            orc_gemv_args a = base;
            const size_t off = (size_t)(i % copies) * d.wstride;
            a.w = d.w + off;
            if (d.wu) a.w_up = d.wu + off;
            return orc_launch_gemv(&a, s);
        };
        const int32_t saved_copies = out->copies;
        const uint64_t saved_bytes = out->bytes;
        st = orc_time_launches("orc_launch_gemv", launches, repeats, true, enqueue, out, err);
        out->copies = saved_copies;
        out->bytes = saved_bytes;
    }
    gv_free(&d);
    return st;
}

extern "C" orc_status orc_gpu_copy_bench(uint64_t bytes, int32_t repeats, orc_gpu_timing *out, orc_err *err) {
    orc_status st = ORC_OK;
    void *a = nullptr, *b = nullptr;
    const size_t half = (size_t)(bytes / 2 + 255) / 256 * 256;
    if (!out) return orc_fail(err, ORC_E_INVALID, "orc_gpu_copy_bench: NULL out");
    memset(out, 0, sizeof *out);
    if (bytes < 2) return orc_fail(err, ORC_E_INVALID, "orc_gpu_copy_bench: need bytes >= 2");
    ORC_CUDA_CHECK(cudaMalloc(&a, half));
    ORC_CUDA_CHECK(cudaMalloc(&b, half));
    ORC_CUDA_CHECK(cudaMemset(a, 0x3c, half));
    {
        auto enqueue = [&](int, cudaStream_t s) { return cudaMemcpyAsync(b, a, half, cudaMemcpyDeviceToDevice, s); };
        st = orc_time_launches("cudaMemcpyAsync(device to device)", 4, repeats, false, enqueue, out, err);
    }
    out->bytes = 2 * (uint64_t)half;
cleanup:
    if (a) (void)cudaFree(a);
    if (b) (void)cudaFree(b);
    return st;
}
