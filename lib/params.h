/* Extensible parameter structs: every public struct begins with `uint32_t struct_size`, set
 * by its init function to sizeof at the caller's build time. A caller built against an older
 * header passes a smaller struct; a newer one passes a larger struct this library cannot
 * read. */
#ifndef MNNVL_PARAMS_H
#define MNNVL_PARAMS_H

#include <stddef.h>

#include "mnnvl.h"

/* Copies the caller's struct into `own` (own_size bytes, already filled with defaults by the
 * struct's init function): min(caller struct_size, own_size) bytes, so fields the caller's
 * header did not have keep their defaults. Refuses, with INVALID_ARGUMENT and a sentence
 * naming `what` and the sizes, a NULL caller, a struct_size larger than own_size (a newer
 * header) and one smaller than first_size (the struct's first public version: the caller did
 * not call `init_name`). */
mnnvl_status_t mnnvl_params_copy(void *own, size_t own_size, size_t first_size, const void *caller,
                                 const char *what, const char *init_name);

/* The usual call: MNNVL_PARAMS_COPY(&local, caller, first_size, "allreduce",
 * "mnnvl_allreduce_params_init") after init(&local). */
#define MNNVL_PARAMS_COPY(own, caller, first_size, what, init_name) \
    mnnvl_params_copy((own), sizeof(*(own)), (first_size), (caller), (what), (init_name))

#endif
