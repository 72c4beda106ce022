/* Prints "value name" for each value given, by mnnvl_status_string: the C table that
 * test_status_tables.sh holds the header and the bindings' copies against. */
#include <stdio.h>
#include <stdlib.h>

#include "mnnvl.h"

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        int value = atoi(argv[i]);
        printf("%d %s\n", value, mnnvl_status_string((mnnvl_status_t)value));
    }
    return 0;
}
