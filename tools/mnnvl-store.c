/* mnnvl-store: a standalone root for the tcp bootstrap, for jobs whose ranks run with
 * root=<the address it prints> and root_mode=external. It serves any number of jobs and
 * communicators until SIGINT or SIGTERM.
 *
 * The job key comes from the environment only: a command line is readable by every user of
 * the host (ps, /proc/PID/cmdline). */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "mnnvl.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: mnnvl-store [--listen HOST:PORT] [--job-key-env VAR]\n"
                 "Runs a libmnnvl TCP root until SIGINT or SIGTERM. The first line on stdout is\n"
                 "\"mnnvl-store listening on HOST:PORT\"; give that address to every rank as\n"
                 "root=HOST:PORT with root_mode=external.\n"
                 "  --listen HOST:PORT  where to listen (default: this host's address, a free "
                 "port;\n"
                 "                      IPv6 as [ADDR]:PORT)\n"
                 "  --job-key-env VAR   read the job key from the environment variable VAR\n"
                 "                      (default MNNVL_JOB_KEY); ranks must use the same key\n"
                 "  --new-key           print a new random 256-bit job key (64 hex digits) and\n"
                 "                      exit: export MNNVL_JOB_KEY=$(mnnvl-store --new-key)\n"
                 "  -h, --help          this text\n");
}

/* Sets the config's job_key from `var`; NULL means the default MNNVL_JOB_KEY, which the
 * config already read. Returns 0 on success. */
static int load_job_key(mnnvl_config_t cfg, const char *var)
{
    if (var) {
        const char *key = getenv(var);
        if (!key) {
            fprintf(stderr, "mnnvl-store: --job-key-env %s: the variable is not set\n", var);
            return -1;
        }
        if (mnnvl_config_set(cfg, "job_key", key) != MNNVL_SUCCESS) {
            fprintf(stderr, "mnnvl-store: %s\n", mnnvl_last_error());
            return -1;
        }
    }
    const char *key = mnnvl_config_get(cfg, "job_key");
    if (!key || !key[0])
        fprintf(stderr,
                "mnnvl-store: warning: no job key (%s is empty or unset): any client "
                "that reaches the port can join\n",
                var ? var : "MNNVL_JOB_KEY");
    return 0;
}

/* Prints 32 random bytes from libsodium as hex: a key no guessing reaches. */
static int print_new_key(void)
{
    unsigned char key[32];
    char hex[2 * sizeof(key) + 1];
    if (sodium_init() < 0) {
        fprintf(stderr, "mnnvl-store: --new-key: libsodium failed to initialize\n");
        return 1;
    }
    randombytes_buf(key, sizeof(key));
    sodium_bin2hex(hex, sizeof(hex), key, sizeof(key));
    sodium_memzero(key, sizeof(key));
    printf("%s\n", hex);
    return fflush(stdout) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"listen", required_argument, NULL, 'l'},
        {"job-key-env", required_argument, NULL, 'k'},
        {"new-key", no_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *listen = NULL;
    const char *key_var = NULL;
    int opt;
    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (opt) {
        case 'l': listen = optarg; break;
        case 'k': key_var = optarg; break;
        case 'n': return print_new_key();
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "mnnvl-store: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        return 2;
    }

    /* Blocked before the root's thread exists, so the signals reach sigwait below only. The
     * default action comes back first: a shell starts background commands with SIGINT
     * ignored, and an ignored signal is discarded instead of waiting for sigwait. */
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    sigprocmask(SIG_BLOCK, &stop_signals, NULL);

    mnnvl_config_t cfg = NULL;
    if (mnnvl_config_create(&cfg) != MNNVL_SUCCESS) {
        fprintf(stderr, "mnnvl-store: %s\n", mnnvl_last_error());
        return 1;
    }
    if (load_job_key(cfg, key_var) != 0) {
        mnnvl_config_destroy(cfg);
        return 1;
    }
    mnnvl_root_t root = NULL;
    if (mnnvl_root_start(cfg, listen, &root) != MNNVL_SUCCESS) {
        fprintf(stderr, "mnnvl-store: %s\n", mnnvl_last_error());
        mnnvl_config_destroy(cfg);
        return 1;
    }
    printf("mnnvl-store listening on %s\n", mnnvl_root_address(root));
    fflush(stdout);

    int sig = 0;
    sigwait(&stop_signals, &sig);
    fprintf(stderr, "mnnvl-store: %s, stopping\n", strsignal(sig));
    mnnvl_root_stop(root);
    mnnvl_config_destroy(cfg);
    return 0;
}
