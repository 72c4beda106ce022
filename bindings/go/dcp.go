package mnnvl

import (
	"github.com/libmnnvl/libmnnvl/bindings/go/mnnvl/internal/raw"
)

// The limits of the DCP all-to-all's parameters.
const (
	DcpMaxRanks      = raw.MNNVL_DCP_MAX_RANKS       // largest CPSize
	DcpMaxStatsLanes = raw.MNNVL_DCP_MAX_STATS_LANES // StatsLanes is 1 .. this
)

// DcpMaxEntries is the largest MaxEntries (SWIG makes a variable of the macro's expression).
var DcpMaxEntries = raw.MNNVL_DCP_MAX_ENTRIES

// LseBase is the base of the log-sum-exp values in the stats (mnnvl_lse_base_t).
type LseBase int

// The LSE bases.
const (
	LseBaseE LseBase = 0 // LSE = ln(sum exp(s))
	LseBase2 LseBase = 1 // LSE = log2(sum 2^s)
)

// DcpA2AParams are the parameters of a decode-context-parallel (Helix) all-to-all; start
// from DefaultDcpA2AParams. Layouts: partial_o [entries, CPSize, HeadDim] of DType, stats
// [entries, CPSize, StatsLanes] float32.
type DcpA2AParams struct {
	CPSize     int // ranks of the CP group: the communicator's size
	MaxEntries int // capacity: the largest entry count any call passes
	HeadDim    int // D: a multiple of 8 up to 1024
	DType      DType
	StatsLanes int // fp32 values per (entry, rank)
	LseBase    LseBase
}

// DefaultDcpA2AParams are the defaults of mnnvl_dcp_a2a_params_init (CPSize and MaxEntries
// are 0: set both).
func DefaultDcpA2AParams() DcpA2AParams {
	n := raw.NewDcpA2AParams()
	defer raw.DeleteDcpA2AParams(n)
	return DcpA2AParams{CPSize: n.GetCp_size(), MaxEntries: n.GetMax_entries(),
		HeadDim: n.GetHead_dim(), DType: DType(n.GetDtype()), StatsLanes: n.GetStats_lanes(),
		LseBase: LseBase(n.GetLse_base())}
}

func (p DcpA2AParams) native() raw.DcpA2AParams {
	n := raw.NewDcpA2AParams()
	n.SetCp_size(p.CPSize)
	n.SetMax_entries(p.MaxEntries)
	n.SetHead_dim(p.HeadDim)
	n.SetDtype(raw.Enum_SS_mnnvl_dtype(p.DType))
	n.SetStats_lanes(p.StatsLanes)
	n.SetLse_base(raw.Enum_SS_mnnvl_lse_base(p.LseBase))
	return n
}

// DcpA2AWorkspaceSize is the bytes of symmetric workspace each rank needs for p: pure CPU,
// for planning memory. Invalid parameters are an ErrInvalidArgument error naming them.
func DcpA2AWorkspaceSize(p DcpA2AParams) (int, error) {
	n := p.native()
	defer raw.DeleteDcpA2AParams(n)
	return workspaceSize(func() int64 { return raw.Mnnvl_dcp_a2a_workspace_size(n) })
}

// DcpAllToAll is the DCP all-to-all of a CP group (mnnvl_dcp_a2a_t). Its calls take
// device addresses and a cudaStream_t; they are collective in stream order and may be
// captured in a CUDA graph.
type DcpAllToAll struct {
	h uintptr
}

// NewDcpAllToAll creates the all-to-all of c, which must be the CP group (see Comm.Split
// with GroupCP), or returns the cached one with equal parameters. Collective; not during
// a graph capture. A CPU-only communicator is an ErrInvalidUsage error.
func NewDcpAllToAll(c *Comm, p DcpA2AParams) (*DcpAllToAll, error) {
	n := p.native()
	defer raw.DeleteDcpA2AParams(n)
	d := &DcpAllToAll{}
	return created(d, raw.Mnnvl_dcp_a2a_create(c.h, n, &d.h))
}

// Transpose is the transpose of the cp axis: rank r's outO[e, p, :] is partialO[e, r, :] of
// rank p, and the same for the stats. entries is at most MaxEntries and equal on every rank.
func (d *DcpAllToAll) Transpose(partialO, stats uintptr, entries int, outO, outStats,
	stream uintptr) error {
	return check(raw.Mnnvl_dcp_a2a(d.handle(), partialO, stats, entries, outO, outStats, stream))
}

// LseReduce is the exchange fused with the merge by LSE (stats lane 0): out [entries,
// HeadDim] is this rank's final attention output, outLse [entries] float32 the merged LSE
// (0: not wanted).
func (d *DcpAllToAll) LseReduce(partialO, stats uintptr, entries int, out, outLse,
	stream uintptr) error {
	return check(raw.Mnnvl_dcp_a2a_lse_reduce(d.handle(), partialO, stats, entries, out, outLse, stream))
}

// handle is 0 for a nil or closed DcpAllToAll: libmnnvl refuses it with an error.
func (d *DcpAllToAll) handle() uintptr {
	if d == nil {
		return 0
	}
	return d.h
}

// Close drops this reference; the last one frees the workspace.
func (d *DcpAllToAll) Close() error {
	if d == nil {
		return nil
	}
	return release(&d.h, raw.Mnnvl_dcp_a2a_destroy)
}
