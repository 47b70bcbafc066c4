package main

import (
	"strings"
	"testing"
)

const valid = `
github.com:53 {
    template ANY ANY {
        match "^.+\.github\.com\.$"
        rcode NXDOMAIN
        fallthrough
    }
    template IN AAAA {
        rcode NOERROR
    }
    dnsbpf github.com -
    forward . 1.1.1.2 1.0.0.2
}

.:53 {
    health :18902
    errors
    log . "{type} {name} {rcode} {remote}" {
        class denial
    }
    template ANY ANY {
        rcode NXDOMAIN
    }
}
`

func TestValid(t *testing.T) {
	s, err := Check("Corefile", []byte(valid))
	if err != nil {
		t.Fatal(err)
	}
	if s.ServerBlocks != 2 || s.Zones != 2 {
		t.Fatalf("%+v", s)
	}
	// Checking twice in one process works (no listener, no global state left behind).
	if _, err := Check("Corefile", []byte(valid)); err != nil {
		t.Fatal(err)
	}
}

func TestInvalid(t *testing.T) {
	cases := []struct{ name, corefile, want string }{
		{"unknown directive", ".:53 {\n    forwardd . 1.1.1.1\n}\n", "Corefile:2 - Error during parsing: Unknown directive 'forwardd'"},
		{"dnsbpf arguments", "example.org:53 {\n    dnsbpf example.org\n    forward . 1.1.1.1\n}\n", "plugin/dnsbpf: Corefile:2 - Error during parsing: dnsbpf takes exactly 2 arguments"},
		{"template regex", "example.org:53 {\n    template ANY ANY {\n        match \"^(x\"\n    }\n}\n", "plugin/template: Corefile:3 - Error during parsing: could not parse regex: ^(x"},
		{"forward option", "example.org:53 {\n    forward . 1.1.1.1 {\n        policy fastest\n    }\n}\n", "plugin/forward: Corefile:3 - Error during parsing: unknown policy 'fastest'"},
		{"unclosed block", "example.org:53 {\n    forward . 1.1.1.1\n", "Corefile:2 - Syntax error: Unexpected token '1.1.1.1', expecting '}'"},
		// Found by the server assembly, after every setup succeeded.
		{"zone twice", "example.org:53 {\n    errors\n}\nEXAMPLE.org:53 {\n    errors\n}\n", "cannot serve dns://example.org.:53 - it is already defined"},
	}
	for _, tc := range cases {
		_, err := Check("Corefile", []byte(tc.corefile))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}
