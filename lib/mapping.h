#ifndef MNNVL_MAPPING_H
#define MNNVL_MAPPING_H

#include "mnnvl.h"

/* Reads the caller's mapping into `own` (fields an older header lacks get
 * mnnvl_mapping_init's defaults); INVALID_ARGUMENT for NULL or a struct_size this library
 * cannot read. */
mnnvl_status_t mnnvl_mapping_read(const mnnvl_mapping_t *caller, mnnvl_mapping_t *own);

#endif
