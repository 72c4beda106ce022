package org.libmnnvl;

/**
 * MoE dispatch and combine over an expert-parallel group ({@code mnnvl_moe_a2a_t}): tokens
 * go to the ranks owning their experts, the expert outputs come back summed.
 */
public final class MoeAllToAll extends Handle {
    /** The most payloads one dispatch moves. */
    public static final int MAX_PAYLOADS = NativeConstants.MNNVL_MOE_MAX_PAYLOADS;

    /** Parameters; the defaults are those of {@code mnnvl_moe_a2a_params_init}. */
    public static final class Params {
        /** Ranks of the EP group: the communicator's size. */
        public int epSize;
        public int numExperts;
        public int topK;
        public int maxTokensPerRank;
        /** Bytes of one token row of each payload (multiples of 4). */
        public long[] payloadBytes;
        /** Elements per combine row. */
        public int hidden;
        public DType combineDtype;

        public Params() {
            MoeA2AParams p = new MoeA2AParams();
            try {
                epSize = p.getEp_size();
                numExperts = p.getNum_experts();
                topK = p.getTop_k();
                maxTokensPerRank = p.getMax_tokens_per_rank();
                payloadBytes = new long[p.getNum_payloads()];
                for (int i = 0; i < payloadBytes.length; i++) {
                    payloadBytes[i] = p.get_payload_bytes(i);
                }
                hidden = p.getHidden();
                combineDtype = DType.of(p.getCombine_dtype());
            } finally {
                p.delete();
            }
        }

        MoeA2AParams toNative() {
            if (payloadBytes.length > MAX_PAYLOADS) {
                throw new IllegalArgumentException(payloadBytes.length + " payloads, at most "
                                                   + MAX_PAYLOADS);
            }
            MoeA2AParams p = new MoeA2AParams();
            p.setEp_size(epSize);
            p.setNum_experts(numExperts);
            p.setTop_k(topK);
            p.setMax_tokens_per_rank(maxTokensPerRank);
            p.setNum_payloads(payloadBytes.length);
            for (int i = 0; i < payloadBytes.length; i++) {
                p.set_payload_bytes(i, payloadBytes[i]);
            }
            p.setHidden(hidden);
            p.setCombine_dtype(combineDtype.code);
            return p;
        }
    }

    /** Bytes of symmetric workspace each rank needs (pure CPU, for planning). */
    public static long workspaceSize(Params params) {
        return withNative(params.toNative(), MoeA2AParams::delete,
                          Native::mnnvl_moe_a2a_workspace_size);
    }

    private MoeAllToAll(long handle) {
        super(handle);
    }

    /** Creates the all-to-all of {@code comm}, which must be the EP group. Collective. */
    public MoeAllToAll(Comm comm, Params params) {
        super(withNative(params.toNative(), MoeA2AParams::delete, p -> Handle.create(
            out -> Native.mnnvl_moe_a2a_create(comm.live(), p, out))));
    }

    /**
     * Sends each token's payload rows to the ranks owning its experts. tokenSelectedExperts:
     * device int32 [localNumTokens, topK]; payloads: one device address per payload.
     */
    public void dispatch(long tokenSelectedExperts, long[] payloads, int localNumTokens,
                         int runtimeMaxTokens, long stream) {
        Native.mnnvl_moe_a2a_dispatch(live(), tokenSelectedExperts, payloads, localNumTokens,
                                      runtimeMaxTokens, stream);
    }

    /** Device address of payload {@code index}'s receive region [epSize, R, row bytes]. */
    public long recvBuffer(int index) {
        return Native.mnnvl_moe_a2a_recv_buffer(live(), index);
    }

    /** Device address of uint8 [max tokens] of a fault-tolerant handle (0 otherwise): after
     * each combine, 1 for each token that missed a dead rank's part. */
    public long lostTokens() {
        return Native.mnnvl_moe_a2a_lost_tokens(live());
    }

    /** Device address of int32 [epSize]: the tokens each source sent. */
    public long recvCounts() {
        return Native.mnnvl_moe_a2a_recv_counts(live());
    }

    /** Marks invalid slots and foreign experts of received payload {@code index} as -1. */
    public void sanitize(int index, long stream) {
        Native.mnnvl_moe_a2a_sanitize(live(), index, stream);
    }

    /** Device address of this rank's combine region [epSize, R, hidden]. */
    public long combineBuffer() {
        return Native.mnnvl_moe_a2a_combine_buffer(live());
    }

    /** Sums each token's expert outputs back into out; expertOut 0: already in combineBuffer(). */
    public void combine(long expertOut, long out, long stream) {
        Native.mnnvl_moe_a2a_combine(live(), expertOut, out, stream);
    }

    /**
     * Another owner of the same all-to-all, closed on its own: the regions (recvBuffer,
     * recvCounts, combineBuffer) stay valid until every owner is closed.
     */
    public MoeAllToAll retain() {
        return new MoeAllToAll(retained(Native::mnnvl_moe_a2a_retain));
    }

    @Override
    void destroy(long handle) {
        Native.mnnvl_moe_a2a_destroy(handle);
    }
}
