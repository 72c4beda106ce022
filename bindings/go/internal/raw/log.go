package raw

import "C"

import "sync/atomic"

// logTarget holds the function that receives log lines (a logFunc, possibly nil).
var logTarget atomic.Value

type logFunc func(level int, message string)

//export mnnvlGoLog
func mnnvlGoLog(level C.int, message *C.char) {
	fn, _ := logTarget.Load().(logFunc)
	if fn == nil {
		return
	}
	// A panic must not unwind into libmnnvl's C frames (that would abort the process).
	defer func() { _ = recover() }()
	fn(int(level), C.GoString(message))
}

// SetLogHandler sends libmnnvl's log lines to fn (any goroutine, libmnnvl's own threads
// included); nil sends them to stderr again.
func SetLogHandler(fn func(level int, message string)) {
	logTarget.Store(logFunc(fn))
	Mnnvl_set_log_callback(fn != nil)
}
