package datapath

import (
	"bytes"
	_ "embed"
	"fmt"

	"github.com/cilium/ebpf"
)

// embeddedObject is bpf/build/bpf_sock.o, copied here by `make -C bpf bpfman` before `go build`
// (go:embed cannot reach outside the module). Embedding ties the manager to the object it was
// built with: the Go mirrors of the map layouts and the programs always match.
//
//go:embed bpf/bpf_sock.o
var embeddedObject []byte

// ProgramAttach is every program of the object and the cgroup hook it attaches to, in the order
// `attach` attaches them: the reply (recvmsg) and socket hooks before the hooks that rewrite.
var ProgramAttach = []struct {
	Name   string
	Attach ebpf.AttachType
}{
	{"recvmsg4", ebpf.AttachCGroupUDP4Recvmsg},
	{"recvmsg6", ebpf.AttachCGroupUDP6Recvmsg},
	{"sock_create", ebpf.AttachCGroupInetSockCreate},
	{"connect4", ebpf.AttachCGroupInet4Connect},
	{"connect6", ebpf.AttachCGroupInet6Connect},
	{"sendmsg4", ebpf.AttachCGroupUDP4Sendmsg},
	{"sendmsg6", ebpf.AttachCGroupUDP6Sendmsg},
}

// LoadSpec parses the datapath object: the embedded one when path is empty, else the file.
func LoadSpec(path string) (*ebpf.CollectionSpec, error) {
	var (
		spec *ebpf.CollectionSpec
		err  error
	)
	if path == "" {
		spec, err = ebpf.LoadCollectionSpecFromReader(bytes.NewReader(embeddedObject))
		path = "the embedded bpf_sock.o"
	} else {
		spec, err = ebpf.LoadCollectionSpec(path)
	}
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", path, err)
	}
	for _, p := range ProgramAttach {
		ps, ok := spec.Programs[p.Name]
		if !ok {
			return nil, fmt.Errorf("%s has no program %q: not a Clawker datapath object (build it with make -C bpf)", path, p.Name)
		}
		if ps.AttachType != p.Attach {
			return nil, fmt.Errorf("%s: program %q attaches as %s, want %s", path, p.Name, ps.AttachType, p.Attach)
		}
	}
	for _, m := range []string{ContainerMap, RouteMap, DNSCache, BypassMap, MetricsMap, EventsRingbuf, EventsDrops, RatelimitState, RatelimitDrops, SockOrigDst} {
		if _, ok := spec.Maps[m]; !ok {
			return nil, fmt.Errorf("%s has no map %q: not a Clawker datapath object", path, m)
		}
	}
	return spec, nil
}
