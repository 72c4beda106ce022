package mnnvl

import (
	"errors"
	"runtime"

	"github.com/libmnnvl/libmnnvl/bindings/go/mnnvl/internal/raw"
)

// Status is a libmnnvl status (mnnvl_status_t). A Status is itself an error, so that
// errors.Is(err, mnnvl.ErrTimeout) tells what failed.
type Status int

// The statuses of lib/mnnvl.h.
const (
	Success            Status = 0
	ErrInvalidArgument Status = -1  // a value passed in is out of range or inconsistent
	ErrInvalidUsage    Status = -2  // calls in the wrong order or on the wrong handle
	ErrNoMemory        Status = -3  // host or device allocation failed
	ErrCUDA            Status = -4  // a CUDA call failed; the message names it
	ErrNoDevice        Status = -5  // no usable GPU or driver
	ErrUnsupported     Status = -6  // not built in, or not possible on this system
	ErrBootstrap       Status = -7  // the bootstrap backend failed (network, protocol)
	ErrTimeout         Status = -8  // a wait exceeded timeout_ms
	ErrPeerLost        Status = -9  // another rank died or left
	ErrGraphCapture    Status = -10 // not allowed while a CUDA graph is being captured
	ErrAborted         Status = -11 // the communicator was aborted or saw an async error
	ErrMismatch        Status = -12 // ranks disagree on a value that must be equal
	ErrAuth            Status = -13 // a peer did not prove the job key
	ErrInternal        Status = -14 // a bug in libmnnvl; please report it
)

// String is the status's C name, e.g. "MNNVL_ERR_AUTH".
func (s Status) String() string { return raw.Mnnvl_status_string(int(s)) }

func (s Status) Error() string { return s.String() }

// Error is a failed libmnnvl call: its status and the sentence libmnnvl wrote about it,
// which names the values involved.
type Error struct {
	Status  Status
	Message string
}

func (e *Error) Error() string { return e.Status.String() + ": " + e.Message }

// Unwrap gives the Status, for errors.Is.
func (e *Error) Unwrap() error { return e.Status }

// check turns the generated layer's errors into *Error.
func check(err error) error {
	var failed *raw.StatusError
	if errors.As(err, &failed) {
		return &Error{Status: Status(failed.Code), Message: failed.Message}
	}
	return err
}

// onThread runs call on one locked OS thread. When call reports a failure through its
// result alone (a 0 or a NULL; it returns false then), onThread reads the sentence libmnnvl
// left in its thread-local last error on the thread that wrote it.
func onThread(call func() bool) (sentence string, ok bool) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if call() {
		return "", true
	}
	return raw.Mnnvl_last_error(), false
}

// softFailure is onThread's failure as an *Error with the given status.
func softFailure(status Status, call func() bool) error {
	if sentence, ok := onThread(call); !ok {
		return &Error{Status: status, Message: sentence}
	}
	return nil
}

// created is obj once the C call that filled its handle succeeded, else nil and the error.
func created[T any](obj *T, err error) (*T, error) {
	if err := check(err); err != nil {
		return nil, err
	}
	return obj, nil
}

// release zeroes *h and destroys the handle it held; a zero handle (closed, or never
// created) is left alone, which makes every Close idempotent.
func release(h *uintptr, destroy func(uintptr) error) error {
	held := *h
	if held == 0 {
		return nil
	}
	*h = 0
	return check(destroy(held))
}

// workspaceSize is the bytes a C workspace-size function gives, where 0 means parameters
// it refused (ErrInvalidArgument, with its sentence).
func workspaceSize(size func() int64) (int, error) {
	var bytes int64
	err := softFailure(ErrInvalidArgument, func() bool {
		bytes = size()
		return bytes != 0
	})
	return int(bytes), err
}
