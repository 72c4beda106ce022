"""The tensor views of the MoE regions, as TAP: 2 ranks (one process each, sharing a GPU when there is one), torch tensors.

  moe_dispatch_views: dispatch returns the receive, counts and combine regions as DLPack
    views; as torch tensors they alias the C addresses, hold what the peers sent (the
    counts match the experts chosen), and a combine from the combine view is exact
  moe_views_keepalive: a tensor made from a view stays valid after the MoeAllToAll, the
    communicator and the view are all gone (the view's reference keeps the workspace)

The helpers, the driver and the skip rules are those of test_gpu.py (same directory); run it
the same way (make check runs tests/bindings/python_gpu_views.sh; on the GPU machine
PYTHONPATH=<build>/bindings/python/stage LD_LIBRARY_PATH=<build>/.libs MNNVL_REQUIRE_GPU=1
python3 tests/bindings/python/test_gpu_views.py).
"""

import gc
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mnnvl  # noqa: E402
import test_gpu  # noqa: E402
from test_gpu import SIZE, communicator, inputs  # noqa: E402

TOKENS, TOP_K, HIDDEN, EXPERTS = 16, 2, 256, 4  # rank r owns experts 2r and 2r+1


def _setup(rank, comm):
    import torch

    a2a = mnnvl.MoeAllToAll(comm, num_experts=EXPERTS, top_k=TOP_K, max_tokens_per_rank=TOKENS,
                            payload_bytes=[HIDDEN * 2, TOP_K * 4], hidden=HIDDEN)
    g = torch.Generator(device="cpu").manual_seed(rank)
    chosen = torch.stack([torch.randperm(EXPERTS, generator=g)[:TOP_K]
                          for _ in range(TOKENS)]).to(torch.int32).cuda()
    x = inputs(rank, TOKENS * HIDDEN, torch.bfloat16).view(TOKENS, HIDDEN)
    return a2a, chosen, x


def _sent_to(chosen_by_rank, dest):
    """How many tokens each source sends to `dest` (a token goes once to each owner)."""
    counts = []
    for chosen in chosen_by_rank:
        owners = chosen.cpu() // (EXPERTS // SIZE)
        counts.append(int((owners == dest).any(dim=1).sum()))
    return counts


def _all_chosen(comm, chosen):
    import torch

    blobs = comm.allgather(chosen.cpu().numpy().tobytes())
    return [torch.frombuffer(bytearray(b), dtype=torch.int32).view(TOKENS, TOP_K) for b in blobs]


def moe_dispatch_views(rank, root):
    import torch

    with communicator(rank, root) as comm:
        a2a, chosen, x = _setup(rank, comm)
        with a2a:
            got = a2a.dispatch(chosen, [x, chosen], runtime_max_tokens=TOKENS)
            rows, ids = (torch.from_dlpack(v) for v in got.payloads)
            counts, partial = torch.from_dlpack(got.counts), torch.from_dlpack(got.combine)
            assert rows.dtype == torch.bfloat16 and rows.shape == (SIZE, TOKENS, HIDDEN), rows.shape
            assert ids.dtype == torch.int32 and ids.shape == (SIZE, TOKENS, TOP_K), ids.shape
            assert counts.dtype == torch.int32 and counts.shape == (SIZE,), counts.shape
            assert partial.dtype == torch.bfloat16 and partial.shape == (SIZE, TOKENS, HIDDEN)
            assert rows.data_ptr() == a2a.recv_buffer(0) and ids.data_ptr() == a2a.recv_buffer(1)
            assert counts.data_ptr() == a2a.recv_counts()
            assert partial.data_ptr() == a2a.combine_buffer()
            torch.cuda.synchronize()
            want = _sent_to(_all_chosen(comm, chosen), rank)
            assert counts.cpu().tolist() == want, (counts.cpu().tolist(), want)
            a2a.sanitize(1)
            weight = ((ids + 1) * (ids >= 0)).sum(-1, keepdim=True).float()
            partial.copy_((rows.float() * weight).to(torch.bfloat16))
            out = torch.empty_like(x)
            a2a.combine(out)
            torch.cuda.synchronize()
            expect = torch.zeros(TOKENS, HIDDEN, dtype=torch.float32, device="cuda")
            for r in range(SIZE):
                own = (chosen >= 2 * r) & (chosen < 2 * r + 2)
                w = ((chosen + 1) * own).sum(-1, keepdim=True).float()
                expect += (x.float() * w).to(torch.bfloat16).float()
            assert torch.equal(out, expect.to(torch.bfloat16)), "combine from the views differs"
            # a second round with the same R returns the same view objects
            got2 = a2a.dispatch(chosen, [x, chosen], runtime_max_tokens=TOKENS)
            assert got2 is got, "the views of one R are made once"
            a2a.combine(out)
            # a view in another element type: the int32 payload's rows as bytes
            raw = torch.from_dlpack(a2a.recv_view(1, "uint8"))
            assert raw.shape == (SIZE, TOKENS, TOP_K * 4) and raw.data_ptr() == ids.data_ptr()
            torch.cuda.synchronize()
            comm.barrier()


def moe_views_keepalive(rank, root):
    import torch

    comm = communicator(rank, root)
    a2a, chosen, x = _setup(rank, comm)
    got = a2a.dispatch(chosen, [x, chosen], runtime_max_tokens=TOKENS)
    rows = torch.from_dlpack(got.payloads[0])
    counts = torch.from_dlpack(got.counts)
    torch.cuda.synchronize()
    before = (rows.float().sum().item(), counts.cpu().tolist())
    out = torch.empty_like(x)
    a2a.combine(out)  # leave the all-to-all idle (dispatch and combine alternate)
    torch.cuda.synchronize()
    comm.barrier()
    # Drop every Python reference but the tensors: the views' C references keep the workspace.
    del got
    a2a.close()
    comm.close()
    del a2a, comm
    gc.collect()
    after = (rows.float().sum().item(), counts.cpu().tolist())
    assert after == before, (before, after)
    rows.zero_()  # still mapped and writable: this rank's own piece
    torch.cuda.synchronize()
    assert rows.float().abs().sum().item() == 0
    del rows, counts
    gc.collect()


SCENARIOS = [moe_dispatch_views, moe_views_keepalive]

# test_gpu.py's driver runs these scenarios: it finds them by name in its own module and
# starts this file for each rank.
test_gpu.SCENARIOS = SCENARIOS
test_gpu.__file__ = os.path.abspath(__file__)
for _scenario in SCENARIOS:
    setattr(test_gpu, _scenario.__name__, _scenario)

if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--worker":
        test_gpu.exit_from(lambda: test_gpu.worker(sys.argv[2], int(sys.argv[3]), sys.argv[4]))
    sys.exit(test_gpu.main())
