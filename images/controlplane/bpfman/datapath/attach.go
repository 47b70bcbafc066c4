package datapath

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// CgroupID is the id bpf_get_current_cgroup_id() returns for processes in the cgroup v2
// directory dir: its inode number.
func CgroupID(dir string) (uint64, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return 0, fmt.Errorf("cgroup %s: %w", dir, err)
	}
	var fs syscall.Statfs_t
	if err := syscall.Statfs(dir, &fs); err != nil {
		return 0, fmt.Errorf("cgroup %s: %w", dir, err)
	}
	const cgroup2SuperMagic = 0x63677270
	if fs.Type != cgroup2SuperMagic {
		return 0, fmt.Errorf("%s is not a cgroup v2 directory (mount cgroup2, e.g. at /sys/fs/cgroup/unified)", dir)
	}
	return st.Ino, nil
}

// AttachReport says what `attach` did.
type AttachReport struct {
	CgroupID uint64   `json:"cgroupId"`
	Attached []string `json:"attached"` // new links
	Updated  []string `json:"updated"`  // existing links switched to the pinned program
}

// Attach attaches every datapath program to the cgroup v2 directory cgroupDir with a bpf_link
// pinned under pinDir/links/<cgroup id>/, so the attachment outlives this process. Programs in a
// cgroup also run for its descendants, and a link cannot be removed from inside the container.
// Idempotent: existing links are switched to the currently pinned programs. Attaching does not
// enforce anything yet: the cgroup is unmanaged until it is enrolled.
func Attach(pinDir, cgroupDir string) (*AttachReport, error) {
	id, err := CgroupID(cgroupDir)
	if err != nil {
		return nil, err
	}
	dir := LinkDir(pinDir, id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	report := &AttachReport{CgroupID: id, Attached: []string{}, Updated: []string{}}
	for _, p := range ProgramAttach {
		prog, err := ebpf.LoadPinnedProgram(ProgPin(pinDir, p.Name), nil)
		if err != nil {
			return nil, fmt.Errorf("opening program %s at %s (run `bpfman load --pin-dir %s` first): %w", p.Name, ProgPin(pinDir, p.Name), pinDir, err)
		}
		path := filepath.Join(dir, p.Name)
		if l, err := link.LoadPinnedLink(path, nil); err == nil {
			err = l.Update(prog)
			l.Close()
			prog.Close()
			if err != nil {
				return nil, fmt.Errorf("updating the %s link of cgroup %d: %w", p.Name, id, err)
			}
			report.Updated = append(report.Updated, p.Name)
			continue
		}
		l, err := link.AttachCgroup(link.CgroupOptions{Path: cgroupDir, Attach: p.Attach, Program: prog})
		prog.Close()
		if err != nil {
			return nil, fmt.Errorf("attaching %s to %s: %w", p.Name, cgroupDir, err)
		}
		err = l.Pin(path)
		l.Close()
		if err != nil {
			return nil, fmt.Errorf("pinning the %s link of cgroup %d at %s: %w", p.Name, id, path, err)
		}
		report.Attached = append(report.Attached, p.Name)
	}
	return report, nil
}

// Detach removes the datapath's links from the cgroup with the given id (the cgroup itself may be
// gone already). It does not unenroll: a detached cgroup is simply not seen by the programs.
func Detach(pinDir string, cgroupID uint64) ([]string, error) {
	dir := LinkDir(pinDir, cgroupID)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return []string{}, nil
	}
	if err != nil {
		return nil, err
	}
	detached := []string{}
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		if l, err := link.LoadPinnedLink(path, nil); err == nil {
			// Detach even if someone else holds the link open; a defunct link (cgroup gone) fails
			// here harmlessly.
			_ = l.Detach()
			l.Close()
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return detached, fmt.Errorf("removing link %s: %w", path, err)
		}
		detached = append(detached, e.Name())
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return detached, err
	}
	return detached, nil
}
