package mnnvl

import (
	"fmt"

	"github.com/libmnnvl/libmnnvl/bindings/go/mnnvl/internal/raw"
)

// MoeMaxPayloads is the most payloads one dispatch moves.
const MoeMaxPayloads = raw.MNNVL_MOE_MAX_PAYLOADS

// MoeA2AParams are the parameters of a MoE all-to-all; start from DefaultMoeA2AParams.
type MoeA2AParams struct {
	EPSize           int   // ranks of the EP group: the communicator's size
	NumExperts       int   // >= EPSize
	TopK             int   // experts per token
	MaxTokensPerRank int   // the largest token count and R of any call
	PayloadBytes     []int // bytes of one token row of each payload (multiples of 4)
	Hidden           int   // elements per combine row
	CombineDType     DType
}

// DefaultMoeA2AParams are the defaults of mnnvl_moe_a2a_params_init.
func DefaultMoeA2AParams() MoeA2AParams {
	n := raw.NewMoeA2AParams()
	defer raw.DeleteMoeA2AParams(n)
	p := MoeA2AParams{EPSize: n.GetEp_size(), NumExperts: n.GetNum_experts(), TopK: n.GetTop_k(),
		MaxTokensPerRank: n.GetMax_tokens_per_rank(), Hidden: n.GetHidden(),
		CombineDType: DType(n.GetCombine_dtype())}
	for i := 0; i < n.GetNum_payloads(); i++ {
		p.PayloadBytes = append(p.PayloadBytes, int(n.Get_payload_bytes(i)))
	}
	return p
}

func (p MoeA2AParams) native() (raw.MoeA2AParams, error) {
	if len(p.PayloadBytes) > MoeMaxPayloads {
		return nil, &Error{Status: ErrInvalidArgument,
			Message: fmt.Sprintf("moe_a2a: %d payloads, at most %d", len(p.PayloadBytes), MoeMaxPayloads)}
	}
	n := raw.NewMoeA2AParams()
	n.SetEp_size(p.EPSize)
	n.SetNum_experts(p.NumExperts)
	n.SetTop_k(p.TopK)
	n.SetMax_tokens_per_rank(p.MaxTokensPerRank)
	n.SetNum_payloads(len(p.PayloadBytes))
	for i, bytes := range p.PayloadBytes {
		n.Set_payload_bytes(i, int64(bytes))
	}
	n.SetHidden(p.Hidden)
	n.SetCombine_dtype(raw.Enum_SS_mnnvl_dtype(p.CombineDType))
	return n, nil
}

// MoeA2AWorkspaceSize is the bytes of symmetric workspace each rank needs for p: pure
// CPU, for planning memory. Invalid parameters are an ErrInvalidArgument error.
func MoeA2AWorkspaceSize(p MoeA2AParams) (int, error) {
	n, err := p.native()
	if err != nil {
		return 0, err
	}
	defer raw.DeleteMoeA2AParams(n)
	return workspaceSize(func() int64 { return raw.Mnnvl_moe_a2a_workspace_size(n) })
}

// MoeAllToAll moves tokens to the ranks of their experts and the expert outputs back
// (mnnvl_moe_a2a_t).
type MoeAllToAll struct {
	h uintptr
}

// NewMoeAllToAll creates the all-to-all of c, which must be the EP group (see
// Comm.Split), or returns the cached one with equal parameters. Collective.
func NewMoeAllToAll(c *Comm, p MoeA2AParams) (*MoeAllToAll, error) {
	n, err := p.native()
	if err != nil {
		return nil, err
	}
	defer raw.DeleteMoeA2AParams(n)
	a := &MoeAllToAll{}
	return created(a, raw.Mnnvl_moe_a2a_create(c.h, n, &a.h))
}

// Dispatch sends each token's payload rows to the ranks owning its experts.
// tokenSelectedExperts: device int32 [localNumTokens, TopK]; payloads: one device array per
// payload, [localNumTokens, PayloadBytes[i]]. runtimeMaxTokens (R) is equal on every rank.
func (a *MoeAllToAll) Dispatch(tokenSelectedExperts uintptr, payloads []uintptr, localNumTokens,
	runtimeMaxTokens int, stream uintptr) error {
	if len(payloads) > MoeMaxPayloads {
		return &Error{Status: ErrInvalidArgument,
			Message: fmt.Sprintf("moe_a2a dispatch: %d payloads, at most %d", len(payloads), MoeMaxPayloads)}
	}
	return check(raw.Mnnvl_moe_a2a_dispatch(a.h, tokenSelectedExperts, payloads, localNumTokens,
		runtimeMaxTokens, stream))
}

// RecvBuffer is the device address of payload index's receive region [EPSize, R, row].
func (a *MoeAllToAll) RecvBuffer(index int) uintptr {
	return raw.Mnnvl_moe_a2a_recv_buffer(a.h, index)
}

// LostTokens is the device address of uint8 [max tokens] of a fault-tolerant handle (0
// otherwise): after each combine, 1 for each token that missed a dead rank's part.
func (a *MoeAllToAll) LostTokens() uintptr { return raw.Mnnvl_moe_a2a_lost_tokens(a.h) }

// RecvCounts is the device address of int32 [EPSize]: tokens each source sent.
func (a *MoeAllToAll) RecvCounts() uintptr { return raw.Mnnvl_moe_a2a_recv_counts(a.h) }

// Sanitize marks, in received payload index (TopK int32 expert ids per row), the slots
// past each source's count and the experts this rank does not own as -1.
func (a *MoeAllToAll) Sanitize(index int, stream uintptr) error {
	return check(raw.Mnnvl_moe_a2a_sanitize(a.h, index, stream))
}

// CombineBuffer is the device address of this rank's combine region [EPSize, R, Hidden].
func (a *MoeAllToAll) CombineBuffer() uintptr { return raw.Mnnvl_moe_a2a_combine_buffer(a.h) }

// Combine sums the expert outputs of each token back into out [tokens, Hidden];
// expertOut 0 means they are already in CombineBuffer().
func (a *MoeAllToAll) Combine(expertOut, out, stream uintptr) error {
	return check(raw.Mnnvl_moe_a2a_combine(a.h, expertOut, out, stream))
}

// Retain returns another owner of the same all-to-all, to be closed on its own: the
// regions (RecvBuffer, RecvCounts, CombineBuffer) stay valid until every owner is closed.
func (a *MoeAllToAll) Retain() (*MoeAllToAll, error) {
	return created(&MoeAllToAll{h: a.h}, raw.Mnnvl_moe_a2a_retain(a.h))
}

// Close drops this reference; the last one frees the workspace.
func (a *MoeAllToAll) Close() error {
	if a == nil {
		return nil
	}
	return release(&a.h, raw.Mnnvl_moe_a2a_destroy)
}
