/* The Python part of the SWIG interface: the status as an exception (mnnvl.errors), buffers
 * through the buffer protocol, the log callback as a callable, and the DLPack export behind
 * SymmetricMemory.view.
 *
 * Included by bindings/mnnvl.i (the entry file, which says how each C shape looks in each
 * language) only when SWIG generates Python. */
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

/* mnnvl_comm_shrink(comm, exclude_ranks): a sequence of int ranks. */
%typemap(in) (const int *exclude_ranks, int n_exclude) {
    PyObject *seq = PySequence_Fast($input, "exclude_ranks is a sequence of int ranks");
    if (!seq)
        SWIG_fail;
    $2 = (int)PySequence_Fast_GET_SIZE(seq);
    $1 = calloc((size_t)$2 + 1, sizeof(int));
    for (int i = 0; $1 && i < $2; i++)
        $1[i] = (int)PyLong_AsLong(PySequence_Fast_GET_ITEM(seq, i));
    Py_DECREF(seq);
    if (!$1)
        PyErr_NoMemory();
    if (PyErr_Occurred())
        SWIG_fail;
}
%typemap(freearg) (const int *exclude_ranks, int n_exclude) %{ free($1); %}

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
