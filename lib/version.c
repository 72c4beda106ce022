#include "mnnvl.h"

#define MNNVL_STR_(x) #x
#define MNNVL_STR(x) MNNVL_STR_(x)

MNNVL_API unsigned mnnvl_version(void)
{
    return MNNVL_VERSION_CODE;
}

MNNVL_API const char *mnnvl_version_string(void)
{
    return MNNVL_STR(MNNVL_VERSION_MAJOR) "." MNNVL_STR(MNNVL_VERSION_MINOR) "." MNNVL_STR(
        MNNVL_VERSION_PATCH);
}
