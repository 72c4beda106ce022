/* libFuzzer harness for lib/config.c: the input is "key\0value" pairs. Every value that
 * mnnvl_config_set accepts must read back unchanged, and a refused one must leave the old
 * value and a sentence naming the key. */
#include <stdlib.h>
#include <string.h>

#include "mnnvl.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    char *text = malloc(size + 2);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = text[size + 1] = '\0';
    mnnvl_config_t cfg;
    if (mnnvl_config_create(&cfg) != MNNVL_SUCCESS) {
        free(text);
        return 0;
    }
    const char *p = text, *end = text + size;
    while (p < end) {
        const char *key = p;
        p += strlen(p) + 1;
        const char *value = p < end ? p : "";
        p += strlen(value) + 1;
        const char *before = mnnvl_config_get(cfg, key);
        char *saved = before ? strdup(before) : NULL;
        mnnvl_status_t st = mnnvl_config_set(cfg, key, value);
        if (st == MNNVL_SUCCESS) {
            if (strcmp(mnnvl_config_get(cfg, key), value) != 0)
                abort();
        } else {
            if (!strstr(mnnvl_last_error(), key))
                abort();
            if (saved && strcmp(mnnvl_config_get(cfg, key), saved) != 0)
                abort();
        }
        free(saved);
    }
    mnnvl_config_destroy(cfg);
    free(text);
    return 0;
}
