"""TCPStore fixture for the torch-store bootstrap tests; run with an interpreter that has torch
(Debian's /usr/bin/python3 with python3-torch).

  torch_store.py serve PORTFILE [libuv|legacy]  master store on a free port; writes the port to
                                                PORTFILE, serves until stdin closes; exits 3
                                                when this torch cannot pick the server
  torch_store.py peer PORT SECONDS              a torch client busy with its own keys meanwhile;
                                                exits 0 when all of them kept their values
  torch_store.py numkeys PORT                   prints the number of keys in the store
"""
import datetime
import os
import sys
import time

import torch
import torch.distributed as dist

TIMEOUT = datetime.timedelta(seconds=30)


def client(port):
    return dist.TCPStore("127.0.0.1", int(port), None, False, TIMEOUT)


def serve(portfile, backend=None):
    kwargs = {"wait_for_workers": False}
    if backend:
        kwargs["use_libuv"] = backend == "libuv"
    try:
        store = dist.TCPStore("127.0.0.1", 0, None, True, TIMEOUT, **kwargs)
    except TypeError:
        print("torch %s has no use_libuv choice (torch >= 2.4 has)" % torch.__version__)
        sys.exit(3)
    tmp = portfile + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d %s\n" % (store.port, torch.__version__))
    os.rename(tmp, portfile)
    sys.stdin.read()  # the test closes our stdin (or kills us) when it is done


def peer(port, seconds):
    store = client(port)
    keys = {"peer/k%d" % i: ("value %d" % i).encode() for i in range(50)}
    for k, v in keys.items():
        store.set(k, v)
    end = time.time() + float(seconds)
    n = 0
    while time.time() < end:
        n = store.add("peer/counter", 1)
        k = "peer/k%d" % (n % 50)
        store.wait([k])
        if store.get(k) != keys[k]:
            print("peer: key %s changed to %r" % (k, store.get(k)))
            return 1
    for k, v in keys.items():
        if store.get(k) != v:
            print("peer: key %s changed to %r" % (k, store.get(k)))
            return 1
    print("peer: %d rounds, all %d keys intact" % (n, len(keys)))
    return 0


def main():
    mode = sys.argv[1]
    if mode == "serve":
        serve(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
        return 0
    if mode == "peer":
        return peer(sys.argv[2], sys.argv[3])
    if mode == "numkeys":
        print(client(sys.argv[2]).num_keys())
        return 0
    print("unknown mode " + mode)
    return 2


if __name__ == "__main__":
    sys.exit(main())
