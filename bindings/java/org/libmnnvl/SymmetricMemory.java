package org.libmnnvl;

/**
 * Device memory of the same size on every rank, every rank's piece mapped into one virtual
 * range at base() + rank*stride() on every GPU ({@code mnnvl_mem_t}).
 */
public final class SymmetricMemory extends Handle {
    /** Allocates {@code bytes} on every rank. Collective; every rank asks for the same size. */
    public SymmetricMemory(Comm comm, long bytes) {
        super(Handle.create(out -> Native.mnnvl_mem_alloc(comm.live(), bytes, out)));
    }

    private SymmetricMemory(long handle) {
        super(handle);
    }

    /** Device address of rank 0's piece. */
    public long base() {
        return Native.mnnvl_mem_base(live());
    }

    /** Bytes between consecutive ranks' pieces. */
    public long stride() {
        return Native.mnnvl_mem_stride(live());
    }

    /** Bytes of each rank's piece. */
    public long size() {
        return Native.mnnvl_mem_size(live());
    }

    /** Device address of {@code peer}'s piece; 0 for a peer out of range. */
    public long ptr(int peer) {
        return Native.mnnvl_mem_ptr(live(), peer);
    }

    /** Another owner of the same memory, closed on its own. */
    public SymmetricMemory retain() {
        return new SymmetricMemory(retained(Native::mnnvl_mem_retain));
    }

    @Override
    void destroy(long handle) {
        Native.mnnvl_mem_release(handle);
    }
}
