#!/usr/bin/env python3
"""Writes the seed corpora of the bootstrap harnesses (tests/fuzz/corpus/{tcp_root,tcp_rank,
store_reply,star}): one well-formed conversation each, plus a few that end in an error, so
that the fuzzer starts from inputs that get deep. Run from tests/fuzz: python3 seeds.py."""
import os
import struct

MAGIC, VERSION = 0x4D4E564C, 3
HELLO, FORMED, COLL, RESULT, ERROR, QUERY, STATUS, ABORT, BYE = 3, 4, 5, 6, 7, 8, 9, 10, 11


def frame(kind, payload=b""):
    return struct.pack(">IHHQ", MAGIC, VERSION, kind, len(payload)) + payload


def hello(rank, size, label=b"world"):
    return frame(HELLO, struct.pack(">QIII", 0x1234, rank, size, 5000) + label)


def coll(op, root, nbytes, data=b""):
    return frame(COLL, struct.pack(">B3xIQ", op, root, nbytes) + data)


def write(name, seeds):
    os.makedirs(os.path.join("corpus", name), exist_ok=True)
    for i, data in enumerate(seeds):
        with open(os.path.join("corpus", name, "seed%d" % i), "wb") as f:
            f.write(data)


# The root: what one member sends (plain frames, mnnvl_tcp_root_feed).
write("tcp_root", [
    hello(0, 1) + coll(1, 0, 8, b"ABCDEFGH") + coll(2, 0, 4, b"WXYZ") + coll(1, 0, 0)
    + frame(QUERY) + frame(BYE),
    hello(1, 2) + frame(QUERY) + coll(1, 0, 8, b"ABCDEFGH") + frame(ABORT, b"gave up"),
    hello(0, 1) + coll(2, 3, 8, b"ABCDEFGH") + coll(1, 0, 1 << 40),
])

# A rank: the first byte picks rank and size (0: rank 0 of 1, 5: rank 1 of 2); then what
# the root sends (the harness seals each frame).
status = struct.pack(">B3xIIi", 1, 1, 2, 1) + b"rank 1"
write("tcp_rank", [
    b"\x00" + frame(FORMED, struct.pack(">I", 1)) + frame(RESULT, b"12345678") + frame(RESULT)
    + frame(RESULT),
    b"\x05" + frame(FORMED, struct.pack(">I", 2)) + frame(RESULT, b"0123456789abcdef")
    + frame(RESULT, b"12345678") + frame(RESULT),
    b"\x05" + frame(FORMED, struct.pack(">I", 2)) + frame(STATUS, status)
    + frame(ERROR, struct.pack(">ii", -9, 1) + b"rank 1 was lost"),
    b"\x00" + frame(ERROR, struct.pack(">ii", -13, -1) + b"refused"),
])


# The torch-store bootstrap: 4 bytes of parameters (rank and size, bytes/4, value limit,
# generation), then the store's replies to its requests, in order.
def u64(v):
    return struct.pack("<Q", v)


def value(b):
    return u64(len(b)) + b


OK = value(b"ok" + b"\0" * 16)


def blob(op, data):
    return value(struct.pack("<IIQ", 0x53544E4D, op, len(data)) + data + b"\0" * 16)


def store_seed(size, rank, nbytes, modern):
    last = rank == size - 1  # this rank brings every counter to size
    out = [struct.pack("BBBB", (size - 1) | (rank << 2), nbytes // 4, 0, modern), u64(1)]
    # (op, writers, bytes) of creation's three rounds, the allgather, the broadcast, the barrier
    rounds = [(1, size, 16), (1, size, 0), (1, 0, 0), (1, size, nbytes), (2, 1, nbytes), (1, 0, 0)]
    prev = None
    for op, writers, n in rounds:
        if last:
            out += [u64(size), OK]
            if prev is not None:
                out += [u64(1)] * (2 + prev)
        else:
            out += [u64(1), b"\0", OK]
        out += [blob(op, bytes(range(n))) for _ in range(writers)]
        prev = writers  # one chunk per writer at the real value limit
    if last:
        out += [u64(size)] + [u64(1)] * (2 + prev) + [u64(1)] * 5
    else:
        out += [u64(1)]
    return b"".join(out)


write("store_reply", [
    store_seed(1, 0, 4, 1), store_seed(1, 0, 4, 0), store_seed(2, 1, 8, 1),
    store_seed(2, 0, 8, 1)[:200],
    struct.pack("BBBB", 0, 1, 0, 1) + u64(1) + u64(1) + value(b"abort:auth:rank 1" + b"\0" * 16),
])


# The star protocol: the first byte picks rank and size (1: rank 0 of 2, 5: rank 1 of 2);
# then messages {type, rank, seq (255: the communicator id), status, origin, flags, length}.
def msg(kind, rank, seq, data=b"", flags=2, status=0, origin=0):
    return struct.pack("BbBbbBB", kind, rank, seq, status, origin, flags, len(data)) + data


CONTRIB, SRESULT, SERROR, SABORT, SBYE, SHELLO, SFORMED = 4, 5, 6, 7, 8, 1, 2
slot = struct.pack("<QQ", 77, 4) + b"addr"
write("star", [
    b"\x01" + msg(SHELLO, 1, 255, b"addr", flags=3) + msg(CONTRIB, 1, 0, b"12345678")
    + msg(CONTRIB, 1, 1, b"abcdefgh") + msg(CONTRIB, 1, 2)
    + msg(CONTRIB, 1, 3, struct.pack("<ii", 1, -1)) + msg(CONTRIB, 1, 4, struct.pack("<Q", 4))
    + msg(CONTRIB, 1, 5, slot) + msg(SBYE, 1, 0),
    b"\x05" + msg(SFORMED, 0, 255) + msg(SRESULT, 0, 0, b"0123456789abcdef")
    + msg(SRESULT, 0, 1, b"abcdefgh") + msg(SRESULT, 0, 2)
    + msg(SRESULT, 0, 3, struct.pack("<iiii", 1, 0, 1, -1))
    + msg(SRESULT, 0, 4, struct.pack("<QQ", 4, 4)) + msg(SRESULT, 0, 5, slot + slot),
    b"\x05" + msg(SFORMED, 0, 255) + msg(SERROR, 0, 0, b"mismatch", status=-12)
    + msg(SABORT, 0, 1, status=-9, origin=0),
    b"\x01" + msg(SHELLO, 1, 255, b"addr", flags=3) + msg(11, 1, 0) + msg(CONTRIB, 1, 0, b"x"),
])
