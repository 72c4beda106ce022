// Package mnnvl is the Go binding of libmnnvl: cross-GPU workspaces, the bootstrap that
// builds them and the kernels that run on them.
//
// The CPU parts work on hosts without a GPU, which is what a scheduler needs: validating
// a parallel Mapping, planning workspace sizes (AllReduceWorkspaceSize,
// MoeA2AWorkspaceSize), running the TCP root of a job (StartRoot) and CPU-only
// communicators (device -1).
//
// Every call that can fail returns an error: a *Error with the Status and the sentence
// libmnnvl wrote (errors.Is(err, mnnvl.ErrAuth) works); nothing panics. Handles have
// Close, which is idempotent; a handle must not be used by two goroutines at once.
// Device pointers and CUDA streams are uintptr values (0 is the legacy default stream).
//
// The package links libmnnvl through pkg-config (mnnvl.pc).
package mnnvl

import "github.com/libmnnvl/libmnnvl/bindings/go/mnnvl/internal/raw"

// Version is the library's version code at run time: major*10000 + minor*100 + patch.
func Version() int { return int(raw.Mnnvl_version()) }

// VersionString is the library's version as "MAJOR.MINOR.PATCH".
func VersionString() string { return raw.Mnnvl_version_string() }

// HeaderVersion is the version code of the mnnvl.h this package was generated from.
const HeaderVersion = raw.MNNVL_VERSION_MAJOR*10000 + raw.MNNVL_VERSION_MINOR*100 +
	raw.MNNVL_VERSION_PATCH

// BootstrapAvailable says whether the bootstrap backend name (tcp, torch-store, mpi, ucx,
// ofi) can be used here: nil, or an ErrUnsupported error saying why not.
func BootstrapAvailable(name string) error {
	return softFailure(ErrUnsupported, func() bool { return raw.Mnnvl_bootstrap_available(name) != 0 })
}

// DType is an element type (mnnvl_dtype_t).
type DType int

// The element types.
const (
	FP32 DType = 0
	FP16 DType = 1
	BF16 DType = 2
)

// Size is the bytes per element; 0 for a value outside the enum.
func (d DType) Size() int { return int(raw.Mnnvl_dtype_size(raw.Enum_SS_mnnvl_dtype(d))) }

// LogLevel is a log level (mnnvl_log_level_t).
type LogLevel int

// The log levels; LogWarn is the default.
const (
	LogNone LogLevel = iota
	LogError
	LogWarn
	LogInfo
	LogDebug
	LogTrace
)

// SetLogLevel sets the process-wide log level.
func SetLogLevel(level LogLevel) { raw.Mnnvl_set_log_level(raw.Enum_SS_mnnvl_log_level(level)) }

// GetLogLevel is the process-wide log level.
func GetLogLevel() LogLevel { return LogLevel(raw.Mnnvl_get_log_level()) }

// SetLogHandler sends each log line to handler instead of stderr; nil restores stderr.
// The handler may run on any goroutine, including for lines from libmnnvl's own threads;
// a panic in it is recovered and dropped.
func SetLogHandler(handler func(level LogLevel, message string)) {
	if handler == nil {
		raw.SetLogHandler(nil)
		return
	}
	raw.SetLogHandler(func(level int, message string) { handler(LogLevel(level), message) })
}
