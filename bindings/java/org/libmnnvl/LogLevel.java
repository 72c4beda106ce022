package org.libmnnvl;

/** Log levels ({@code mnnvl_log_level_t}), in C order; WARN is the default. */
public enum LogLevel {
    NONE, ERROR, WARN, INFO, DEBUG, TRACE
}
