package org.libmnnvl;

/**
 * A TCP root, the rendezvous server of the tcp bootstrap, on a background thread of this
 * process ({@code mnnvl_root_t}). Ranks join it with root=&lt;address&gt; and
 * root_mode=external; it serves any number of jobs until closed.
 */
public final class Root extends Handle {
    /**
     * Starts a root listening on {@code listen} ("host:port", port 0 for a free one; null for
     * this host's name and a free port). Every connection must prove {@code config}'s
     * job_key.
     */
    public Root(Config config, String listen) {
        super(Handle.create(out -> Native.mnnvl_root_start(config.handle(), listen, out)));
    }

    /** The "host:port" the root listens on: the job's unique id. */
    public String address() {
        return Native.mnnvl_root_address(live());
    }

    /** Stops the root: ranks still connected to it fail with PeerLost. */
    @Override
    void destroy(long handle) {
        Native.mnnvl_root_stop(handle);
    }
}
