/* The names of the statuses: the one table (status.c) behind mnnvl_status_string() and the
 * short names the bootstrap plugins put in their sentences. No dependency beyond mnnvl.h,
 * so that the plugins compile it in (they cannot call libmnnvl). */
#ifndef MNNVL_BASE_STATUS_H
#define MNNVL_BASE_STATUS_H

#include "mnnvl.h"

/* mnnvl_status_string() (public, in mnnvl.h) gives "MNNVL_ERR_TIMEOUT"; this gives the same
 * name without its "MNNVL_ERR_" or "MNNVL_" prefix ("TIMEOUT", "SUCCESS", "UNKNOWN"). */
const char *mnnvl_status_name(mnnvl_status_t status);

#endif
