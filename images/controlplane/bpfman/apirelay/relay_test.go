package apirelay

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// listen serves a Unix socket in a temporary directory, closed when the test ends.
func listen(t *testing.T) (string, net.Listener) {
	socket := filepath.Join(t.TempDir(), "api.sock")
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return socket, ln
}

// A request written to stdin reaches the socket, the answer comes back on stdout, and the relay
// ends when the API closes the connection.
func TestRelayCarriesBothWays(t *testing.T) {
	socket, ln := listen(t)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		line, _ := bufio.NewReader(c).ReadString('\n')
		c.Write([]byte("echo: " + line))
		c.Close()
	}()
	stdinR, stdinW := io.Pipe()
	var out, errOut bytes.Buffer
	code := make(chan int, 1)
	go func() { code <- Run(socket, stdinR, &out, &errOut) }()
	stdinW.Write([]byte("GET /v1/status\n"))
	select {
	case c := <-code:
		if c != 0 {
			t.Fatalf("exit %d: %s", c, errOut.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the relay did not end when the API closed the connection")
	}
	if out.String() != "echo: GET /v1/status\n" {
		t.Fatalf("stdout %q", out.String())
	}
}

// The client going away (stdin ends) ends the relay even while the API keeps the connection open
// (a followed event stream).
func TestRelayEndsWithStdin(t *testing.T) {
	socket, ln := listen(t)
	go func() {
		c, _ := ln.Accept()
		time.Sleep(10 * time.Second) // never answers
		c.Close()
	}()
	code := make(chan int, 1)
	go func() { code <- Run(socket, strings.NewReader("GET /v1/events?follow=1\n"), io.Discard, io.Discard) }()
	select {
	case c := <-code:
		if c != 0 {
			t.Fatalf("exit %d", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the relay outlived its client")
	}
}

// Nothing listening: exit 3, so the client can say "not running".
func TestRelayNothingListening(t *testing.T) {
	var errOut bytes.Buffer
	if c := Run(filepath.Join(t.TempDir(), "none.sock"), strings.NewReader(""), io.Discard, &errOut); c != ExitNotListening {
		t.Fatalf("exit %d, want %d", c, ExitNotListening)
	}
	if !strings.Contains(errOut.String(), "nothing listens on") {
		t.Fatalf("stderr %q", errOut.String())
	}
}
