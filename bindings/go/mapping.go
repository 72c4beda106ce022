package mnnvl

import "github.com/libmnnvl/libmnnvl/bindings/go/mnnvl/internal/raw"

// Mapping is how the ranks of a job split into parallel groups (mnnvl_mapping_t). Rank
// order: TP fastest, then CP, then PP; the MoE groups subdivide each TP group, MoeEP
// fastest.
type Mapping struct {
	WorldSize   int
	Rank        int
	GPUsPerNode int
	TP          int // tensor parallel
	PP          int // pipeline parallel
	CP          int // context parallel
	MoeTP       int // MoE tensor parallel, inside a TP group
	MoeEP       int // MoE expert parallel, inside a TP group
}

// Group names a parallel group of a Mapping (mnnvl_group_t).
type Group int

// The groups.
const (
	GroupWorld Group = iota
	GroupTP
	GroupPP
	GroupCP
	GroupMoeTP
	GroupMoeEP
)

// TensorParallel is the mapping of pure tensor parallelism (mnnvl_mapping_init).
func TensorParallel(worldSize, rank int) Mapping {
	fields := make([]int32, 8)
	raw.Mnnvl_mapping_init(fields, worldSize, rank)
	return mappingOf(fields)
}

// Validate checks every rule; the error's message names each broken one.
func (m Mapping) Validate() error {
	return check(raw.Mnnvl_mapping_validate(m.fields()))
}

// Group lists, ascending, the world ranks of the group g that contains m.Rank, and the
// position of m.Rank among them.
func (m Mapping) Group(g Group) (ranks []int, index int, err error) {
	if m.WorldSize < 1 {
		return nil, -1, m.Validate()
	}
	list := make([]int32, m.WorldSize)
	var count, at int32
	err = check(raw.Mnnvl_mapping_group(m.fields(), raw.Enum_SS_mnnvl_group(g), list, &count, &at))
	if err != nil {
		return nil, -1, err
	}
	ranks = make([]int, count)
	for i := range ranks {
		ranks[i] = int(list[i])
	}
	return ranks, int(at), nil
}

// fields is the mapping as the generated layer passes it: its ints in C field order.
func (m Mapping) fields() []int32 {
	return []int32{int32(m.WorldSize), int32(m.Rank), int32(m.GPUsPerNode), int32(m.TP),
		int32(m.PP), int32(m.CP), int32(m.MoeTP), int32(m.MoeEP)}
}

func mappingOf(f []int32) Mapping {
	return Mapping{WorldSize: int(f[0]), Rank: int(f[1]), GPUsPerNode: int(f[2]), TP: int(f[3]),
		PP: int(f[4]), CP: int(f[5]), MoeTP: int(f[6]), MoeEP: int(f[7])}
}
