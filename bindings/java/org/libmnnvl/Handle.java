package org.libmnnvl;

import java.util.function.Consumer;
import java.util.function.Function;
import java.util.function.LongConsumer;

/** One reference to a C handle, dropped by {@link #close()} (idempotent). */
abstract class Handle implements AutoCloseable {
    private long handle;

    Handle(long handle) {
        this.handle = handle;
    }

    /** Drops the reference the C handle holds. */
    abstract void destroy(long handle);

    /** The handle, or IllegalStateException once closed. */
    final long live() {
        if (handle == 0) {
            throw new IllegalStateException(getClass().getSimpleName() + " is closed");
        }
        return handle;
    }

    /** Drops this reference; closing again does nothing. */
    @Override
    public void close() {
        long h = handle;
        handle = 0;
        if (h != 0) {
            destroy(h);
        }
    }

    /** Creates a handle through a C function with an out-parameter. */
    interface Creator {
        void create(long[] out);
    }

    static long create(Creator creator) {
        long[] out = new long[1];
        creator.create(out);
        return out[0];
    }

    /**
     * {@code call} applied to {@code struct}, a generated parameter struct that is deleted
     * afterwards: it holds C memory that the garbage collector would free only eventually.
     */
    static <P, R> R withNative(P struct, Consumer<P> delete, Function<P, R> call) {
        try {
            return call.apply(struct);
        } finally {
            delete.accept(struct);
        }
    }

    /** This handle after {@code retain} gave it another reference, for a second owner. */
    final long retained(LongConsumer retain) {
        long h = live();
        retain.accept(h);
        return h;
    }
}
