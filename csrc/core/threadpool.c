/* threadpool.c - see threadpool.h. Workers sleep on a condition variable between
 * loops and pull task indices from one atomic counter, so uneven tasks balance. */
#include "core/threadpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>  /* sysconf */

struct orc_pool {
    int n_threads; /* including the caller */
    pthread_t *workers;
    int n_started;
    pthread_mutex_t mu;
    pthread_cond_t cv_work, cv_done;
    uint64_t generation;
    bool stop;
    int busy; /* workers still in the current loop */
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

static void *worker_main(void *arg_) {
    worker_arg *arg = arg_;
    orc_pool *p = arg->pool;
    int index = arg->index;
    free(arg);
    uint64_t seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && p->generation == seen) pthread_cond_wait(&p->cv_work, &p->mu);
        if (p->stop) break;
        seen = p->generation;
        pthread_mutex_unlock(&p->mu);
        drain(p, index);
        pthread_mutex_lock(&p->mu);
        if (--p->busy == 0) pthread_cond_signal(&p->cv_done);
    }
    pthread_mutex_unlock(&p->mu);
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
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv_work, NULL);
    pthread_cond_init(&p->cv_done, NULL);
    atomic_init(&p->next, 0);
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
    p->stop = true;
    pthread_cond_broadcast(&p->cv_work);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_started; i++) pthread_join(p->workers[i], NULL);
    free(p->workers);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv_work);
    pthread_cond_destroy(&p->cv_done);
    free(p);
}

int orc_pool_threads(const orc_pool *p) { return p ? p->n_threads : 1; }

void orc_pool_run(orc_pool *p, int64_t n_tasks, orc_pool_fn fn, void *ctx) {
    if (n_tasks <= 0) return;
    if (!p || p->n_started == 0 || n_tasks == 1) {
        for (int64_t i = 0; i < n_tasks; i++) fn(ctx, i, 0);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->ctx = ctx;
    p->n_tasks = n_tasks;
    atomic_store(&p->next, 0);
    p->busy = p->n_started;
    p->generation++;
    pthread_cond_broadcast(&p->cv_work);
    pthread_mutex_unlock(&p->mu);
    drain(p, 0);
    pthread_mutex_lock(&p->mu);
    while (p->busy > 0) pthread_cond_wait(&p->cv_done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
