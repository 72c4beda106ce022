"""The CPU scenarios of the Python binding, as TAP (tests/bindings/python.sh runs this).

The same scenarios as tests/bindings/go/mnnvl_test.go and tests/bindings/java/BindingTest.java:
version; a mapping that breaks a rule; workspace size planning (DCP's too); a DCP all-to-all
refused on a CPU-only communicator; 4 CPU-only ranks over TCP (allgather, barrier,
broadcast, split); a wrong job key; a shrink after a rank aborted. Plus what only Python has: joining
a torch TCPStore, the log callback from libmnnvl's threads, DcpAllToAll's tensor checks.
"""

import os
import subprocess
import sys
import tempfile
import threading
import time
import traceback

import mnnvl
from mnnvl import _mnnvl

TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


class Skip(Exception):
    pass


def on_ranks(size, fn):
    """Runs fn(rank) on `size` threads; returns the results, re-raises the first failure."""
    results, errors = [None] * size, [None] * size

    def run(rank):
        try:
            results[rank] = fn(rank)
        except BaseException as exc:  # reported below, with the rank
            errors[rank] = exc

    threads = [threading.Thread(target=run, args=(r,)) for r in range(size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for rank, exc in enumerate(errors):
        if exc is not None:
            raise AssertionError("rank %d: %r" % (rank, exc)) from exc
    return results


@test
def version():
    assert mnnvl.version() == mnnvl.__version__ == _mnnvl.mnnvl_version_string(), \
        (mnnvl.version(), mnnvl.__version__)
    code = mnnvl.version_code()
    assert code == _mnnvl.MNNVL_VERSION_CODE, (code, _mnnvl.MNNVL_VERSION_CODE)
    major, minor, patch = (int(x) for x in mnnvl.__version__.split("."))
    assert code == major * 10000 + minor * 100 + patch, (code, mnnvl.__version__)


@test
def mapping_rule_broken():
    try:
        mnnvl.Mapping(world_size=8, rank=0, tp=3, pp=2, moe_tp=3).validate()
    except mnnvl.InvalidArgumentError as exc:
        assert "tp*pp*cp = 3*2*1 = 6 must equal world_size 8" in exc.message, exc.message
        assert exc.status == _mnnvl.MNNVL_ERR_INVALID_ARGUMENT
        assert isinstance(exc, ValueError) and isinstance(exc, mnnvl.Error)
    else:
        raise AssertionError("an invalid mapping validated")
    good = mnnvl.Mapping(world_size=8, rank=5, tp=2, pp=2, cp=2).validate()
    assert good.group(mnnvl.Group.TP) == ([4, 5], 1), good.group(mnnvl.Group.TP)
    assert good.group(mnnvl.Group.PP) == ([1, 5], 1), good.group(mnnvl.Group.PP)
    assert mnnvl.Mapping.tensor_parallel(4, 2) == mnnvl.Mapping(4, 2)


@test
def workspace_size_planning():
    small = mnnvl.AllReduce.workspace_size(4, "bf16", max_count=1 << 10)
    large = mnnvl.AllReduce.workspace_size(4, "bf16", max_count=1 << 24)
    assert 0 < small < large, (small, large)
    try:
        mnnvl.AllReduce.workspace_size(4, "bf16", max_count=0)
    except mnnvl.InvalidArgumentError as exc:
        assert "max_count 0" in exc.message, exc.message
    else:
        raise AssertionError("max_count 0 was planned")
    moe = mnnvl.MoeAllToAll.workspace_size(ep_size=4, num_experts=16, top_k=2,
                                           max_tokens_per_rank=128, payload_bytes=[7168 * 2],
                                           hidden=7168)
    assert moe > 0, moe


@test
def dcp_planning():
    """DcpAllToAll.workspace_size: receive slots for max_entries rows of every rank, twice;
    every bad parameter raises with libmnnvl's sentence naming it."""
    cp, d, s = 4, 128, 2
    small = mnnvl.DcpAllToAll.workspace_size(cp, max_entries=64, head_dim=d, dtype="bf16",
                                              stats_lanes=s)
    large = mnnvl.DcpAllToAll.workspace_size(cp, max_entries=128, head_dim=d, dtype="bf16",
                                              stats_lanes=s)
    row = d * 2 + s * 4  # one (entry, source) row: O and its stats, before padding
    grown = large - small  # 64 more entries from each of cp sources, two buffers
    assert 2 * cp * 64 * row <= grown < 2 * cp * 64 * (row + 16), (small, large, grown)
    wide = mnnvl.DcpAllToAll.workspace_size(cp, max_entries=64, head_dim=512, stats_lanes=s,
                                             lse_base=2)
    assert wide > small, (wide, small)
    bad = [(dict(max_entries=0), "max_entries 0"), (dict(head_dim=100), "head_dim 100"),
           (dict(stats_lanes=9), "stats_lanes 9"), (dict(dtype="fp32"), "dtype 0"),
           (dict(cp_size=mnnvl.DcpAllToAll.MAX_RANKS + 1), "cp_size 65")]
    for change, words in bad:
        args = dict(cp_size=cp, max_entries=16)
        args.update(change)
        try:
            mnnvl.DcpAllToAll.workspace_size(**args)
        except mnnvl.InvalidArgumentError as exc:
            assert words in exc.message, (change, exc.message)
        else:
            raise AssertionError("%s was planned" % change)
    try:
        mnnvl.DcpAllToAll.workspace_size(cp, 16, lse_base=10)
    except ValueError as exc:
        assert "lse_base" in str(exc), exc
    else:
        raise AssertionError("lse_base 10 was accepted")


@test
def dcp_on_cpu_only_comm():
    """A DCP all-to-all needs a GPU communicator: the CPU-only one is refused, with the
    sentence (or, in a build without CUDA, UnsupportedError saying so)."""
    with mnnvl.Comm(0, 1, device=-1, root="127.0.0.1:%d" % free_port(),
                    timeout_ms=10000) as comm:
        try:
            mnnvl.DcpAllToAll(comm, max_entries=16)
        except mnnvl.InvalidUsageError as exc:
            assert "CPU-only (device -1)" in exc.message, exc.message
        except mnnvl.UnsupportedError as exc:
            assert "built without CUDA" in exc.message, exc.message
        else:
            raise AssertionError("a DCP all-to-all was made on a CPU-only communicator")


@test
def failed_ranks_and_fault_params():
    """Comm.failed_ranks() is empty before any fault; the fault_tolerant params fields exist
    (off by default) and reach the C structs."""
    with mnnvl.Comm(0, 1, device=-1, root="127.0.0.1:%d" % free_port(),
                    timeout_ms=10000) as comm:
        assert comm.failed_ranks() == [], comm.failed_ranks()
    from mnnvl import _mnnvl as c
    for params in (c.MoeA2AParams(), c.AllReduceParams(), c.DcpA2AParams()):
        assert params.fault_tolerant == 0 and params.peer_timeout_ms == 0
        params.fault_tolerant, params.peer_timeout_ms = 1, 250
        assert (params.fault_tolerant, params.peer_timeout_ms) == (1, 250)


@test
def dcp_argument_checks():
    """DcpAllToAll's checks of shapes, element types and contiguity, which run before any
    C call (on fake device arrays and a closed handle: no GPU needed). A call that passes
    them reaches the handle, which is closed here."""
    a2a = mnnvl.DcpAllToAll.__new__(mnnvl.DcpAllToAll)
    a2a.cp_size, a2a.max_entries, a2a.head_dim, a2a.stats_lanes = 2, 8, 64, 2
    a2a.dtype, a2a.lse_base, a2a._device = mnnvl.DType.FP16, mnnvl.LseBase.E, -1

    class Array:
        def __init__(self, shape, typestr, strides=None):
            self.__cuda_array_interface__ = {"shape": shape, "typestr": typestr,
                                             "data": (0x7f0000100000, False),
                                             "strides": strides, "version": 3}

    f16 = "<f2"  # the handle's dtype (bf16 has no __cuda_array_interface__ typestr)
    o, st = Array((4, 2, 64), f16), Array((4, 2, 2), "<f4")
    cases = [
        (lambda: a2a.transpose(Array((4, 3, 64), f16), st), ValueError, "cp_size 2"),
        (lambda: a2a.transpose(Array((4, 2, 32), f16), st), ValueError, "head_dim 64"),
        (lambda: a2a.transpose(o, Array((4, 2, 3), "<f4")), ValueError, "stats has shape"),
        (lambda: a2a.transpose(o, Array((4, 2, 2), "<f2")), TypeError, "stats holds"),
        (lambda: a2a.transpose(Array((4, 2, 64), "<f4"), st), TypeError, "partial_o holds"),
        (lambda: a2a.transpose(o, st), TypeError, "give out_o"),
        (lambda: a2a.transpose(o, st, Array((4, 2, 64), f16), Array((2, 2, 2), "<f4")),
         ValueError, "out_stats has shape"),
        (lambda: a2a.lse_reduce(o, st, Array((4, 2, 64), f16), Array((4,), "<f4")),
         ValueError, "out has shape"),
        (lambda: a2a.lse_reduce(o, st, Array((4, 64), f16), Array((4, 1), "<f4")),
         ValueError, "out_lse has shape"),
        (lambda: a2a.lse_reduce(o, Array((4, 2, 2), "<f4", strides=(32, 8, 4)),
                                Array((4, 64), f16), Array((4,), "<f4")),
         ValueError, "contiguous"),
        (lambda: a2a.transpose(0x1000, st), TypeError, "partial_o must be a tensor"),
        (lambda: a2a.transpose(o, st, Array((4, 2, 64), f16), Array((4, 2, 2), "<f4")),
         ValueError, "DcpAllToAll is closed"),
        (lambda: a2a.lse_reduce(o, st, Array((4, 64), f16), Array((4,), "<f4")),
         ValueError, "DcpAllToAll is closed"),
    ]
    for call, kind, words in cases:
        try:
            call()
        except kind as exc:
            assert words in str(exc), (words, str(exc))
        else:
            raise AssertionError("accepted; expected %s about %r" % (kind.__name__, words))


@test
def four_cpu_ranks_over_tcp():
    with mnnvl.Root("127.0.0.1:0", job_key="python-test-key-0123456789abcdef0123456789") as root:
        world = mnnvl.Mapping(world_size=4, rank=0, tp=2, pp=2)

        def rank_main(rank):
            with mnnvl.Comm(rank, 4, device=-1, root=root.address, root_mode="external",
                            job_key="python-test-key-0123456789abcdef0123456789", timeout_ms=30000) as comm:
                assert (comm.rank, comm.size, comm.device) == (rank, 4, -1)
                assert comm.handle_type == "none"
                blocks = comm.allgather(bytes([rank]) * 16)
                assert blocks == [bytes([r]) * 16 for r in range(4)], blocks
                comm.barrier()
                data = comm.broadcast(b"from rank 2" if rank == 2 else bytes(11), root=2)
                assert data == b"from rank 2", data
                mapping = mnnvl.Mapping(world.world_size, rank, tp=2, pp=2)
                with comm.split(mapping, mnnvl.Group.TP) as tp:
                    assert tp.size == 2 and tp.rank == rank % 2, (tp.size, tp.rank)
                    peers = tp.allgather(rank.to_bytes(4, "little"))
                    expected = [(rank // 2) * 2, (rank // 2) * 2 + 1]
                    assert [int.from_bytes(b, "little") for b in peers] == expected, peers
                assert comm.async_error() is None
                comm.finalize()
            return rank

        assert on_ranks(4, rank_main) == [0, 1, 2, 3]


@test
def shrink_after_a_rank_aborted():
    key = "python-shrink-test-job-key-0123456789"
    with mnnvl.Root("127.0.0.1:0", job_key=key) as root:
        left = threading.Barrier(4)

        def rank_main(rank):
            with mnnvl.Comm(rank, 4, device=-1, root=root.address, root_mode="external",
                            job_key=key, timeout_ms=10000, comm_name="shrink") as comm:
                comm.barrier()
                if rank == 1:
                    comm.abort()  # stands for a death: the others see PeerLostError
                    left.wait(30)
                    return None
                try:
                    comm.barrier()
                except (mnnvl.PeerLostError, mnnvl.TimeoutError):
                    pass
                else:
                    raise AssertionError("the barrier after rank 1 aborted succeeded")
                left.wait(30)
                with comm.shrink([1]) as survivors:
                    blocks = survivors.allgather(rank.to_bytes(4, "little"))
                    survivors.barrier()
                    return survivors.rank, survivors.size, [int.from_bytes(b, "little") for b in blocks]

        got = on_ranks(4, rank_main)
        assert got == [(0, 3, [0, 2, 3]), None, (1, 3, [0, 2, 3]), (2, 3, [0, 2, 3])], got


@test
def rank0_root_mode():
    port = free_port()

    def rank_main(rank):
        with mnnvl.Comm(rank, 2, root="127.0.0.1:%d" % port, root_mode="rank0",
                        timeout_ms=30000) as comm:
            return comm.allgather(b"r%d" % rank)

    assert on_ranks(2, rank_main) == [[b"r0", b"r1"]] * 2


@test
def wrong_job_key_refused():
    with mnnvl.Root("127.0.0.1:0", job_key="the right key of the test 0123456789abcdef") as root:
        try:
            mnnvl.Comm(0, 1, root=root.address, root_mode="external", job_key="a wrong key of the test 0123456789abcdef",
                       timeout_ms=10000)
        except mnnvl.AuthError as exc:
            assert exc.status == _mnnvl.MNNVL_ERR_AUTH
            assert "job key" in exc.message, exc.message
            assert isinstance(exc, PermissionError)
        else:
            raise AssertionError("a wrong job key was accepted")


@test
def config_keys():
    with mnnvl.Config(root="127.0.0.1:1", timeout_ms=1500, job_key="a key of the config test 0123456789abcdef") as cfg:
        assert cfg["timeout_ms"] == "1500" and cfg["root"] == "127.0.0.1:1"
        for bad in (lambda: cfg["no_such_key"], lambda: cfg.set("timeout_ms", "soon")):
            try:
                bad()
            except mnnvl.InvalidArgumentError as exc:
                assert exc.message, "no sentence"
            else:
                raise AssertionError("a bad key or value was accepted")


@test
def log_callback():
    lines = []
    mnnvl.set_log_callback(lambda level, message: lines.append((level, message)))
    old = mnnvl.get_log_level()
    mnnvl.set_log_level("info")
    try:
        with mnnvl.Comm(0, 1, root="127.0.0.1:%d" % free_port(), timeout_ms=10000):
            pass
    finally:
        mnnvl.set_log_level(old)
        mnnvl.set_log_callback(None)
    assert any(level == mnnvl.LogLevel.INFO and "communicator" in message
               for level, message in lines), lines


@test
def buffers_streams_dtypes():
    """The Python-side plumbing that needs no GPU: buffers, streams, element types."""
    from mnnvl._cuda import Buffer, DType, stream_handle, to_dtype

    class Array:
        def __init__(self, shape, typestr, strides=None):
            self.__cuda_array_interface__ = {"shape": shape, "typestr": typestr,
                                             "data": (0x7f0000001000, False),
                                             "strides": strides, "version": 3}

    b = Buffer(Array((4, 8), "<f2"))
    assert (b.address, b.count, b.element) == (0x7f0000001000, 32, "<f2")
    b.expect(DType.FP16, -1)
    for wrong in (lambda: b.expect(DType.BF16, -1), lambda: Buffer(Array((4,), "<i4"))
                  .expect(DType.FP32, 0)):
        try:
            wrong()
        except TypeError:
            pass
        else:
            raise AssertionError("a buffer of the wrong element type was accepted")
    Buffer(Array((4, 8), "<f4", strides=(32, 4)))  # explicit but compact
    try:
        Buffer(Array((4, 8), "<f4", strides=(64, 4)))
    except ValueError:
        pass
    else:
        raise AssertionError("a strided buffer was accepted")
    assert Buffer(1234).address == 1234 and Buffer(1234).count is None
    try:
        Buffer(b"host bytes")
    except TypeError:
        pass
    else:
        raise AssertionError("host memory was accepted as a device buffer")

    class TorchLikeStream:
        cuda_stream = 0x55

    class ProtocolStream:
        def __cuda_stream__(self):
            return (0, 0x66)

    if "torch" not in sys.modules:
        assert stream_handle(None, 0) == 0  # the legacy default stream without torch
    assert stream_handle(0x44) == 0x44
    assert stream_handle(TorchLikeStream()) == 0x55
    assert stream_handle(ProtocolStream()) == 0x66
    assert to_dtype("bf16") is DType.BF16 and to_dtype("float16") is DType.FP16
    assert to_dtype(2) is DType.BF16 and DType.FP32.itemsize == 4
    try:
        to_dtype("int8")
    except TypeError:
        pass
    else:
        raise AssertionError("int8 became a DType")


@test
def device_view_checks():
    """The tensor views' checks that come before any reference is taken (no GPU needed):
    element types, a missing region, a shape that does not fit, in Python and in C."""
    from mnnvl._dlpack import MEM, MOE_A2A, DeviceView, element

    assert element("bf16") == element(mnnvl.DType.BF16) == element("<V2")
    assert (element("int32").code, element("int32").bits) == (0, 32)
    assert element("uint8").itemsize == 1 and element("float16").typestr == "<f2"
    for bad in ("complex64", "int4"):
        try:
            element(bad)
        except TypeError:
            pass
        else:
            raise AssertionError("%s became an element type" % bad)
    fake_handle, fake_address = 0x1000, 0x7f0000002000  # never dereferenced: checks come first
    for args, what in (((MOE_A2A, 0, fake_address, 64, "int32", (4,), 0), "no handle"),
                       ((MOE_A2A, fake_handle, 0, 64, "int32", (4,), 0), "no region"),
                       ((MEM, fake_handle, fake_address, 16, "int32", (8,), 0), "too big"),
                       ((MEM, fake_handle, fake_address, 64, "int32", (2, -1), 0), "negative")):
        try:
            DeviceView(*args)
        except ValueError:
            pass
        else:
            raise AssertionError("a view with %s was made" % what)
    # the C export checks on its own: an unknown owner kind, a shape that overflows
    for kind, shape in ((99, (4,)), (_mnnvl.MNNVL_PY_OWNER_MOE_A2A, (1 << 62, 1 << 62))):
        try:
            _mnnvl.mnnvl_py_dlpack(kind, fake_handle, fake_address, 64, shape, 0, 32, 0, 1)
        except ValueError:
            pass
        else:
            raise AssertionError("an export with kind %d, shape %r was made" % (kind, shape))


@test
def torch_store_join():
    """mnnvl.Comm joins a TCPStore that torch serves (Debian's python3-torch here)."""
    python = os.environ.get("MNNVL_TEST_TORCH_PYTHON", "/usr/bin/python3")
    srcdir = os.environ.get("abs_top_srcdir") or os.environ.get("top_srcdir", ".")
    fixture = os.path.join(srcdir, "tests/backends/torch_store.py")
    if not os.path.exists(fixture):
        raise Skip("no %s" % fixture)
    probe = subprocess.run([python, "-c", "import torch.distributed"], capture_output=True)
    if probe.returncode != 0:
        raise Skip("%s has no torch.distributed" % python)
    with tempfile.TemporaryDirectory() as tmp:
        portfile = os.path.join(tmp, "port")
        # The ASan build preloads libasan into this interpreter (MNNVL_INTERP_ENV); torch's
        # server is a peer, not code under test, so it runs without it.
        env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "ASAN_OPTIONS")}
        server = subprocess.Popen([python, fixture, "serve", portfile], stdin=subprocess.PIPE,
                                  env=env)
        try:
            deadline = time.time() + 60
            while not os.path.exists(portfile) and server.poll() is None:
                if time.time() > deadline:
                    raise AssertionError("the TCPStore server did not start")
                time.sleep(0.05)
            port = int(open(portfile).read().split()[0])

            def rank_main(rank):
                with mnnvl.Comm(rank, 2, store="127.0.0.1:%d" % port,
                                store_prefix="python-binding", timeout_ms=30000) as comm:
                    return comm.allgather(b"rank %d" % rank)

            assert on_ranks(2, rank_main) == [[b"rank 0", b"rank 1"]] * 2
        finally:
            server.stdin.close()
            server.wait(30)


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    print("1..%d" % len(TESTS))
    failed = 0
    for n, fn in enumerate(TESTS, 1):
        try:
            fn()
            print("ok %d - %s" % (n, fn.__name__))
        except Skip as why:
            print("ok %d - %s # SKIP %s" % (n, fn.__name__, why))
        except BaseException:
            failed += 1
            print("not ok %d - %s" % (n, fn.__name__))
            for line in traceback.format_exc().splitlines():
                print("# " + line)
        sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
