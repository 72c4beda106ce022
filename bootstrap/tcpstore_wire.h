/* The numbers of the PyTorch c10d TCPStore wire protocol, shared by the client
 * (tcpstore_client.c) and the test suite's fake server (tests/unit/fake_store.c), so that the
 * two cannot drift apart. The encoding is described in tcpstore_client.h. */
#ifndef MNNVL_TCPSTORE_WIRE_H
#define MNNVL_TCPSTORE_WIRE_H

/* The u32 that follows VALIDATE. */
#define MNNVL_TCPSTORE_VALIDATE_MAGIC 0x3C85F7CEu

/* Commands, in torch 2.x numbering; torch 1.13 numbers SET..GETNUMKEYS one lower. */
enum {
    MNNVL_TCPSTORE_VALIDATE = 0,
    MNNVL_TCPSTORE_SET = 1,
    MNNVL_TCPSTORE_COMPARE_SET = 2,
    MNNVL_TCPSTORE_GET = 3,
    MNNVL_TCPSTORE_ADD = 4,
    MNNVL_TCPSTORE_WAIT = 6,
    MNNVL_TCPSTORE_GETNUMKEYS = 7,
    MNNVL_TCPSTORE_DELETE = 8,
    MNNVL_TCPSTORE_MULTI_GET = 10,
    MNNVL_TCPSTORE_PING = 13
};

#endif
