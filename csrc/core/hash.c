/* hash.c - the per-process key of the keyed hash (hash.h). */
#include "core/hash.h"

#include <errno.h>      /* errno, EINTR */
#include <fcntl.h>      /* open */
#include <pthread.h>    /* pthread_once */
#include <sys/random.h> /* getrandom */
#include <time.h>       /* clock_gettime */
#include <unistd.h>     /* read, close, getpid */

static orc_hash_key orc_hash_key_value;
static pthread_once_t orc_hash_key_once = PTHREAD_ONCE_INIT;

/* Fill buf with n random bytes from the kernel; 0 on success. */
static int orc_hash_os_random(void *buf, size_t n) {
    uint8_t *p = buf;
    size_t got = 0;
    while (got < n) { /* getrandom may return fewer bytes or EINTR */
        ssize_t r = getrandom(p + got, n - got, 0);
        if (r > 0) {
            got += (size_t)r;
            continue;
        }
        if (r < 0 && errno == EINTR) continue;
        break; /* ENOSYS (old kernel, seccomp) or anything else: try /dev/urandom */
    }
    if (got == n) return 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    while (got < n) {
        ssize_t r = read(fd, p + got, n - got);
        if (r > 0) got += (size_t)r;
        else if (r < 0 && errno == EINTR) continue;
        else break;
    }
    close(fd);
    return got == n ? 0 : -1;
}

/* splitmix64: spreads the fallback's few varying bits over the whole key */
static uint64_t orc_hash_mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static void orc_hash_key_init(void) {
    uint64_t k[2];
    if (orc_hash_os_random(k, sizeof k) != 0) {
        /* No randomness from the system: still unpredictable enough to keep a file written
         * in advance from knowing the key (time in ns, pid, where the library was mapped). */
        struct timespec ts = {0, 0};
        (void)clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t a = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
        uint64_t b = ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)&orc_hash_key_value ^ (uint64_t)(uintptr_t)&ts;
        k[0] = orc_hash_mix(a ^ orc_hash_mix(b));
        k[1] = orc_hash_mix(b ^ orc_hash_mix(a + 1));
    }
    orc_hash_key_value.k0 = k[0];
    orc_hash_key_value.k1 = k[1];
}

orc_hash_key orc_hash_process_key(void) {
    (void)pthread_once(&orc_hash_key_once, orc_hash_key_init);
    return orc_hash_key_value;
}
