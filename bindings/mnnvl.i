/*
 * The one SWIG interface of libmnnvl: Python, Go and Java are generated from this file.
 *
 * SWIG wraps lib/mnnvl.h function by function and keeps the C names, so that
 * tests/bindings/check_api.sh can prove that every MNNVL_API function reaches every language.
 * The typemaps below give the C shapes a native form in each language:
 *
 *   C                              Python              Java                Go
 *   mnnvl_status_t returned        raises a subclass   throws (a subclass  error (*StatusError),
 *                                  of mnnvl.Error      of) MnnvlException  nil on success
 *   0 or NULL with a sentence      raises              throws              the value (package
 *   (workspace sizes, config_get)                                          mnnvl reads why)
 *   handle (mnnvl_comm_t, ...)     int                 long                uintptr
 *   handle out-parameter           returned            long[1]             *uintptr
 *   device pointer, CUDA stream    int                 long                uintptr
 *   host buffer (send/recv/buffer) bytes-like          byte[]              []byte
 *   mnnvl_mapping_t                8 ints, field order int[8]              []int32 (8)
 *                                  (from world_size on; struct_size is set in C)
 *   int/status out-parameter       returned            int[1]              *int32
 *   *_params_t                     AllReduceParams and MoeA2AParams, filled by *_params_init
 *   mnnvl_log_fn + user_data       a callable          an object with      bool (the function
 *                                                      log(int, String)    is set in Go)
 *
 * The failing status and the sentence of mnnvl_last_error() are read in the same C wrapper
 * right after the call, on the same thread, so neither Python threads nor goroutines moving
 * between threads can lose them. The layer generated here is private to each binding; the
 * classes users see (Config, Comm, SymmetricMemory, AllReduce, ... with close/Close) are
 * written in each language on top of it: bindings/python/mnnvl, bindings/go,
 * bindings/java/org/libmnnvl. (Classes generated from here could not give Go its
 * (value, error) results, nor Python its torch and DLPack handling, nor Java its javadoc.)
 *
 * The file is long (about 1000 lines) because it is the one interface of all three
 * languages; its sections (Python with the DLPack export, Java, Go, then what they share)
 * each read on their own.
 */
#if defined(SWIGJAVA)
%module Native /* package-private classes Native, NativeJNI, NativeConstants */
#else
%module mnnvl
#endif

%include "stdint.i"

%{
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mnnvl.h"

/* mnnvl_mapping_t crosses every binding as its int fields in declaration order, from
 * world_size on; struct_size is C's business: the wrappers fill it with mnnvl_mapping_init. */
#include <stddef.h>
#define MNNVL_SWIG_MAPPING_FIRST offsetof(mnnvl_mapping_t, world_size)
enum { MNNVL_SWIG_MAPPING_INTS = (sizeof(mnnvl_mapping_t) - MNNVL_SWIG_MAPPING_FIRST) / sizeof(int) };
_Static_assert(sizeof(mnnvl_mapping_t) ==
                   MNNVL_SWIG_MAPPING_FIRST + MNNVL_SWIG_MAPPING_INTS * sizeof(int),
               "mnnvl_mapping_t is struct_size followed by ints");
static void mnnvl_swig_mapping_set(mnnvl_mapping_t *m, const int *fields)
{
    mnnvl_mapping_init(m, 1, 0);
    memcpy(&m->world_size, fields, MNNVL_SWIG_MAPPING_INTS * sizeof(int));
}
static void mnnvl_swig_mapping_get(const mnnvl_mapping_t *m, int *fields)
{
    memcpy(fields, &m->world_size, MNNVL_SWIG_MAPPING_INTS * sizeof(int));
}

/* The device addresses of a dispatch's payloads, NULL past the ones given. */
typedef struct {
    void *address[MNNVL_MOE_MAX_PAYLOADS];
} mnnvl_swig_payloads_t;

/* Owned copies of the external buffer addresses of an AllReduceParams made here. */
static void mnnvl_swig_params_set_buffers(mnnvl_allreduce_params_t *p,
                                          const unsigned long long *addresses, int count,
                                          size_t bytes)
{
    void **copy = NULL;
    if (count > 0 && addresses) {
        copy = calloc((size_t)count, sizeof(void *));
        if (!copy)
            count = 0;
        for (int i = 0; copy && i < count; i++)
            copy[i] = (void *)(uintptr_t)addresses[i];
    } else {
        count = 0;
    }
    free((void *)p->external_buffers);
    p->external_buffers = (void *const *)copy;
    p->external_buffer_count = count;
    p->external_buffer_bytes = bytes;
}
%}

/* ---------------------------------------------------------------------------------------- */
/* Python                                                                                   */
/* ---------------------------------------------------------------------------------------- */
#if defined(SWIGPYTHON)
%{
/* Raises the mnnvl.errors class of `status` (mnnvl.errors.from_status builds it). */
static void mnnvl_py_raise(mnnvl_status_t status, const char *sentence)
{
    PyObject *errors = PyImport_ImportModule("mnnvl.errors");
    if (!errors)
        return;
    PyObject *text = PyUnicode_DecodeUTF8(sentence, (Py_ssize_t)strlen(sentence), "replace");
    PyObject *exc = text ? PyObject_CallMethod(errors, "from_status", "iO", (int)status, text)
                         : NULL;
    Py_XDECREF(text);
    Py_DECREF(errors);
    if (!exc)
        return;
    PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    Py_DECREF(exc);
}

/* A handle, device pointer or stream: an int (0 or None is NULL). */
static int mnnvl_py_address(PyObject *o, void **out)
{
    if (o == Py_None) {
        *out = NULL;
        return 0;
    }
    if (!PyLong_Check(o)) {
        PyErr_Format(PyExc_TypeError, "expected an int address or handle, got %s",
                     Py_TYPE(o)->tp_name);
        return -1;
    }
    *out = PyLong_AsVoidPtr(o);
    return PyErr_Occurred() ? -1 : 0;
}

/* The callable that receives log lines; changed only with the GIL held. */
static PyObject *mnnvl_py_log_target;

static int mnnvl_py_finalizing(void)
{
#if PY_VERSION_HEX >= 0x030D0000
    return Py_IsFinalizing();
#else
    return _Py_IsFinalizing();
#endif
}

static void mnnvl_py_log(mnnvl_log_level_t level, const char *message, void *user_data)
{
    (void)user_data;
    if (!Py_IsInitialized() || mnnvl_py_finalizing())
        return;
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *fn = mnnvl_py_log_target;
    if (fn) {
        Py_INCREF(fn);
        PyObject *r = PyObject_CallFunction(fn, "is", (int)level, message);
        if (r)
            Py_DECREF(r);
        else
            PyErr_WriteUnraisable(fn);
        Py_DECREF(fn);
    }
    PyGILState_Release(gil);
}

/* DLPack (https://dmlc.github.io/dlpack): the layout of its C structs, the legacy
 * DLManagedTensor and the versioned one (DLPack >= 1.0). */
typedef struct {
    int32_t device_type;
    int32_t device_id;
} mnnvl_dl_device_t;
typedef struct {
    uint8_t code;
    uint8_t bits;
    uint16_t lanes;
} mnnvl_dl_dtype_t;
typedef struct {
    void *data;
    mnnvl_dl_device_t device;
    int32_t ndim;
    mnnvl_dl_dtype_t dtype;
    int64_t *shape;
    int64_t *strides;
    uint64_t byte_offset;
} mnnvl_dl_tensor_t;
typedef struct mnnvl_dl_managed {
    mnnvl_dl_tensor_t dl_tensor;
    void *manager_ctx;
    void (*deleter)(struct mnnvl_dl_managed *self);
} mnnvl_dl_managed_t;
typedef struct mnnvl_dl_managed_versioned {
    uint32_t major, minor;
    void *manager_ctx;
    void (*deleter)(struct mnnvl_dl_managed_versioned *self);
    uint64_t flags;
    mnnvl_dl_tensor_t dl_tensor;
} mnnvl_dl_managed_versioned_t;
enum { MNNVL_DL_CUDA = 2, MNNVL_DL_MAX_DIMS = 8 };

/* The handles whose device regions Python exports, each kept alive by its own reference
 * count (a view of a new kind of handle adds a case here and in mnnvl_py_owner_hold). */
enum { MNNVL_PY_OWNER_MEM, MNNVL_PY_OWNER_MOE_A2A, MNNVL_PY_OWNER_KINDS };

/* Takes (`hold`) or drops a reference to `handle` of `kind`. */
static mnnvl_status_t mnnvl_py_owner_hold(int kind, void *handle, int hold)
{
    switch (kind) {
    case MNNVL_PY_OWNER_MEM:
        return hold ? mnnvl_mem_retain((mnnvl_mem_t)handle) : mnnvl_mem_release((mnnvl_mem_t)handle);
    case MNNVL_PY_OWNER_MOE_A2A:
        return hold ? mnnvl_moe_a2a_retain((mnnvl_moe_a2a_t)handle)
                    : mnnvl_moe_a2a_destroy((mnnvl_moe_a2a_t)handle);
    default:
        return MNNVL_ERR_INVALID_ARGUMENT;
    }
}

/* One export: the reference it holds and the shape it points to. */
typedef struct {
    int owner_kind;
    void *owner;
    int64_t shape[MNNVL_DL_MAX_DIMS];
    int64_t strides[MNNVL_DL_MAX_DIMS];
    union {
        mnnvl_dl_managed_t legacy;
        mnnvl_dl_managed_versioned_t versioned;
    } managed;
} mnnvl_dl_export_t;

/* The consumer (torch) calls the deleter when the last tensor using the region is gone:
 * only then does the export drop its reference to the handle that owns the region. */
static void mnnvl_dl_free(void *ctx)
{
    mnnvl_dl_export_t *e = ctx;
    if (e->owner)
        mnnvl_py_owner_hold(e->owner_kind, e->owner, 0);
    free(e);
}
static void mnnvl_dl_delete_legacy(mnnvl_dl_managed_t *m)
{
    mnnvl_dl_free(m->manager_ctx);
}
static void mnnvl_dl_delete_versioned(mnnvl_dl_managed_versioned_t *m)
{
    mnnvl_dl_free(m->manager_ctx);
}

/* A capsule nobody consumed still owns its export. */
static void mnnvl_dl_capsule_free(PyObject *capsule)
{
    if (PyCapsule_IsValid(capsule, "dltensor")) {
        mnnvl_dl_managed_t *m = PyCapsule_GetPointer(capsule, "dltensor");
        m->deleter(m);
    } else if (PyCapsule_IsValid(capsule, "dltensor_versioned")) {
        mnnvl_dl_managed_versioned_t *m = PyCapsule_GetPointer(capsule, "dltensor_versioned");
        m->deleter(m);
    }
    PyErr_Clear();
}
%}

/* Statuses raise; a successful call returns None or its outputs. */
%typemap(out) mnnvl_status_t {
    if ($1 != MNNVL_SUCCESS) {
        mnnvl_py_raise($1, mnnvl_last_error());
        SWIG_fail;
    }
    $result = SWIG_Py_Void();
}
/* The functions that fail by returning 0 or NULL with a sentence raise as well. */
%typemap(out) size_t mnnvl_allreduce_workspace_size, size_t mnnvl_moe_a2a_workspace_size {
    if ($1 == 0) {
        mnnvl_py_raise(MNNVL_ERR_INVALID_ARGUMENT, mnnvl_last_error());
        SWIG_fail;
    }
    $result = PyLong_FromSize_t($1);
}
%typemap(out) const char *mnnvl_config_get {
    if (!$1) {
        mnnvl_py_raise(MNNVL_ERR_INVALID_ARGUMENT, mnnvl_last_error());
        SWIG_fail;
    }
    $result = PyUnicode_FromString($1);
}
%typemap(in) mnnvl_status_t {
    $1 = ($1_ltype)PyLong_AsLong($input);
    if (PyErr_Occurred())
        SWIG_fail;
}
%typemap(in, numinputs=0) mnnvl_status_t *async_error (mnnvl_status_t temp = MNNVL_SUCCESS) {
    $1 = &temp;
}
%typemap(argout) mnnvl_status_t *async_error {
    $result = SWIG_Python_AppendOutput($result, PyLong_FromLong((long)*$1));
}

%define MNNVL_HANDLE(TYPE)
%typemap(in) TYPE, const TYPE {
    void *p;
    if (mnnvl_py_address($input, &p) < 0)
        SWIG_fail;
    $1 = ($1_ltype)p;
}
%typemap(out) TYPE %{ $result = PyLong_FromVoidPtr((void *)$1); %}
%typemap(in, numinputs=0) TYPE * (TYPE temp = NULL) %{ $1 = &temp; %}
%typemap(argout) TYPE * %{
    $result = SWIG_Python_AppendOutput($result, PyLong_FromVoidPtr((void *)*$1));
%}
%enddef

/* Device pointers and streams: ints. */
%typemap(in) void *, const void *, const int32_t * {
    void *p;
    if (mnnvl_py_address($input, &p) < 0)
        SWIG_fail;
    $1 = ($1_ltype)p;
}
%typemap(out) void *, const int32_t *, const uint8_t * %{ $result = PyLong_FromVoidPtr((void *)$1); %}

/* The payloads of a dispatch: a sequence of device addresses. */
%typemap(in) const void *const *payloads (mnnvl_swig_payloads_t temp) {
    memset(&temp, 0, sizeof(temp));
    PyObject *seq = PySequence_Fast($input, "payloads are a sequence of int device addresses");
    if (!seq)
        SWIG_fail;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    for (Py_ssize_t i = 0; i < n && i < MNNVL_MOE_MAX_PAYLOADS; i++)
        mnnvl_py_address(PySequence_Fast_GET_ITEM(seq, i), &temp.address[i]);
    Py_DECREF(seq);
    if (!PyErr_Occurred() && n > MNNVL_MOE_MAX_PAYLOADS)
        PyErr_Format(PyExc_ValueError, "at most %d payloads", MNNVL_MOE_MAX_PAYLOADS);
    if (PyErr_Occurred())
        SWIG_fail;
    $1 = ($1_ltype)temp.address;
}

/* Host buffers: any object with the buffer protocol; received data needs a writable one.
 * (`held`: a failure before the buffer was taken must not release it.) */
%typemap(in) const void *send (Py_buffer view, int held = 0) {
    if (PyObject_GetBuffer($input, &view, PyBUF_SIMPLE) < 0)
        SWIG_fail;
    held = 1;
    $1 = view.buf;
}
%typemap(in) void *recv (Py_buffer view, int held = 0),
             void *buffer (Py_buffer view, int held = 0) {
    if (PyObject_GetBuffer($input, &view, PyBUF_SIMPLE | PyBUF_WRITABLE) < 0)
        SWIG_fail;
    held = 1;
    $1 = view.buf;
}
%typemap(freearg) const void *send, void *recv, void *buffer %{
    if (held$argnum)
        PyBuffer_Release(&view$argnum);
%}

/* The mapping: a sequence of its ints in field order; mnnvl_mapping_init returns a tuple. */
%typemap(in) const mnnvl_mapping_t * (mnnvl_mapping_t temp) {
    int fields[MNNVL_SWIG_MAPPING_INTS];
    PyObject *seq = PySequence_Fast($input, "a mapping is a sequence of ints");
    if (!seq)
        SWIG_fail;
    if (PySequence_Fast_GET_SIZE(seq) != MNNVL_SWIG_MAPPING_INTS) {
        Py_DECREF(seq);
        PyErr_Format(PyExc_ValueError, "a mapping has %d fields", (int)MNNVL_SWIG_MAPPING_INTS);
        SWIG_fail;
    }
    for (int i = 0; i < MNNVL_SWIG_MAPPING_INTS; i++)
        fields[i] = (int)PyLong_AsLong(PySequence_Fast_GET_ITEM(seq, i));
    Py_DECREF(seq);
    if (PyErr_Occurred())
        SWIG_fail;
    mnnvl_swig_mapping_set(&temp, fields);
    $1 = &temp;
}
%typemap(in, numinputs=0) mnnvl_mapping_t * (mnnvl_mapping_t temp) %{ $1 = &temp; %}
%typemap(argout) mnnvl_mapping_t * {
    int fields[MNNVL_SWIG_MAPPING_INTS];
    mnnvl_swig_mapping_get($1, fields);
    PyObject *t = PyTuple_New(MNNVL_SWIG_MAPPING_INTS);
    for (int i = 0; t && i < MNNVL_SWIG_MAPPING_INTS; i++)
        PyTuple_SET_ITEM(t, i, PyLong_FromLong(fields[i]));
    $result = SWIG_Python_AppendOutput($result, t);
}
%typemap(argout) const mnnvl_mapping_t * ""

/* mnnvl_mapping_group(mapping, group, capacity) -> [ranks (capacity of them), count, index]. */
%typemap(in) (int *ranks, int capacity) {
    long n = PyLong_AsLong($input);
    if (PyErr_Occurred())
        SWIG_fail;
    if (n < 0 || n > 1 << 20) {
        PyErr_SetString(PyExc_ValueError, "capacity out of range");
        SWIG_fail;
    }
    $2 = (int)n;
    $1 = calloc((size_t)n + 1, sizeof(int));
    if (!$1) {
        PyErr_NoMemory();
        SWIG_fail;
    }
}
%typemap(argout) (int *ranks, int capacity) {
    /* a tuple: SWIG appends later outputs to a list result */
    PyObject *ranks = PyTuple_New($2);
    for (int i = 0; ranks && i < $2; i++)
        PyTuple_SET_ITEM(ranks, i, PyLong_FromLong($1[i]));
    $result = SWIG_Python_AppendOutput($result, ranks);
}
%typemap(freearg) (int *ranks, int capacity) %{ free($1); %}
/* mnnvl_comm_failed_ranks(comm, capacity) -> [((rank, reason, since_ms), ...), count]. */
%typemap(in) (mnnvl_rank_failure_t *failures, int capacity) {
    long n = PyLong_AsLong($input);
    if (PyErr_Occurred())
        SWIG_fail;
    if (n < 0 || n > MNNVL_FT_MAX_RANKS * 1024) {
        PyErr_SetString(PyExc_ValueError, "capacity out of range");
        SWIG_fail;
    }
    $2 = (int)n;
    $1 = calloc((size_t)n + 1, sizeof(mnnvl_rank_failure_t));
    if (!$1) {
        PyErr_NoMemory();
        SWIG_fail;
    }
}
%typemap(argout) (mnnvl_rank_failure_t *failures, int capacity) {
    PyObject *list = PyTuple_New($2);
    for (int i = 0; list && i < $2; i++)
        PyTuple_SET_ITEM(list, i, Py_BuildValue("(iiL)", $1[i].rank, (int)$1[i].reason,
                                                (long long)$1[i].since_ms));
    $result = SWIG_Python_AppendOutput($result, list);
}
%typemap(freearg) (mnnvl_rank_failure_t *failures, int capacity) %{ free($1); %}
%typemap(in, numinputs=0) int *count (int temp = 0), int *index (int temp = -1) %{ $1 = &temp; %}
%typemap(argout) int *count, int *index %{
    $result = SWIG_Python_AppendOutput($result, PyLong_FromLong(*$1));
%}

/* AllReduceParams.set_external_buffers(addresses, bytes). */
%typemap(in) (const unsigned long long *addresses, int count) {
    PyObject *seq = PySequence_Fast($input, "external buffers are a sequence of int addresses");
    if (!seq)
        SWIG_fail;
    $2 = (int)PySequence_Fast_GET_SIZE(seq);
    $1 = calloc((size_t)$2 + 1, sizeof(unsigned long long));
    for (int i = 0; $1 && i < $2; i++)
        $1[i] = PyLong_AsUnsignedLongLong(PySequence_Fast_GET_ITEM(seq, i));
    Py_DECREF(seq);
    if (!$1)
        PyErr_NoMemory();
    if (PyErr_Occurred())
        SWIG_fail;
}
%typemap(freearg) (const unsigned long long *addresses, int count) %{ free($1); %}

/* mnnvl_set_log_callback(callable or None): callable(level, message) on any thread. */
%typemap(in) (mnnvl_log_fn fn, void *user_data) {
    if ($input != Py_None && !PyCallable_Check($input)) {
        PyErr_SetString(PyExc_TypeError, "the log callback must be callable or None");
        SWIG_fail;
    }
    PyObject *old = mnnvl_py_log_target;
    mnnvl_py_log_target = $input == Py_None ? NULL : $input;
    Py_XINCREF(mnnvl_py_log_target);
    Py_XDECREF(old);
    $1 = mnnvl_py_log_target ? mnnvl_py_log : NULL;
    $2 = NULL;
}

/* The owner kinds, for bindings/python/mnnvl/_dlpack.py. */
%constant int MNNVL_PY_OWNER_MEM = MNNVL_PY_OWNER_MEM;
%constant int MNNVL_PY_OWNER_MOE_A2A = MNNVL_PY_OWNER_MOE_A2A;

/* It builds Python objects: it keeps the GIL that -threads releases around C calls. */
%nothreadallow mnnvl_py_dlpack;
%inline %{
/* Exports a compact row-major tensor of `shape` (a sequence) and dtype (DLPack code, bits)
 * at device `address`, inside a region of `region_bytes` that the handle `owner` of
 * `owner_kind` (MNNVL_PY_OWNER_*) keeps mapped, on CUDA device `device`, as a DLPack capsule
 * (`versioned`: the DLPack 1.0 one). The export holds its own reference to the owner: the
 * tensor a consumer builds from it stays valid after every other reference is gone. */
static PyObject *mnnvl_py_dlpack(int owner_kind, PyObject *owner, PyObject *address,
                                 size_t region_bytes, PyObject *shape, int code, int bits,
                                 int device, int versioned)
{
    /* The handle and address arrive as the ints every other function takes: the typemaps
     * are declared after this function, so it converts the objects itself. */
    void *handle, *data;
    if (mnnvl_py_address(owner, &handle) < 0 || mnnvl_py_address(address, &data) < 0)
        return NULL;
    if (!handle || !data || owner_kind < 0 || owner_kind >= MNNVL_PY_OWNER_KINDS) {
        PyErr_Format(PyExc_ValueError,
                     "a DLPack export needs a live handle of a known kind (0..%d, got %d) and a "
                     "region", MNNVL_PY_OWNER_KINDS - 1, owner_kind);
        return NULL;
    }
    PyObject *dims = PySequence_Fast(shape, "shape must be a sequence of ints");
    if (!dims)
        return NULL;
    Py_ssize_t ndim = PySequence_Fast_GET_SIZE(dims);
    mnnvl_dl_export_t *e = calloc(1, sizeof(*e));
    if (!e) {
        Py_DECREF(dims);
        return PyErr_NoMemory();
    }
    /* the element count saturates, so that no shape can wrap around the size check */
    uint64_t elements = 1;
    int negative = 0;
    for (Py_ssize_t i = 0; i < ndim && i < MNNVL_DL_MAX_DIMS; i++) {
        e->shape[i] = PyLong_AsLongLong(PySequence_Fast_GET_ITEM(dims, i));
        if (e->shape[i] < 0)
            negative = 1;
        uint64_t n = e->shape[i] < 0 ? 0 : (uint64_t)e->shape[i];
        elements = n && elements > UINT64_MAX / n ? UINT64_MAX : elements * n;
    }
    Py_DECREF(dims);
    if (PyErr_Occurred()) {
        free(e);
        return NULL;
    }
    uint64_t width = bits > 0 ? (uint64_t)bits / 8 : 0;
    uint64_t bytes = width && elements > UINT64_MAX / width ? UINT64_MAX : elements * width;
    if (ndim > MNNVL_DL_MAX_DIMS || negative || bits <= 0 || bits % 8 != 0 ||
        bytes > region_bytes) {
        free(e);
        PyErr_Format(PyExc_ValueError,
                     "a view of %llu bytes does not fit the region's %zu bytes (at most %d "
                     "dimensions, none negative)",
                     (unsigned long long)bytes, region_bytes, (int)MNNVL_DL_MAX_DIMS);
        return NULL;
    }
    /* compact, row-major; spelled out, as DLPack 1.x consumers may require */
    for (Py_ssize_t i = ndim - 1, stride = 1; i >= 0; i--) {
        e->strides[i] = stride;
        stride *= e->shape[i];
    }
    mnnvl_status_t st = mnnvl_py_owner_hold(owner_kind, handle, 1);
    if (st != MNNVL_SUCCESS) {
        free(e);
        mnnvl_py_raise(st, mnnvl_last_error());
        return NULL;
    }
    e->owner_kind = owner_kind;
    e->owner = handle;
    mnnvl_dl_tensor_t t = {
        .data = data,
        .device = {MNNVL_DL_CUDA, device},
        .ndim = (int32_t)ndim,
        .dtype = {(uint8_t)code, (uint8_t)bits, 1},
        .shape = e->shape,
        .strides = e->strides,
        .byte_offset = 0,
    };
    PyObject *capsule;
    if (versioned) {
        e->managed.versioned.major = 1;
        e->managed.versioned.minor = 0;
        e->managed.versioned.manager_ctx = e;
        e->managed.versioned.deleter = mnnvl_dl_delete_versioned;
        e->managed.versioned.dl_tensor = t;
        capsule = PyCapsule_New(&e->managed.versioned, "dltensor_versioned",
                                mnnvl_dl_capsule_free);
    } else {
        e->managed.legacy.dl_tensor = t;
        e->managed.legacy.manager_ctx = e;
        e->managed.legacy.deleter = mnnvl_dl_delete_legacy;
        capsule = PyCapsule_New(&e->managed.legacy, "dltensor", mnnvl_dl_capsule_free);
    }
    if (!capsule)
        mnnvl_dl_free(e);
    return capsule;
}
%}
#endif /* SWIGPYTHON */

/* ---------------------------------------------------------------------------------------- */
/* Java                                                                                     */
/* ---------------------------------------------------------------------------------------- */
#if defined(SWIGJAVA)
%include "enumsimple.swg"
%javaconst(1);
%pragma(java) jniclassclassmodifiers = "final class"
%pragma(java) moduleclassmodifiers = "final class"
%pragma(java) jniclasscode = %{
  static {
    NativeLoader.load();
  }
%}
%typemap(javaclassmodifiers) SWIGTYPE "final class"

%{
#include <pthread.h>

/* The JVM, for log lines that arrive on threads Java never saw. */
static JavaVM *mnnvl_java_vm;
static jobject mnnvl_java_log_target; /* a global reference to a Mnnvl.LogBridge */
static pthread_rwlock_t mnnvl_java_log_lock = PTHREAD_RWLOCK_INITIALIZER;

JNIEXPORT jint JNICALL JNI_OnLoad(JavaVM *vm, void *reserved)
{
    (void)reserved;
    mnnvl_java_vm = vm;
    return JNI_VERSION_1_8;
}

/* Throws MnnvlException.of(status, sentence), which picks the subclass of the status. */
static void mnnvl_java_throw(JNIEnv *env, mnnvl_status_t status, const char *sentence)
{
    jclass cls = (*env)->FindClass(env, "org/libmnnvl/MnnvlException");
    if (!cls)
        return; /* NoClassDefFoundError is pending */
    jmethodID of = (*env)->GetStaticMethodID(
        env, cls, "of", "(ILjava/lang/String;)Lorg/libmnnvl/MnnvlException;");
    jstring text = of ? (*env)->NewStringUTF(env, sentence) : NULL;
    jobject exc = text ? (*env)->CallStaticObjectMethod(env, cls, of, (jint)status, text) : NULL;
    if (exc && !(*env)->ExceptionCheck(env))
        (*env)->Throw(env, (jthrowable)exc);
}

static void mnnvl_java_log(mnnvl_log_level_t level, const char *message, void *user_data)
{
    (void)user_data;
    JNIEnv *env = NULL;
    int attached = 0;
    pthread_rwlock_rdlock(&mnnvl_java_log_lock);
    if (!mnnvl_java_log_target || !mnnvl_java_vm)
        goto out;
    if ((*mnnvl_java_vm)->GetEnv(mnnvl_java_vm, (void **)&env, JNI_VERSION_1_8) == JNI_EDETACHED) {
        if ((*mnnvl_java_vm)->AttachCurrentThreadAsDaemon(mnnvl_java_vm, (void **)&env, NULL) != 0)
            goto out;
        attached = 1;
    }
    jclass cls = (*env)->GetObjectClass(env, mnnvl_java_log_target);
    jmethodID log = (*env)->GetMethodID(env, cls, "log", "(ILjava/lang/String;)V");
    jstring text = log ? (*env)->NewStringUTF(env, message) : NULL;
    if (text)
        (*env)->CallVoidMethod(env, mnnvl_java_log_target, log, (jint)level, text);
    if ((*env)->ExceptionCheck(env))
        (*env)->ExceptionClear(env); /* a handler's exception must not escape into C */
    (*env)->DeleteLocalRef(env, text);
    (*env)->DeleteLocalRef(env, cls);
    if (attached)
        (*mnnvl_java_vm)->DetachCurrentThread(mnnvl_java_vm);
out:
    pthread_rwlock_unlock(&mnnvl_java_log_lock);
}
%}

/* Statuses throw; the Java methods return void. */
%typemap(jni) mnnvl_status_t "jint"
%typemap(jtype) mnnvl_status_t "int"
%typemap(jstype) mnnvl_status_t "void"
%typemap(out) mnnvl_status_t {
    if ($1 != MNNVL_SUCCESS) {
        mnnvl_java_throw(jenv, $1, mnnvl_last_error());
        return $null;
    }
    $result = 0;
}
%typemap(javaout) mnnvl_status_t { $jnicall; }

/* The functions that fail by returning 0 or NULL with a sentence throw as well
 * (mnnvl_bootstrap_available: MnnvlException.Unsupported with the reason). */
%typemap(out) size_t mnnvl_allreduce_workspace_size, size_t mnnvl_moe_a2a_workspace_size {
    if ($1 == 0) {
        mnnvl_java_throw(jenv, MNNVL_ERR_INVALID_ARGUMENT, mnnvl_last_error());
        return $null;
    }
    $result = (jlong)$1;
}
%typemap(out) const char *mnnvl_config_get {
    if (!$1) {
        mnnvl_java_throw(jenv, MNNVL_ERR_INVALID_ARGUMENT, mnnvl_last_error());
        return $null;
    }
    $result = (*jenv)->NewStringUTF(jenv, $1);
}
%typemap(out) int mnnvl_bootstrap_available {
    if (!$1) {
        mnnvl_java_throw(jenv, MNNVL_ERR_UNSUPPORTED, mnnvl_last_error());
        return $null;
    }
    $result = (jint)$1;
}
%typemap(in) mnnvl_status_t %{ $1 = ($1_ltype)$input; %}
%typemap(javain) mnnvl_status_t "$javainput"
%typemap(jstype) mnnvl_status_t status "int"

/* One-element arrays receive out-parameters. */
%define MNNVL_JAVA_OUT(CTYPE, JNITYPE, ARRAY, JAVA, SETTER)
%typemap(jni) CTYPE "ARRAY"
%typemap(jtype) CTYPE "JAVA[]"
%typemap(jstype) CTYPE "JAVA[]"
%typemap(javain) CTYPE "$javainput"
%typemap(in) CTYPE ($*1_ltype temp) {
    if (!$input || (*jenv)->GetArrayLength(jenv, $input) < 1) {
        SWIG_JavaThrowException(jenv, SWIG_JavaIllegalArgumentException,
                                "an out-parameter is an array of at least one element");
        return $null;
    }
    memset(&temp, 0, sizeof(temp));
    $1 = &temp;
}
%typemap(argout) CTYPE {
    JNITYPE value = (JNITYPE)(intptr_t)temp$argnum;
    (*jenv)->SETTER(jenv, $input, 0, 1, &value);
}
%enddef

%define MNNVL_HANDLE(TYPE)
%typemap(jni) TYPE, const TYPE "jlong"
%typemap(jtype) TYPE, const TYPE "long"
%typemap(jstype) TYPE, const TYPE "long"
%typemap(in) TYPE, const TYPE %{ $1 = ($1_ltype)(intptr_t)$input; %}
%typemap(out) TYPE %{ $result = (jlong)(intptr_t)$1; %}
%typemap(javain) TYPE, const TYPE "$javainput"
%typemap(javaout) TYPE, const TYPE { return $jnicall; }
MNNVL_JAVA_OUT(TYPE *, jlong, jlongArray, long, SetLongArrayRegion)
%enddef

MNNVL_JAVA_OUT(mnnvl_status_t *async_error, jint, jintArray, int, SetIntArrayRegion)
MNNVL_JAVA_OUT(int *count, jint, jintArray, int, SetIntArrayRegion)
MNNVL_JAVA_OUT(int *index, jint, jintArray, int, SetIntArrayRegion)

/* Device pointers and streams: long. */
%typemap(jni) void *, const void *, const int32_t *, const uint8_t * "jlong"
%typemap(jtype) void *, const void *, const int32_t *, const uint8_t * "long"
%typemap(jstype) void *, const void *, const int32_t *, const uint8_t * "long"
%typemap(in) void *, const void *, const int32_t * %{ $1 = ($1_ltype)(intptr_t)$input; %}
%typemap(out) void *, const int32_t *, const uint8_t * %{ $result = (jlong)(intptr_t)$1; %}
%typemap(javain) void *, const void *, const int32_t * "$javainput"
%typemap(javaout) void *, const int32_t *, const uint8_t * { return $jnicall; }
/* mnnvl_comm_failed_ranks: Java asks for the count only (Comm.failedRankCount). */
%typemap(in, numinputs=0) (mnnvl_rank_failure_t *failures, int capacity) %{ $1 = NULL; $2 = 0; %}

/* The payloads of a dispatch: long[] of device addresses. */
%typemap(jni) const void *const *payloads "jlongArray"
%typemap(jtype) const void *const *payloads "long[]"
%typemap(jstype) const void *const *payloads "long[]"
%typemap(javain) const void *const *payloads "$javainput"
%typemap(in) const void *const *payloads (mnnvl_swig_payloads_t temp) {
    jlong a[MNNVL_MOE_MAX_PAYLOADS] = {0};
    jsize n = $input ? (*jenv)->GetArrayLength(jenv, $input) : 0;
    if (n > MNNVL_MOE_MAX_PAYLOADS) {
        SWIG_JavaThrowException(jenv, SWIG_JavaIllegalArgumentException, "too many payloads");
        return $null;
    }
    if (n > 0)
        (*jenv)->GetLongArrayRegion(jenv, $input, 0, n, a);
    for (int i = 0; i < MNNVL_MOE_MAX_PAYLOADS; i++)
        temp.address[i] = (void *)(intptr_t)a[i];
    $1 = ($1_ltype)temp.address;
}

/* Host buffers: byte[]; a received one is copied back. */
%typemap(jni) const void *send, void *recv, void *buffer "jbyteArray"
%typemap(jtype) const void *send, void *recv, void *buffer "byte[]"
%typemap(jstype) const void *send, void *recv, void *buffer "byte[]"
%typemap(javain) const void *send, void *recv, void *buffer "$javainput"
%typemap(in) const void *send, void *recv, void *buffer {
    $1 = $input ? (*jenv)->GetByteArrayElements(jenv, $input, NULL) : NULL;
    if ($input && !$1)
        return $null;
}
%typemap(freearg) const void *send %{
    if ($1)
        (*jenv)->ReleaseByteArrayElements(jenv, $input, (jbyte *)$1, JNI_ABORT);
%}
%typemap(freearg) void *recv, void *buffer %{
    if ($1)
        (*jenv)->ReleaseByteArrayElements(jenv, $input, (jbyte *)$1, 0);
%}

/* The mapping: int[8] in field order; mnnvl_mapping_init fills the array. */
%typemap(jni) mnnvl_mapping_t *, const mnnvl_mapping_t * "jintArray"
%typemap(jtype) mnnvl_mapping_t *, const mnnvl_mapping_t * "int[]"
%typemap(jstype) mnnvl_mapping_t *, const mnnvl_mapping_t * "int[]"
%typemap(javain) mnnvl_mapping_t *, const mnnvl_mapping_t * "$javainput"
%typemap(in) mnnvl_mapping_t * (mnnvl_mapping_t temp),
             const mnnvl_mapping_t * (mnnvl_mapping_t temp) {
    int fields[MNNVL_SWIG_MAPPING_INTS] = {0};
    if (!$input || (*jenv)->GetArrayLength(jenv, $input) != MNNVL_SWIG_MAPPING_INTS) {
        SWIG_JavaThrowException(jenv, SWIG_JavaIllegalArgumentException,
                                "a mapping is an int[] of its fields");
        return $null;
    }
    (*jenv)->GetIntArrayRegion(jenv, $input, 0, MNNVL_SWIG_MAPPING_INTS, (jint *)fields);
    mnnvl_swig_mapping_set(&temp, fields);
    $1 = &temp;
}
%typemap(argout) mnnvl_mapping_t * {
    int fields[MNNVL_SWIG_MAPPING_INTS];
    mnnvl_swig_mapping_get($1, fields);
    (*jenv)->SetIntArrayRegion(jenv, $input, 0, MNNVL_SWIG_MAPPING_INTS, (jint *)fields);
}
%typemap(argout) const mnnvl_mapping_t * ""

/* mnnvl_mapping_group: ranks is an int[] whose length is the capacity. */
%typemap(jni) (int *ranks, int capacity) "jintArray"
%typemap(jtype) (int *ranks, int capacity) "int[]"
%typemap(jstype) (int *ranks, int capacity) "int[]"
%typemap(javain) (int *ranks, int capacity) "$javainput"
%typemap(in) (int *ranks, int capacity) {
    $2 = $input ? (int)(*jenv)->GetArrayLength(jenv, $input) : 0;
    $1 = $input ? (int *)(*jenv)->GetIntArrayElements(jenv, $input, NULL) : NULL;
}
%typemap(freearg) (int *ranks, int capacity) %{
    if ($1)
        (*jenv)->ReleaseIntArrayElements(jenv, $input, (jint *)$1, 0);
%}

/* AllReduceParams.setExternalBuffers(long[] addresses, long bytes). */
%typemap(jni) (const unsigned long long *addresses, int count) "jlongArray"
%typemap(jtype) (const unsigned long long *addresses, int count) "long[]"
%typemap(jstype) (const unsigned long long *addresses, int count) "long[]"
%typemap(javain) (const unsigned long long *addresses, int count) "$javainput"
%typemap(in) (const unsigned long long *addresses, int count) {
    $2 = $input ? (int)(*jenv)->GetArrayLength(jenv, $input) : 0;
    $1 = $input ? (unsigned long long *)(*jenv)->GetLongArrayElements(jenv, $input, NULL) : NULL;
}
%typemap(freearg) (const unsigned long long *addresses, int count) %{
    if ($1)
        (*jenv)->ReleaseLongArrayElements(jenv, $input, (jlong *)$1, JNI_ABORT);
%}

/* mnnvl_set_log_callback(an object with void log(int, String), or null). */
%typemap(jni) (mnnvl_log_fn fn, void *user_data) "jobject"
%typemap(jtype) (mnnvl_log_fn fn, void *user_data) "Object"
%typemap(jstype) (mnnvl_log_fn fn, void *user_data) "Object"
%typemap(javain) (mnnvl_log_fn fn, void *user_data) "$javainput"
%typemap(in) (mnnvl_log_fn fn, void *user_data) {
    jobject target = $input ? (*jenv)->NewGlobalRef(jenv, $input) : NULL;
    pthread_rwlock_wrlock(&mnnvl_java_log_lock);
    jobject old = mnnvl_java_log_target;
    mnnvl_java_log_target = target;
    pthread_rwlock_unlock(&mnnvl_java_log_lock);
    if (old)
        (*jenv)->DeleteGlobalRef(jenv, old);
    $1 = target ? mnnvl_java_log : NULL;
    $2 = NULL;
}
#endif /* SWIGJAVA */

/* ---------------------------------------------------------------------------------------- */
/* Go                                                                                       */
/* ---------------------------------------------------------------------------------------- */
#if defined(SWIGGO)
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

/* mnnvl_set_log_callback(on bool): on sends the lines to the function SetLogHandler set. */
%typemap(gotype) (mnnvl_log_fn fn, void *user_data) "bool"
%typemap(in) (mnnvl_log_fn fn, void *user_data) %{
    $1 = $input ? mnnvl_go_log : NULL;
    $2 = NULL;
%}
#endif /* SWIGGO */

/* ---------------------------------------------------------------------------------------- */
/* Common to every language                                                                 */
/* ---------------------------------------------------------------------------------------- */
MNNVL_HANDLE(mnnvl_config_t)
MNNVL_HANDLE(mnnvl_root_t)
MNNVL_HANDLE(mnnvl_comm_t)
MNNVL_HANDLE(mnnvl_mem_t)
MNNVL_HANDLE(mnnvl_allreduce_t)
MNNVL_HANDLE(mnnvl_moe_a2a_t)

/* The header's export macro means nothing to SWIG. */
#define MNNVL_API

/* AllReduceParams: made by mnnvl_allreduce_params_init, so that fields added later keep
 * their defaults; its external buffers are owned copies. */
%rename(AllReduceParams) mnnvl_allreduce_params;
%immutable mnnvl_allreduce_params::struct_size;
%ignore mnnvl_allreduce_params::external_buffers;
%immutable mnnvl_allreduce_params::external_buffer_count;
%immutable mnnvl_allreduce_params::external_buffer_bytes;
%extend mnnvl_allreduce_params {
    mnnvl_allreduce_params()
    {
        mnnvl_allreduce_params_t *p = calloc(1, sizeof(*p));
        mnnvl_allreduce_params_init(p);
        return p;
    }
    ~mnnvl_allreduce_params()
    {
        free((void *)$self->external_buffers);
        free($self);
    }
    /* Opts in to caller-allocated workspaces: one device address per rank, each `bytes`
     * long (see mnnvl_allreduce_params_t). An empty list goes back to libmnnvl's own. */
    void set_external_buffers(const unsigned long long *addresses, int count, size_t bytes)
    {
        mnnvl_swig_params_set_buffers($self, addresses, count, bytes);
    }
}

/* MoeA2AParams: made by mnnvl_moe_a2a_params_init; payload_bytes through methods. */
%rename(MoeA2AParams) mnnvl_moe_a2a_params;
%immutable mnnvl_moe_a2a_params::struct_size;
%ignore mnnvl_moe_a2a_params::payload_bytes;
%extend mnnvl_moe_a2a_params {
    mnnvl_moe_a2a_params()
    {
        mnnvl_moe_a2a_params_t *p = calloc(1, sizeof(*p));
        mnnvl_moe_a2a_params_init(p);
        return p;
    }
    ~mnnvl_moe_a2a_params()
    {
        free($self);
    }
    /* Row bytes of payload `index` (0 .. MNNVL_MOE_MAX_PAYLOADS-1; others are ignored, and
     * read as 0). */
    void set_payload_bytes(int index, size_t bytes)
    {
        if (index >= 0 && index < MNNVL_MOE_MAX_PAYLOADS)
            $self->payload_bytes[index] = bytes;
    }
    size_t get_payload_bytes(int index)
    {
        return index >= 0 && index < MNNVL_MOE_MAX_PAYLOADS ? $self->payload_bytes[index] : 0;
    }
}

/* DcpA2AParams: made by mnnvl_dcp_a2a_params_init, so that fields added later keep their
 * defaults. The DCP workspace size fails like the others (0 with a sentence): it raises or
 * throws as they do (Go reads the sentence in package mnnvl). */
MNNVL_HANDLE(mnnvl_dcp_a2a_t)
%rename(DcpA2AParams) mnnvl_dcp_a2a_params;
%immutable mnnvl_dcp_a2a_params::struct_size;
%extend mnnvl_dcp_a2a_params {
    mnnvl_dcp_a2a_params()
    {
        mnnvl_dcp_a2a_params_t *p = calloc(1, sizeof(*p));
        mnnvl_dcp_a2a_params_init(p);
        return p;
    }
    ~mnnvl_dcp_a2a_params()
    {
        free($self);
    }
}
#if defined(SWIGPYTHON) || defined(SWIGJAVA)
%typemap(out) size_t mnnvl_dcp_a2a_workspace_size = size_t mnnvl_moe_a2a_workspace_size;
#endif

/* The type, not the callback plumbing (each language section maps the pair); the mapping
 * crosses as ints (above), so SWIG makes no class of it. */
%ignore mnnvl_log_fn;
%ignore mnnvl_mapping;

%include "mnnvl.h"
