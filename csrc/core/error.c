/* error.c - filling the orc_err record; see orc.h.
 *
 * Every message stored is valid UTF-8, whatever went into it: file contents (an architecture
 * name, a string value), paths in the file system's bytes, and cuts made by the fixed-size
 * buffers. Python decodes the record as UTF-8, and an invalid byte there would replace the
 * error with a UnicodeDecodeError that says nothing about the file. */
#include "core/orc.h"

#include <stdarg.h>  /* va_list */
#include <stdbool.h> /* bool */
#include <stdio.h>   /* vsnprintf */
#include <string.h>  /* strlen, memcpy */

#include "core/utf8.h" /* orc_utf8_check */

/* What the bytes at s[i..n) start with, for orc_err_store: 0 the end (an incomplete sequence
 * at the end of a source that was cut), 1 a character of *len bytes to copy, 2 one byte to
 * escape (*len = 1). */
static int orc_err_unit(const uint8_t *s, size_t n, size_t i, bool cut, size_t *len) {
    uint32_t cp;
    *len = 1;
    if (s[i] < 0x80) return 1;
    int r = orc_utf8_check(s + i, n - i, len, &cp);
    if (r == ORC_UTF8_OK) return 1;
    if (r == ORC_UTF8_TRUNCATED && cut) return 0;
    *len = 1;
    return 2;
}

/* Store src[0..n) in dst (capacity cap >= 4) as valid UTF-8: bytes that are not part of a
 * well-formed sequence become "\xNN"; an incomplete sequence at the very end of a source that
 * was itself cut (`cut`) is dropped, not escaped. When the result does not fit (or `cut`), it
 * ends at a character boundary with "...". */
static void orc_err_store(char *dst, size_t cap, const char *src, size_t n, bool cut) {
    static const char hex[] = "0123456789abcdef";
    const uint8_t *s = (const uint8_t *)src;
    size_t total = 0, len; /* pass 1: the whole sanitized length, to know whether "..." is due */
    for (size_t i = 0; i < n; i += len) {
        int u = orc_err_unit(s, n, i, cut, &len);
        if (u == 0) break;
        total += u == 1 ? len : 4;
    }
    const bool ellipsis = cut || total > cap - 1;
    const size_t room = ellipsis ? cap - 4 : cap - 1;
    size_t o = 0;
    for (size_t i = 0; i < n; i += len) {
        int u = orc_err_unit(s, n, i, cut, &len);
        if (u == 0 || o + (u == 1 ? len : 4) > room) break;
        if (u == 1) {
            memcpy(dst + o, s + i, len);
            o += len;
        } else {
            dst[o] = '\\', dst[o + 1] = 'x', dst[o + 2] = hex[s[i] >> 4], dst[o + 3] = hex[s[i] & 15];
            o += 4;
        }
    }
    if (ellipsis) memcpy(dst + o, "...", 3), o += 3;
    dst[o] = '\0';
}

orc_status orc_fail(orc_err *err, orc_status status, const char *fmt, ...) {
    if (err) {
        char tmp[ORC_ERR_MSG_MAX];
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
        va_end(ap);
        if (n < 0) n = 0, tmp[0] = '\0';
        const bool cut = (size_t)n >= sizeof tmp;
        orc_err_store(err->msg, sizeof err->msg, tmp, cut ? sizeof tmp - 1 : (size_t)n, cut);
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
    /* a cut prefix loses its tail, not the message after it */
    size_t plen = strlen(prefix), mlen = strlen(err->msg);
    char joined[sizeof prefix + ORC_ERR_MSG_MAX];
    size_t o = 0;
    if ((size_t)n >= sizeof prefix) { /* drop a character cut in half, mark the cut */
        char clean[sizeof prefix];
        orc_err_store(clean, sizeof clean, prefix, plen, true);
        plen = strlen(clean);
        memcpy(joined, clean, plen);
    } else {
        memcpy(joined, prefix, plen);
    }
    o = plen;
    memcpy(joined + o, err->msg, mlen);
    o += mlen;
    orc_err_store(err->msg, sizeof err->msg, joined, o, false);
    return err->status;
}

const char *orc_err_path(const char *path, char *buf, size_t cap) {
    if (!path) return "(null)";
    size_t n = strlen(path);
    if (n < cap) {
        memcpy(buf, path, n + 1);
        return buf;
    }
    /* head "..." tail, the tail being "/" and the whole base name when that fits in 3/4 of the
     * room, else the end of the base name */
    const size_t budget = cap - 1 - 3;
    const char *slash = strrchr(path, '/');
    size_t blen = slash ? n - (size_t)(slash - path) : n;
    size_t tail = blen <= budget - budget / 4 ? blen : budget - budget / 4;
    size_t head = budget - tail;
    /* cut both at character boundaries (UTF-8 continuation bytes are 10xxxxxx) */
    while (head > 0 && ((unsigned char)path[head] & 0xC0) == 0x80) head--;
    const char *t = path + n - tail;
    while (*t && ((unsigned char)*t & 0xC0) == 0x80) t++;
    tail = strlen(t);
    memcpy(buf, path, head);
    memcpy(buf + head, "...", 3);
    memcpy(buf + head + 3, t, tail + 1);
    return buf;
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
