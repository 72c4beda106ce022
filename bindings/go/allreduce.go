package mnnvl

import "github.com/libmnnvl/libmnnvl/bindings/go/mnnvl/internal/raw"

// Strategy is an all-reduce algorithm (mnnvl_allreduce_strategy_t).
type Strategy int

// The strategies.
const (
	StrategyAuto    Strategy = iota // by size and world size
	StrategyOneShot                 // every rank pushes everything to every peer: latency
	StrategyTwoShot                 // reduce-scatter then all-gather: bandwidth
)

// AllReduceParams are the parameters of an all-reduce; start from DefaultAllReduceParams.
type AllReduceParams struct {
	DType             DType
	MaxCount          int // the largest message (elements) planned; larger ones go in chunks
	Strategy          Strategy
	RMSNormWeightBias bool // norm_out = y*rsqrt(...)*(1+gamma)
	// ExternalBuffers opts in to workspaces allocated elsewhere: one device address per
	// rank, each ExternalBufferBytes long; the config needs external_buffers=1 as well.
	ExternalBuffers     []uintptr
	ExternalBufferBytes int
}

// DefaultAllReduceParams are the defaults of mnnvl_allreduce_params_init.
func DefaultAllReduceParams() AllReduceParams {
	p := raw.NewAllReduceParams()
	defer raw.DeleteAllReduceParams(p)
	return AllReduceParams{DType: DType(p.GetDtype()), MaxCount: int(p.GetMax_count()),
		Strategy: Strategy(p.GetStrategy()), RMSNormWeightBias: p.GetRmsnorm_weight_bias() != 0}
}

// native fills the generated struct (to be deleted by the caller).
func (p AllReduceParams) native() raw.AllReduceParams {
	n := raw.NewAllReduceParams()
	n.SetDtype(raw.Enum_SS_mnnvl_dtype(p.DType))
	n.SetMax_count(int64(p.MaxCount))
	n.SetStrategy(raw.Enum_SS_mnnvl_allreduce_strategy(p.Strategy))
	if p.RMSNormWeightBias {
		n.SetRmsnorm_weight_bias(1)
	}
	n.Set_external_buffers(p.ExternalBuffers, int64(p.ExternalBufferBytes))
	return n
}

// AllReduceWorkspaceSize is the bytes of workspace each of worldSize ranks needs for p:
// pure CPU, for planning memory. Invalid parameters are an ErrInvalidArgument error.
func AllReduceWorkspaceSize(p AllReduceParams, worldSize int) (int, error) {
	n := p.native()
	defer raw.DeleteAllReduceParams(n)
	return workspaceSize(func() int64 { return raw.Mnnvl_allreduce_workspace_size(n, worldSize) })
}

// AllReduce sums buffers across the ranks of a communicator (mnnvl_allreduce_t).
type AllReduce struct {
	h uintptr
}

// NewAllReduce creates the all-reduce of c, or returns the cached one with equal
// parameters. Collective; not capture-safe (create before a graph capture).
func NewAllReduce(c *Comm, p AllReduceParams) (*AllReduce, error) {
	n := p.native()
	defer raw.DeleteAllReduceParams(n)
	a := &AllReduce{}
	return created(a, raw.Mnnvl_allreduce_create(c.h, n, &a.h))
}

// Run enqueues out = sum over ranks of in (count elements; in == out allowed) on stream.
// Collective in stream order, capture-safe.
func (a *AllReduce) Run(in, out uintptr, count int, stream uintptr) error {
	return check(raw.Mnnvl_allreduce(a.h, in, out, int64(count), stream))
}

// ResidualRMSNorm enqueues y = allreduce(in) + residualIn; residualOut = y;
// normOut = y * rsqrt(mean(y^2) + eps) * gamma over [tokens, hidden] rows.
func (a *AllReduce) ResidualRMSNorm(in, residualIn, gamma uintptr, eps float32, tokens, hidden int,
	residualOut, normOut, stream uintptr) error {
	return check(raw.Mnnvl_allreduce_residual_rmsnorm(a.h, in, residualIn, gamma, eps,
		int64(tokens), int64(hidden), residualOut, normOut, stream))
}

// Close drops this reference; the last one frees the workspace.
func (a *AllReduce) Close() error {
	if a == nil {
		return nil
	}
	return release(&a.h, raw.Mnnvl_allreduce_destroy)
}
