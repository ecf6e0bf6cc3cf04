/* registry.c - the one place that names the backends, parses device strings and creates
 * a backend of a kind (the model, the binding and the CLI all go through here). */
#include <stdio.h>  /* snprintf */
#include <stdlib.h> /* strtol */
#include <string.h> /* strcmp, strncmp */

#include "backend/backend.h"
#include "backend/gpu.h" /* orc_cuda_probe */

const char *orc_backend_kind_name(orc_backend_kind kind) { return kind == ORC_BACKEND_CUDA ? "cuda" : "cpu"; }

orc_status orc_backend_parse(const char *s, orc_backend_kind *kind, int *device, orc_err *err) {
    *device = 0;
    if (s && !strcmp(s, "auto")) {
        int count = 0;
        orc_err ignore = {0};
        *kind = orc_cuda_probe(&count, &ignore) == ORC_OK && count > 0 ? ORC_BACKEND_CUDA : ORC_BACKEND_CPU;
        return ORC_OK;
    }
    if (s && !strcmp(s, "cpu")) {
        *kind = ORC_BACKEND_CPU;
        return ORC_OK;
    }
    if (s && !strcmp(s, "cuda")) {
        *kind = ORC_BACKEND_CUDA;
        return ORC_OK;
    }
    if (s && !strncmp(s, "cuda:", 5) && s[5] >= '0' && s[5] <= '9') {
        char *end = NULL;
        long v = strtol(s + 5, &end, 10);
        if (*end == '\0' && v >= 0 && v < 1024) {
            *kind = ORC_BACKEND_CUDA;
            *device = (int)v;
            return ORC_OK;
        }
    }
    return orc_fail(err, ORC_E_INVALID, "device must be 'auto', 'cpu', 'cuda' or 'cuda:N', not '%.64s'",
                    s ? s : "(null)");
}

orc_status orc_backend_create(orc_backend_kind kind, const orc_backend_params *p, orc_backend **out, orc_err *err) {
    switch (kind) {
    case ORC_BACKEND_CPU: return orc_backend_cpu_create(p, out, err);
    case ORC_BACKEND_CUDA: return orc_backend_cuda_create(p, out, err);
    }
    return orc_fail(err, ORC_E_INVALID, "unknown backend kind %d", (int)kind);
}

bool orc_backend_supports(const orc_backend *b, orc_op op) {
    return b && b->ops->supports && b->ops->supports(b, op);
}
