package org.libmnnvl;

/**
 * Settings that communicators and roots are created with ({@code mnnvl_config_t}). Starts
 * with every key's default, overridden by the MNNVL_&lt;KEY&gt; environment variables.
 */
public final class Config extends Handle {
    public Config() {
        super(Handle.create(Native::mnnvl_config_create));
    }

    /**
     * Sets one key (e.g. "root", "job_key", "timeout_ms"); returns this for chaining.
     * Throws {@link MnnvlException.InvalidArgument} for an unknown key or a bad value.
     */
    public Config set(String key, String value) {
        Native.mnnvl_config_set(live(), key, value);
        return this;
    }

    /** Reads one key ("" for keys without a value); unknown keys throw InvalidArgument. */
    public String get(String key) {
        return Native.mnnvl_config_get(live(), key);
    }

    long handle() {
        return live();
    }

    @Override
    void destroy(long handle) {
        Native.mnnvl_config_destroy(handle);
    }
}
