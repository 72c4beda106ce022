// The CPU scenarios of the Go binding (tests/bindings/go.sh runs them with go test):
// the same as tests/bindings/python/test_cpu.py and tests/bindings/java/BindingTest.java.
package mnnvl_test

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/libmnnvl/libmnnvl/bindings/go/mnnvl"
)

func TestVersion(t *testing.T) {
	if mnnvl.Version() != mnnvl.HeaderVersion {
		t.Fatalf("library %d, header %d", mnnvl.Version(), mnnvl.HeaderVersion)
	}
	v := mnnvl.Version()
	if want := fmt.Sprintf("%d.%d.%d", v/10000, v/100%100, v%100); mnnvl.VersionString() != want {
		t.Fatalf("VersionString %q, want %q", mnnvl.VersionString(), want)
	}
}

func TestStatusNames(t *testing.T) {
	names := map[mnnvl.Status]string{
		mnnvl.Success: "MNNVL_SUCCESS", mnnvl.ErrInvalidArgument: "MNNVL_ERR_INVALID_ARGUMENT",
		mnnvl.ErrInvalidUsage: "MNNVL_ERR_INVALID_USAGE", mnnvl.ErrNoMemory: "MNNVL_ERR_NO_MEMORY",
		mnnvl.ErrCUDA: "MNNVL_ERR_CUDA", mnnvl.ErrNoDevice: "MNNVL_ERR_NO_DEVICE",
		mnnvl.ErrUnsupported: "MNNVL_ERR_UNSUPPORTED", mnnvl.ErrBootstrap: "MNNVL_ERR_BOOTSTRAP",
		mnnvl.ErrTimeout: "MNNVL_ERR_TIMEOUT", mnnvl.ErrPeerLost: "MNNVL_ERR_PEER_LOST",
		mnnvl.ErrGraphCapture: "MNNVL_ERR_GRAPH_CAPTURE", mnnvl.ErrAborted: "MNNVL_ERR_ABORTED",
		mnnvl.ErrMismatch: "MNNVL_ERR_MISMATCH", mnnvl.ErrAuth: "MNNVL_ERR_AUTH",
		mnnvl.ErrInternal: "MNNVL_ERR_INTERNAL",
	}
	for status, name := range names {
		if status.String() != name {
			t.Errorf("status %d is %s in the library, %s here", int(status), status.String(), name)
		}
	}
}

func TestMappingRuleBroken(t *testing.T) {
	m := mnnvl.Mapping{WorldSize: 8, Rank: 0, GPUsPerNode: 8, TP: 3, PP: 2, CP: 1, MoeTP: 3, MoeEP: 1}
	err := m.Validate()
	var e *mnnvl.Error
	if !errors.As(err, &e) || !errors.Is(err, mnnvl.ErrInvalidArgument) {
		t.Fatalf("Validate() = %v, want an ErrInvalidArgument *Error", err)
	}
	if !strings.Contains(e.Message, "tp*pp*cp = 3*2*1 = 6 must equal world_size 8") {
		t.Fatalf("the message does not name the rule: %q", e.Message)
	}
	good := mnnvl.Mapping{WorldSize: 8, Rank: 5, GPUsPerNode: 8, TP: 2, PP: 2, CP: 2, MoeTP: 2,
		MoeEP: 1}
	ranks, index, err := good.Group(mnnvl.GroupPP)
	if err != nil || fmt.Sprint(ranks) != "[1 5]" || index != 1 {
		t.Fatalf("Group(PP) = %v %d %v, want [1 5] 1", ranks, index, err)
	}
	tp := mnnvl.TensorParallel(4, 2)
	if tp.TP != 4 || tp.MoeTP != 4 || tp.PP != 1 || tp.Validate() != nil {
		t.Fatalf("TensorParallel(4, 2) = %+v", tp)
	}
}

func TestWorkspaceSizePlanning(t *testing.T) {
	p := mnnvl.DefaultAllReduceParams()
	if p.DType != mnnvl.BF16 || p.MaxCount <= 0 {
		t.Fatalf("defaults %+v", p)
	}
	p.MaxCount = 1 << 10
	small, err := mnnvl.AllReduceWorkspaceSize(p, 4)
	if err != nil {
		t.Fatal(err)
	}
	p.MaxCount = 1 << 24
	large, err := mnnvl.AllReduceWorkspaceSize(p, 4)
	if err != nil || !(0 < small && small < large) {
		t.Fatalf("sizes %d < %d (%v)", small, large, err)
	}
	p.MaxCount = 0
	if _, err := mnnvl.AllReduceWorkspaceSize(p, 4); !errors.Is(err, mnnvl.ErrInvalidArgument) ||
		!strings.Contains(err.Error(), "max_count 0") {
		t.Fatalf("max_count 0: %v", err)
	}
	moe := mnnvl.DefaultMoeA2AParams()
	moe.EPSize, moe.NumExperts, moe.TopK, moe.MaxTokensPerRank = 4, 16, 2, 128
	moe.PayloadBytes, moe.Hidden = []int{7168 * 2}, 7168
	if size, err := mnnvl.MoeA2AWorkspaceSize(moe); err != nil || size <= 0 {
		t.Fatalf("MoE workspace %d, %v", size, err)
	}
}

// onRanks runs fn on size goroutines and reports each rank's error.
func onRanks(t *testing.T, size int, fn func(rank int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, size)
	for r := 0; r < size; r++ {
		wg.Add(1)
		go func(rank int) {
			defer wg.Done()
			errs[rank] = fn(rank)
		}(r)
	}
	wg.Wait()
	for r, err := range errs {
		if err != nil {
			t.Errorf("rank %d: %v", r, err)
		}
	}
}

func newConfig(t *testing.T, settings map[string]string) *mnnvl.Config {
	t.Helper()
	cfg, err := mnnvl.NewConfig(settings)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestFourCPURanksOverTCP(t *testing.T) {
	rootCfg := newConfig(t, map[string]string{"job_key": "go-test-key-0123456789abcdef0123456789"})
	defer rootCfg.Close()
	root, err := mnnvl.StartRoot(rootCfg, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	onRanks(t, 4, func(rank int) error {
		cfg, err := mnnvl.NewConfig(map[string]string{"root": root.Address(), "root_mode": "external",
			"job_key": "go-test-key-0123456789abcdef0123456789", "timeout_ms": "30000"})
		if err != nil {
			return err
		}
		defer cfg.Close()
		comm, err := mnnvl.NewComm(cfg, rank, 4, -1)
		if err != nil {
			return err
		}
		defer comm.Close()
		if comm.Rank() != rank || comm.Size() != 4 || comm.Device() != -1 || comm.HandleType() != "none" {
			return fmt.Errorf("communicator %v, handles %s", comm, comm.HandleType())
		}
		blocks, err := comm.Allgather(bytes.Repeat([]byte{byte(rank)}, 16))
		if err != nil {
			return err
		}
		for r, b := range blocks {
			if !bytes.Equal(b, bytes.Repeat([]byte{byte(r)}, 16)) {
				return fmt.Errorf("allgather block %d is %v", r, b)
			}
		}
		if err := comm.Barrier(); err != nil {
			return err
		}
		buf := make([]byte, 11)
		if rank == 2 {
			copy(buf, "from rank 2")
		}
		if err := comm.Broadcast(buf, 2); err != nil || string(buf) != "from rank 2" {
			return fmt.Errorf("broadcast %q, %v", buf, err)
		}
		mapping := mnnvl.Mapping{WorldSize: 4, Rank: rank, GPUsPerNode: 4, TP: 2, PP: 2, CP: 1,
			MoeTP: 2, MoeEP: 1}
		tp, err := comm.Split(mapping, mnnvl.GroupTP)
		if err != nil {
			return err
		}
		defer tp.Close()
		peers, err := tp.Allgather([]byte{byte(rank)})
		if err != nil {
			return err
		}
		first := byte(rank / 2 * 2)
		if tp.Size() != 2 || peers[0][0] != first || peers[1][0] != first+1 {
			return fmt.Errorf("TP group of rank %d: size %d, %v", rank, tp.Size(), peers)
		}
		if err := comm.AsyncError(); err != nil {
			return err
		}
		return comm.Finalize()
	})
}

func TestRank0RootMode(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	address := l.Addr().String()
	l.Close()
	onRanks(t, 2, func(rank int) error {
		cfg, err := mnnvl.NewConfig(map[string]string{"root": address, "timeout_ms": "30000"})
		if err != nil {
			return err
		}
		defer cfg.Close()
		comm, err := mnnvl.NewComm(cfg, rank, 2, -1)
		if err != nil {
			return err
		}
		defer comm.Close()
		blocks, err := comm.Allgather([]byte(fmt.Sprintf("r%d", rank)))
		if err != nil || string(blocks[0]) != "r0" || string(blocks[1]) != "r1" {
			return fmt.Errorf("allgather %q, %v", blocks, err)
		}
		return nil
	})
}

func TestWrongJobKeyRefused(t *testing.T) {
	rootCfg := newConfig(t, map[string]string{"job_key": "the right key of the test 0123456789abcdef"})
	defer rootCfg.Close()
	root, err := mnnvl.StartRoot(rootCfg, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	cfg := newConfig(t, map[string]string{"root": root.Address(), "root_mode": "external",
		"job_key": "a wrong key of the test 0123456789abcdef", "timeout_ms": "10000"})
	defer cfg.Close()
	comm, err := mnnvl.NewComm(cfg, 0, 1, -1)
	if err == nil {
		comm.Close()
		t.Fatal("a wrong job key was accepted")
	}
	var e *mnnvl.Error
	if !errors.As(err, &e) || e.Status != mnnvl.ErrAuth || !strings.Contains(e.Message, "job key") {
		t.Fatalf("got %v, want ErrAuth naming the job key", err)
	}
}

func TestConfigKeys(t *testing.T) {
	cfg := newConfig(t, map[string]string{"timeout_ms": "1500"})
	defer cfg.Close()
	if v, err := cfg.Get("timeout_ms"); err != nil || v != "1500" {
		t.Fatalf("timeout_ms %q, %v", v, err)
	}
	if v, err := cfg.Get("root"); err != nil || v != "" {
		t.Fatalf("root %q, %v (want the empty value)", v, err)
	}
	if _, err := cfg.Get("no_such_key"); !errors.Is(err, mnnvl.ErrInvalidArgument) {
		t.Fatalf("an unknown key read as %v", err)
	}
	if err := cfg.Set("timeout_ms", "soon"); !errors.Is(err, mnnvl.ErrInvalidArgument) {
		t.Fatalf("a bad value was accepted: %v", err)
	}
	if err := mnnvl.BootstrapAvailable("tcp"); err != nil {
		t.Fatalf("tcp: %v", err)
	}
	if err := mnnvl.BootstrapAvailable("carrier-pigeon"); !errors.Is(err, mnnvl.ErrUnsupported) {
		t.Fatalf("an unknown backend: %v", err)
	}
}

func TestLogHandler(t *testing.T) {
	var mu sync.Mutex
	var lines []string
	mnnvl.SetLogHandler(func(level mnnvl.LogLevel, message string) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, fmt.Sprintf("%d %s", level, message))
	})
	old := mnnvl.GetLogLevel()
	mnnvl.SetLogLevel(mnnvl.LogInfo)
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	address := l.Addr().String()
	l.Close()
	cfg := newConfig(t, map[string]string{"root": address, "timeout_ms": "10000"})
	defer cfg.Close()
	comm, err := mnnvl.NewComm(cfg, 0, 1, -1)
	cfg.Close()
	mnnvl.SetLogLevel(old)
	mnnvl.SetLogHandler(nil)
	if err != nil {
		t.Fatal(err)
	}
	comm.Close()
	mu.Lock()
	defer mu.Unlock()
	for _, line := range lines {
		info := strings.HasPrefix(line, fmt.Sprintf("%d ", mnnvl.LogInfo))
		if info && strings.Contains(line, "communicator") {
			return
		}
	}
	t.Fatalf("no INFO line about the communicator among %q", lines)
}

func TestClosedHandles(t *testing.T) {
	cfg := newConfig(t, nil)
	if err := cfg.Close(); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Close(); err != nil {
		t.Fatalf("a second Close: %v", err)
	}
	var comm *mnnvl.Comm
	if err := comm.Close(); err != nil {
		t.Fatalf("Close of nil: %v", err)
	}
}

func TestDcpPlanning(t *testing.T) {
	p := mnnvl.DefaultDcpA2AParams()
	if p.HeadDim != 128 || p.DType != mnnvl.BF16 || p.StatsLanes != 2 || p.LseBase != mnnvl.LseBaseE {
		t.Fatalf("defaults %+v", p)
	}
	p.CPSize, p.MaxEntries = 4, 64
	small, err := mnnvl.DcpA2AWorkspaceSize(p)
	p.MaxEntries = 128
	large, err2 := mnnvl.DcpA2AWorkspaceSize(p)
	// 64 more rows of D bf16 and S fp32 from each of 4 sources, in two buffers
	row := 128*2 + 2*4
	if err != nil || err2 != nil || large-small < 2*4*64*row || large-small >= 2*4*64*(row+16) {
		t.Fatalf("sizes %d, %d (%v, %v)", small, large, err, err2)
	}
	bad := []struct {
		change func(*mnnvl.DcpA2AParams)
		words  string
	}{
		{func(q *mnnvl.DcpA2AParams) { q.MaxEntries = 0 }, "max_entries 0"},
		{func(q *mnnvl.DcpA2AParams) { q.HeadDim = 100 }, "head_dim 100"},
		{func(q *mnnvl.DcpA2AParams) { q.StatsLanes = mnnvl.DcpMaxStatsLanes + 1 }, "stats_lanes 9"},
		{func(q *mnnvl.DcpA2AParams) { q.DType = mnnvl.FP32 }, "dtype 0"},
		{func(q *mnnvl.DcpA2AParams) { q.LseBase = 7 }, "lse_base 7"},
		{func(q *mnnvl.DcpA2AParams) { q.CPSize = mnnvl.DcpMaxRanks + 1 }, "cp_size 65"},
	}
	for _, b := range bad {
		q := p
		b.change(&q)
		if _, err := mnnvl.DcpA2AWorkspaceSize(q); !errors.Is(err, mnnvl.ErrInvalidArgument) ||
			!strings.Contains(err.Error(), b.words) {
			t.Errorf("%s: %v", b.words, err)
		}
	}
}

func TestDcpOnCPUOnlyComm(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	address := l.Addr().String()
	l.Close()
	cfg := newConfig(t, map[string]string{"root": address, "timeout_ms": "10000"})
	defer cfg.Close()
	comm, err := mnnvl.NewComm(cfg, 0, 1, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer comm.Close()
	p := mnnvl.DefaultDcpA2AParams()
	p.CPSize, p.MaxEntries = 1, 16
	d, err := mnnvl.NewDcpAllToAll(comm, p)
	switch {
	case d != nil:
		d.Close()
		t.Fatal("a DCP all-to-all was made on a CPU-only communicator")
	case errors.Is(err, mnnvl.ErrInvalidUsage) && strings.Contains(err.Error(), "CPU-only (device -1)"):
	case errors.Is(err, mnnvl.ErrUnsupported) && strings.Contains(err.Error(), "built without CUDA"):
	default:
		t.Fatalf("CPU-only communicator: %v", err)
	}
	var closed *mnnvl.DcpAllToAll // never created: its calls are errors, not panics
	if err := closed.Transpose(0, 0, 0, 0, 0, 0); !errors.Is(err, mnnvl.ErrInvalidArgument) &&
		!errors.Is(err, mnnvl.ErrUnsupported) {
		t.Errorf("nil handle: %v", err)
	}
	if err := closed.Close(); err != nil {
		t.Errorf("closing nil: %v", err)
	}
}
