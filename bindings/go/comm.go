package mnnvl

import (
	"fmt"

	"github.com/libmnnvl/libmnnvl/bindings/go/mnnvl/internal/raw"
)

// Comm is a communicator (mnnvl_comm_t): one rank of a group of processes (or goroutines)
// that can run collectives together.
type Comm struct {
	h uintptr
}

// NewComm creates the communicator of size ranks; this is rank. Collective: every rank
// calls it. device is this rank's CUDA device, or -1 for a CPU-only communicator
// (bootstrap collectives only, no GPU needed). cfg says how the ranks meet, e.g.
// root=host:port (root_mode rank0 or external) for the tcp bootstrap.
func NewComm(cfg *Config, rank, size, device int) (*Comm, error) {
	c := &Comm{}
	return created(c, raw.Mnnvl_comm_create(cfg.handle(), rank, size, device, &c.h))
}

// Split creates the communicator of the group g of m that contains this rank. Collective
// over c; m.Rank must be c's rank and every rank passes the same other fields.
func (c *Comm) Split(m Mapping, g Group) (*Comm, error) {
	sub := &Comm{}
	return created(sub, raw.Mnnvl_comm_split(c.h, m.fields(), raw.Enum_SS_mnnvl_group(g), &sub.h))
}

// Shrink creates the communicator of the ranks of c not in exclude (e.g. after one died),
// in c's order. Collective over the survivors only: the excluded are not waited for, so it
// works after c failed with PEER_LOST or was aborted. Different lists give MISMATCH.
func (c *Comm) Shrink(exclude []int) (*Comm, error) {
	ranks := make([]int32, len(exclude))
	for i, r := range exclude {
		ranks[i] = int32(r)
	}
	sub := &Comm{}
	return created(sub, raw.Mnnvl_comm_shrink(c.h, ranks, &sub.h))
}

// Rank is this rank's index in the communicator.
func (c *Comm) Rank() int { return raw.Mnnvl_comm_rank(c.h) }

// Size is the number of ranks.
func (c *Comm) Size() int { return raw.Mnnvl_comm_size(c.h) }

// Device is the CUDA device, -1 for a CPU-only communicator.
func (c *Comm) Device() int { return raw.Mnnvl_comm_device(c.h) }

// HandleType is the memory handle type the ranks agreed on: "fabric", "posix-fd", or
// "none" for a CPU-only communicator.
func (c *Comm) HandleType() string { return raw.Mnnvl_comm_handle_type(c.h) }

// Allgather gives every rank's send (equal lengths on every rank), indexed by rank.
// Collective.
func (c *Comm) Allgather(send []byte) ([][]byte, error) {
	n, size := len(send), c.Size()
	if size < 1 {
		return nil, &Error{Status: ErrInvalidArgument, Message: "allgather: the communicator is closed"}
	}
	recv := make([]byte, n*size)
	if err := check(raw.Mnnvl_comm_allgather(c.h, send, recv, int64(n))); err != nil {
		return nil, err
	}
	blocks := make([][]byte, size)
	for r := range blocks {
		blocks[r] = recv[r*n : (r+1)*n : (r+1)*n]
	}
	return blocks, nil
}

// Broadcast overwrites buffer with root's buffer (equal lengths on every rank). Collective.
func (c *Comm) Broadcast(buffer []byte, root int) error {
	return check(raw.Mnnvl_comm_broadcast(c.h, buffer, int64(len(buffer)), root))
}

// Barrier returns once every rank called it. Collective.
func (c *Comm) Barrier() error { return check(raw.Mnnvl_comm_barrier(c.h)) }

// DeviceBarrier enqueues a barrier across the GPUs on stream. Collective, capture-safe.
func (c *Comm) DeviceBarrier(stream uintptr) error {
	return check(raw.Mnnvl_comm_device_barrier(c.h, stream))
}

// FailedRankCount is how many ranks of the communicator this rank knows to be dead (see
// mnnvl_comm_failed_ranks): they died, or missed a fault-tolerant operation's per-peer
// bound. Local, no synchronisation.
func (c *Comm) FailedRankCount() (int, error) {
	var count int32
	err := check(raw.Mnnvl_comm_failed_ranks(c.h, &count))
	return int(count), err
}

// AsyncError is nil, or the error a kernel of this communicator recorded (without

// synchronizing). After one, every call on c fails with ErrAborted.
func (c *Comm) AsyncError() error {
	var status int32
	var err error
	sentence, ok := onThread(func() bool {
		err = check(raw.Mnnvl_comm_get_async_error(c.h, &status))
		return err != nil || status == 0
	})
	if err != nil {
		return err
	}
	if !ok {
		return &Error{Status: Status(status), Message: sentence}
	}
	return nil
}

// Abort makes running and future work on c fail, wakes blocked calls and tells the peers
// (theirs fail with ErrPeerLost). c must still be closed.
func (c *Comm) Abort() error { return check(raw.Mnnvl_comm_abort(c.h)) }

// Finalize waits until every rank finalized, so that closing cannot fail a peer's
// pending call. Collective.
func (c *Comm) Finalize() error { return check(raw.Mnnvl_comm_finalize(c.h)) }

// Close drops this reference; memory and operations created on c keep it alive until
// they are closed too. Closing again does nothing.
func (c *Comm) Close() error {
	if c == nil {
		return nil
	}
	return release(&c.h, raw.Mnnvl_comm_destroy)
}

func (c *Comm) String() string {
	return fmt.Sprintf("mnnvl.Comm(rank %d of %d, device %d)", c.Rank(), c.Size(), c.Device())
}

// SymmetricMemory is device memory of the same size on every rank, every rank's piece
// mapped into one virtual range at Base() + rank*Stride() on every GPU (mnnvl_mem_t).
type SymmetricMemory struct {
	h uintptr
}

// NewSymmetricMemory allocates bytes on every rank of c. Collective; every rank asks for
// the same size (else ErrMismatch). Needs a communicator with a device.
func NewSymmetricMemory(c *Comm, bytes int) (*SymmetricMemory, error) {
	m := &SymmetricMemory{}
	return created(m, raw.Mnnvl_mem_alloc(c.h, int64(bytes), &m.h))
}

// Base is the device address of rank 0's piece.
func (m *SymmetricMemory) Base() uintptr { return raw.Mnnvl_mem_base(m.h) }

// Stride is the distance in bytes between consecutive ranks' pieces.
func (m *SymmetricMemory) Stride() int { return int(raw.Mnnvl_mem_stride(m.h)) }

// Size is the bytes of each rank's piece.
func (m *SymmetricMemory) Size() int { return int(raw.Mnnvl_mem_size(m.h)) }

// Ptr is the device address of peer's piece; 0 for a peer out of range.
func (m *SymmetricMemory) Ptr(peer int) uintptr { return raw.Mnnvl_mem_ptr(m.h, peer) }

// Retain returns another owner of the same memory, to be closed on its own.
func (m *SymmetricMemory) Retain() (*SymmetricMemory, error) {
	return created(&SymmetricMemory{h: m.h}, raw.Mnnvl_mem_retain(m.h))
}

// Close drops this reference; the last one unmaps and frees this rank's piece.
func (m *SymmetricMemory) Close() error {
	if m == nil {
		return nil
	}
	return release(&m.h, raw.Mnnvl_mem_release)
}
