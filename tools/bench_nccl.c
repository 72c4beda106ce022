#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

#include "tools/bench_nccl.h"

int bench_nccl_load(nccl_t *n, char *why, size_t len)
{
    const char *path = getenv("MNNVL_BENCH_NCCL");
    void *lib = dlopen(path && *path ? path : "libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        snprintf(why, len, "%s", dlerror());
        return -1;
    }
    *(void **)&n->get_unique_id = dlsym(lib, "ncclGetUniqueId");
    *(void **)&n->init_rank = dlsym(lib, "ncclCommInitRank");
    *(void **)&n->all_reduce = dlsym(lib, "ncclAllReduce");
    *(void **)&n->send = dlsym(lib, "ncclSend");
    *(void **)&n->recv = dlsym(lib, "ncclRecv");
    *(void **)&n->group_start = dlsym(lib, "ncclGroupStart");
    *(void **)&n->group_end = dlsym(lib, "ncclGroupEnd");
    *(void **)&n->destroy = dlsym(lib, "ncclCommDestroy");
    *(void **)&n->error_string = dlsym(lib, "ncclGetErrorString");
    if (!n->get_unique_id || !n->init_rank || !n->all_reduce || !n->send || !n->recv ||
        !n->group_start || !n->group_end || !n->destroy || !n->error_string) {
        snprintf(why, len, "libnccl lacks the expected symbols");
        dlclose(lib);
        return -1;
    }
    n->lib = lib;
    return 0;
}
