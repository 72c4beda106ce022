/* The C helpers every language's typemaps use (the mapping's int fields, the payload
 * addresses, owned copies of external buffers). Included by bindings/mnnvl.i before the
 * language's part. */
%{
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mnnvl.h"

/* mnnvl_mapping_t crosses every binding as its int fields in declaration order, from
 * world_size on; struct_size is C's business: the wrappers fill it with mnnvl_mapping_init. */
#include <stddef.h>
#define MNNVL_SWIG_MAPPING_FIRST offsetof(mnnvl_mapping_t, world_size)
enum { MNNVL_SWIG_MAPPING_INTS = (sizeof(mnnvl_mapping_t) - MNNVL_SWIG_MAPPING_FIRST) / sizeof(int) };
_Static_assert(sizeof(mnnvl_mapping_t) ==
                   MNNVL_SWIG_MAPPING_FIRST + MNNVL_SWIG_MAPPING_INTS * sizeof(int),
               "mnnvl_mapping_t is struct_size followed by ints");
static void mnnvl_swig_mapping_set(mnnvl_mapping_t *m, const int *fields)
{
    mnnvl_mapping_init(m, 1, 0);
    memcpy(&m->world_size, fields, MNNVL_SWIG_MAPPING_INTS * sizeof(int));
}
static void mnnvl_swig_mapping_get(const mnnvl_mapping_t *m, int *fields)
{
    memcpy(fields, &m->world_size, MNNVL_SWIG_MAPPING_INTS * sizeof(int));
}

/* The device addresses of a dispatch's payloads, NULL past the ones given. */
typedef struct {
    void *address[MNNVL_MOE_MAX_PAYLOADS];
} mnnvl_swig_payloads_t;

/* Owned copies of the external buffer addresses of an AllReduceParams made here. */
static void mnnvl_swig_params_set_buffers(mnnvl_allreduce_params_t *p,
                                          const unsigned long long *addresses, int count,
                                          size_t bytes)
{
    void **copy = NULL;
    if (count > 0 && addresses) {
        copy = calloc((size_t)count, sizeof(void *));
        if (!copy)
            count = 0;
        for (int i = 0; copy && i < count; i++)
            copy[i] = (void *)(uintptr_t)addresses[i];
    } else {
        count = 0;
    }
    free((void *)p->external_buffers);
    p->external_buffers = (void *const *)copy;
    p->external_buffer_count = count;
    p->external_buffer_bytes = bytes;
}
%}
