/* error.c - filling the orc_err record; see orc.h. */
#include "core/orc.h"

#include <stdarg.h>  /* va_list */
#include <stdio.h>   /* vsnprintf */
#include <string.h>  /* strlen, memmove */

orc_status orc_fail(orc_err *err, orc_status status, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->status = status;
    }
    return status;
}

orc_status orc_err_prefix(orc_err *err, const char *fmt, ...) {
    if (!err) return ORC_E_INTERNAL;
    char prefix[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    if (n < 0) return err->status;
    size_t plen = strlen(prefix), mlen = strlen(err->msg);
    if (plen + mlen + 1 > sizeof err->msg) mlen = sizeof err->msg - plen - 1;
    memmove(err->msg + plen, err->msg, mlen);
    memcpy(err->msg, prefix, plen);
    err->msg[plen + mlen] = '\0';
    return err->status;
}

void orc_err_clear(orc_err *err) {
    if (!err) return;
    err->status = ORC_OK;
    err->msg[0] = '\0';
}

const char *orc_status_name(orc_status status) {
    static const char *const names[ORC_STATUS_COUNT] = {
        "ORC_OK", "ORC_E_INVALID", "ORC_E_FORMAT", "ORC_E_UNSUPPORTED", "ORC_E_NOMEM",
        "ORC_E_IO", "ORC_E_NOT_FOUND", "ORC_E_RANGE", "ORC_E_STATE", "ORC_E_CUDA",
        "ORC_E_NO_CUDA", "ORC_E_INTERRUPTED", "ORC_E_INTERNAL",
    };
    if ((unsigned)status >= ORC_STATUS_COUNT) return "ORC_E_UNKNOWN";
    return names[status];
}
