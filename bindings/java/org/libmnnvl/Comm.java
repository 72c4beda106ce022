package org.libmnnvl;

/**
 * A communicator ({@code mnnvl_comm_t}): this process's (or thread's) rank among the ranks
 * that run collectives together.
 */
public final class Comm extends Handle {
    /**
     * Creates the communicator of {@code size} ranks; this is {@code rank}. Collective.
     * {@code device} is this rank's CUDA device, or -1 for a CPU-only communicator
     * (bootstrap collectives only, no GPU needed). {@code config} says how ranks meet,
     * e.g. root=host:port for the tcp bootstrap.
     */
    public Comm(Config config, int rank, int size, int device) {
        super(Handle.create(out -> Native.mnnvl_comm_create(config.handle(), rank, size, device,
                                                            out)));
    }

    private Comm(long handle) {
        super(handle);
    }

    /**
     * The communicator of the group {@code g} of {@code mapping} that contains this rank.
     * Collective over this communicator; mapping.rank must be this rank.
     */
    public Comm split(Mapping mapping, Group g) {
        long parent = live();
        return new Comm(Handle.create(out -> Native.mnnvl_comm_split(parent, mapping.fields(), g.code,
                                                                     out)));
    }

    /**
     * The communicator of the ranks not in {@code excludeRanks} (e.g. after one died), in this
     * communicator's order. Collective over the survivors only: the excluded are not waited
     * for, so it works after PEER_LOST or abort(). Different lists give MISMATCH.
     */
    public Comm shrink(int... excludeRanks) {
        long parent = live();
        return new Comm(Handle.create(out -> Native.mnnvl_comm_shrink(parent, excludeRanks, out)));
    }

    public int rank() {
        return Native.mnnvl_comm_rank(live());
    }

    public int size() {
        return Native.mnnvl_comm_size(live());
    }

    /** The CUDA device, -1 for a CPU-only communicator. */
    public int device() {
        return Native.mnnvl_comm_device(live());
    }

    /** "fabric", "posix-fd", or "none" for a CPU-only communicator. */
    public String handleType() {
        return Native.mnnvl_comm_handle_type(live());
    }

    /** Every rank's {@code send} (equal lengths on every rank), indexed by rank. Collective. */
    public byte[][] allgather(byte[] send) {
        int n = send.length;
        int size = size();
        byte[] recv = new byte[n * size];
        Native.mnnvl_comm_allgather(live(), send, recv, n);
        byte[][] blocks = new byte[size][];
        for (int r = 0; r < size; r++) {
            blocks[r] = java.util.Arrays.copyOfRange(recv, r * n, (r + 1) * n);
        }
        return blocks;
    }

    /** Overwrites {@code buffer} with root's (equal lengths on every rank); returns it. */
    public byte[] broadcast(byte[] buffer, int root) {
        Native.mnnvl_comm_broadcast(live(), buffer, buffer.length, root);
        return buffer;
    }

    /** Returns once every rank called it. Collective. */
    public void barrier() {
        Native.mnnvl_comm_barrier(live());
    }

    /** Enqueues a barrier across the GPUs on {@code stream}. Collective, capture-safe. */
    public void deviceBarrier(long stream) {
        Native.mnnvl_comm_device_barrier(live(), stream);
    }

    /**
     * Null, or the failure a kernel of this communicator recorded (returned, not thrown).
     * After one, every call on the communicator throws {@link MnnvlException.Aborted}.
     */
    public MnnvlException asyncError() {
        int[] status = new int[1];
        Native.mnnvl_comm_get_async_error(live(), status);
        return status[0] == 0 ? null : MnnvlException.of(status[0], Native.mnnvl_last_error());
    }

    /** How many ranks this rank knows to be dead (mnnvl_comm_failed_ranks); local. */
    public int failedRankCount() {
        int[] count = new int[1];
        Native.mnnvl_comm_failed_ranks(live(), count);
        return count[0];
    }

    /** Makes running and future work fail and tells the peers; still close it afterwards. */
    public void abort() {
        Native.mnnvl_comm_abort(live());
    }

    /** Waits until every rank got here, so that closing cannot fail a peer. Collective. */
    public void finalizeCollective() {
        Native.mnnvl_comm_finalize(live());
    }

    @Override
    void destroy(long handle) {
        Native.mnnvl_comm_destroy(handle);
    }
}
