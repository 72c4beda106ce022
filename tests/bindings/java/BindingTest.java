import java.net.ServerSocket;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.IntFunction;

import org.libmnnvl.AllReduce;
import org.libmnnvl.Comm;
import org.libmnnvl.Config;
import org.libmnnvl.DType;
import org.libmnnvl.DcpAllToAll;
import org.libmnnvl.Group;
import org.libmnnvl.LogLevel;
import org.libmnnvl.Mapping;
import org.libmnnvl.Mnnvl;
import org.libmnnvl.MnnvlException;
import org.libmnnvl.MoeAllToAll;
import org.libmnnvl.Root;
import org.libmnnvl.Status;

/**
 * The CPU scenarios of the Java binding, as TAP (tests/bindings/java.sh runs this): the same
 * as tests/bindings/python/test_cpu.py and tests/bindings/go/mnnvl_test.go.
 */
public final class BindingTest {
    interface Scenario {
        void run() throws Exception;
    }

    private static int number;
    private static int failed;

    public static void main(String[] args) {
        System.out.println("1..11");
        scenario("version", BindingTest::version);
        scenario("mapping_rule_broken", BindingTest::mappingRuleBroken);
        scenario("workspace_size_planning", BindingTest::workspaceSizePlanning);
        scenario("four_cpu_ranks_over_tcp", BindingTest::fourCpuRanksOverTcp);
        scenario("rank0_root_mode", BindingTest::rank0RootMode);
        scenario("wrong_job_key_refused", BindingTest::wrongJobKeyRefused);
        scenario("config_keys", BindingTest::configKeys);
        scenario("log_handler", BindingTest::logHandler);
        scenario("closed_handles", BindingTest::closedHandles);
        scenario("dcp_planning", BindingTest::dcpPlanning);
        scenario("dcp_on_cpu_only_comm", BindingTest::dcpOnCpuOnlyComm);
        System.exit(failed == 0 ? 0 : 1);
    }

    private static void scenario(String name, Scenario s) {
        number++;
        try {
            s.run();
            System.out.println("ok " + number + " - " + name);
        } catch (Throwable t) {
            failed++;
            System.out.println("not ok " + number + " - " + name);
            for (String line : String.valueOf(t).split("\n")) {
                System.out.println("# " + line);
            }
            for (StackTraceElement e : t.getStackTrace()) {
                System.out.println("#   at " + e);
            }
        }
        System.out.flush();
    }

    private static void check(boolean condition, String what) {
        if (!condition) {
            throw new AssertionError(what);
        }
    }

    static void version() {
        int v = Mnnvl.version();
        check(v == Mnnvl.HEADER_VERSION, "library " + v + ", header " + Mnnvl.HEADER_VERSION);
        String want = (v / 10000) + "." + (v / 100 % 100) + "." + (v % 100);
        check(Mnnvl.versionString().equals(want), Mnnvl.versionString() + " != " + want);
        for (Status s : Status.values()) {
            if (s != Status.UNKNOWN) {
                check(s.cName().endsWith(s.name()), s + " is " + s.cName() + " in the library");
            }
        }
    }

    static void mappingRuleBroken() {
        try {
            new Mapping(8, 0, 8, 3, 2, 1, 3, 1).validate();
            throw new AssertionError("an invalid mapping validated");
        } catch (MnnvlException.InvalidArgument e) {
            String rule = "tp*pp*cp = 3*2*1 = 6 must equal world_size 8";
            check(e.getMessage().contains(rule), e.getMessage());
            check(e.status() == Status.INVALID_ARGUMENT, "status " + e.status());
        }
        Mapping good = new Mapping(8, 5, 8, 2, 2, 2, 2, 1).validate();
        int[] pp = good.group(Group.PP);
        check(Arrays.equals(pp, new int[] {1, 5}), Arrays.toString(pp));
        Mapping tp = Mapping.tensorParallel(4, 2).validate();
        check(tp.tp == 4 && tp.moeTp == 4 && tp.pp == 1, tp.toString());
    }

    static void workspaceSizePlanning() {
        AllReduce.Params p = new AllReduce.Params();
        check(p.dtype == DType.BF16 && p.maxCount > 0, "defaults");
        long small = AllReduce.workspaceSize(p.maxCount(1 << 10), 4);
        long large = AllReduce.workspaceSize(p.maxCount(1 << 24), 4);
        check(0 < small && small < large, small + " < " + large);
        try {
            AllReduce.workspaceSize(p.maxCount(0), 4);
            throw new AssertionError("max_count 0 was planned");
        } catch (MnnvlException.InvalidArgument e) {
            check(e.getMessage().contains("max_count 0"), e.getMessage());
        }
        MoeAllToAll.Params moe = new MoeAllToAll.Params();
        moe.epSize = 4;
        moe.numExperts = 16;
        moe.topK = 2;
        moe.maxTokensPerRank = 128;
        moe.payloadBytes = new long[] {7168 * 2};
        moe.hidden = 7168;
        check(MoeAllToAll.workspaceSize(moe) > 0, "MoE workspace");
    }

    static void dcpPlanning() {
        DcpAllToAll.Params p = new DcpAllToAll.Params();
        check(p.headDim == 128 && p.dtype == DType.BF16 && p.statsLanes == 2
              && p.lseBase == DcpAllToAll.LseBase.E, "defaults");
        p.cpSize = 4;
        p.maxEntries = 64;
        long small = DcpAllToAll.workspaceSize(p);
        p.maxEntries = 128;
        long grown = DcpAllToAll.workspaceSize(p) - small;
        long row = 128 * 2 + 2 * 4; // 64 more rows from each of 4 sources, two buffers
        check(2 * 4 * 64 * row <= grown && grown < 2 * 4 * 64 * (row + 16), "grew " + grown);
        p.headDim = 100;
        try {
            DcpAllToAll.workspaceSize(p);
            throw new AssertionError("head_dim 100 was planned");
        } catch (MnnvlException.InvalidArgument e) {
            check(e.getMessage().contains("head_dim 100"), e.getMessage());
        }
        p.headDim = 512;
        p.statsLanes = DcpAllToAll.MAX_STATS_LANES + 1;
        try {
            DcpAllToAll.workspaceSize(p);
            throw new AssertionError("stats_lanes 9 was planned");
        } catch (MnnvlException.InvalidArgument e) {
            check(e.getMessage().contains("stats_lanes 9"), e.getMessage());
        }
    }

    static void dcpOnCpuOnlyComm() throws Exception {
        String root = "127.0.0.1:" + freePort();
        try (Config cfg = new Config().set("root", root).set("timeout_ms", "10000");
             Comm comm = new Comm(cfg, 0, 1, -1)) {
            DcpAllToAll.Params p = new DcpAllToAll.Params();
            p.cpSize = 1;
            p.maxEntries = 16;
            try (DcpAllToAll d = new DcpAllToAll(comm, p)) {
                throw new AssertionError("a DCP all-to-all was made on a CPU-only communicator");
            } catch (MnnvlException.InvalidUsage e) {
                check(e.getMessage().contains("CPU-only (device -1)"), e.getMessage());
            } catch (MnnvlException.Unsupported e) {
                check(e.getMessage().contains("built without CUDA"), e.getMessage());
            }
        }
    }

    /** Runs fn on size threads; rethrows the first failure. */
    static <T> List<T> onRanks(int size, IntFunction<Callable<T>> fn) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(size);
        try {
            List<Future<T>> futures = new ArrayList<>();
            for (int r = 0; r < size; r++) {
                futures.add(pool.submit(fn.apply(r)));
            }
            List<T> results = new ArrayList<>();
            for (Future<T> f : futures) {
                results.add(f.get(60, TimeUnit.SECONDS));
            }
            return results;
        } finally {
            pool.shutdownNow();
        }
    }

    static void fourCpuRanksOverTcp() throws Exception {
        try (Config rootConfig = new Config().set("job_key", "java-test-key-0123456789abcdef0123456789");
             Root root = new Root(rootConfig, "127.0.0.1:0")) {
            List<Integer> ranks = onRanks(4, rank -> () -> {
                try (Config cfg = new Config().set("root", root.address())
                                              .set("root_mode", "external")
                                              .set("job_key", "java-test-key-0123456789abcdef0123456789")
                                              .set("timeout_ms", "30000");
                     Comm comm = new Comm(cfg, rank, 4, -1)) {
                    check(comm.rank() == rank && comm.size() == 4, "rank and size");
                    check(comm.device() == -1, "device " + comm.device());
                    check(comm.handleType().equals("none"), comm.handleType());
                    byte[] mine = new byte[16];
                    Arrays.fill(mine, (byte) rank);
                    byte[][] blocks = comm.allgather(mine);
                    for (int r = 0; r < 4; r++) {
                        byte[] want = new byte[16];
                        Arrays.fill(want, (byte) r);
                        check(Arrays.equals(blocks[r], want), "allgather block " + r);
                    }
                    comm.barrier();
                    byte[] buf = rank == 2 ? "from rank 2".getBytes() : new byte[11];
                    check(new String(comm.broadcast(buf, 2)).equals("from rank 2"), "broadcast");
                    Mapping mapping = new Mapping(4, rank, 4, 2, 2, 1, 2, 1);
                    try (Comm tp = comm.split(mapping, Group.TP)) {
                        byte[][] peers = tp.allgather(new byte[] {(byte) rank});
                        int first = rank / 2 * 2;
                        check(tp.size() == 2, "TP size " + tp.size());
                        check(peers[0][0] == first && peers[1][0] == first + 1, "TP ranks");
                    }
                    check(comm.asyncError() == null, "async error");
                    comm.finalizeCollective();
                    return rank;
                }
            });
            check(ranks.equals(Arrays.asList(0, 1, 2, 3)), ranks.toString());
        }
    }

    static int freePort() throws Exception {
        try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getByName("127.0.0.1"))) {
            return s.getLocalPort();
        }
    }

    static void rank0RootMode() throws Exception {
        String root = "127.0.0.1:" + freePort();
        List<String> got = onRanks(2, rank -> () -> {
            try (Config cfg = new Config().set("root", root).set("timeout_ms", "30000");
                 Comm comm = new Comm(cfg, rank, 2, -1)) {
                byte[][] blocks = comm.allgather(("r" + rank).getBytes());
                return new String(blocks[0]) + new String(blocks[1]);
            }
        });
        check(got.equals(Arrays.asList("r0r1", "r0r1")), got.toString());
    }

    static void wrongJobKeyRefused() {
        try (Config rootConfig = new Config().set("job_key", "the right key of the test 0123456789abcdef");
             Root root = new Root(rootConfig, "127.0.0.1:0");
             Config cfg = new Config().set("root", root.address()).set("root_mode", "external")
                                      .set("job_key", "a wrong key of the test 0123456789abcdef").set("timeout_ms", "10000")) {
            try (Comm comm = new Comm(cfg, 0, 1, -1)) {
                throw new AssertionError("a wrong job key was accepted");
            } catch (MnnvlException.Auth e) {
                check(e.status() == Status.AUTH, "status " + e.status());
                check(e.getMessage().contains("job key"), e.getMessage());
            }
        }
    }

    static void configKeys() {
        try (Config cfg = new Config().set("timeout_ms", "1500")) {
            check(cfg.get("timeout_ms").equals("1500"), cfg.get("timeout_ms"));
            check(cfg.get("root").equals(""), "root " + cfg.get("root"));
            try {
                cfg.get("no_such_key");
                throw new AssertionError("an unknown key was read");
            } catch (MnnvlException.InvalidArgument e) {
                check(!e.getMessage().isEmpty(), "no sentence");
            }
            try {
                cfg.set("timeout_ms", "soon");
                throw new AssertionError("a bad value was accepted");
            } catch (MnnvlException.InvalidArgument e) {
                check(!e.getMessage().isEmpty(), "no sentence");
            }
        }
        check(Mnnvl.bootstrapAvailable("tcp"), "tcp");
        try {
            Mnnvl.requireBootstrap("carrier-pigeon");
            throw new AssertionError("an unknown backend is available");
        } catch (MnnvlException.Unsupported e) {
            check(!e.getMessage().isEmpty(), "no reason");
        }
    }

    static void logHandler() throws Exception {
        List<String> lines = new CopyOnWriteArrayList<>();
        Mnnvl.setLogHandler((level, message) -> lines.add(level + " " + message));
        LogLevel old = Mnnvl.logLevel();
        Mnnvl.setLogLevel(LogLevel.INFO);
        String root = "127.0.0.1:" + freePort();
        try (Config cfg = new Config().set("root", root).set("timeout_ms", "10000");
             Comm comm = new Comm(cfg, 0, 1, -1)) {
            check(comm.size() == 1, "size");
        } finally {
            Mnnvl.setLogLevel(old);
            Mnnvl.setLogHandler(null);
        }
        boolean logged = lines.stream()
                              .anyMatch(l -> l.startsWith("INFO ") && l.contains("communicator"));
        check(logged, lines.toString());
    }

    static void closedHandles() {
        Config cfg = new Config();
        cfg.close();
        cfg.close();
        try {
            cfg.get("root");
            throw new AssertionError("a closed config was used");
        } catch (IllegalStateException expected) {
            // what a closed handle does
        }
    }
}
