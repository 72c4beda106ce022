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

#include "hostport.h" /* base/: the one host:port rule */
#include "mnnvl.h"

/* Whether "host:port" names a loopback host (127.0.0.0/8, [::1], localhost). */
static int is_loopback(const char *address)
{
    mnnvl_hostport_t hp;
    if (mnnvl_hostport_parse(address, MNNVL_HOSTPORT_LISTEN, &hp, NULL, 0) != MNNVL_SUCCESS)
        return 0;
    return strncmp(hp.host, "127.", 4) == 0 || strcmp(hp.host, "::1") == 0 ||
           strcmp(hp.host, "localhost") == 0;
}

/* Whether --listen asked for every interface (an empty host, 0.0.0.0 or [::]). */
static int is_all_interfaces(const char *listen)
{
    mnnvl_hostport_t hp;
    if (!listen ||
        mnnvl_hostport_parse(listen, MNNVL_HOSTPORT_LISTEN, &hp, NULL, 0) != MNNVL_SUCCESS)
        return 0;
    return hp.host[0] == '\0' || strcmp(hp.host, "0.0.0.0") == 0 || strcmp(hp.host, "::") == 0;
}

/* Says on stderr who can reach the root: the first stdout line stays the address alone. */
static void tell_reach(const char *listen, const char *address)
{
    if (is_all_interfaces(listen) && is_loopback(address))
        fprintf(stderr,
                "mnnvl-store: listening on all interfaces (%s); this host's name "
                "resolves to loopback (%s), so give ranks on other hosts root=<an "
                "address of this host they reach>:<that port>\n",
                listen, address);
    else if (is_all_interfaces(listen))
        fprintf(stderr,
                "mnnvl-store: listening on all interfaces (%s); ranks on other hosts use "
                "root=%s or another address of this host\n",
                listen, address);
    else if (is_loopback(address))
        fprintf(stderr,
                "mnnvl-store: %s is a loopback address: only processes on this host can "
                "join. To accept ranks on other hosts, listen on all interfaces with "
                "--listen 0.0.0.0:PORT (or [::]:PORT), or on one address of this host "
                "with --listen ADDR:PORT\n",
                address);
    else
        fprintf(stderr,
                "mnnvl-store: listening on %s only (%s); --listen 0.0.0.0:PORT listens "
                "on all interfaces\n",
                address, listen ? "--listen" : "the address this host's name resolves to");
}

static void usage(FILE *out)
{
    fprintf(out, "usage: mnnvl-store [--listen HOST:PORT] [--job-key-env VAR]\n"
                 "Runs a libmnnvl TCP root until SIGINT or SIGTERM. The first line on stdout is\n"
                 "\"mnnvl-store listening on HOST:PORT\"; give that address to every rank as\n"
                 "root=HOST:PORT with root_mode=external.\n"
                 "  --listen HOST:PORT  where to listen; IPv6 as [ADDR]:PORT, port 0 a free one.\n"
                 "                      Default: the address this host's name resolves to and a\n"
                 "                      free port; where the name resolves to loopback (as\n"
                 "                      Debian's /etc/hosts has it), only this host can join.\n"
                 "                      0.0.0.0:PORT (or [::]:PORT) listens on all interfaces:\n"
                 "                      what ranks on other hosts need\n"
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
    tell_reach(listen, mnnvl_root_address(root));

    int sig = 0;
    sigwait(&stop_signals, &sig);
    fprintf(stderr, "mnnvl-store: %s, stopping\n", strsignal(sig));
    mnnvl_root_stop(root);
    mnnvl_config_destroy(cfg);
    return 0;
}
