// Package apirelay carries the control plane's HTTP API between a `docker exec` session and the API's
// Unix socket inside the control-plane container. The host reaches the API only this way: through
// the Docker API, whose access control is the gate, on every engine (local, in a VM, remote), with
// no port published and no socket file shared with the host.
package apirelay

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
)

// ExitNotListening is the exit code when nothing listens on the socket (the control plane is
// starting or stopped): the client reports "not running" instead of a broken connection.
const ExitNotListening = 3

// Run connects to socket and copies stdin to it and it to stdout until either side ends: stdin's
// end means the client went away, the socket's end that the API closed the connection.
func Run(socket string, stdin io.Reader, stdout io.Writer, stderr io.Writer) int {
	conn, err := net.Dial("unix", socket)
	if err != nil {
		fmt.Fprintf(stderr, "relay: nothing listens on %s: %v\n", socket, err)
		return ExitNotListening
	}
	defer conn.Close()
	done := make(chan error, 2)
	go func() {
		_, err := io.Copy(conn, stdin)
		done <- err
	}()
	go func() {
		_, err := io.Copy(stdout, conn)
		done <- err
	}()
	if err := <-done; err != nil && !errors.Is(err, net.ErrClosed) {
		fmt.Fprintf(stderr, "relay: %v\n", err)
		return 1
	}
	return 0
}

// Main is the `relay` subcommand's body.
func Main(socket string) {
	os.Exit(Run(socket, os.Stdin, os.Stdout, os.Stderr))
}
