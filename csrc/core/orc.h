/* orc.h - what every core file shares: status codes and the error record.
 *
 * Errors are values: a core function returns an orc_status and, on failure,
 * leaves a human-readable message in the caller's orc_err. The Python binding
 * turns (status, message) into an exception in one place (py_errors.c).
 * Nothing in the core calls exit(), abort() or assert() for conditions a file
 * or a caller can cause. No file that includes this one includes Python.h
 * unless it is a binding file (py_*.c, module.c).
 */
#ifndef ORC_H
#define ORC_H

#include <stddef.h>  /* size_t */
#include <stdint.h>  /* fixed-width integers */

#ifdef __cplusplus
extern "C" {
#endif

typedef enum orc_status {
    ORC_OK = 0,
    ORC_E_INVALID,      /* bad argument from the caller        -> ValueError   */
    ORC_E_FORMAT,       /* malformed or hostile GGUF file      -> orc.GGUFError */
    ORC_E_UNSUPPORTED,  /* well-formed but not supported by orc -> orc.GGUFError for files, NotImplementedError otherwise */
    ORC_E_NOMEM,        /* host or device allocation failed    -> MemoryError  */
    ORC_E_IO,           /* open/stat/mmap failed               -> OSError      */
    ORC_E_NOT_FOUND,    /* no such key / tensor                -> KeyError     */
    ORC_E_RANGE,        /* index or token id out of range      -> IndexError/ValueError */
    ORC_E_STATE,        /* use after close, wrong object state -> orc.OrcError */
    ORC_E_CUDA,         /* CUDA runtime or cuBLAS failure      -> orc.CudaError */
    ORC_E_NO_CUDA,      /* built without CUDA, or no usable GPU -> orc.CudaError */
    ORC_E_INTERRUPTED,  /* a cancel flag was raised (Ctrl-C)   -> KeyboardInterrupt */
    ORC_E_INTERNAL,     /* a bug in orc                        -> orc.OrcError */
    ORC_STATUS_COUNT
} orc_status;

/* The error record. Fixed size so that filling it can never fail. */
#define ORC_ERR_MSG_MAX 1024
typedef struct orc_err {
    orc_status status;
    char msg[ORC_ERR_MSG_MAX];
} orc_err;

/* Record a failure (printf-style) and return `status` so callers can write
 * `return orc_fail(err, ORC_E_FORMAT, "...")`. `err` may be NULL. */
orc_status orc_fail(orc_err *err, orc_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Prefix an existing message with context ("loading blk.3.attn_q.weight: ...").
 * Returns err->status. */
orc_status orc_err_prefix(orc_err *err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

void orc_err_clear(orc_err *err);

/* Messages are valid UTF-8 whatever they are built from: orc_fail and orc_err_prefix escape
 * bytes that are not part of a well-formed sequence as \xNN, and a message cut at
 * ORC_ERR_MSG_MAX ends at a character boundary with "...". */

/* A path for a message, at most cap - 1 bytes (cap >= 32): as is when short enough, else its
 * start, "..." and its end, which keeps the file's base name (all of it when it takes at most
 * 3/4 of the room), cut at UTF-8 character boundaries. Returns buf. */
#define ORC_ERR_PATH_MAX 192
const char *orc_err_path(const char *path, char *buf, size_t cap);

/* "ORC_E_FORMAT" etc.; never NULL. */
const char *orc_status_name(orc_status status);

/* Overflow-checked size arithmetic: return 0 on success, 1 on overflow. */
static inline int orc_mul_overflow_u64(uint64_t a, uint64_t b, uint64_t *out) {
    return __builtin_mul_overflow(a, b, out);
}
static inline int orc_add_overflow_u64(uint64_t a, uint64_t b, uint64_t *out) {
    return __builtin_add_overflow(a, b, out);
}

#ifdef __cplusplus
}
#endif

#endif /* ORC_H */
