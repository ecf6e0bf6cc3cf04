/* threadpool.c - see threadpool.h. Workers pull task indices from one atomic counter, so
 * uneven tasks balance. A decode step runs ~200 short loops (one per matrix product, tens of
 * microseconds each), so between loops a worker spins on the generation counter for a while
 * (SPIN_NS) before it sleeps on the condition variable, and the caller spins for the workers
 * to finish: a condition-variable round trip per loop cost more than the loops themselves. */
#include "core/threadpool.h"

#include <pthread.h>
#include <sched.h> /* sched_yield */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>  /* sysconf */

/* How long an idle worker keeps polling for the next loop before it sleeps. */
#define SPIN_NS 2000000LL

struct orc_pool {
    int n_threads; /* including the caller */
    pthread_t *workers;
    int n_started;
    pthread_mutex_t mu; /* guards sleeping workers' waits; the loop fields are published by `generation` */
    pthread_cond_t cv_work;
    atomic_ullong generation; /* bumped (release) once a loop's fields are set */
    atomic_bool stop;
    atomic_int busy;     /* workers still in the current loop */
    int sleepers;        /* workers waiting on cv_work (under mu) */
    bool spin;           /* at most one thread per online CPU: waits spin before sleeping */
    orc_pool_fn fn;
    void *ctx;
    int64_t n_tasks;
    atomic_llong next;
};

typedef struct worker_arg {
    orc_pool *pool;
    int index;
} worker_arg;

static void drain(orc_pool *p, int thread) {
    for (;;) {
        long long i = atomic_fetch_add(&p->next, 1);
        if (i >= p->n_tasks) break;
        p->fn(p->ctx, (int64_t)i, thread);
    }
}

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Waits until the generation differs from `seen` (or stop): spins for up to SPIN_NS (yielding
 * now and then, for threads that need this core), then sleeps. A pool with more threads than
 * online CPUs never spins: there a spinning worker holds the core another needs to finish. */
static unsigned long long wait_for_work(orc_pool *p, unsigned long long seen) {
    long long t0 = 0;
    for (unsigned i = 1; p->spin; i++) {
        unsigned long long g = atomic_load_explicit(&p->generation, memory_order_acquire);
        if (g != seen || atomic_load(&p->stop)) return g;
        cpu_relax();
        if ((i & 255) == 0) {
            long long t = now_ns();
            if (!t0) t0 = t;
            else if (t - t0 > SPIN_NS) break;
            sched_yield();
        }
    }
    pthread_mutex_lock(&p->mu);
    p->sleepers++;
    unsigned long long g;
    while ((g = atomic_load_explicit(&p->generation, memory_order_acquire)) == seen && !atomic_load(&p->stop))
        pthread_cond_wait(&p->cv_work, &p->mu);
    p->sleepers--;
    pthread_mutex_unlock(&p->mu);
    return g;
}

static void *worker_main(void *arg_) {
    worker_arg *arg = arg_;
    orc_pool *p = arg->pool;
    int index = arg->index;
    free(arg);
    unsigned long long seen = 0;
    for (;;) {
        seen = wait_for_work(p, seen);
        if (atomic_load(&p->stop)) break;
        drain(p, index);
        atomic_fetch_sub_explicit(&p->busy, 1, memory_order_release);
    }
    return NULL;
}

orc_status orc_pool_create(int n_threads, orc_pool **out, orc_err *err) {
    *out = NULL;
    if (n_threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = n > 0 ? (int)(n > 256 ? 256 : n) : 1;
    }
    orc_pool *p = calloc(1, sizeof *p);
    if (!p) return orc_fail(err, ORC_E_NOMEM, "allocating the thread pool");
    p->n_threads = n_threads;
    const long online = sysconf(_SC_NPROCESSORS_ONLN);
    p->spin = online > 0 && n_threads <= online;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv_work, NULL);
    atomic_init(&p->next, 0);
    atomic_init(&p->generation, 0);
    atomic_init(&p->stop, false);
    atomic_init(&p->busy, 0);
    if (n_threads > 1) {
        p->workers = calloc((size_t)n_threads - 1, sizeof *p->workers);
        if (!p->workers) {
            orc_pool_destroy(p);
            return orc_fail(err, ORC_E_NOMEM, "allocating the thread pool");
        }
        for (int i = 1; i < n_threads; i++) {
            worker_arg *a = malloc(sizeof *a);
            if (!a || pthread_create(&p->workers[i - 1], NULL, worker_main, (a->pool = p, a->index = i, a)) != 0) {
                free(a);
                p->n_threads = p->n_started + 1;
                break; /* run with the threads we got */
            }
            p->n_started++;
        }
    }
    *out = p;
    return ORC_OK;
}

void orc_pool_destroy(orc_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, true);
    pthread_cond_broadcast(&p->cv_work);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_started; i++) pthread_join(p->workers[i], NULL);
    free(p->workers);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv_work);
    free(p);
}

int orc_pool_threads(const orc_pool *p) { return p ? p->n_threads : 1; }

void orc_pool_run(orc_pool *p, int64_t n_tasks, orc_pool_fn fn, void *ctx) {
    if (n_tasks <= 0) return;
    if (!p || p->n_started == 0 || n_tasks == 1) {
        for (int64_t i = 0; i < n_tasks; i++) fn(ctx, i, 0);
        return;
    }
    /* Every worker has finished the previous loop (busy reached 0 below), so the fields are free. */
    p->fn = fn;
    p->ctx = ctx;
    p->n_tasks = n_tasks;
    atomic_store_explicit(&p->next, 0, memory_order_relaxed);
    atomic_store_explicit(&p->busy, p->n_started, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
    /* A sleeper checked the generation under mu before waiting: taking mu after the bump
     * means it either sees the new one or is woken here. */
    pthread_mutex_lock(&p->mu);
    if (p->sleepers) pthread_cond_broadcast(&p->cv_work);
    pthread_mutex_unlock(&p->mu);
    drain(p, 0);
    for (unsigned i = 1; atomic_load_explicit(&p->busy, memory_order_acquire) > 0; i++) {
        cpu_relax();
        if (!p->spin || (i & 255) == 0) sched_yield(); /* a descheduled worker may need this core */
    }
}
