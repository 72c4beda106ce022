package org.libmnnvl;

/**
 * libmnnvl for Java: the functions that belong to no handle. The handles are
 * {@link Config}, {@link Root}, {@link Comm}, {@link SymmetricMemory}, {@link AllReduce} and
 * {@link MoeAllToAll}; each is {@link AutoCloseable}. Failures throw {@link MnnvlException}.
 * Device pointers and CUDA streams are {@code long} addresses (0: the legacy default
 * stream).
 */
public final class Mnnvl {
    private Mnnvl() {
    }

    /** The library's version code at run time: major*10000 + minor*100 + patch. */
    public static int version() {
        return (int) Native.mnnvl_version();
    }

    /** The version code of the mnnvl.h this binding was generated from. */
    public static final int HEADER_VERSION = NativeConstants.MNNVL_VERSION_CODE;

    /** The library's version as "MAJOR.MINOR.PATCH". */
    public static String versionString() {
        return Native.mnnvl_version_string();
    }

    /**
     * Throws {@link MnnvlException.Unsupported}, saying why, unless the bootstrap backend
     * {@code name} (tcp, torch-store, mpi, ucx, ofi) can be used here.
     */
    public static void requireBootstrap(String name) {
        Native.mnnvl_bootstrap_available(name);
    }

    /** Whether the bootstrap backend {@code name} can be used here. */
    public static boolean bootstrapAvailable(String name) {
        try {
            requireBootstrap(name);
            return true;
        } catch (MnnvlException.Unsupported e) {
            return false;
        }
    }

    /** Sets the process-wide log level. */
    public static void setLogLevel(LogLevel level) {
        Native.mnnvl_set_log_level(level.ordinal());
    }

    /** The process-wide log level. */
    public static LogLevel logLevel() {
        return LogLevel.values()[Native.mnnvl_get_log_level()];
    }

    /**
     * Sends each log line to {@code handler} instead of stderr; null restores stderr. The
     * handler may run on any thread, libmnnvl's own included; what it throws is dropped.
     */
    public static void setLogHandler(LogHandler handler) {
        Native.mnnvl_set_log_callback(handler == null ? null : new LogBridge(handler));
    }

    /** What the JNI layer calls: the level as an int. */
    static final class LogBridge {
        private final LogHandler handler;

        LogBridge(LogHandler handler) {
            this.handler = handler;
        }

        void log(int level, String message) {
            handler.log(LogLevel.values()[level], message);
        }
    }
}
