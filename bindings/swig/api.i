/* Common to every language, after the language's part: the handle types, the parameter
 * structs and what SWIG must not wrap, then lib/mnnvl.h itself. Included last by
 * bindings/mnnvl.i. */
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
