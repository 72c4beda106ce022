/* Opaque string key/value configuration: a fixed table of keys, each with a default, a
 * validator and an MNNVL_<KEY> environment override. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h> /* environ (_GNU_SOURCE) */

#include "bootstrap/bootstrap.h"
#include "config.h"
#include "error.h"
#include "hostport.h"
#include "log.h"

typedef int (*validator_fn)(const char *value, const char **allowed);

typedef struct key_spec {
    const char *name;
    const char *default_value;
    validator_fn validate;
    const char *allowed[8]; /* for enums; a human-readable hint otherwise */
} key_spec_t;

static int any_string(const char *value, const char **allowed)
{
    (void)allowed;
    return value != NULL;
}

static int one_of(const char *value, const char **allowed)
{
    for (const char **a = allowed; *a; a++)
        if (strcmp(value, *a) == 0)
            return 1;
    return 0;
}

/* strtol and strtoull skip leading white space and accept a sign; a value must be digits
 * only, so that " 5" or "+5" is refused here rather than read differently elsewhere. */
static int digits_only(const char *value)
{
    return value[0] != '\0' && strspn(value, "0123456789") == strlen(value);
}

/* timeout_ms: the backends' rule (bootstrap.h), on digits only. */
static int timeout_value(const char *value, const char **allowed)
{
    (void)allowed;
    if (!digits_only(value))
        return 0;
    errno = 0;
    long long v = strtoll(value, NULL, 10);
    return errno == 0 && mnnvl_bootstrap_timeout_valid(v);
}

/* "host:port" or "[v6]:port" by the one rule (base/hostport.h) that the bootstraps read it
 * with, so that a value accepted here cannot fail at connect time; the host must not be
 * empty. An empty value means unset. */
static int host_port(const char *value, const char **allowed)
{
    (void)allowed;
    mnnvl_hostport_t hp;
    return value[0] == '\0' || mnnvl_hostport_parse(value, 0, &hp, NULL, 0) == MNNVL_SUCCESS;
}

static int byte_count(const char *value, const char **allowed)
{
    (void)allowed;
    if (!digits_only(value))
        return 0;
    errno = 0;
    unsigned long long v = strtoull(value, NULL, 10);
    return errno == 0 && v < (1ull << 40);
}

static int boolean(const char *value, const char **allowed)
{
    (void)allowed;
    return strcmp(value, "0") == 0 || strcmp(value, "1") == 0;
}

static int integer_or_empty(const char *value, const char **allowed)
{
    (void)allowed;
    if (value[0] == '\0')
        return 1;
    const char *digits = value[0] == '-' ? value + 1 : value;
    if (!digits_only(digits))
        return 0;
    errno = 0;
    long v = strtol(value, NULL, 10);
    return errno == 0 && v >= INT_MIN && v <= INT_MAX;
}

static int log_level_or_empty(const char *value, const char **allowed)
{
    (void)allowed;
    return value[0] == '\0' || mnnvl_log_level_parse(value) >= 0;
}

/* A job key too short to resist guessing: an eavesdropper on one handshake can test guesses
 * offline (bootstrap/auth.c), so only a real secret protects a job. */
#define JOB_KEY_MIN_BYTES 16

static int job_key_value(const char *value, const char **allowed)
{
    (void)allowed;
    return value[0] == '\0' || strlen(value) >= JOB_KEY_MIN_BYTES;
}

static const key_spec_t keys[] = {
    {"bootstrap", "tcp", one_of, {"tcp", "torch-store", "mpi", "ucx", "ofi", NULL}},
    {"root", "", host_port, {"host:port", NULL}},
    {"root_mode", "rank0", one_of, {"rank0", "external", NULL}},
    {"comm_name", "world", any_string, {"any name", NULL}},
    {"job_key", "", job_key_value, {"empty, or a secret of at least 16 bytes", NULL}},
    {"handle_type", "auto", one_of, {"auto", "fabric", "posix-fd", NULL}},
    {"timeout_ms", "120000", timeout_value, {"a positive number of milliseconds", NULL}},
    {"peer_timeout_ms",
     "1000",
     timeout_value,
     {"a positive number of milliseconds (fault-tolerant operations' per-peer bound)", NULL}},
    {"log_level",
     "",
     log_level_or_empty,
     {"none", "error", "warn", "info", "debug", "trace", NULL}},
    {"store", "", host_port, {"host:port", NULL}},
    {"store_prefix", "mnnvl", any_string, {"any string", NULL}},
    {"allreduce_oneshot_max",
     "0",
     byte_count,
     {"a message size in bytes up to which AUTO uses one-shot (0: the built-in table)", NULL}},
    {"external_buffers", "0", boolean, {"0", "1", NULL}},
    {"mpi_comm", "", integer_or_empty, {"an MPI Fortran communicator handle (empty: WORLD)", NULL}},
    {"mpi_init", "0", boolean, {"0", "1", NULL}},
    {"ofi_provider", "", any_string, {"a libfabric provider list (empty: tcp;ofi_rxm)", NULL}},
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

struct mnnvl_config_s {
    char *values[NKEYS];
};

static int key_index(const char *key)
{
    for (size_t i = 0; key && i < NKEYS; i++)
        if (strcmp(keys[i].name, key) == 0)
            return (int)i;
    return -1;
}

static void describe_allowed(const key_spec_t *spec, char *buf, size_t len)
{
    buf[0] = '\0';
    for (const char *const *a = spec->allowed; *a; a++) {
        size_t used = strlen(buf);
        snprintf(buf + used, len - used, "%s%s", a == spec->allowed ? "" : "|", *a);
    }
}

static mnnvl_status_t set_index(struct mnnvl_config_s *cfg, int i, const char *value,
                                const char *origin)
{
    const key_spec_t *spec = &keys[i];
    if (value && spec->validate == job_key_value && !job_key_value(value, NULL))
        /* The sentence never shows the key, not even a wrong one. */
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "config: %sjob_key has %zu bytes, too few to resist guessing (at "
                           "least %d); make a good one with `mnnvl-store --new-key` (a random "
                           "256-bit key), or leave job_key empty for a job without a secret",
                           origin, strlen(value), JOB_KEY_MIN_BYTES);
    if (!value || !spec->validate(value, (const char **)spec->allowed)) {
        char allowed[160];
        describe_allowed(spec, allowed, sizeof(allowed));
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT,
                           "config: %s%s=\"%s\" is not valid; expected %s", origin, spec->name,
                           value ? value : "(null)", allowed);
    }
    char *copy = strdup(value);
    if (!copy)
        return mnnvl_error(MNNVL_ERR_NO_MEMORY, "config: out of memory storing %s", spec->name);
    free(cfg->values[i]);
    cfg->values[i] = copy;
    return MNNVL_SUCCESS;
}

static mnnvl_status_t config_new(struct mnnvl_config_s **out)
{
    struct mnnvl_config_s *cfg = calloc(1, sizeof(*cfg));
    if (!cfg)
        return mnnvl_error(MNNVL_ERR_NO_MEMORY, "config: out of memory");
    for (size_t i = 0; i < NKEYS; i++) {
        cfg->values[i] = strdup(keys[i].default_value);
        if (!cfg->values[i]) {
            mnnvl_config_destroy(cfg);
            return mnnvl_error(MNNVL_ERR_NO_MEMORY, "config: out of memory");
        }
    }
    *out = cfg;
    return MNNVL_SUCCESS;
}

/* MNNVL_* variables that are no config key but are read elsewhere (plugins' directory, the
 * torch-store value limit, the benchmark's NCCL) or by the tests and the build's test
 * harness (the GPU suite's exec'd ranks and sanitizer); a name ending in '*' is a prefix. */
static const char *const env_not_keys[] = {
    "MNNVL_PLUGIN_DIR",     "MNNVL_TORCH_STORE_MAX_VALUE",
    "MNNVL_BENCH_NCCL",     "MNNVL_REQUIRE_GPU",
    "MNNVL_TEST_*",         "MNNVL_RANK_LAUNCHER",
    "MNNVL_RANK_EXEC",      "MNNVL_INTERP_ENV",
    "MNNVL_SANITIZER_ARGS", "MNNVL_PYTHON_WHY",
    "MNNVL_GO_WHY",         "MNNVL_JAVA_WHY",
};

/* Edit distance between a and b (ASCII, case-insensitive), for "did you mean". */
static size_t edit_distance(const char *a, const char *b)
{
    size_t lb = strlen(b), row[64];
    if (lb >= sizeof(row) / sizeof(row[0]))
        return (size_t)-1;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; a[i - 1]; i++) {
        size_t diagonal = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            int same = toupper((unsigned char)a[i - 1]) == toupper((unsigned char)b[j - 1]);
            size_t best = diagonal + (same ? 0 : 1);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diagonal = up;
        }
    }
    return row[lb];
}

/* Warns once per process about each MNNVL_* environment variable that is neither a config
 * key nor one of env_not_keys, naming the closest key: a misspelling (MNNVL_JOBKEY) would
 * otherwise be ignored without a word. */
static void warn_unknown_env(void)
{
    for (char **e = environ; e && *e; e++) {
        const char *var = *e, *eq = strchr(var, '=');
        if (strncmp(var, "MNNVL_", 6) != 0 || !eq || eq - var > 63)
            continue;
        char name[64], key[64];
        size_t n = (size_t)(eq - var);
        memcpy(name, var, n);
        name[n] = '\0';
        for (size_t i = 0; i + 6 <= n; i++)
            key[i] = (char)tolower((unsigned char)name[6 + i]);
        int known = key_index(key) >= 0;
        for (size_t i = 0; !known && i < sizeof(env_not_keys) / sizeof(env_not_keys[0]); i++) {
            const char *allowed = env_not_keys[i];
            size_t len = strlen(allowed);
            known = allowed[len - 1] == '*' ? strncmp(name, allowed, len - 1) == 0
                                            : strcmp(name, allowed) == 0;
        }
        if (known)
            continue;
        size_t best = 0, best_distance = (size_t)-1;
        for (size_t i = 0; i < NKEYS; i++) {
            size_t d = edit_distance(key, keys[i].name);
            if (d < best_distance) {
                best = i;
                best_distance = d;
            }
        }
        char closest[64];
        size_t j = 0;
        for (; j < sizeof(closest) - 1 && keys[best].name[j]; j++)
            closest[j] = (char)toupper((unsigned char)keys[best].name[j]);
        closest[j] = '\0';
        MNNVL_WARN("environment variable %s is no libmnnvl setting and is ignored; the closest "
                   "is MNNVL_%s (config key %s)",
                   name, closest, keys[best].name);
    }
}

static pthread_once_t env_checked = PTHREAD_ONCE_INIT;

MNNVL_API mnnvl_status_t mnnvl_config_create(mnnvl_config_t *config)
{
    pthread_once(&env_checked, warn_unknown_env);
    if (!config)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT, "config_create: config is NULL");
    *config = NULL;
    struct mnnvl_config_s *cfg;
    MNNVL_CHECK(config_new(&cfg));
    for (size_t i = 0; i < NKEYS; i++) {
        char env_name[64] = "MNNVL_";
        for (size_t j = 0; keys[i].name[j] && j + 7 < sizeof(env_name); j++)
            env_name[6 + j] = (char)toupper((unsigned char)keys[i].name[j]);
        const char *env = getenv(env_name);
        if (!env)
            continue;
        char origin[80];
        snprintf(origin, sizeof(origin), "environment variable %s, key ", env_name);
        mnnvl_status_t st = set_index(cfg, (int)i, env, origin);
        if (st != MNNVL_SUCCESS) {
            mnnvl_config_destroy(cfg);
            return st;
        }
    }
    *config = cfg;
    return MNNVL_SUCCESS;
}

static mnnvl_status_t unknown_key(const char *what, const char *key)
{
    char names[256] = "";
    for (size_t i = 0; i < NKEYS; i++) {
        size_t used = strlen(names);
        snprintf(names + used, sizeof(names) - used, "%s%s", i ? ", " : "", keys[i].name);
    }
    return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT, "%s: unknown key \"%s\"; known keys: %s", what,
                       key ? key : "(null)", names);
}

MNNVL_API mnnvl_status_t mnnvl_config_set(mnnvl_config_t config, const char *key, const char *value)
{
    if (!config)
        return mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT, "config_set: config is NULL");
    int i = key_index(key);
    if (i < 0)
        return unknown_key("config_set", key);
    return set_index(config, i, value, "");
}

MNNVL_API const char *mnnvl_config_get(const mnnvl_config_t config, const char *key)
{
    if (!config) {
        mnnvl_error(MNNVL_ERR_INVALID_ARGUMENT, "config_get: config is NULL");
        return NULL;
    }
    int i = key_index(key);
    if (i < 0) {
        unknown_key("config_get", key);
        return NULL;
    }
    return config->values[i];
}

MNNVL_API mnnvl_status_t mnnvl_config_destroy(mnnvl_config_t config)
{
    if (!config)
        return MNNVL_SUCCESS;
    for (size_t i = 0; i < NKEYS; i++)
        free(config->values[i]);
    free(config);
    return MNNVL_SUCCESS;
}

const char *mnnvl_config_value(const struct mnnvl_config_s *config, const char *key)
{
    int i = key_index(key);
    return i < 0 ? NULL : config->values[i];
}

int mnnvl_config_timeout_ms(const struct mnnvl_config_s *config)
{
    /* Valid by construction: timeout_value checked it when it was set. */
    return (int)strtol(mnnvl_config_value(config, "timeout_ms"), NULL, 10);
}

mnnvl_status_t mnnvl_config_clone(const struct mnnvl_config_s *src, mnnvl_config_t *out)
{
    if (!src)
        return mnnvl_config_create(out);
    struct mnnvl_config_s *cfg;
    MNNVL_CHECK(config_new(&cfg));
    for (size_t i = 0; i < NKEYS; i++) {
        mnnvl_status_t st = set_index(cfg, (int)i, src->values[i], "");
        if (st != MNNVL_SUCCESS) {
            mnnvl_config_destroy(cfg);
            return st;
        }
    }
    *out = cfg;
    return MNNVL_SUCCESS;
}

const char *mnnvl_config_get_for_bootstrap(const void *config, const char *key)
{
    const char *v = mnnvl_config_value(config, key);
    return v ? v : "";
}
