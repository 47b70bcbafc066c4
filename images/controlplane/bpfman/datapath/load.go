package datapath

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// Pin layout under the pin directory D:
//
//	D/<map>                          every map of the object but the route table template
//	D/progs/<program>                the programs
//	D/links/<cgroup id>/<program>    one cgroup link per attached program (removing it detaches)

// ProgPin is the pin path of a program.
func ProgPin(pinDir, prog string) string { return filepath.Join(pinDir, "progs", prog) }

// LinkDir holds the links of one cgroup.
func LinkDir(pinDir string, cgroupID uint64) string {
	return filepath.Join(pinDir, "links", strconv.FormatUint(cgroupID, 10))
}

// LoadReport says what `load` did with each pinned object.
type LoadReport struct {
	PinDir   string            `json:"pinDir"`
	Maps     map[string]string `json:"maps"` // created | reused | replaced: <why>
	Programs []string          `json:"programs"`
	// LinksUpdated counts attached cgroups whose links now run the new programs; LinksPruned
	// counts links removed because their cgroup is gone.
	LinksUpdated int `json:"linksUpdated"`
	LinksPruned  int `json:"linksPruned"`
	// LockedDown lists the cgroups carried over from a replaced container_map with only the
	// lockdown flag: enroll them again.
	LockedDown []uint64 `json:"lockedDown,omitempty"`
	Warnings   []string `json:"warnings,omitempty"`
}

// Load loads the datapath object and pins its maps and programs under pinDir. Pinned maps that
// match the object (type, key and value size, max entries, flags; for route_map also the table
// inside) are reused, so enrolments, routes and the DNS cache survive a restart; pinned maps that
// do not match (an upgrade changed a layout) are replaced by fresh ones. Programs are always
// replaced, and every pinned cgroup link is switched to the new program in place (an atomic
// BPF_LINK_UPDATE: no moment without a program).
func Load(pinDir, objectPath string) (*LoadReport, error) {
	spec, err := LoadSpec(objectPath)
	if err != nil {
		return nil, err
	}
	delete(spec.Maps, routeTableTemplate)
	if err := os.MkdirAll(filepath.Join(pinDir, "progs"), 0o700); err != nil {
		return nil, fmt.Errorf("creating the pin directory %s (is bpffs mounted at /sys/fs/bpf?): %w", pinDir, err)
	}
	report := &LoadReport{PinDir: pinDir, Maps: map[string]string{}}

	// Cgroups enrolled in a container_map that has to be replaced: they are re-enrolled locked
	// down (loopback only) before any program sees the new map, so an upgrade never leaves a
	// running agent unmanaged; the control plane then enrolls them again with their full config.
	var lockdown []uint64
	replacements := map[string]*ebpf.Map{}
	defer func() {
		for _, m := range replacements {
			m.Close()
		}
	}()
	for name, ms := range spec.Maps {
		path := filepath.Join(pinDir, name)
		m, err := ebpf.LoadPinnedMap(path, nil)
		if errors.Is(err, os.ErrNotExist) {
			report.Maps[name] = "created"
			continue
		}
		why := ""
		if err != nil {
			why = err.Error()
		} else if err := compatible(ms, m); err != nil {
			why = err.Error()
		}
		if why != "" {
			if name == ContainerMap && m != nil {
				lockdown = enrolledIDs(m)
			}
			if m != nil {
				m.Close()
			}
			// Unpinning does not disturb programs still using the old map; the new programs get
			// the new one and their links are updated below.
			if err := os.Remove(path); err != nil {
				return nil, fmt.Errorf("removing the stale pinned map %s (%s): %w", path, why, err)
			}
			report.Maps[name] = "replaced: " + why
			continue
		}
		replacements[name] = m
		report.Maps[name] = "reused"
	}

	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{MapReplacements: replacements})
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("the kernel rejected a datapath program: %+v", ve)
		}
		return nil, fmt.Errorf("loading the datapath object into the kernel (needs CAP_BPF and CAP_SYS_ADMIN, kernel >= 5.15): %w", err)
	}
	defer coll.Close()

	for name, m := range coll.Maps {
		if report.Maps[name] == "reused" {
			continue
		}
		if err := pinReplacing(m, filepath.Join(pinDir, name)); err != nil {
			return nil, fmt.Errorf("pinning map %s: %w", name, err)
		}
	}
	if err := ensureRouteTable(coll.Maps[RouteMap], spec.Maps[RouteMap].InnerMap); err != nil {
		return nil, err
	}
	for _, id := range lockdown {
		c := ContainerConfig{Flags: FlagLockdown, EventsRate: 100, EventsBurst: 200}
		if err := coll.Maps[ContainerMap].Put(id, c); err != nil {
			return nil, fmt.Errorf("re-enrolling cgroup %d locked down in the new container_map: %w", id, err)
		}
		report.LockedDown = append(report.LockedDown, id)
	}
	for _, p := range ProgramAttach {
		if err := pinReplacing(coll.Programs[p.Name], ProgPin(pinDir, p.Name)); err != nil {
			return nil, fmt.Errorf("pinning program %s: %w", p.Name, err)
		}
		report.Programs = append(report.Programs, p.Name)
	}
	report.LinksUpdated, report.LinksPruned, report.Warnings = updateLinks(pinDir, coll.Programs)
	return report, nil
}

// compatible is MapSpec.Compatible, plus the table inside route_map: the outer map's key and value
// are always 4 bytes, so only the table shows a changed route_key or route_value. An outer map
// with no table is replaced (it holds no routes, and its inner-map template cannot be checked).
func compatible(ms *ebpf.MapSpec, m *ebpf.Map) error {
	if err := ms.Compatible(m); err != nil {
		return err
	}
	if ms.InnerMap == nil {
		return nil
	}
	var table *ebpf.Map
	if err := m.Lookup(uint32(0), &table); err != nil {
		return fmt.Errorf("no route table in slot 0 (%v)", err)
	}
	defer table.Close()
	if err := ms.InnerMap.Compatible(table); err != nil {
		return fmt.Errorf("route table: %w", err)
	}
	return nil
}

// enrolledIDs reads the cgroup ids of an old container_map, whatever its value layout (the key has
// always been the u64 cgroup id; a map with another key size yields none).
func enrolledIDs(m *ebpf.Map) []uint64 {
	if m.KeySize() != 8 {
		return nil
	}
	var (
		ids []uint64
		id  uint64
	)
	value := make([]byte, m.ValueSize())
	it := m.Iterate()
	for it.Next(&id, value) {
		ids = append(ids, id)
	}
	return ids
}

// ensureRouteTable puts an empty table in route_map's slot 0 if there is none, so that `routes`
// always has a current table to replace and its layout to check.
func ensureRouteTable(outer *ebpf.Map, inner *ebpf.MapSpec) error {
	var table *ebpf.Map
	if err := outer.Lookup(uint32(0), &table); err == nil {
		table.Close()
		return nil
	}
	table, err := ebpf.NewMap(inner)
	if err != nil {
		return fmt.Errorf("creating an empty route table: %w", err)
	}
	defer table.Close()
	if err := outer.Put(uint32(0), table); err != nil {
		return fmt.Errorf("installing an empty route table in route_map: %w", err)
	}
	return nil
}

type pinner interface{ Pin(string) error }

// pinReplacing pins obj at path, atomically replacing whatever is pinned there (pin under a
// temporary name, then rename over the old pin).
func pinReplacing(obj pinner, path string) error {
	tmp := path + "_new" // bpffs refuses names with a dot
	_ = os.Remove(tmp)
	if err := obj.Pin(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}

// updateLinks switches every pinned cgroup link to the program of the same name in progs, and
// removes links whose cgroup no longer exists.
func updateLinks(pinDir string, progs map[string]*ebpf.Program) (updated, pruned int, warnings []string) {
	cgroups, _ := os.ReadDir(filepath.Join(pinDir, "links"))
	for _, cg := range cgroups {
		dir := filepath.Join(pinDir, "links", cg.Name())
		entries, _ := os.ReadDir(dir)
		ok := false
		for _, e := range entries {
			path := filepath.Join(dir, e.Name())
			prog := progs[e.Name()]
			l, err := link.LoadPinnedLink(path, nil)
			if err == nil && prog != nil {
				err = l.Update(prog)
			}
			if l != nil {
				l.Close()
			}
			if err != nil {
				// A cgroup link whose cgroup was removed is defunct: updating it fails.
				_ = os.Remove(path)
				pruned++
				warnings = append(warnings, fmt.Sprintf("removed link %s: %v", path, err))
				continue
			}
			ok = true
		}
		if ok {
			updated++
		} else {
			_ = os.Remove(dir)
		}
	}
	sort.Strings(warnings)
	return updated, pruned, warnings
}
