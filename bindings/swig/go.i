/* The Go part of the SWIG interface: the status as an error value (*StatusError, nil on
 * success; never a panic), handles and device pointers as uintptr, buffers as []byte.
 *
 * Included by bindings/mnnvl.i (the entry file, which says how each C shape looks in each
 * language) only when SWIG generates Go. */
%insert(cgo_comment_typedefs) %{
#cgo pkg-config: mnnvl
%}

%{
#include <stdbool.h>

/* The Go side of the log callback (bindings/go/internal/raw/log.go). */
extern void mnnvlGoLog(int level, char *message);

static void mnnvl_go_log(mnnvl_log_level_t level, const char *message, void *user_data)
{
    (void)user_data;
    mnnvlGoLog((int)level, (char *)message);
}

/* A failure as one string: the byte -status, then the sentence. */
static _gostring_ mnnvl_go_failure(mnnvl_status_t status)
{
    const char *sentence = mnnvl_last_error();
    size_t n = strlen(sentence);
    _gostring_ s;
    s.p = malloc(n + 1);
    s.n = s.p ? (intgo)(n + 1) : 0;
    if (s.p) {
        s.p[0] = (char)(unsigned char)(-(int)status);
        memcpy(s.p + 1, sentence, n);
    }
    return s;
}
%}

%insert(go_wrapper) %{
// StatusError is a failed status and the sentence of mnnvl_last_error() taken right after
// the call on its thread.
type StatusError struct {
	Code    int
	Message string
}

func (e *StatusError) Error() string { return e.Message }

func swigMnnvlError(s string) error {
	if len(s) == 0 {
		return nil
	}
	t := swigCopyString(s)
	return &StatusError{Code: -int(t[0]), Message: t[1:]}
}
%}

/* Statuses: error (nil on success). */
%typemap(gotype) mnnvl_status_t "error"
%typemap(imtype) mnnvl_status_t "string"
%typemap(out, fragment="AllocateString") mnnvl_status_t {
    if ($1 != MNNVL_SUCCESS) {
        $result = mnnvl_go_failure($1);
    } else {
        $result.p = NULL;
        $result.n = 0;
    }
}
%typemap(goout, fragment="CopyString") mnnvl_status_t %{ $result = swigMnnvlError($1) %}
%typemap(gotype) mnnvl_status_t status "int"
%typemap(imtype) mnnvl_status_t status "int"
%typemap(in) mnnvl_status_t status %{ $1 = ($1_ltype)$input; %}
%typemap(gotype) mnnvl_status_t *async_error "*int32"
%typemap(in) mnnvl_status_t *async_error %{ $1 = ($1_ltype)$input; %}

%define MNNVL_HANDLE(TYPE)
%typemap(gotype) TYPE, const TYPE "uintptr"
%typemap(in) TYPE, const TYPE %{ $1 = ($1_ltype)$input; %}
%typemap(out) TYPE %{ $result = $1; %}
%typemap(goout) TYPE ""
%typemap(gotype) TYPE * "*uintptr"
%typemap(in) TYPE * %{ $1 = ($1_ltype)$input; %}
%typemap(argout) TYPE * ""
%enddef

/* Device pointers and streams: uintptr. */
%typemap(gotype) void *, const void *, const int32_t *, const uint8_t * "uintptr"
%typemap(in) void *, const void *, const int32_t * %{ $1 = ($1_ltype)$input; %}
%typemap(out) void *, const int32_t * %{ $result = ($1_ltype)$1; %}
%typemap(out) const uint8_t * %{ $result = (void *)$1; %}
%typemap(goout) void *, const int32_t *, const uint8_t * ""
/* mnnvl_comm_failed_ranks: Go asks for the count only (Comm.FailedRankCount). */
%typemap(in, numinputs=0) (mnnvl_rank_failure_t *failures, int capacity) %{ $1 = NULL; $2 = 0; %}

/* The payloads of a dispatch: []uintptr of device addresses (at most
 * MNNVL_MOE_MAX_PAYLOADS; package mnnvl checks). */
%typemap(gotype) const void *const *payloads "[]uintptr"
%typemap(in) const void *const *payloads (mnnvl_swig_payloads_t temp) {
    memset(&temp, 0, sizeof(temp));
    for (intgo i = 0; i < $input.len && i < MNNVL_MOE_MAX_PAYLOADS; i++)
        temp.address[i] = ((void **)$input.array)[i];
    $1 = ($1_ltype)temp.address;
}

/* mnnvl_config_get: *string, nil for NULL (an unknown key), so that it differs from "". */
%typemap(gotype) const char *mnnvl_config_get "*string"
%typemap(imtype) const char *mnnvl_config_get "string"
%typemap(out, fragment="AllocateString") const char *mnnvl_config_get {
    if ($1) {
        $result = Swig_AllocateString($1, strlen($1) + 1); /* with its NUL: never empty */
    } else {
        $result.p = NULL;
        $result.n = 0;
    }
}
%typemap(goout, fragment="CopyString") const char *mnnvl_config_get %{
	if len($1) > 0 {
		value := swigCopyString($1)
		value = value[:len(value)-1]
		$result = &value
	}
%}

/* NULL listens on this host's name: the empty string. */
%typemap(in) const char *listen_address %{
    $1 = NULL;
    if ($input.n > 0 && ($1 = malloc((size_t)$input.n + 1)) != NULL) {
        memcpy($1, $input.p, (size_t)$input.n);
        $1[$input.n] = '\0';
    }
%}

/* Host buffers: []byte (the wrapper trusts the lengths; package mnnvl checks them). */
%typemap(gotype) const void *send, void *recv, void *buffer "[]byte"
%typemap(in) const void *send, void *recv, void *buffer %{ $1 = ($1_ltype)$input.array; %}

/* The mapping: []int32 of its fields; mnnvl_mapping_init fills the slice. */
%typemap(gotype) mnnvl_mapping_t *, const mnnvl_mapping_t * "[]int32"
%typemap(in) mnnvl_mapping_t * (mnnvl_mapping_t temp),
             const mnnvl_mapping_t * (mnnvl_mapping_t temp) {
    mnnvl_mapping_init(&temp, 0, 0); /* a wrong length stays invalid: world_size 0 */
    if ($input.len == MNNVL_SWIG_MAPPING_INTS)
        mnnvl_swig_mapping_set(&temp, (const int *)$input.array);
    $1 = &temp;
}
%typemap(argout) mnnvl_mapping_t * {
    if ($input.len == MNNVL_SWIG_MAPPING_INTS)
        mnnvl_swig_mapping_get($1, (int *)$input.array);
}
%typemap(argout) const mnnvl_mapping_t * ""

%typemap(gotype) (int *ranks, int capacity) "[]int32"
%typemap(in) (int *ranks, int capacity) %{
    $1 = (int *)$input.array;
    $2 = (int)$input.len;
%}
%typemap(gotype) int *count, int *index "*int32"
%typemap(in) int *count, int *index %{ $1 = ($1_ltype)$input; %}

%typemap(gotype) (const unsigned long long *addresses, int count) "[]uintptr"
%typemap(in) (const unsigned long long *addresses, int count) %{
    $1 = (unsigned long long *)$input.array;
    $2 = (int)$input.len;
%}
%typemap(gotype) (const int *exclude_ranks, int n_exclude) "[]int32"
%typemap(in) (const int *exclude_ranks, int n_exclude) %{
    $1 = (int *)$input.array;
    $2 = (int)$input.len;
%}

/* mnnvl_set_log_callback(on bool): on sends the lines to the function SetLogHandler set. */
%typemap(gotype) (mnnvl_log_fn fn, void *user_data) "bool"
%typemap(in) (mnnvl_log_fn fn, void *user_data) %{
    $1 = $input ? mnnvl_go_log : NULL;
    $2 = NULL;
%}
