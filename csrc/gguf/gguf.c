/* gguf.c - the GGUF v2/v3 reader declared in gguf.h: one validating pass over a
 * read-only map, then O(log n) look-ups of keys and tensors.
 *
 * Decisions (see gguf.h and docs/gguf_reader.md for the reasons):
 * - Only little-endian files. A byte-swapped (big-endian) file is recognised by its
 *   magic ("FUGG") or by a version whose low 16 bits are zero and is refused by name.
 * - Arrays of arrays are refused: no model in llama.cpp's converters writes them,
 *   llama.cpp's own reader rejects them, and gguf-py flattens them when reading (it
 *   cannot round-trip them), so there is no agreed meaning to implement.
 * - Keys and tensor names must be non-empty, valid UTF-8 without NUL bytes (lookup takes
 *   C strings, Python takes str). String *values* are not checked here: they are bytes to
 *   the core; the binding decodes them.
 * - BOOL values must be 0 or 1.
 * - Tensor data must be laid out exactly as llama.cpp writes and reads it: in info order,
 *   each offset equal to the end of the previous tensor rounded up to the alignment (the
 *   first at 0). Padding up to the alignment is therefore not a gap; anything more is.
 *   The last tensor's data must lie inside the file; its trailing padding need not.
 * - A file with no tensors may end before its (empty) data section would start.
 * Memory grows with what is actually parsed (never with a count the file claims), and
 * names are sorted by a bottom-up merge sort, so hostile input costs O(n log n) at worst.
 */
#include "gguf/gguf.h"

#include <errno.h>     /* errno, EISDIR */
#include <fcntl.h>     /* open */
#include <inttypes.h>  /* PRIu64 */
#include <stdio.h>     /* snprintf */
#include <stdatomic.h> /* atomic_int: shared handles */
#include <stdlib.h>    /* malloc, realloc, free */
#include <string.h>    /* memcpy, memcmp, strlen, strerror */
#include <sys/mman.h>  /* mmap, munmap */
#include <sys/stat.h>  /* fstat */
#include <unistd.h>    /* close */

#include "core/utf8.h"       /* orc_utf8_valid: keys and names */
#include "gguf/ggml_types.h"

#define GGUF_HEADER_SIZE 24
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_ALIGNMENT (1u << 20)        /* larger is refused as absurd (llama.cpp uses 32) */
#define GGUF_MAX_KEY_LEN 65535
#define GGUF_MAX_NAME 64                     /* ggml's GGML_MAX_NAME, NUL included */
#define GGUF_MAX_STRING_LEN (1ull << 30)     /* llama.cpp's GGUF_MAX_STRING_LENGTH */
#define GGUF_MIN_KV_BYTES 14                 /* key len 8 + key 1 + type 4 + smallest value 1 */
#define GGUF_MIN_TENSOR_BYTES 33             /* name len 8 + name 1 + n_dims 4 + ne 8 + type 4 + offset 8 */

/* A name (key or tensor name) and where it came from, for sorting and look-up. */
typedef struct name_entry {
    const char *ptr;
    uint64_t len;
    uint64_t index;
} name_entry;

struct orc_gguf {
    atomic_int refs; /* orc_gguf_retain / orc_gguf_close */
    const uint8_t *base;
    uint64_t size;
    void *map; /* non-NULL when this handle owns an mmap of `size` bytes */
    uint32_t version;
    uint64_t alignment;
    uint64_t data_offset;

    orc_gguf_kv *kv;
    uint64_t n_kv, cap_kv;
    orc_gguf_str *strs; /* every STRING value, in file order; kv[i].strings point in here */
    uint64_t n_strs, cap_strs;
    orc_gguf_tensor *tensors;
    uint64_t n_tensors, cap_tensors;
    char (*names_z)[GGUF_MAX_NAME]; /* NUL-terminated tensor names, parallel to tensors */
    uint64_t cap_names_z;

    name_entry *kv_sorted;     /* n_kv entries sorted by key */
    name_entry *tensor_sorted; /* n_tensors entries sorted by name */
};

typedef struct cursor {
    const uint8_t *base;
    uint64_t size;
    uint64_t pos;
} cursor;

static const uint8_t k_vtype_size[ORC_GGUF_VTYPE_COUNT] = {
    [ORC_GGUF_UINT8] = 1, [ORC_GGUF_INT8] = 1, [ORC_GGUF_UINT16] = 2, [ORC_GGUF_INT16] = 2,
    [ORC_GGUF_UINT32] = 4, [ORC_GGUF_INT32] = 4, [ORC_GGUF_FLOAT32] = 4, [ORC_GGUF_BOOL] = 1,
    [ORC_GGUF_STRING] = 0, [ORC_GGUF_ARRAY] = 0, [ORC_GGUF_UINT64] = 8, [ORC_GGUF_INT64] = 8,
    [ORC_GGUF_FLOAT64] = 8,
};

const char *orc_gguf_vtype_name(orc_gguf_vtype t) {
    static const char *const names[ORC_GGUF_VTYPE_COUNT] = {
        "UINT8", "INT8", "UINT16", "INT16", "UINT32", "INT32", "FLOAT32",
        "BOOL", "STRING", "ARRAY", "UINT64", "INT64", "FLOAT64",
    };
    if ((unsigned)t >= ORC_GGUF_VTYPE_COUNT) return "INVALID";
    return names[t];
}

/* ---- little helpers ------------------------------------------------------------------ */

/* Files are little-endian; assembling bytes keeps this correct on any host and compiles
 * to a plain load on x86/ARM. */
static uint32_t load_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t load_u64(const uint8_t *p) { return (uint64_t)load_u32(p) | (uint64_t)load_u32(p + 4) << 32; }
static uint16_t load_u16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

static uint64_t left(const cursor *c) { return c->size - c->pos; }

/* A printable, truncated rendering of untrusted bytes for error messages. */
static const char *printable(char *buf, size_t buf_size, const char *s, uint64_t len) {
    size_t o = 0;
    const uint64_t max_shown = 80;
    for (uint64_t i = 0; i < len && i < max_shown && o + 5 < buf_size; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '\\' && ch != '\'') {
            buf[o++] = (char)ch;
        } else {
            o += (size_t)snprintf(buf + o, buf_size - o, "\\x%02x", ch);
        }
    }
    if (len > max_shown && o + 4 < buf_size) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o < buf_size ? o : buf_size - 1] = '\0';
    return buf;
}

/* Strict UTF-8 (what Python's decoder accepts): no overlongs, no surrogates, <= U+10FFFF. */
static bool utf8_valid(const uint8_t *s, uint64_t len) { return len <= SIZE_MAX && orc_utf8_valid(s, (size_t)len); }

static int name_cmp(const char *a, uint64_t alen, const char *b, uint64_t blen) {
    uint64_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, (size_t)n) : 0;
    if (c) return c;
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

/* Bottom-up merge sort: O(n log n) whatever the input (qsort's worst case is not
 * specified, and names come from the file). Stable, so duplicates keep file order.
 * Returns the buffer that holds the result (a or tmp). */
static name_entry *sort_names(name_entry *a, name_entry *tmp, uint64_t n) {
    name_entry *src = a, *dst = tmp;
    for (uint64_t w = 1; w < n; w *= 2) {
        for (uint64_t lo = 0; lo < n; lo += 2 * w) {
            uint64_t mid = lo + w < n ? lo + w : n;
            uint64_t hi = mid + w < n ? mid + w : n;
            uint64_t i = lo, j = mid, o = lo;
            while (i < mid && j < hi)
                dst[o++] = name_cmp(src[j].ptr, src[j].len, src[i].ptr, src[i].len) < 0 ? src[j++] : src[i++];
            while (i < mid) dst[o++] = src[i++];
            while (j < hi) dst[o++] = src[j++];
        }
        name_entry *t = src;
        src = dst;
        dst = t;
        if (w > n / 2) break; /* w * 2 >= n: sorted; also keeps w from overflowing */
    }
    return src;
}

/* Sort `n` entries into a freshly allocated array stored in *out. */
static orc_status build_index(name_entry *entries, uint64_t n, name_entry **out, orc_err *err) {
    *out = NULL;
    if (n == 0) return ORC_OK;
    name_entry *tmp = malloc((size_t)n * sizeof *tmp);
    if (!tmp) return orc_fail(err, ORC_E_NOMEM, "out of memory sorting %" PRIu64 " names", n);
    name_entry *res = sort_names(entries, tmp, n);
    if (res == tmp) {
        *out = tmp;
        free(entries);
    } else {
        *out = entries;
        free(tmp);
    }
    return ORC_OK;
}

static const name_entry *find_name(const name_entry *sorted, uint64_t n, const char *s, uint64_t len) {
    uint64_t lo = 0, hi = n;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        int c = name_cmp(sorted[mid].ptr, sorted[mid].len, s, len);
        if (c == 0) return &sorted[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

/* Grow *arr (of *cap elements of `elem` bytes) to hold at least `need`. */
static bool grow(void **arr, uint64_t *cap, uint64_t need, size_t elem) {
    if (need <= *cap) return true;
    uint64_t ncap = *cap ? *cap : 64;
    while (ncap < need) {
        if (ncap > UINT64_MAX / 2) return false;
        ncap *= 2;
    }
    if (ncap > SIZE_MAX / elem) return false;
    void *p = realloc(*arr, (size_t)(ncap * elem));
    if (!p) return false;
    *arr = p;
    *cap = ncap;
    return true;
}

/* ---- parsing ------------------------------------------------------------------------- */

/* What a string is, for error messages; formatted only when something fails (a vocabulary
 * has 150k strings: formatting a label for each would cost more than parsing them). */
typedef enum { LABEL_KEY, LABEL_VALUE, LABEL_ELEMENT, LABEL_TENSOR_NAME } label_kind;
typedef struct str_label {
    label_kind kind;
    uint64_t n;       /* key / element / tensor number */
    const char *name; /* the key, for values and elements */
} str_label;

static void format_label(char *buf, size_t size, const str_label *l) {
    const char *name = l->name ? l->name : "";
    const char *more = strlen(name) > 40 ? "..." : "";
    switch (l->kind) {
    case LABEL_KEY: snprintf(buf, size, "key #%" PRIu64, l->n); break;
    case LABEL_VALUE: snprintf(buf, size, "value of key '%.40s%s'", name, more); break;
    case LABEL_ELEMENT: snprintf(buf, size, "element #%" PRIu64 " of key '%.40s%s'", l->n, name, more); break;
    case LABEL_TENSOR_NAME: snprintf(buf, size, "tensor #%" PRIu64 " name", l->n); break;
    }
}

/* Read a gguf string at c->pos and check its bytes are in the file. */
static orc_status read_str(cursor *c, orc_gguf_str *out, const str_label *label, orc_err *err) {
    uint64_t at = c->pos;
    char what[128];
    if (left(c) < 8) {
        format_label(what, sizeof what, label);
        return orc_fail(err, ORC_E_FORMAT, "%s at offset %" PRIu64 ": string length field runs past the end of the file",
                        what, at);
    }
    uint64_t len = load_u64(c->base + c->pos);
    c->pos += 8;
    if (len > GGUF_MAX_STRING_LEN) {
        format_label(what, sizeof what, label);
        return orc_fail(err, ORC_E_FORMAT,
                        "%s at offset %" PRIu64 ": string length %" PRIu64 " is absurdly large (limit %llu bytes)", what,
                        at, len, (unsigned long long)GGUF_MAX_STRING_LEN);
    }
    if (len > left(c)) {
        format_label(what, sizeof what, label);
        return orc_fail(err, ORC_E_FORMAT,
                        "%s at offset %" PRIu64 ": string of %" PRIu64 " bytes runs past the end of the file (%" PRIu64
                        " bytes left)",
                        what, at, len, left(c));
    }
    out->ptr = (const char *)c->base + c->pos;
    out->len = len;
    c->pos += len;
    return ORC_OK;
}

static orc_status push_str(orc_gguf *g, orc_gguf_str s, orc_err *err) {
    if (!grow((void **)&g->strs, &g->cap_strs, g->n_strs + 1, sizeof *g->strs))
        return orc_fail(err, ORC_E_NOMEM, "out of memory storing %" PRIu64 " strings", g->n_strs + 1);
    g->strs[g->n_strs++] = s;
    return ORC_OK;
}

static orc_status check_bools(const uint8_t *p, uint64_t n, const char *key, uint64_t at, orc_err *err) {
    for (uint64_t i = 0; i < n; i++)
        if (p[i] > 1)
            return orc_fail(err, ORC_E_FORMAT, "key '%s' at offset %" PRIu64 ": BOOL value %u%s is not 0 or 1", key, at,
                            (unsigned)p[i], n > 1 ? " in the array" : "");
    return ORC_OK;
}

static orc_status parse_kv(orc_gguf *g, cursor *c, uint64_t i, orc_err *err) {
    orc_status st;
    char kbuf[400];
    uint64_t at = c->pos;
    orc_gguf_kv kv;
    memset(&kv, 0, sizeof kv);
    kv.offset = at;

    str_label klabel = {LABEL_KEY, i, NULL};
    if (left(c) < 8)
        return orc_fail(err, ORC_E_FORMAT, "key #%" PRIu64 " at offset %" PRIu64 ": key length runs past the end of the file",
                        i, at);
    uint64_t klen = load_u64(c->base + c->pos);
    if (klen == 0) return orc_fail(err, ORC_E_FORMAT, "key #%" PRIu64 " at offset %" PRIu64 " is empty", i, at);
    if (klen > GGUF_MAX_KEY_LEN)
        return orc_fail(err, ORC_E_FORMAT,
                        "key #%" PRIu64 " at offset %" PRIu64 ": key length %" PRIu64 " exceeds the limit of %d bytes", i,
                        at, klen, GGUF_MAX_KEY_LEN);
    if ((st = read_str(c, &kv.key, &klabel, err)) != ORC_OK) return st;
    printable(kbuf, sizeof kbuf, kv.key.ptr, kv.key.len);
    if (memchr(kv.key.ptr, 0, (size_t)kv.key.len) || !utf8_valid((const uint8_t *)kv.key.ptr, kv.key.len))
        return orc_fail(err, ORC_E_FORMAT, "key #%" PRIu64 " at offset %" PRIu64 " ('%s') is not valid UTF-8 or contains NUL",
                        i, at, kbuf);

    if (left(c) < 4)
        return orc_fail(err, ORC_E_FORMAT, "key '%s' at offset %" PRIu64 ": value type runs past the end of the file", kbuf,
                        at);
    uint32_t type = load_u32(c->base + c->pos);
    c->pos += 4;
    if (type >= ORC_GGUF_VTYPE_COUNT)
        return orc_fail(err, ORC_E_FORMAT, "key '%s' at offset %" PRIu64 ": value type id %u is out of range (0..%d)", kbuf,
                        at, type, ORC_GGUF_VTYPE_COUNT - 1);
    kv.type = (orc_gguf_vtype)type;
    kv.elem_type = kv.type;
    kv.count = 1;

    if (kv.type == ORC_GGUF_ARRAY) {
        if (left(c) < 12)
            return orc_fail(err, ORC_E_FORMAT,
                            "key '%s' at offset %" PRIu64 ": array element type and count run past the end of the file",
                            kbuf, at);
        uint32_t et = load_u32(c->base + c->pos);
        uint64_t count = load_u64(c->base + c->pos + 4);
        c->pos += 12;
        if (et == ORC_GGUF_ARRAY)
            return orc_fail(err, ORC_E_FORMAT,
                            "key '%s' at offset %" PRIu64 ": arrays of arrays are not supported (no model uses them)", kbuf,
                            at);
        if (et >= ORC_GGUF_VTYPE_COUNT)
            return orc_fail(err, ORC_E_FORMAT,
                            "key '%s' at offset %" PRIu64 ": array element type id %u is out of range (0..%d)", kbuf, at, et,
                            ORC_GGUF_VTYPE_COUNT - 1);
        kv.elem_type = (orc_gguf_vtype)et;
        kv.count = count;
    }

    if (kv.elem_type == ORC_GGUF_STRING) {
        /* each string takes at least its 8-byte length */
        if (kv.type == ORC_GGUF_ARRAY && kv.count > left(c) / 8)
            return orc_fail(err, ORC_E_FORMAT,
                            "key '%s' at offset %" PRIu64 ": an array of %" PRIu64
                            " strings cannot fit in the %" PRIu64 " bytes left",
                            kbuf, at, kv.count, left(c));
        str_label vlabel = {kv.type == ORC_GGUF_ARRAY ? LABEL_ELEMENT : LABEL_VALUE, 0, kbuf};
        for (uint64_t j = 0; j < kv.count; j++) {
            orc_gguf_str s;
            vlabel.n = j;
            if ((st = read_str(c, &s, &vlabel, err)) != ORC_OK) return st;
            if ((st = push_str(g, s, err)) != ORC_OK) return st;
        }
    } else {
        uint64_t esize = k_vtype_size[kv.elem_type], bytes;
        if (orc_mul_overflow_u64(kv.count, esize, &bytes))
            return orc_fail(err, ORC_E_FORMAT,
                            "key '%s' at offset %" PRIu64 ": array of %" PRIu64 " %s elements overflows its byte size",
                            kbuf, at, kv.count, orc_gguf_vtype_name(kv.elem_type));
        if (bytes > left(c))
            return orc_fail(err, ORC_E_FORMAT,
                            "key '%s' at offset %" PRIu64 ": %" PRIu64 " %s value%s (%" PRIu64
                            " bytes) run past the end of the file (%" PRIu64 " bytes left)",
                            kbuf, at, kv.count, orc_gguf_vtype_name(kv.elem_type), kv.count == 1 ? "" : "s", bytes,
                            left(c));
        kv.data = c->base + c->pos;
        if (kv.elem_type == ORC_GGUF_BOOL && (st = check_bools(kv.data, kv.count, kbuf, at, err)) != ORC_OK) return st;
        c->pos += bytes;
    }

    if (!grow((void **)&g->kv, &g->cap_kv, g->n_kv + 1, sizeof *g->kv))
        return orc_fail(err, ORC_E_NOMEM, "out of memory storing %" PRIu64 " key-value pairs", g->n_kv + 1);
    g->kv[g->n_kv++] = kv;
    return ORC_OK;
}

static orc_status index_kvs(orc_gguf *g, orc_err *err) {
    if (g->n_kv == 0) return ORC_OK;
    name_entry *e = malloc((size_t)g->n_kv * sizeof *e);
    if (!e) return orc_fail(err, ORC_E_NOMEM, "out of memory indexing %" PRIu64 " keys", g->n_kv);
    for (uint64_t i = 0; i < g->n_kv; i++) e[i] = (name_entry){g->kv[i].key.ptr, g->kv[i].key.len, i};
    orc_status st = build_index(e, g->n_kv, &g->kv_sorted, err);
    if (st != ORC_OK) {
        free(e);
        return st;
    }
    for (uint64_t i = 1; i < g->n_kv; i++) {
        const name_entry *a = &g->kv_sorted[i - 1], *b = &g->kv_sorted[i];
        if (name_cmp(a->ptr, a->len, b->ptr, b->len) == 0) {
            char kbuf[400];
            return orc_fail(err, ORC_E_FORMAT, "duplicate key '%s' at offsets %" PRIu64 " and %" PRIu64,
                            printable(kbuf, sizeof kbuf, a->ptr, a->len), g->kv[a->index].offset, g->kv[b->index].offset);
        }
    }
    return ORC_OK;
}

static orc_status read_alignment(orc_gguf *g, orc_err *err) {
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    const orc_gguf_kv *kv = orc_gguf_find_kv(g, "general.alignment");
    if (!kv) return ORC_OK;
    if (kv->type != ORC_GGUF_UINT32)
        return orc_fail(err, ORC_E_FORMAT, "key 'general.alignment' at offset %" PRIu64 " is %s%s%s, expected UINT32",
                        kv->offset, orc_gguf_vtype_name(kv->type), kv->type == ORC_GGUF_ARRAY ? " of " : "",
                        kv->type == ORC_GGUF_ARRAY ? orc_gguf_vtype_name(kv->elem_type) : "");
    uint32_t a = load_u32(kv->data);
    if (a == 0 || (a & (a - 1)) != 0)
        return orc_fail(err, ORC_E_FORMAT, "key 'general.alignment' at offset %" PRIu64 ": %u is not a power of two",
                        kv->offset, a);
    if (a > GGUF_MAX_ALIGNMENT)
        return orc_fail(err, ORC_E_FORMAT,
                        "key 'general.alignment' at offset %" PRIu64 ": %u is absurdly large (orc accepts up to %u)",
                        kv->offset, a, GGUF_MAX_ALIGNMENT);
    g->alignment = a;
    return ORC_OK;
}

static uint64_t pad_to(uint64_t x, uint64_t align, bool *overflow) {
    uint64_t r = x % align;
    if (r == 0) return x;
    uint64_t y;
    *overflow = orc_add_overflow_u64(x, align - r, &y) != 0;
    return y;
}

static orc_status parse_tensor_info(orc_gguf *g, cursor *c, uint64_t i, orc_err *err) {
    orc_status st;
    char nbuf[400], tbuf[64];
    uint64_t at = c->pos;
    orc_gguf_tensor t;
    memset(&t, 0, sizeof t);
    t.info_offset = at;

    if (left(c) < 8)
        return orc_fail(err, ORC_E_FORMAT,
                        "tensor #%" PRIu64 " at offset %" PRIu64 ": name length runs past the end of the file", i, at);
    uint64_t nlen = load_u64(c->base + c->pos);
    if (nlen == 0) return orc_fail(err, ORC_E_FORMAT, "tensor #%" PRIu64 " at offset %" PRIu64 " has an empty name", i, at);
    if (nlen >= GGUF_MAX_NAME) {
        /* show what we can of it */
        uint64_t avail = left(c) - 8;
        printable(nbuf, sizeof nbuf, (const char *)c->base + c->pos + 8, nlen < avail ? nlen : avail);
        return orc_fail(err, ORC_E_FORMAT,
                        "tensor #%" PRIu64 " at offset %" PRIu64 " ('%s'): name length %" PRIu64
                        " is not below ggml's limit of %d bytes",
                        i, at, nbuf, nlen, GGUF_MAX_NAME);
    }
    str_label nlabel = {LABEL_TENSOR_NAME, i, NULL};
    if ((st = read_str(c, &t.name, &nlabel, err)) != ORC_OK) return st;
    printable(nbuf, sizeof nbuf, t.name.ptr, t.name.len);
    if (memchr(t.name.ptr, 0, (size_t)t.name.len) || !utf8_valid((const uint8_t *)t.name.ptr, t.name.len))
        return orc_fail(err, ORC_E_FORMAT,
                        "tensor #%" PRIu64 " at offset %" PRIu64 ": name '%s' is not valid UTF-8 or contains NUL", i, at,
                        nbuf);

    if (left(c) < 4)
        return orc_fail(err, ORC_E_FORMAT, "tensor '%s' at offset %" PRIu64 ": n_dims runs past the end of the file", nbuf,
                        at);
    uint32_t n_dims = load_u32(c->base + c->pos);
    c->pos += 4;
    if (n_dims < 1 || n_dims > 4)
        return orc_fail(err, ORC_E_FORMAT, "tensor '%s' at offset %" PRIu64 ": n_dims %u is not in 1..4", nbuf, at, n_dims);
    t.n_dims = n_dims;
    if (left(c) < 8ull * n_dims)
        return orc_fail(err, ORC_E_FORMAT, "tensor '%s' at offset %" PRIu64 ": dimensions run past the end of the file",
                        nbuf, at);
    int64_t n_el = 1;
    for (uint32_t d = 0; d < 4; d++) {
        if (d >= n_dims) {
            t.ne[d] = 1;
            continue;
        }
        t.ne[d] = (int64_t)load_u64(c->base + c->pos + 8ull * d);
        if (t.ne[d] < 0)
            return orc_fail(err, ORC_E_FORMAT, "tensor '%s' at offset %" PRIu64 ": dimension %u is negative (%" PRId64 ")",
                            nbuf, at, d, t.ne[d]);
        if (t.ne[d] == 0)
            return orc_fail(err, ORC_E_FORMAT, "tensor '%s' at offset %" PRIu64 ": dimension %u is zero", nbuf, at, d);
        if (__builtin_mul_overflow(n_el, t.ne[d], &n_el))
            return orc_fail(err, ORC_E_FORMAT,
                            "tensor '%s' at offset %" PRIu64 ": the product of its dimensions overflows int64", nbuf, at);
    }
    c->pos += 8ull * n_dims;
    t.n_elements = n_el;

    if (left(c) < 12)
        return orc_fail(err, ORC_E_FORMAT,
                        "tensor '%s' at offset %" PRIu64 ": type and data offset run past the end of the file", nbuf, at);
    t.type = (int32_t)load_u32(c->base + c->pos);
    t.offset = load_u64(c->base + c->pos + 4);
    c->pos += 12;
    const orc_type_traits *tr = orc_type_traits_get(t.type);
    if (!tr)
        return orc_fail(err, ORC_E_FORMAT, "tensor '%s' at offset %" PRIu64 ": ggml type id %d is not valid (%s)", nbuf, at,
                        (int)t.type, orc_type_name(t.type, tbuf, sizeof tbuf));
    if (t.ne[0] % tr->block_size != 0)
        return orc_fail(err, ORC_E_FORMAT,
                        "tensor '%s' at offset %" PRIu64 ": first dimension %" PRId64
                        " is not a multiple of %s's block size %d",
                        nbuf, at, t.ne[0], tr->name, (int)tr->block_size);
    orc_err terr;
    if (orc_type_nbytes(t.type, t.n_elements, &t.nbytes, &terr) != ORC_OK)
        return orc_fail(err, ORC_E_FORMAT, "tensor '%s' at offset %" PRIu64 ": %s", nbuf, at, terr.msg);
    bool ovf = false;
    (void)pad_to(t.nbytes, g->alignment, &ovf);
    if (ovf)
        return orc_fail(err, ORC_E_FORMAT,
                        "tensor '%s' at offset %" PRIu64 ": its size %" PRIu64 " padded to the alignment %" PRIu64
                        " overflows",
                        nbuf, at, t.nbytes, g->alignment);

    if (!grow((void **)&g->tensors, &g->cap_tensors, g->n_tensors + 1, sizeof *g->tensors) ||
        !grow((void **)&g->names_z, &g->cap_names_z, g->n_tensors + 1, sizeof *g->names_z))
        return orc_fail(err, ORC_E_NOMEM, "out of memory storing %" PRIu64 " tensor infos", g->n_tensors + 1);
    memcpy(g->names_z[g->n_tensors], t.name.ptr, (size_t)t.name.len);
    g->names_z[g->n_tensors][t.name.len] = '\0';
    g->tensors[g->n_tensors++] = t;
    return ORC_OK;
}

static orc_status index_tensors(orc_gguf *g, orc_err *err) {
    if (g->n_tensors == 0) return ORC_OK;
    name_entry *e = malloc((size_t)g->n_tensors * sizeof *e);
    if (!e) return orc_fail(err, ORC_E_NOMEM, "out of memory indexing %" PRIu64 " tensors", g->n_tensors);
    for (uint64_t i = 0; i < g->n_tensors; i++) e[i] = (name_entry){g->tensors[i].name.ptr, g->tensors[i].name.len, i};
    orc_status st = build_index(e, g->n_tensors, &g->tensor_sorted, err);
    if (st != ORC_OK) {
        free(e);
        return st;
    }
    for (uint64_t i = 1; i < g->n_tensors; i++) {
        const name_entry *a = &g->tensor_sorted[i - 1], *b = &g->tensor_sorted[i];
        if (name_cmp(a->ptr, a->len, b->ptr, b->len) == 0)
            return orc_fail(err, ORC_E_FORMAT,
                            "duplicate tensor name '%s' (tensor #%" PRIu64 " at offset %" PRIu64 " and #%" PRIu64
                            " at offset %" PRIu64 ")",
                            g->names_z[a->index], a->index, g->tensors[a->index].info_offset, b->index,
                            g->tensors[b->index].info_offset);
    }
    return ORC_OK;
}

/* Why tensor i does not start at `expected` (where the layout rule wants it). */
static orc_status layout_error(const orc_gguf *g, uint64_t i, uint64_t expected, orc_err *err) {
    const orc_gguf_tensor *t = &g->tensors[i];
    const char *name = g->names_z[i];
    if (t->offset < expected) {
        const orc_gguf_tensor *p = &g->tensors[i - 1]; /* expected > 0 only after a tensor */
        if (t->offset < p->offset)
            return orc_fail(err, ORC_E_FORMAT,
                            "tensor '%s' (info at offset %" PRIu64 "): data offset %" PRIu64
                            " is out of order: below the previous tensor '%s' at %" PRIu64,
                            name, t->info_offset, t->offset, g->names_z[i - 1], p->offset);
        return orc_fail(err, ORC_E_FORMAT,
                        "tensor '%s' (info at offset %" PRIu64 "): data at offset %" PRIu64
                        " overlaps the previous tensor '%s' (offset %" PRIu64 ", %" PRIu64 " bytes)",
                        name, t->info_offset, t->offset, g->names_z[i - 1], p->offset, p->nbytes);
    }
    /* past where it should be: is a later tensor's data the one that belongs here? */
    for (uint64_t j = i + 1; j < g->n_tensors; j++)
        if (g->tensors[j].offset < t->offset)
            return orc_fail(err, ORC_E_FORMAT,
                            "tensor '%s' (info at offset %" PRIu64 "): data offset %" PRIu64
                            " is out of order: the later tensor '%s' (info at offset %" PRIu64
                            ") has its data before it, at %" PRIu64,
                            name, t->info_offset, t->offset, g->names_z[j], g->tensors[j].info_offset,
                            g->tensors[j].offset);
    if (i == 0)
        return orc_fail(err, ORC_E_FORMAT,
                        "tensor '%s' (info at offset %" PRIu64 "): data offset %" PRIu64
                        " leaves a gap: the first tensor's data must start at 0",
                        name, t->info_offset, t->offset);
    return orc_fail(err, ORC_E_FORMAT,
                    "tensor '%s' (info at offset %" PRIu64 "): data offset %" PRIu64 " leaves a gap of %" PRIu64
                    " bytes after the previous tensor '%s' (expected offset %" PRIu64 ")",
                    name, t->info_offset, t->offset, t->offset - expected, g->names_z[i - 1], expected);
}

/* The data layout rule (see the top of this file): first what each tensor must satisfy on
 * its own, then the sequence. */
static orc_status check_layout(orc_gguf *g, orc_err *err) {
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        orc_gguf_tensor *t = &g->tensors[i];
        const char *name = g->names_z[i];
        if (t->offset % g->alignment != 0)
            return orc_fail(err, ORC_E_FORMAT,
                            "tensor '%s' (info at offset %" PRIu64 "): data offset %" PRIu64
                            " is not a multiple of the alignment %" PRIu64,
                            name, t->info_offset, t->offset, g->alignment);
        uint64_t start, end;
        if (orc_add_overflow_u64(g->data_offset, t->offset, &start) || orc_add_overflow_u64(start, t->nbytes, &end))
            return orc_fail(err, ORC_E_FORMAT,
                            "tensor '%s' (info at offset %" PRIu64 "): data offset %" PRIu64 " + size %" PRIu64
                            " overflows",
                            name, t->info_offset, t->offset, t->nbytes);
        if (end > g->size)
            return orc_fail(err, ORC_E_FORMAT,
                            "tensor '%s' (info at offset %" PRIu64 "): data at file offset %" PRIu64 " + %" PRIu64
                            " bytes runs past the end of the file (%" PRIu64 " bytes)",
                            name, t->info_offset, start, t->nbytes, g->size);
        t->data = g->base + start;
    }
    uint64_t expected = 0; /* where the next tensor must start, relative to the data section */
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const orc_gguf_tensor *t = &g->tensors[i];
        if (t->offset != expected) return layout_error(g, i, expected, err);
        bool ovf = false;
        uint64_t padded = pad_to(t->nbytes, g->alignment, &ovf); /* cannot overflow: checked at parse */
        if (ovf || orc_add_overflow_u64(expected, padded, &expected))
            return orc_fail(err, ORC_E_FORMAT, "tensor '%s' (info at offset %" PRIu64 "): data section size overflows",
                            g->names_z[i], t->info_offset);
    }
    return ORC_OK;
}

static orc_status parse(orc_gguf *g, orc_err *err) {
    orc_status st;
    cursor c = {g->base, g->size, 0};
    const uint8_t *b = g->base;

    if (g->size == 0) return orc_fail(err, ORC_E_FORMAT, "empty file (0 bytes): a GGUF file starts with a 24-byte header");
    if (g->size >= 4 && memcmp(b, "GGUF", 4) != 0) {
        char mbuf[32];
        if (memcmp(b, "FUGG", 4) == 0)
            return orc_fail(err, ORC_E_FORMAT,
                            "magic at offset 0 is 'FUGG', GGUF byte-swapped: big-endian GGUF files are not supported");
        return orc_fail(err, ORC_E_FORMAT, "not a GGUF file: magic at offset 0 is '%s', expected 'GGUF'",
                        printable(mbuf, sizeof mbuf, (const char *)b, 4));
    }
    if (g->size < GGUF_HEADER_SIZE)
        return orc_fail(err, ORC_E_FORMAT, "file is %" PRIu64 " bytes, shorter than the %d-byte GGUF header", g->size,
                        GGUF_HEADER_SIZE);

    uint32_t version = load_u32(b + 4);
    if (version != 0 && (version & 0xffff) == 0)
        return orc_fail(err, ORC_E_FORMAT,
                        "version field at offset 4 reads 0x%08x: this is a big-endian (byte-swapped) GGUF file, which "
                        "is not supported",
                        version);
    if (version == 0) return orc_fail(err, ORC_E_FORMAT, "GGUF version 0 at offset 4 is not valid");
    if (version == 1)
        return orc_fail(err, ORC_E_FORMAT,
                        "GGUF version 1 (offset 4) is not supported: it used 32-bit counts; re-convert the model");
    if (version > 3)
        return orc_fail(err, ORC_E_FORMAT, "GGUF version %u at offset 4 is not supported (orc reads versions 2 and 3)",
                        version);
    g->version = version;

    uint64_t n_tensors = load_u64(b + 8), n_kv = load_u64(b + 16);
    uint64_t rest = g->size - GGUF_HEADER_SIZE;
    if ((int64_t)n_tensors < 0)
        return orc_fail(err, ORC_E_FORMAT, "n_tensors at offset 8 is negative (%" PRId64 ")", (int64_t)n_tensors);
    if ((int64_t)n_kv < 0) return orc_fail(err, ORC_E_FORMAT, "n_kv at offset 16 is negative (%" PRId64 ")", (int64_t)n_kv);
    if (n_tensors > rest / GGUF_MIN_TENSOR_BYTES)
        return orc_fail(err, ORC_E_FORMAT,
                        "n_tensors %" PRIu64 " at offset 8 cannot fit in the %" PRIu64
                        " bytes after the header (a tensor info takes at least %d)",
                        n_tensors, rest, GGUF_MIN_TENSOR_BYTES);
    if (n_kv > rest / GGUF_MIN_KV_BYTES)
        return orc_fail(err, ORC_E_FORMAT,
                        "n_kv %" PRIu64 " at offset 16 cannot fit in the %" PRIu64
                        " bytes after the header (a key-value pair takes at least %d)",
                        n_kv, rest, GGUF_MIN_KV_BYTES);
    if (n_kv * GGUF_MIN_KV_BYTES + n_tensors * GGUF_MIN_TENSOR_BYTES > rest) /* no overflow: each term <= rest */
        return orc_fail(err, ORC_E_FORMAT,
                        "n_kv %" PRIu64 " and n_tensors %" PRIu64 " (offsets 16 and 8) cannot fit in the %" PRIu64
                        " bytes after the header",
                        n_kv, n_tensors, rest);
    c.pos = GGUF_HEADER_SIZE;

    for (uint64_t i = 0; i < n_kv; i++)
        if ((st = parse_kv(g, &c, i, err)) != ORC_OK) return st;
    /* now that strs stops moving, point each string value at its entries */
    for (uint64_t i = 0, s = 0; i < g->n_kv; i++) {
        if (g->kv[i].elem_type != ORC_GGUF_STRING) continue;
        /* an empty string array may be the only one: strs is then NULL, and NULL + 0 is UB */
        g->kv[i].strings = g->strs ? g->strs + s : NULL;
        s += g->kv[i].count;
    }
    if ((st = index_kvs(g, err)) != ORC_OK) return st;
    if ((st = read_alignment(g, err)) != ORC_OK) return st;

    for (uint64_t i = 0; i < n_tensors; i++)
        if ((st = parse_tensor_info(g, &c, i, err)) != ORC_OK) return st;
    for (uint64_t i = 0; i < g->n_tensors; i++) g->tensors[i].name_z = g->names_z[i];
    if ((st = index_tensors(g, err)) != ORC_OK) return st;

    bool ovf = false;
    g->data_offset = pad_to(c.pos, g->alignment, &ovf);
    if (n_tensors > 0 && (ovf || g->data_offset > g->size))
        return orc_fail(err, ORC_E_FORMAT,
                        "the tensor infos end at offset %" PRIu64 "; padded to the alignment %" PRIu64
                        " the data section would start at %" PRIu64 ", past the end of the file (%" PRIu64 " bytes)",
                        c.pos, g->alignment, g->data_offset, g->size);
    return check_layout(g, err);
}

/* ---- public API ---------------------------------------------------------------------- */

static orc_status open_common(const uint8_t *data, uint64_t size, void *map, orc_gguf **out, orc_err *err) {
    orc_gguf *g = calloc(1, sizeof *g);
    if (!g) {
        if (map) munmap(map, (size_t)size);
        return orc_fail(err, ORC_E_NOMEM, "out of memory opening a GGUF file");
    }
    atomic_init(&g->refs, 1);
    g->base = data;
    g->size = size;
    g->map = map;
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    orc_status st = parse(g, err);
    if (st != ORC_OK) {
        orc_gguf_close(g);
        return st;
    }
    *out = g;
    return ORC_OK;
}

orc_status orc_gguf_open_buffer(const void *data, size_t size, orc_gguf **out, orc_err *err) {
    if (!out) return orc_fail(err, ORC_E_INVALID, "orc_gguf_open_buffer: out is NULL");
    *out = NULL;
    if (!data && size) return orc_fail(err, ORC_E_INVALID, "orc_gguf_open_buffer: data is NULL");
    static const uint8_t empty[1];
    return open_common(data ? data : empty, size, NULL, out, err);
}

orc_status orc_gguf_open(const char *path, orc_gguf **out, orc_err *err) {
    if (!out) return orc_fail(err, ORC_E_INVALID, "orc_gguf_open: out is NULL");
    *out = NULL;
    if (!path) return orc_fail(err, ORC_E_INVALID, "orc_gguf_open: path is NULL");
    char pbuf[ORC_ERR_PATH_MAX];
    const char *pshow = orc_err_path(path, pbuf, sizeof pbuf); /* a long path keeps its base name */
    orc_status st = ORC_OK;
    int saved = 0;
    void *map = NULL;
    struct stat sb;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        saved = errno;
        st = orc_fail(err, ORC_E_IO, "cannot open '%s': %s", pshow, strerror(saved));
        goto cleanup;
    }
    if (fstat(fd, &sb) != 0) {
        saved = errno;
        st = orc_fail(err, ORC_E_IO, "cannot stat '%s': %s", pshow, strerror(saved));
        goto cleanup;
    }
    if (S_ISDIR(sb.st_mode)) {
        saved = EISDIR;
        st = orc_fail(err, ORC_E_IO, "'%s' is a directory, not a GGUF file", pshow);
        goto cleanup;
    }
    if (!S_ISREG(sb.st_mode)) {
        saved = EINVAL;
        st = orc_fail(err, ORC_E_IO, "'%s' is not a regular file", pshow);
        goto cleanup;
    }
    uint64_t size = (uint64_t)sb.st_size;
    if (size > SIZE_MAX) {
        saved = EFBIG;
        st = orc_fail(err, ORC_E_IO, "'%s' is too large to map (%" PRIu64 " bytes)", pshow, size);
        goto cleanup;
    }
    if (size > 0) {
        map = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            saved = errno;
            map = NULL;
            st = orc_fail(err, ORC_E_IO, "cannot map '%s' (%" PRIu64 " bytes): %s", pshow, size, strerror(saved));
            goto cleanup;
        }
    }
    close(fd);
    fd = -1;
    /* open_common owns the map from here, also on failure */
    if (map) st = open_common(map, size, map, out, err);
    else st = orc_gguf_open_buffer(NULL, 0, out, err);
    if (st != ORC_OK) orc_err_prefix(err, "'%s': ", pshow);

cleanup:
    if (fd >= 0) close(fd);
    if (saved) errno = saved;
    return st;
}

void orc_gguf_retain(orc_gguf *g) { atomic_fetch_add(&g->refs, 1); }

void orc_gguf_close(orc_gguf *g) {
    if (!g || atomic_fetch_sub(&g->refs, 1) != 1) return;
    if (g->map) munmap(g->map, (size_t)g->size);
    free(g->kv);
    free(g->strs);
    free(g->tensors);
    free(g->names_z);
    free(g->kv_sorted);
    free(g->tensor_sorted);
    free(g);
}

uint32_t orc_gguf_version(const orc_gguf *g) { return g->version; }
uint64_t orc_gguf_file_size(const orc_gguf *g) { return g->size; }
uint64_t orc_gguf_alignment(const orc_gguf *g) { return g->alignment; }
uint64_t orc_gguf_data_offset(const orc_gguf *g) { return g->data_offset; }
const uint8_t *orc_gguf_base(const orc_gguf *g) { return g->base; }

uint64_t orc_gguf_n_kv(const orc_gguf *g) { return g->n_kv; }
const orc_gguf_kv *orc_gguf_kv_at(const orc_gguf *g, uint64_t i) { return i < g->n_kv ? &g->kv[i] : NULL; }

uint64_t orc_gguf_kv_index(const orc_gguf *g, const orc_gguf_kv *kv) { return (uint64_t)(kv - g->kv); }

const orc_gguf_kv *orc_gguf_find_kv(const orc_gguf *g, const char *key) {
    if (!key) return NULL;
    const name_entry *e = find_name(g->kv_sorted, g->kv_sorted ? g->n_kv : 0, key, strlen(key));
    return e ? &g->kv[e->index] : NULL;
}

uint64_t orc_gguf_n_tensors(const orc_gguf *g) { return g->n_tensors; }
const orc_gguf_tensor *orc_gguf_tensor_at(const orc_gguf *g, uint64_t i) {
    return i < g->n_tensors ? &g->tensors[i] : NULL;
}

uint64_t orc_gguf_tensor_index(const orc_gguf *g, const orc_gguf_tensor *t) { return (uint64_t)(t - g->tensors); }

const orc_gguf_tensor *orc_gguf_find_tensor(const orc_gguf *g, const char *name) {
    if (!name) return NULL;
    const name_entry *e = find_name(g->tensor_sorted, g->tensor_sorted ? g->n_tensors : 0, name, strlen(name));
    return e ? &g->tensors[e->index] : NULL;
}

/* ---- typed look-ups ------------------------------------------------------------------ */

static bool is_int_type(orc_gguf_vtype t) {
    switch (t) {
    case ORC_GGUF_UINT8: case ORC_GGUF_INT8: case ORC_GGUF_UINT16: case ORC_GGUF_INT16:
    case ORC_GGUF_UINT32: case ORC_GGUF_INT32: case ORC_GGUF_UINT64: case ORC_GGUF_INT64:
        return true;
    default:
        return false;
    }
}

static const char *type_desc(const orc_gguf_kv *kv, char *buf, size_t n) {
    if (kv->type == ORC_GGUF_ARRAY)
        snprintf(buf, n, "an ARRAY of %" PRIu64 " %s", kv->count, orc_gguf_vtype_name(kv->elem_type));
    else
        snprintf(buf, n, "%s", orc_gguf_vtype_name(kv->type));
    return buf;
}

static orc_status lookup(const orc_gguf *g, const char *key, const char *expected, const orc_gguf_kv **out,
                         orc_err *err) {
    *out = orc_gguf_find_kv(g, key);
    if (!*out) return orc_fail(err, ORC_E_NOT_FOUND, "key '%s' is missing (expected %s)", key, expected);
    return ORC_OK;
}

static orc_status wrong_type(const orc_gguf_kv *kv, const char *key, const char *expected, orc_err *err) {
    char buf[64];
    return orc_fail(err, ORC_E_FORMAT, "key '%s' at offset %" PRIu64 " is %s, expected %s", key, kv->offset,
                    type_desc(kv, buf, sizeof buf), expected);
}

int64_t orc_gguf_array_int(const orc_gguf_kv *kv, uint64_t i) {
    const uint8_t *p = kv->data + i * k_vtype_size[kv->elem_type];
    switch (kv->elem_type) {
    case ORC_GGUF_UINT8: return p[0];
    case ORC_GGUF_INT8: return (int8_t)p[0];
    case ORC_GGUF_UINT16: return load_u16(p);
    case ORC_GGUF_INT16: return (int16_t)load_u16(p);
    case ORC_GGUF_UINT32: return load_u32(p);
    case ORC_GGUF_INT32: return (int32_t)load_u32(p);
    case ORC_GGUF_UINT64: return (int64_t)load_u64(p);
    case ORC_GGUF_INT64: return (int64_t)load_u64(p);
    case ORC_GGUF_BOOL: return p[0];
    default: return 0; /* floats: converting an out-of-range float would be undefined */
    }
}

double orc_gguf_array_float(const orc_gguf_kv *kv, uint64_t i) {
    const uint8_t *p = kv->data + i * k_vtype_size[kv->elem_type];
    switch (kv->elem_type) {
    case ORC_GGUF_FLOAT32: {
        float f;
        uint32_t u = load_u32(p);
        memcpy(&f, &u, 4);
        return f;
    }
    case ORC_GGUF_FLOAT64: {
        double d;
        uint64_t u = load_u64(p);
        memcpy(&d, &u, 8);
        return d;
    }
    case ORC_GGUF_UINT64: return (double)load_u64(p);
    default: return (double)orc_gguf_array_int(kv, i);
    }
}

orc_status orc_gguf_get_int(const orc_gguf *g, const char *key, int64_t *out, orc_err *err) {
    const orc_gguf_kv *kv;
    orc_status st = lookup(g, key, "an integer", &kv, err);
    if (st != ORC_OK) return st;
    if (kv->type == ORC_GGUF_ARRAY || !is_int_type(kv->type)) return wrong_type(kv, key, "an integer", err);
    if (kv->type == ORC_GGUF_UINT64 && load_u64(kv->data) > (uint64_t)INT64_MAX)
        return orc_fail(err, ORC_E_FORMAT, "key '%s' at offset %" PRIu64 ": UINT64 value %" PRIu64 " exceeds int64", key,
                        kv->offset, load_u64(kv->data));
    *out = orc_gguf_array_int(kv, 0);
    return ORC_OK;
}

orc_status orc_gguf_get_float(const orc_gguf *g, const char *key, double *out, orc_err *err) {
    const orc_gguf_kv *kv;
    orc_status st = lookup(g, key, "FLOAT32 or FLOAT64", &kv, err);
    if (st != ORC_OK) return st;
    if (kv->type != ORC_GGUF_FLOAT32 && kv->type != ORC_GGUF_FLOAT64)
        return wrong_type(kv, key, "FLOAT32 or FLOAT64", err);
    *out = orc_gguf_array_float(kv, 0);
    return ORC_OK;
}

orc_status orc_gguf_get_bool(const orc_gguf *g, const char *key, bool *out, orc_err *err) {
    const orc_gguf_kv *kv;
    orc_status st = lookup(g, key, "BOOL", &kv, err);
    if (st != ORC_OK) return st;
    if (kv->type != ORC_GGUF_BOOL) return wrong_type(kv, key, "BOOL", err);
    *out = kv->data[0] != 0;
    return ORC_OK;
}

orc_status orc_gguf_get_str(const orc_gguf *g, const char *key, orc_gguf_str *out, orc_err *err) {
    const orc_gguf_kv *kv;
    orc_status st = lookup(g, key, "STRING", &kv, err);
    if (st != ORC_OK) return st;
    if (kv->type != ORC_GGUF_STRING) return wrong_type(kv, key, "STRING", err);
    *out = kv->strings[0];
    return ORC_OK;
}

orc_status orc_gguf_get_array(const orc_gguf *g, const char *key, orc_gguf_vtype elem_type, bool any_int,
                              const orc_gguf_kv **out, orc_err *err) {
    char expected[64];
    bool ints = any_int && elem_type == ORC_GGUF_INT64;
    if (ints) snprintf(expected, sizeof expected, "an ARRAY of integers");
    else snprintf(expected, sizeof expected, "an ARRAY of %s", orc_gguf_vtype_name(elem_type));
    const orc_gguf_kv *kv;
    orc_status st = lookup(g, key, expected, &kv, err);
    if (st != ORC_OK) return st;
    if (kv->type != ORC_GGUF_ARRAY || (ints ? !is_int_type(kv->elem_type) : kv->elem_type != elem_type))
        return wrong_type(kv, key, expected, err);
    *out = kv;
    return ORC_OK;
}

bool orc_gguf_str_eq(orc_gguf_str a, const char *s) {
    size_t n = strlen(s);
    return a.len == n && (n == 0 || memcmp(a.ptr, s, n) == 0);
}
