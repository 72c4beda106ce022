"""The DCP all-to-all of the Python binding on torch tensors, as TAP, at cp 2 and 4.

  transpose, eager: bit-exact against torch's own transpose of every rank's inputs
    (bf16 and fp16, D 64 and 512, S 2 and 4, entries 0, 1, 16 and max), given and
    allocated outputs
  lse_reduce, eager: against a float64 torch reference (bases e and 2, -inf sources whose
    rows hold NaN, an entry with no source at all), run-to-run bits
  both inside one torch CUDA graph: captured with given outputs, replayed with new inputs
    copied in

Ranks may share a GPU: rank r uses cuda:(r % torch.cuda.device_count()), so one GPU runs
every scenario (correct, not fast). Each scenario runs this file again as
`test_gpu_dcp.py --worker SCENARIO RANK SIZE ROOT` in one process per rank (no CUDA before a
fork). Skips visibly without torch, without a GPU or with a libmnnvl built without CUDA;
MNNVL_REQUIRE_GPU=1 makes a skip a failure. The driver and the skip rules are test_gpu.py's
(same directory).
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mnnvl  # noqa: E402
from test_gpu import (device_of, exit_from, report, run_ranks, run_scenario,  # noqa: E402
                      visible_gpus)

SIZES = (2, 4)
MAX_ENTRIES = 128
JOB_KEY = "python-gpu-dcp-test-0123456789abcdef0123"


def cp_group(rank, size, root):
    """The world communicator and its CP group (all of it: tp 1, pp 1)."""
    world = mnnvl.Comm(rank, size, device=device_of(rank), root=root, job_key=JOB_KEY,
                       timeout_ms=60000)
    cp = world.split(mnnvl.Mapping(world_size=size, rank=rank, tp=1, pp=1, cp=size),
                     mnnvl.Group.CP)
    return world, cp


def rank_inputs(p, size, entries, head_dim, lanes, dtype, seed):
    """Rank p's partial_o [entries, size, D] and stats [entries, size, S], the same wherever
    they are made (a CPU generator), so every rank can build every rank's inputs."""
    import torch

    g = torch.Generator().manual_seed(seed * 1000 + p)
    o = torch.randn(entries, size, head_dim, generator=g).to(dtype)
    stats = torch.randn(entries, size, lanes, generator=g) * 4
    return o.cuda(), stats.cuda()


def bits(t):
    import torch

    return t.contiguous().view(torch.int16 if t.element_size() == 2 else torch.int32)


def transpose_reference(rank, size, entries, head_dim, lanes, dtype, seed):
    import torch

    ins = [rank_inputs(p, size, entries, head_dim, lanes, dtype, seed) for p in range(size)]
    return (torch.stack([o[:, rank] for o, _ in ins], dim=1),
            torch.stack([s[:, rank] for _, s in ins], dim=1))


def with_empty_sources(o, stats, p, lse_base):
    """Marks some (entry, source) pairs as having no KV (LSE -inf, O NaN), and entry 0 as
    having none at all; in base 2 the LSE is rescaled so the test means the base."""
    import torch

    entries = o.shape[0]
    e = torch.arange(entries, device=o.device)
    empty = ((e + p) % 3 == 0) | (e == 0)
    stats = stats.clone()
    if lse_base == 2:
        stats[..., 0] *= 1.4426950408889634
    stats[..., 0] = torch.where(empty[:, None], torch.full_like(stats[..., 0], float("-inf")),
                                stats[..., 0])
    o = torch.where(empty[:, None, None], torch.full_like(o, float("nan")), o)
    return o, stats


def lse_reference(rank, size, entries, head_dim, lanes, dtype, seed, lse_base):
    """out and out_lse as the header defines them, in float64."""
    import torch

    rows, lses = [], []
    for p in range(size):
        o, s = with_empty_sources(*rank_inputs(p, size, entries, head_dim, lanes, dtype, seed),
                                  p, lse_base)
        rows.append(o[:, rank].double())
        lses.append(s[:, rank, 0].double())
    o, lse = torch.stack(rows), torch.stack(lses)  # [size, entries, D], [size, entries]
    m = lse.max(0).values
    finite = torch.isfinite(m)
    shifted = torch.where(torch.isfinite(lse), lse - torch.where(finite, m, 0), -torch.inf)
    w = torch.exp2(shifted) if lse_base == 2 else torch.exp(shifted)
    total = w.sum(0)
    weighted = torch.where(w[..., None] > 0, w[..., None] * o, 0).sum(0)
    out = torch.where(finite[:, None], weighted / torch.where(finite, total, 1)[:, None], 0)
    log = torch.log2 if lse_base == 2 else torch.log
    out_lse = torch.where(finite, m + log(torch.where(finite, total, 1)), -torch.inf)
    return out, out_lse


def check_lse(out, out_lse, want, want_lse, dtype, what):
    import torch

    assert not torch.isnan(out).any() and not torch.isnan(out_lse).any(), "%s: NaN" % what
    tol = 1e-2 if dtype == torch.bfloat16 else 2e-3
    torch.testing.assert_close(out.double(), want, rtol=tol, atol=tol, msg=what)
    torch.testing.assert_close(out_lse.double(), want_lse, rtol=1e-5, atol=1e-5, msg=what)


# -------------------------------------------------------------------------------------------
# Scenarios: each runs on every rank.
# -------------------------------------------------------------------------------------------

def transpose_eager(rank, size, root):
    import torch

    world, cp = cp_group(rank, size, root)
    with world, cp:
        for dtype in (torch.bfloat16, torch.float16):
            for head_dim, lanes in ((64, 2), (512, 4)):
                with mnnvl.DcpAllToAll(cp, max_entries=MAX_ENTRIES, head_dim=head_dim,
                                       dtype=dtype, stats_lanes=lanes) as a2a:
                    assert a2a.cp_size == size
                    for seed, entries in enumerate((0, 1, 16, MAX_ENTRIES)):
                        o, s = rank_inputs(rank, size, entries, head_dim, lanes, dtype, seed)
                        want_o, want_s = transpose_reference(rank, size, entries, head_dim,
                                                             lanes, dtype, seed)
                        out_o, out_s = a2a.transpose(o, s)  # allocated, current stream
                        torch.cuda.synchronize()
                        what = "%s D %d S %d entries %d" % (dtype, head_dim, lanes, entries)
                        assert out_o.shape == o.shape and out_s.shape == s.shape, what
                        assert out_o.dtype == dtype and out_s.dtype == torch.float32, what
                        assert torch.equal(bits(out_o), bits(want_o)), what + ": O differs"
                        assert torch.equal(bits(out_s), bits(want_s)), what + ": stats differ"
                        given_o, given_s = torch.full_like(o, 7), torch.full_like(s, 7)
                        got = a2a.transpose(o, s, given_o, given_s)
                        assert got[0] is given_o and got[1] is given_s
                        torch.cuda.synchronize()
                        assert torch.equal(bits(given_o), bits(want_o)), what + " (given)"
                        assert torch.equal(bits(given_s), bits(want_s)), what + " (given)"
                    try:
                        a2a.transpose(o.float(), s)
                    except TypeError:
                        pass
                    else:
                        raise AssertionError("fp32 partial_o was accepted")
        assert cp.async_error() is None and world.async_error() is None
        world.barrier()


def lse_reduce_eager(rank, size, root):
    import torch

    world, cp = cp_group(rank, size, root)
    with world, cp:
        for dtype, head_dim, lanes, lse_base in ((torch.bfloat16, 128, 2, "e"),
                                                 (torch.float16, 512, 4, 2)):
            with mnnvl.DcpAllToAll(cp, max_entries=MAX_ENTRIES, head_dim=head_dim, dtype=dtype,
                                   stats_lanes=lanes, lse_base=lse_base) as a2a:
                for seed, entries in enumerate((1, 16, MAX_ENTRIES)):
                    o, s = with_empty_sources(
                        *rank_inputs(rank, size, entries, head_dim, lanes, dtype, seed), rank,
                        lse_base)
                    out, out_lse = a2a.lse_reduce(o, s)
                    torch.cuda.synchronize()
                    what = "%s D %d base %s entries %d" % (dtype, head_dim, lse_base, entries)
                    assert out.shape == (entries, head_dim) and out_lse.shape == (entries,)
                    want, want_lse = lse_reference(rank, size, entries, head_dim, lanes, dtype,
                                                   seed, lse_base)
                    check_lse(out, out_lse, want, want_lse, dtype, what)
                    assert torch.all(out[0] == 0) and out_lse[0] == float("-inf"), \
                        what + ": the entry without sources"
                    again = a2a.lse_reduce(o, s, torch.empty_like(out), torch.empty_like(out_lse))
                    torch.cuda.synchronize()
                    assert torch.equal(bits(again[0]), bits(out)), what + ": bits changed"
                    assert torch.equal(bits(again[1]), bits(out_lse)), what + ": bits changed"
        assert cp.async_error() is None and world.async_error() is None
        world.barrier()


def in_cuda_graph(rank, size, root):
    import torch

    entries, head_dim, lanes, dtype = 16, 128, 2, torch.bfloat16
    world, cp = cp_group(rank, size, root)
    with world, cp, mnnvl.DcpAllToAll(cp, max_entries=MAX_ENTRIES, head_dim=head_dim,
                                      dtype=dtype, stats_lanes=lanes) as a2a:
        def graph_inputs(p, seed):
            o, s = rank_inputs(p, size, entries, head_dim, lanes, dtype, seed)
            return with_empty_sources(o, s, p, "e")

        o, s = graph_inputs(rank, 0)
        out_o, out_s = torch.empty_like(o), torch.empty_like(s)
        out, out_lse = o.new_empty(entries, head_dim), s.new_empty(entries)

        def step():
            a2a.transpose(o, s, out_o, out_s)
            a2a.lse_reduce(o, s, out, out_lse)

        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            step()  # warm-up outside the capture, as torch recommends
        torch.cuda.current_stream().wait_stream(side)
        torch.cuda.synchronize()
        cp.barrier()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            step()  # torch's current stream is the capture stream here
        for seed in range(1, 4):
            new_o, new_s = graph_inputs(rank, seed)
            o.copy_(new_o)
            s.copy_(new_s)
            graph.replay()
            torch.cuda.synchronize()
            what = "replay with seed %d" % seed
            # the transpose moves the NaN rows and -inf stats too, bit for bit
            sent = [graph_inputs(p, seed) for p in range(size)]
            want_o = torch.stack([o_p[:, rank] for o_p, _ in sent], dim=1)
            want_s = torch.stack([s_p[:, rank] for _, s_p in sent], dim=1)
            assert torch.equal(bits(out_o), bits(want_o)), what + ": O differs"
            assert torch.equal(bits(out_s), bits(want_s)), what + ": stats differ"
            want, want_lse = lse_reference(rank, size, entries, head_dim, lanes, dtype, seed, "e")
            check_lse(out, out_lse, want, want_lse, dtype, what)
        assert cp.async_error() is None and world.async_error() is None
        world.barrier()


SCENARIOS = [transpose_eager, lse_reduce_eager, in_cuda_graph]


# -------------------------------------------------------------------------------------------
# Driver
# -------------------------------------------------------------------------------------------

def worker(name, rank, size, root):
    return run_scenario(rank, lambda: globals()[name](rank, size, root))


def main():
    strict = os.environ.get("MNNVL_REQUIRE_GPU") == "1"
    gpus = visible_gpus(strict)
    if gpus is None:
        return 1 if strict else 0
    print("1..%d" % (len(SCENARIOS) * len(SIZES)))
    failed, n = 0, 0
    for size in SIZES:
        for scenario in SCENARIOS:
            n += 1
            name = "%s cp %d (%d rank(s) per GPU)" % (scenario.__name__, size,
                                                     (size + gpus - 1) // gpus)
            start = time.time()
            codes, outputs = run_ranks(os.path.abspath(__file__), scenario.__name__, size,
                                       [str(size)], 600)
            took = "%.1f s" % (time.time() - start)
            failed += report(n, name, took, codes, outputs, strict)
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--worker":
        exit_from(lambda: worker(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]))
    sys.exit(main())
