package org.libmnnvl;

/** The statuses of libmnnvl ({@code mnnvl_status_t}); failures arrive as {@link MnnvlException}. */
public enum Status {
    SUCCESS(NativeConstants.MNNVL_SUCCESS),
    INVALID_ARGUMENT(NativeConstants.MNNVL_ERR_INVALID_ARGUMENT),
    INVALID_USAGE(NativeConstants.MNNVL_ERR_INVALID_USAGE),
    NO_MEMORY(NativeConstants.MNNVL_ERR_NO_MEMORY),
    CUDA(NativeConstants.MNNVL_ERR_CUDA),
    NO_DEVICE(NativeConstants.MNNVL_ERR_NO_DEVICE),
    UNSUPPORTED(NativeConstants.MNNVL_ERR_UNSUPPORTED),
    BOOTSTRAP(NativeConstants.MNNVL_ERR_BOOTSTRAP),
    TIMEOUT(NativeConstants.MNNVL_ERR_TIMEOUT),
    PEER_LOST(NativeConstants.MNNVL_ERR_PEER_LOST),
    GRAPH_CAPTURE(NativeConstants.MNNVL_ERR_GRAPH_CAPTURE),
    ABORTED(NativeConstants.MNNVL_ERR_ABORTED),
    MISMATCH(NativeConstants.MNNVL_ERR_MISMATCH),
    AUTH(NativeConstants.MNNVL_ERR_AUTH),
    INTERNAL(NativeConstants.MNNVL_ERR_INTERNAL),
    /** A status this version of the binding does not know. */
    UNKNOWN(Integer.MIN_VALUE);

    private final int code;

    Status(int code) {
        this.code = code;
    }

    /** The C value. */
    public int code() {
        return code;
    }

    /** The C name, e.g. "MNNVL_ERR_AUTH". */
    public String cName() {
        return Native.mnnvl_status_string(code);
    }

    static Status of(int code) {
        for (Status s : values()) {
            if (s.code == code) {
                return s;
            }
        }
        return UNKNOWN;
    }
}
