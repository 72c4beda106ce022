#ifndef MNNVL_CONFIG_H
#define MNNVL_CONFIG_H

#include "mnnvl.h"

/* The value of a known key ("" when unset). Never NULL for the keys of the table in
 * config.c; NULL for an unknown key. */
const char *mnnvl_config_value(const struct mnnvl_config_s *config, const char *key);

/* timeout_ms as an int (validated when set, by bootstrap.h's mnnvl_bootstrap_timeout_valid).
 * comm.c reads it once per communicator into comm->timeout_ms; everything else reads that. */
int mnnvl_config_timeout_ms(const struct mnnvl_config_s *config);

/* A private copy, so a communicator does not depend on the caller's config staying alive.
 * A NULL source gives the defaults (with the environment applied). */
mnnvl_status_t mnnvl_config_clone(const struct mnnvl_config_s *src, mnnvl_config_t *out);

/* Adapter with the signature the bootstrap interface wants. */
const char *mnnvl_config_get_for_bootstrap(const void *config, const char *key);

#endif
