package org.libmnnvl;

/**
 * A libmnnvl call failed. {@link #status()} says how; the message is the sentence libmnnvl
 * wrote about the failure, naming the values involved. Each status has its own subclass,
 * e.g. {@link Auth} or {@link Timeout}, so a handler can catch exactly the failures it
 * deals with.
 */
public class MnnvlException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final Status status;

    MnnvlException(Status status, String message) {
        super(message);
        this.status = status;
    }

    /** The status of the failed call. */
    public Status status() {
        return status;
    }

    @Override
    public String toString() {
        return status.cName() + ": " + getMessage();
    }

    /** The exception of a failed status: called by the JNI layer. */
    static MnnvlException of(int code, String message) {
        Status status = Status.of(code);
        switch (status) {
            case INVALID_ARGUMENT: return new InvalidArgument(message);
            case INVALID_USAGE: return new InvalidUsage(message);
            case NO_MEMORY: return new NoMemory(message);
            case CUDA: return new Cuda(message);
            case NO_DEVICE: return new NoDevice(message);
            case UNSUPPORTED: return new Unsupported(message);
            case BOOTSTRAP: return new Bootstrap(message);
            case TIMEOUT: return new Timeout(message);
            case PEER_LOST: return new PeerLost(message);
            case GRAPH_CAPTURE: return new GraphCapture(message);
            case ABORTED: return new Aborted(message);
            case MISMATCH: return new Mismatch(message);
            case AUTH: return new Auth(message);
            case INTERNAL: return new Internal(message);
            default: return new MnnvlException(status, message + " (status " + code + ")");
        }
    }

    /** A value passed in is out of range or inconsistent. */
    public static final class InvalidArgument extends MnnvlException {
        private static final long serialVersionUID = 1L;
        InvalidArgument(String message) { super(Status.INVALID_ARGUMENT, message); }
    }

    /** Calls in the wrong order or on the wrong handle. */
    public static final class InvalidUsage extends MnnvlException {
        private static final long serialVersionUID = 1L;
        InvalidUsage(String message) { super(Status.INVALID_USAGE, message); }
    }

    /** Host or device allocation failed. */
    public static final class NoMemory extends MnnvlException {
        private static final long serialVersionUID = 1L;
        NoMemory(String message) { super(Status.NO_MEMORY, message); }
    }

    /** A CUDA call failed; the message names it. */
    public static final class Cuda extends MnnvlException {
        private static final long serialVersionUID = 1L;
        Cuda(String message) { super(Status.CUDA, message); }
    }

    /** No usable GPU or driver. */
    public static final class NoDevice extends MnnvlException {
        private static final long serialVersionUID = 1L;
        NoDevice(String message) { super(Status.NO_DEVICE, message); }
    }

    /** Not built in, or not possible on this system. */
    public static final class Unsupported extends MnnvlException {
        private static final long serialVersionUID = 1L;
        Unsupported(String message) { super(Status.UNSUPPORTED, message); }
    }

    /** The bootstrap backend failed (network, protocol). */
    public static final class Bootstrap extends MnnvlException {
        private static final long serialVersionUID = 1L;
        Bootstrap(String message) { super(Status.BOOTSTRAP, message); }
    }

    /** A wait exceeded timeout_ms. */
    public static final class Timeout extends MnnvlException {
        private static final long serialVersionUID = 1L;
        Timeout(String message) { super(Status.TIMEOUT, message); }
    }

    /** Another rank died or left. */
    public static final class PeerLost extends MnnvlException {
        private static final long serialVersionUID = 1L;
        PeerLost(String message) { super(Status.PEER_LOST, message); }
    }

    /** Not allowed while a CUDA graph is being captured. */
    public static final class GraphCapture extends MnnvlException {
        private static final long serialVersionUID = 1L;
        GraphCapture(String message) { super(Status.GRAPH_CAPTURE, message); }
    }

    /** The communicator was aborted or a kernel recorded an error. */
    public static final class Aborted extends MnnvlException {
        private static final long serialVersionUID = 1L;
        Aborted(String message) { super(Status.ABORTED, message); }
    }

    /** Ranks disagree on a value that must be equal. */
    public static final class Mismatch extends MnnvlException {
        private static final long serialVersionUID = 1L;
        Mismatch(String message) { super(Status.MISMATCH, message); }
    }

    /** A peer did not prove the job key. */
    public static final class Auth extends MnnvlException {
        private static final long serialVersionUID = 1L;
        Auth(String message) { super(Status.AUTH, message); }
    }

    /** A bug in libmnnvl; please report it. */
    public static final class Internal extends MnnvlException {
        private static final long serialVersionUID = 1L;
        Internal(String message) { super(Status.INTERNAL, message); }
    }
}
