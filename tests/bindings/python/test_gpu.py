"""The GPU scenarios of the Python binding, as TAP: 2 GPUs, one process each, torch tensors.

  all-reduce, eager (bf16 and fp32, one-shot, two-shot, auto; an odd count)
  all-reduce inside a torch CUDA graph, replayed with new inputs
  fused all-reduce + residual + RMSNorm against torch
  the DLPack keep-alive: torch views of symmetric memory stay valid after every other
    Python reference (the SymmetricMemory, the communicator, the first tensors) is gone
  the MoE round trip (dispatch, sanitize, expert, combine), eager and in a CUDA graph

Ranks may share a GPU: rank r uses cuda:(r % torch.cuda.device_count()), so one GPU runs
every scenario (the TAP plan is followed by a "# N ranks on M GPU(s)" line). Skips visibly
without torch, without a GPU or with a libmnnvl built without CUDA; MNNVL_REQUIRE_GPU=1 makes
a skip a failure. Each scenario runs this file again as
`test_gpu.py --worker SCENARIO RANK SIZE ROOT` in one process per rank (no CUDA before a fork).
"""

import gc
import os
import socket
import subprocess
import sys
import time
import traceback

import mnnvl

SIZE = 2
JOB_KEY = "python-gpu-test-0123456789abcdef0123456789"
SKIP_EXIT = 77


def device_tensor(address, shape, dtype, owner):
    """A torch tensor over device memory libmnnvl owns (kept alive through `owner`)."""
    import torch

    itemsize = torch.empty((), dtype=dtype).element_size()
    typestr = {1: "|u1", 2: "<i2", 4: "<i4", 8: "<i8"}[itemsize]
    as_int = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[itemsize]

    class Exported:
        __cuda_array_interface__ = {"shape": tuple(shape), "typestr": typestr,
                                    "data": (address, False), "strides": None, "version": 3}
        keep = owner

    return torch.as_tensor(Exported(), device="cuda").view(as_int).view(dtype)


def device_of(rank):
    """Rank r runs on device r % (visible GPUs): ranks share a GPU when there are fewer."""
    import torch

    return rank % torch.cuda.device_count()


def communicator(rank, root):
    return mnnvl.Comm(rank, SIZE, device=device_of(rank), root=root, job_key=JOB_KEY, timeout_ms=60000)


def inputs(rank, count, dtype, seed=1234):
    """Rank `rank`'s input, the same wherever it is made (CPU generator)."""
    import torch

    g = torch.Generator().manual_seed(seed + rank)
    return torch.randn(count, dtype=torch.float32, generator=g).to(dtype).cuda()


def expected_sum(count, dtype, seed=1234):
    """Every rank's input summed in rank order in fp32, rounded once: what libmnnvl promises."""
    total = None
    for r in range(SIZE):
        x = inputs(r, count, dtype, seed).float()
        total = x if total is None else total + x
    return total.to(dtype)


def same_on_every_rank(comm, tensor):
    import hashlib

    import torch

    digest = hashlib.sha256(tensor.cpu().view(-1).view(torch.uint8).numpy().tobytes()).digest()
    assert len(set(comm.allgather(digest))) == 1, "ranks got different results"


# -------------------------------------------------------------------------------------------
# Scenarios: each runs on every rank (one process per GPU).
# -------------------------------------------------------------------------------------------

def allreduce_eager(rank, root):
    import torch

    with communicator(rank, root) as comm:
        for dtype in (torch.bfloat16, torch.float32):
            for strategy in ("auto", "oneshot", "twoshot"):
                with mnnvl.AllReduce(comm, dtype=dtype, max_count=1 << 20,
                                     strategy=strategy) as ar:
                    for count in (1, 1000, (1 << 20) + 3):
                        x = inputs(rank, count, dtype)
                        out = torch.empty_like(x)
                        ar(x, out)  # torch's current stream
                        torch.cuda.synchronize()
                        want = expected_sum(count, dtype)
                        diff = (out.float() - want.float()).abs().max()
                        assert torch.equal(out, want), \
                            "%s %s count %d: max diff %g" % (dtype, strategy, count, diff)
                        same_on_every_rank(comm, out)
                        ar(x)  # in place
                        torch.cuda.synchronize()
                        assert torch.equal(x, want), "%s %s in place" % (dtype, strategy)
        assert comm.async_error() is None


def allreduce_graph(rank, root):
    import torch

    count = 4096
    with communicator(rank, root) as comm, \
            mnnvl.AllReduce(comm, dtype=torch.bfloat16, max_count=count) as ar:
        x = torch.zeros(count, device="cuda", dtype=torch.bfloat16)
        out = torch.zeros_like(x)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            ar(x, out)  # warm-up outside the capture, as torch recommends
        torch.cuda.current_stream().wait_stream(side)
        torch.cuda.synchronize()
        comm.barrier()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            ar(x, out)  # the default stream is the capture stream here
        for replay in range(5):
            x.copy_(inputs(rank, count, torch.bfloat16, seed=replay))
            graph.replay()
            torch.cuda.synchronize()
            want = expected_sum(count, torch.bfloat16, seed=replay)
            assert torch.equal(out, want), "replay %d differs" % replay
        assert comm.async_error() is None
        comm.barrier()


def residual_rmsnorm(rank, root):
    import torch

    tokens, hidden, eps = 64, 2048, 1e-6
    with communicator(rank, root) as comm, \
            mnnvl.AllReduce(comm, dtype=torch.bfloat16, max_count=tokens * hidden) as ar:
        x = inputs(rank, tokens * hidden, torch.bfloat16).view(tokens, hidden)
        residual = inputs(99, tokens * hidden, torch.bfloat16).view(tokens, hidden)
        gamma = inputs(7, hidden, torch.bfloat16)
        residual_out, norm_out = ar.residual_rmsnorm(x, residual.clone(), gamma, eps)
        torch.cuda.synchronize()
        summed = expected_sum(tokens * hidden, torch.bfloat16).view(tokens, hidden)
        y = summed.float() + residual.float()
        norm = y * torch.rsqrt(y.pow(2).mean(-1, keepdim=True) + eps) * gamma.float()
        torch.testing.assert_close(residual_out, y.to(torch.bfloat16), rtol=0, atol=0)
        torch.testing.assert_close(norm_out, norm.to(torch.bfloat16), rtol=1.6e-2, atol=1e-2)
        comm.barrier()


def dlpack_keepalive(rank, root):
    import torch

    comm = communicator(rank, root)
    mem = mnnvl.SymmetricMemory(comm, 1 << 20)
    own = mem.tensor(torch.float32, (4096,), peer=rank)
    peer = mem.tensor(torch.float32, (4096,), peer=1 - rank)
    assert own.data_ptr() == mem.ptr(rank) and peer.data_ptr() == mem.ptr(1 - rank)
    view_of_peer = peer[100:200]  # a derived view: the case FlashInfer lost
    del mem, peer
    gc.collect()
    own.fill_(rank + 1)
    torch.cuda.synchronize()
    comm.barrier()
    assert torch.all(view_of_peer == 2 - rank), "the peer's piece reads %s" % view_of_peer[:4]
    comm.barrier()  # the peer read ours too
    comm.close()
    del own
    gc.collect()
    # Only the derived view is left: it still reads the peer's piece through our mapping.
    assert torch.all(view_of_peer == 2 - rank), "after every other reference is gone"
    assert view_of_peer.sum().item() == 100 * (2 - rank)


def moe_round_trip(rank, root, graph=False):
    import torch

    tokens, top_k, hidden, experts = 16, 2, 256, 4  # rank r owns experts 2r and 2r+1
    with communicator(rank, root) as comm, \
            mnnvl.MoeAllToAll(comm, num_experts=experts, top_k=top_k,
                              max_tokens_per_rank=tokens,
                              payload_bytes=[hidden * 2, top_k * 4], hidden=hidden) as a2a:
        g = torch.Generator(device="cpu").manual_seed(rank)
        chosen = torch.stack([torch.randperm(experts, generator=g)[:top_k]
                              for _ in range(tokens)]).to(torch.int32).cuda()
        x = inputs(rank, tokens * hidden, torch.bfloat16).view(tokens, hidden)
        out = torch.empty_like(x)

        def expert_views():
            """The receive and combine regions as tensors (fixed for one R)."""
            return (device_tensor(a2a.recv_buffer(0), (SIZE, tokens, hidden), torch.bfloat16, a2a),
                    device_tensor(a2a.recv_buffer(1), (SIZE, tokens, top_k), torch.int32, a2a),
                    device_tensor(a2a.combine_buffer(), (SIZE, tokens, hidden), torch.bfloat16,
                                  a2a))

        def round_trip(views):
            a2a.dispatch(chosen, [x, chosen], runtime_max_tokens=tokens)
            a2a.sanitize(1)
            rows, ids, partial = views or expert_views()
            # the "experts": expert e scales its rows by e + 1; a slot's partial sums this
            # rank's experts of it (foreign ids and empty slots are -1 after sanitize)
            weight = ((ids + 1) * (ids >= 0)).sum(-1, keepdim=True).float()
            partial.copy_((rows.float() * weight).to(torch.bfloat16))
            a2a.combine(out)

        round_trip(None)  # eager; in graph mode also the warm-up that places the regions
        if graph:
            views = expert_views()  # made outside the capture
            torch.cuda.synchronize()
            comm.barrier()
            cuda_graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(cuda_graph):
                round_trip(views)
        torch.cuda.synchronize()
        replays = 2 if graph else 0
        # What combine promises: each rank's partial rounded to bf16, summed in rank order.
        want = torch.zeros(tokens, hidden, dtype=torch.float32, device="cuda")
        for r in range(SIZE):
            own = (chosen >= 2 * r) & (chosen < 2 * r + 2)
            w = ((chosen + 1) * own).sum(-1, keepdim=True).float()
            want += (x.float() * w).to(torch.bfloat16).float()
        want = want.to(torch.bfloat16)
        assert torch.equal(out, want), "max diff %g" % (out.float() - want.float()).abs().max()
        for replay in range(replays):
            out.zero_()
            cuda_graph.replay()
            torch.cuda.synchronize()
            assert torch.equal(out, want), "replay %d differs" % replay
        assert comm.async_error() is None
        comm.barrier()


def moe_round_trip_graph(rank, root):
    moe_round_trip(rank, root, graph=True)


SCENARIOS = [allreduce_eager, allreduce_graph, residual_rmsnorm, dlpack_keepalive,
             moe_round_trip, moe_round_trip_graph]


# -------------------------------------------------------------------------------------------
# Driver
# -------------------------------------------------------------------------------------------

def run_scenario(rank, call):
    """A worker's run of call() on rank's device: 0, or SKIP_EXIT when libmnnvl says UNSUPPORTED.
    test_gpu_dcp.py's workers run through here too."""
    import torch

    torch.cuda.set_device(device_of(rank))
    try:
        call()
    except mnnvl.UnsupportedError as exc:
        print("rank %d: %s" % (rank, exc))
        return SKIP_EXIT
    return 0


def worker(name, rank, root):
    return run_scenario(rank, lambda: globals()[name](rank, root))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def why_skip():
    try:
        import torch
    except ImportError:
        return "no torch for %s" % sys.executable
    if not torch.cuda.is_available() or torch.cuda.device_count() < 1:
        return "needs a GPU, torch sees none"
    return None


def visible_gpus(strict):
    """How many GPUs torch sees, or None when the scenarios cannot run: then why not is printed
    as TAP, a failure when strict (MNNVL_REQUIRE_GPU=1)."""
    reason = why_skip()
    if not reason:
        import torch

        return torch.cuda.device_count()
    if strict:
        print("1..1\nnot ok 1 - GPU tests required (MNNVL_REQUIRE_GPU=1): %s" % reason)
    else:
        print("1..0 # SKIP %s" % reason)
    return None


def run_ranks(script, name, size, args, timeout):
    """(exit codes, outputs) of `script --worker NAME RANK ARGS... ROOT` for each of `size` ranks
    on a fresh root, each killed after `timeout` seconds."""
    root = "127.0.0.1:%d" % free_port()
    procs = [subprocess.Popen([sys.executable, script, "--worker", name, str(r)] + args + [root],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for r in range(size)]
    outputs, codes = [], []
    for p in procs:
        try:
            out, _ = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            out, _ = p.communicate()
            out += "\n(killed after %d s)" % timeout
        outputs.append(out)
        codes.append(p.returncode)
    return codes, outputs


def report(n, name, took, codes, outputs, strict):
    """Prints TAP test n's line and its ranks' output; returns 1 when it failed, else 0."""
    failed = 0
    if all(c == 0 for c in codes):
        print("ok %d - %s (%s)" % (n, name, took))
    elif all(c in (0, SKIP_EXIT) for c in codes) and not strict:
        print("ok %d - %s # SKIP %s" % (n, name, " ".join(o.strip() for o in outputs)[:200]))
    else:
        failed = 1
        print("not ok %d - %s (exit codes %s)" % (n, name, codes))
    for r, out in enumerate(outputs):
        for line in out.splitlines():
            print("# rank %d: %s" % (r, line))
    sys.stdout.flush()
    return failed


def exit_from(call):
    """A worker's end: exits with call()'s result, or with 1 and the traceback of what it raised."""
    try:
        sys.exit(call())
    except SystemExit:
        raise
    except BaseException:
        traceback.print_exc()
        sys.exit(1)


def main():
    strict = os.environ.get("MNNVL_REQUIRE_GPU") == "1"
    gpus = visible_gpus(strict)
    if gpus is None:
        return 1 if strict else 0
    print("1..%d" % len(SCENARIOS))
    print("# %d ranks on %d GPU(s): %d per GPU" % (SIZE, gpus, (SIZE + gpus - 1) // gpus))
    failed = 0
    for n, scenario in enumerate(SCENARIOS, 1):
        start = time.time()
        codes, outputs = run_ranks(os.path.abspath(__file__), scenario.__name__, SIZE, [], 300)
        took = "%.1f s" % (time.time() - start)
        failed += report(n, scenario.__name__, took, codes, outputs, strict)
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--worker":
        exit_from(lambda: worker(sys.argv[2], int(sys.argv[3]), sys.argv[4]))
    sys.exit(main())
