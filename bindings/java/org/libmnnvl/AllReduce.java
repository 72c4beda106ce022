package org.libmnnvl;

/**
 * Sums buffers across the ranks of a communicator ({@code mnnvl_allreduce_t}). Creating it
 * is collective and cached per communicator; create before a CUDA graph capture, run inside
 * it.
 */
public final class AllReduce extends Handle {
    /** All-reduce algorithms ({@code mnnvl_allreduce_strategy_t}). */
    public enum Strategy {
        AUTO, ONESHOT, TWOSHOT
    }

    /** Parameters; the defaults are those of {@code mnnvl_allreduce_params_init}. */
    public static final class Params {
        public DType dtype;
        /** The largest message (elements) planned; larger ones go in chunks. */
        public long maxCount;
        public Strategy strategy;
        /** norm_out = y*rsqrt(...)*(1+gamma) */
        public boolean rmsnormWeightBias;
        /** Workspaces allocated elsewhere (one device address per rank), or null. */
        public long[] externalBuffers;
        public long externalBufferBytes;

        public Params() {
            AllReduceParams p = new AllReduceParams();
            try {
                dtype = DType.of(p.getDtype());
                maxCount = p.getMax_count();
                strategy = Strategy.values()[p.getStrategy()];
                rmsnormWeightBias = p.getRmsnorm_weight_bias() != 0;
            } finally {
                p.delete();
            }
        }

        public Params dtype(DType value) { dtype = value; return this; }
        public Params maxCount(long value) { maxCount = value; return this; }
        public Params strategy(Strategy value) { strategy = value; return this; }

        AllReduceParams toNative() {
            AllReduceParams p = new AllReduceParams();
            p.setDtype(dtype.code);
            p.setMax_count(maxCount);
            p.setStrategy(strategy.ordinal());
            p.setRmsnorm_weight_bias(rmsnormWeightBias ? 1 : 0);
            if (externalBuffers != null) {
                p.set_external_buffers(externalBuffers, externalBufferBytes);
            }
            return p;
        }
    }

    /** Bytes of workspace each of {@code worldSize} ranks needs (pure CPU, for planning). */
    public static long workspaceSize(Params params, int worldSize) {
        return withNative(params.toNative(), AllReduceParams::delete,
                          p -> Native.mnnvl_allreduce_workspace_size(p, worldSize));
    }

    public AllReduce(Comm comm, Params params) {
        super(withNative(params.toNative(), AllReduceParams::delete, p -> Handle.create(
            out -> Native.mnnvl_allreduce_create(comm.live(), p, out))));
    }

    /** Enqueues out = sum over ranks of in ({@code count} elements; in == out allowed). */
    public void run(long in, long out, long count, long stream) {
        Native.mnnvl_allreduce(live(), in, out, count, stream);
    }

    /**
     * Enqueues y = allreduce(in) + residualIn; residualOut = y;
     * normOut = y * rsqrt(mean(y^2) + eps) * gamma over [tokens, hidden] rows.
     */
    public void residualRmsNorm(long in, long residualIn, long gamma, float eps, long tokens,
                                long hidden, long residualOut, long normOut, long stream) {
        Native.mnnvl_allreduce_residual_rmsnorm(live(), in, residualIn, gamma, eps, tokens, hidden,
                                                residualOut, normOut, stream);
    }

    @Override
    void destroy(long handle) {
        Native.mnnvl_allreduce_destroy(handle);
    }
}
