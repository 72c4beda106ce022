"""The Python binding without a GPU: plan a job, then run two CPU-only ranks over TCP.

    python3 examples/python_cpu.py

What a scheduler or a test does on a host without GPUs: validate the parallel mapping,
size the workspaces, start the job's TCP root, and join it from CPU-only communicators
(device=-1: bootstrap collectives only; the GPU calls need a device). Each rank is a thread
here; in a job each is its own process, given the root's address.
"""

import threading

import mnnvl

print("libmnnvl", mnnvl.version())

# 1. A mapping that breaks a rule names it.
try:
    mnnvl.Mapping(world_size=8, rank=0, tp=3, pp=2).validate()
except mnnvl.InvalidArgumentError as exc:
    print("rejected:", exc.message)
else:
    raise SystemExit("an invalid mapping validated")

# 2. Workspace planning is pure CPU.
per_rank = mnnvl.AllReduce.workspace_size(8, "bf16", max_count=1 << 20)
print("all-reduce workspace per rank: %d bytes" % per_rank)

# 3. The job's root, and two CPU-only ranks that join it and exchange bytes.
results = [None, None]


def rank_main(rank, address):
    with mnnvl.Comm(rank, 2, device=-1, root=address, root_mode="external",
                    job_key="example-key-not-a-secret-0123456789abcdef", timeout_ms=30000) as comm:
        results[rank] = comm.allgather(b"hello from rank %d" % rank)
        comm.barrier()


with mnnvl.Root("127.0.0.1:0", job_key="example-key-not-a-secret-0123456789abcdef") as root:
    print("root listening on", root.address)
    threads = [threading.Thread(target=rank_main, args=(r, root.address)) for r in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

expected = [b"hello from rank 0", b"hello from rank 1"]
if results != [expected, expected]:
    raise SystemExit("allgather gave %r" % (results,))
print("both ranks received", [b.decode() for b in expected])
