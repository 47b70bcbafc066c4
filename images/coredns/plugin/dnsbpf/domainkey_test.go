package dnsbpf

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// The shared vectors, computed by an independent implementation; the TypeScript core is held to
// the same file (test/unit/domainKey.test.ts).
func vectorsPath(t *testing.T) string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate this test file")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "..", "test", "vectors", "domain-keys.json")
}

func TestDomainKeyVectors(t *testing.T) {
	raw, err := os.ReadFile(vectorsPath(t))
	if err != nil {
		t.Fatalf("reading the shared vectors: %v", err)
	}
	var file struct {
		Algorithm string `json:"algorithm"`
		Vectors   []struct {
			Destination string `json:"destination"`
			Key         string `json:"key"`
		} `json:"vectors"`
	}
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	if file.Algorithm != "fnv1a64" {
		t.Fatalf("algorithm %q, want fnv1a64", file.Algorithm)
	}
	if len(file.Vectors) < 10 {
		t.Fatalf("only %d vectors", len(file.Vectors))
	}
	for _, v := range file.Vectors {
		want, err := strconv.ParseUint(strings.TrimPrefix(v.Key, "0x"), 16, 64)
		if err != nil {
			t.Fatalf("vector %q: key %q: %v", v.Destination, v.Key, err)
		}
		if got := DomainKey(v.Destination); got != want {
			t.Errorf("DomainKey(%q) = 0x%016x, want %s", v.Destination, got, v.Key)
		}
	}
}

func TestDomainKeyDistinguishesWildcardFromExact(t *testing.T) {
	if DomainKey("example.com") == DomainKey(".example.com") {
		t.Fatal("example.com and .example.com share a key")
	}
	if d := NewDestination(".example.com"); d.Key != DomainKey(".example.com") || d.Name != ".example.com" {
		t.Fatalf("NewDestination: %+v", d)
	}
}
