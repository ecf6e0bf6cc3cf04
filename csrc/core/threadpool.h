/* threadpool.h - a small persistent pthread pool for the CPU backend's
 * parallel loops: run fn(ctx, task, thread) for task in [0, n_tasks). */
#ifndef ORC_THREADPOOL_H
#define ORC_THREADPOOL_H

#include <stdint.h>

#include "core/orc.h"

typedef struct orc_pool orc_pool;
typedef void (*orc_pool_fn)(void *ctx, int64_t task, int thread);

/* n_threads <= 0: one per online CPU. */
orc_status orc_pool_create(int n_threads, orc_pool **out, orc_err *err);
void orc_pool_destroy(orc_pool *p); /* NULL is fine */
int orc_pool_threads(const orc_pool *p);
/* Runs every task once, the calling thread taking part (as thread 0); returns when all are done.
 * Not reentrant: one parallel loop at a time per pool. */
void orc_pool_run(orc_pool *p, int64_t n_tasks, orc_pool_fn fn, void *ctx);

#endif /* ORC_THREADPOOL_H */
