package org.libmnnvl;

/**
 * The decode-context-parallel (Helix) all-to-all of a CP group ({@code mnnvl_dcp_a2a_t}).
 * Layouts, row-major: partial_o [entries, cpSize, headDim] of the dtype, stats [entries,
 * cpSize, statsLanes] float32. The calls take device addresses and a cudaStream_t; they
 * are collective in stream order and may be captured in a CUDA graph.
 */
public final class DcpAllToAll extends Handle {
    /** The largest cpSize. */
    public static final int MAX_RANKS = NativeConstants.MNNVL_DCP_MAX_RANKS;
    /** statsLanes is 1 .. this. */
    public static final int MAX_STATS_LANES = NativeConstants.MNNVL_DCP_MAX_STATS_LANES;
    /** The largest maxEntries. */
    public static final int MAX_ENTRIES = NativeConstants.MNNVL_DCP_MAX_ENTRIES;

    /** The base of the log-sum-exp values in the stats ({@code mnnvl_lse_base_t}). */
    public enum LseBase {
        /** LSE = ln(sum exp(s)). */
        E(NativeConstants.MNNVL_LSE_BASE_E),
        /** LSE = log2(sum 2^s). */
        TWO(NativeConstants.MNNVL_LSE_BASE_2);

        final int code;

        LseBase(int code) {
            this.code = code;
        }

        static LseBase of(int code) {
            for (LseBase b : values()) {
                if (b.code == code) {
                    return b;
                }
            }
            throw new IllegalArgumentException("no LSE base " + code);
        }
    }

    /** Parameters; the defaults are those of {@code mnnvl_dcp_a2a_params_init}. */
    public static final class Params {
        /** Ranks of the CP group: the communicator's size (0 by default: set it). */
        public int cpSize;
        /** Capacity: the largest entry count any call passes (0 by default: set it). */
        public int maxEntries;
        /** D: a multiple of 8 up to 1024. */
        public int headDim;
        public DType dtype;
        /** fp32 values per (entry, rank). */
        public int statsLanes;
        public LseBase lseBase;

        public Params() {
            DcpA2AParams p = new DcpA2AParams();
            try {
                cpSize = p.getCp_size();
                maxEntries = p.getMax_entries();
                headDim = p.getHead_dim();
                dtype = DType.of(p.getDtype());
                statsLanes = p.getStats_lanes();
                lseBase = LseBase.of(p.getLse_base());
            } finally {
                p.delete();
            }
        }

        DcpA2AParams toNative() {
            DcpA2AParams p = new DcpA2AParams();
            p.setCp_size(cpSize);
            p.setMax_entries(maxEntries);
            p.setHead_dim(headDim);
            p.setDtype(dtype.code);
            p.setStats_lanes(statsLanes);
            p.setLse_base(lseBase.code);
            return p;
        }
    }

    /**
     * Bytes of symmetric workspace each rank needs (pure CPU, for planning); invalid
     * parameters throw {@link MnnvlException.InvalidArgument} naming them.
     */
    public static long workspaceSize(Params params) {
        return withNative(params.toNative(), DcpA2AParams::delete,
                          Native::mnnvl_dcp_a2a_workspace_size);
    }

    /**
     * Creates the all-to-all of {@code comm}, which must be the CP group
     * ({@code parent.split(mapping, Group.CP)}), or takes the cached one. Collective; not
     * during a graph capture. A CPU-only communicator throws
     * {@link MnnvlException.InvalidUsage}.
     */
    public DcpAllToAll(Comm comm, Params params) {
        super(withNative(params.toNative(), DcpA2AParams::delete, p -> Handle.create(
            out -> Native.mnnvl_dcp_a2a_create(comm.live(), p, out))));
    }

    /**
     * The transpose of the cp axis: rank r's outO[e, p, :] is partialO[e, r, :] of rank p,
     * and the same for the stats. {@code entries} is at most maxEntries, equal on every rank.
     */
    public void transpose(long partialO, long stats, int entries, long outO, long outStats,
                          long stream) {
        Native.mnnvl_dcp_a2a(live(), partialO, stats, entries, outO, outStats, stream);
    }

    /**
     * The exchange fused with the merge by LSE (stats lane 0): out [entries, headDim] is
     * this rank's final attention output, outLse [entries] float32 the merged LSE (0: not
     * wanted).
     */
    public void lseReduce(long partialO, long stats, int entries, long out, long outLse,
                          long stream) {
        Native.mnnvl_dcp_a2a_lse_reduce(live(), partialO, stats, entries, out, outLse, stream);
    }

    @Override
    void destroy(long handle) {
        Native.mnnvl_dcp_a2a_destroy(handle);
    }
}
