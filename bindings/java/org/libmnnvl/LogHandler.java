package org.libmnnvl;

/** Receives libmnnvl's log lines (see {@link Mnnvl#setLogHandler}). */
@FunctionalInterface
public interface LogHandler {
    void log(LogLevel level, String message);
}
