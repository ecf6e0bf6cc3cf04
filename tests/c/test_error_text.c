/* test_error_text.c - every message orc_fail / orc_err_prefix store is valid UTF-8 (invalid bytes
 * escaped as \xNN, cuts at ORC_ERR_MSG_MAX on character boundaries with "..."), and orc_err_path
 * keeps a long path's base name. Built and run by tests/test_error_text.py; prints "ok" and exits
 * 0, or names each failed check and exits 1. */
#include <stdio.h>  /* printf */
#include <stdlib.h> /* rand, srand */
#include <string.h> /* strstr, strlen, memset */

#include "core/orc.h"
#include "core/utf8.h"

static int failures;

#define CHECK(cond)                                                  \
    do {                                                             \
        if (!(cond)) {                                               \
            printf("FAILED %s:%d: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                              \
        }                                                            \
    } while (0)

static int valid(const char *s) { return orc_utf8_valid((const uint8_t *)s, strlen(s)); }
static int ends_with(const char *s, const char *t) {
    size_t n = strlen(s), m = strlen(t);
    return n >= m && strcmp(s + n - m, t) == 0;
}

int main(void) {
    orc_err err;
    char big[4 * ORC_ERR_MSG_MAX];

    /* invalid bytes in a formatted value are escaped, valid text kept */
    orc_fail(&err, ORC_E_FORMAT, "architecture '%s' (%s)", "ll\xff" "ama\xc3", "caf\xc3\xa9");
    CHECK(strcmp(err.msg, "architecture 'll\\xffama\\xc3' (caf\xc3\xa9)") == 0);
    CHECK(err.status == ORC_E_FORMAT);
    /* surrogates and overlongs are invalid too (Python's strict decoder refuses them) */
    orc_fail(&err, ORC_E_FORMAT, "%s|%s", "\xed\xa0\x80", "\xc0\xaf");
    CHECK(strcmp(err.msg, "\\xed\\xa0\\x80|\\xc0\\xaf") == 0);

    /* a message longer than the record: cut between characters, ending in "..." */
    for (int shift = 0; shift < 3; shift++) {
        size_t o = 0;
        for (int i = 0; i < shift; i++) big[o++] = 'a';
        while (o + 3 < sizeof big) big[o++] = '\xe2', big[o++] = '\x82', big[o++] = '\xac'; /* U+20AC */
        big[o] = '\0';
        orc_fail(&err, ORC_E_IO, "%s", big);
        CHECK(valid(err.msg));
        CHECK(ends_with(err.msg, "..."));
        CHECK(strlen(err.msg) < ORC_ERR_MSG_MAX && strlen(err.msg) > ORC_ERR_MSG_MAX - 8);
    }
    /* escapes that do not fit are not cut in half either */
    memset(big, '\xff', 2000);
    big[2000] = '\0';
    orc_fail(&err, ORC_E_IO, "%s", big);
    CHECK(valid(err.msg) && ends_with(err.msg, "\\xff..."));
    CHECK((strlen(err.msg) - 3) % 4 == 0);

    /* prefixes: sanitized as well, and the message after a prefix survives */
    orc_fail(&err, ORC_E_FORMAT, "key 'x' is missing");
    orc_err_prefix(&err, "'%s': ", "/data/mod\xe8le.gguf");
    CHECK(strcmp(err.msg, "'/data/mod\\xe8le.gguf': key 'x' is missing") == 0);
    memset(big, 'p', 600);
    big[600] = '\0';
    orc_fail(&err, ORC_E_FORMAT, "the key info");
    orc_err_prefix(&err, "%s\xc3\xa9\xc3\xa9: ", big); /* cut by the 256-byte prefix buffer */
    CHECK(valid(err.msg) && ends_with(err.msg, "the key info"));
    CHECK(strstr(err.msg, "...the key info") != NULL);
    /* a prefix cut in the middle of a character (254 'p' + U+00E9 across byte 255) */
    memset(big, 'p', 254);
    big[254] = '\0';
    orc_fail(&err, ORC_E_FORMAT, "tail");
    orc_err_prefix(&err, "%s\xc3\xa9", big);
    CHECK(valid(err.msg) && ends_with(err.msg, "...tail"));

    /* random bytes: always valid UTF-8, whatever the mix */
    srand(12);
    for (int k = 0; k < 20000; k++) {
        size_t n = (size_t)(rand() % 1500);
        for (size_t i = 0; i < n; i++) {
            int r = rand() % 4;
            big[i] = r == 0 ? (char)(rand() & 0xff) : r == 1 ? (char)(0x80 | (rand() & 0x3f)) : r == 2 ? 'a' : (char)0xe2;
            if (big[i] == 0) big[i] = 'z';
        }
        big[n] = '\0';
        orc_fail(&err, ORC_E_FORMAT, "v=%s", big);
        CHECK(valid(err.msg));
        if (k % 2) {
            orc_err_prefix(&err, "%s: ", big + n / 2);
            CHECK(valid(err.msg));
        }
        if (failures) break;
    }

    /* orc_err_path: short paths unchanged; long ones keep the base name, cut on boundaries */
    char pb[ORC_ERR_PATH_MAX];
    CHECK(strcmp(orc_err_path("/a/b.gguf", pb, sizeof pb), "/a/b.gguf") == 0);
    size_t o = 0;
    for (int d = 0; d < 12; d++) {
        big[o++] = '/';
        for (int i = 0; i < 50; i++) big[o++] = '\xc3', big[o++] = '\xbc'; /* u-umlaut */
    }
    strcpy(big + o, "/mod\xc3\xa8le-7b.Q4_K_M.gguf");
    const char *p = orc_err_path(big, pb, sizeof pb);
    CHECK(strlen(p) < sizeof pb && valid(p));
    CHECK(ends_with(p, "/mod\xc3\xa8le-7b.Q4_K_M.gguf"));
    CHECK(strstr(p, "...") != NULL && strncmp(p, "/\xc3\xbc", 3) == 0);
    /* a base name longer than the room: its end is kept */
    o = 0;
    big[o++] = '/';
    for (int i = 0; i < 300; i++) big[o++] = '\xe2', big[o++] = '\x82', big[o++] = '\xac'; /* U+20AC */
    big[o] = '\0';
    strcpy(big + o, ".gguf");
    p = orc_err_path(big, pb, sizeof pb);
    CHECK(strlen(p) < sizeof pb && valid(p) && ends_with(p, ".gguf"));

    if (failures) return 1;
    printf("ok\n");
    return 0;
}
