/* Agreement: how a rank's local outcome becomes every rank's outcome. Below the
 * communicator (it needs only a bootstrap), so the device setup, the memory layer and the
 * operations share one rule: a rank that fails makes every rank fail with its status and
 * sentence, in the same round, instead of leaving the others waiting for it. */
#ifndef MNNVL_AGREE_H
#define MNNVL_AGREE_H

#include <stddef.h>

#include "bootstrap/bootstrap.h"
#include "mnnvl.h"

/* One allgather that carries each rank's status (and the start of its sentence) with its
 * `bytes` of payload. `local` is this rank's outcome so far; `mine` its payload (ignored
 * when bytes is 0), `all` receives size * bytes, rank r's at r * bytes (NULL: the payloads
 * are dropped, which lets a rank that could not allocate `all` still take part).
 * Returns: `local` when it failed (this rank keeps its own sentence); else the first failing
 * rank's status, with the sentence "<what>: rank R failed (STATUS): <its sentence>"; else
 * the bootstrap's error; else SUCCESS, and then `all` holds every payload. Collective. */
mnnvl_status_t mnnvl_agree_gather(mnnvl_bootstrap_t *bs, mnnvl_status_t local, const void *mine,
                                  void *all, size_t bytes, const char *what);

/* mnnvl_agree_gather without payload: makes the outcome of a local step collective.
 * Collective. */
mnnvl_status_t mnnvl_agree(mnnvl_bootstrap_t *bs, mnnvl_status_t local, const char *what);

#endif
