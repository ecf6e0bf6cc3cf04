/* gguf.h - a GGUF v2/v3 reader over mmap, hardened against hostile files.
 *
 * The format (all integers little-endian; v1 used 32-bit counts and is refused):
 *
 *   header     magic "GGUF" (4 bytes), uint32 version, int64/uint64 n_tensors, uint64 n_kv
 *   n_kv x     key: gguf string; uint32 value type; value
 *              gguf string = uint64 length + bytes (no NUL)
 *              value       = scalar | string | array (uint32 elem type, uint64 count, count values)
 *   n_tensors x name: gguf string; uint32 n_dims; n_dims x int64 ne (ne[0] contiguous);
 *              int32 ggml type; uint64 offset (relative to the data section, aligned)
 *   padding    to general.alignment (default 32)
 *   data       tensor bytes
 *
 * Every count is checked against the bytes left and for overflow before use;
 * every failure is ORC_E_FORMAT (or ORC_E_IO / ORC_E_NOMEM) with a message that
 * names the byte offset, key or tensor. See ../shared/HARDENING.md rows 1-14.
 *
 * What orc accepts beyond the bare format (docs/gguf_reader.md gives the reasons):
 * - little-endian files only: a byte-swapped (big-endian) file ("FUGG" magic, or a
 *   version whose low 16 bits are zero) is refused with a message saying so;
 * - no arrays of arrays: no model writes them, llama.cpp refuses them and gguf-py
 *   flattens them on read (it cannot round-trip them), so they have no agreed meaning;
 * - keys: 1..65535 bytes, tensor names: 1..63 bytes, both valid UTF-8 without NUL;
 *   no duplicate keys, no duplicate tensor names; BOOL values are 0 or 1;
 * - general.alignment, when present: UINT32, a power of two, at most 1 MiB;
 * - tensors: n_dims 1..4, every dimension > 0, a known (not removed) ggml type, ne[0] a
 *   multiple of the type's block size; any known type is accepted (what orc can
 *   dequantize is the model's business, not the reader's);
 * - the data section laid out as llama.cpp writes and reads it: tensors in info order,
 *   the first at offset 0 and each next one at the end of the previous rounded up to the
 *   alignment (so alignment padding is not a gap; anything else is a gap, an overlap or
 *   out of order); every tensor's bytes inside the file (the last one's padding may be
 *   missing). A file with no tensors may end before its empty data section starts.
 * Key and tensor look-ups use sorted indexes (O(log n), worst case O(n log n) to build).
 *
 * Strings returned here point into the map and are not NUL-terminated, except
 * where noted. Everything returned lives until orc_gguf_close().
 */
#ifndef ORC_GGUF_H
#define ORC_GGUF_H

#include <stdbool.h>  /* bool */
#include <stddef.h>   /* size_t */
#include <stdint.h>   /* fixed-width integers */

#include "core/orc.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum orc_gguf_vtype {
    ORC_GGUF_UINT8 = 0, ORC_GGUF_INT8 = 1, ORC_GGUF_UINT16 = 2, ORC_GGUF_INT16 = 3,
    ORC_GGUF_UINT32 = 4, ORC_GGUF_INT32 = 5, ORC_GGUF_FLOAT32 = 6, ORC_GGUF_BOOL = 7,
    ORC_GGUF_STRING = 8, ORC_GGUF_ARRAY = 9, ORC_GGUF_UINT64 = 10, ORC_GGUF_INT64 = 11,
    ORC_GGUF_FLOAT64 = 12,
    ORC_GGUF_VTYPE_COUNT
} orc_gguf_vtype;

const char *orc_gguf_vtype_name(orc_gguf_vtype t); /* "UINT32", ...; "INVALID" out of range */

typedef struct orc_gguf_str {
    const char *ptr; /* into the map; not NUL-terminated */
    uint64_t len;
} orc_gguf_str;

typedef struct orc_gguf_kv {
    orc_gguf_str key;
    orc_gguf_vtype type;         /* the value's type; ORC_GGUF_ARRAY for arrays */
    orc_gguf_vtype elem_type;    /* arrays: the element type; scalars: == type */
    uint64_t count;              /* arrays: element count; scalars: 1 */
    const uint8_t *data;         /* numeric/bool scalars and arrays: the raw little-endian
                                    elements in the map (possibly unaligned: use memcpy) */
    const orc_gguf_str *strings; /* STRING scalars and string arrays: `count` entries
                                    (may be NULL when count is 0) */
    uint64_t offset;             /* file offset of the key's length field */
} orc_gguf_kv;

typedef struct orc_gguf_tensor {
    orc_gguf_str name;
    const char *name_z;   /* the same name, NUL-terminated (names are < 64 bytes) */
    uint32_t n_dims;      /* 1..4 */
    int64_t ne[4];        /* ggml order: ne[0] is contiguous; dims past n_dims are 1 */
    int64_t n_elements;
    int32_t type;         /* ggml type id (ggml_types.h) */
    uint64_t offset;      /* relative to the data section */
    uint64_t nbytes;
    const uint8_t *data;  /* in the map */
    uint64_t info_offset; /* file offset of this tensor's info record */
} orc_gguf_tensor;

typedef struct orc_gguf orc_gguf;

/* Open and fully validate a file (mmap, read-only). Messages start with the quoted path (a long
 * one shortened in the middle, keeping the base name: orc_err_path).
 * On ORC_E_IO, errno holds the cause (ENOENT, EISDIR, EACCES, ...). */
orc_status orc_gguf_open(const char *path, orc_gguf **out, orc_err *err);
/* The same over a caller-owned buffer (fuzzing, tests); the buffer must outlive the handle. */
orc_status orc_gguf_open_buffer(const void *data, size_t size, orc_gguf **out, orc_err *err);
void orc_gguf_close(orc_gguf *g); /* NULL is fine; the handle is freed at the last close */
/* One more owner: a model and the Python GGUFFile/Tokenizer over the same file share one
 * handle (the file is parsed once); each owner calls orc_gguf_close. */
void orc_gguf_retain(orc_gguf *g);

uint32_t orc_gguf_version(const orc_gguf *g);
uint64_t orc_gguf_file_size(const orc_gguf *g);
uint64_t orc_gguf_alignment(const orc_gguf *g);
uint64_t orc_gguf_data_offset(const orc_gguf *g); /* file offset of the data section */
const uint8_t *orc_gguf_base(const orc_gguf *g);  /* the whole mapped file */

uint64_t orc_gguf_n_kv(const orc_gguf *g);
const orc_gguf_kv *orc_gguf_kv_at(const orc_gguf *g, uint64_t i);
const orc_gguf_kv *orc_gguf_find_kv(const orc_gguf *g, const char *key); /* NULL if absent */

uint64_t orc_gguf_n_tensors(const orc_gguf *g);
const orc_gguf_tensor *orc_gguf_tensor_at(const orc_gguf *g, uint64_t i);
const orc_gguf_tensor *orc_gguf_find_tensor(const orc_gguf *g, const char *name); /* NULL if absent */

/* The position (0-based, file order) of a kv / tensor returned by this handle. */
uint64_t orc_gguf_kv_index(const orc_gguf *g, const orc_gguf_kv *kv);
uint64_t orc_gguf_tensor_index(const orc_gguf *g, const orc_gguf_tensor *t);

/* Typed look-ups for model and tokenizer code. A missing key is ORC_E_NOT_FOUND, a value
 * of the wrong type ORC_E_FORMAT; both messages name the key and what was expected. */
orc_status orc_gguf_get_int(const orc_gguf *g, const char *key, int64_t *out, orc_err *err);  /* any integer type */
orc_status orc_gguf_get_float(const orc_gguf *g, const char *key, double *out, orc_err *err); /* FLOAT32/64 */
orc_status orc_gguf_get_bool(const orc_gguf *g, const char *key, bool *out, orc_err *err);
orc_status orc_gguf_get_str(const orc_gguf *g, const char *key, orc_gguf_str *out, orc_err *err);
/* An array whose elements are of `elem_type`, or of any integer type when elem_type is
 * ORC_GGUF_INT64 and `any_int` is true. */
orc_status orc_gguf_get_array(const orc_gguf *g, const char *key, orc_gguf_vtype elem_type, bool any_int,
                              const orc_gguf_kv **out, orc_err *err);

/* Element i of a numeric array as int64 / double (bounds- and type-checked by the caller's
 * use of get_array; these only convert). array_int converts integer and BOOL elements
 * (UINT64 wraps above INT64_MAX) and gives 0 for floats; array_float converts any number. */
int64_t orc_gguf_array_int(const orc_gguf_kv *kv, uint64_t i);
double orc_gguf_array_float(const orc_gguf_kv *kv, uint64_t i);

/* Does the string equal the NUL-terminated `s`? */
bool orc_gguf_str_eq(orc_gguf_str a, const char *s);

#ifdef __cplusplus
}
#endif

#endif /* ORC_GGUF_H */
