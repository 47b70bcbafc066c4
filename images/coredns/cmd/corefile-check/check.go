package main

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"unsafe"

	"github.com/coredns/caddy"
	"github.com/coredns/caddy/caddyfile"
)

// Summary describes a valid Corefile.
type Summary struct {
	ServerBlocks int // as written
	Zones        int // zone/port pairs served (a block may name several)
}

// Check loads body (named path in messages) exactly as `coredns -conf` would up to the point of
// listening: caddy.ValidateAndExecuteDirectives parses it and runs every directive's setup
// function in directive order (with the parsing callbacks of the server type); then the server
// type's MakeServers builds each server's plugin chain and rejects zones defined twice. What it
// does not do: run startup callbacks (health listeners, forward's health checks, opening the
// dns_cache map) or bind sockets.
func Check(path string, body []byte) (Summary, error) {
	input := caddy.CaddyfileInput{Filepath: path, Contents: body, ServerTypeName: "dns"}

	// ValidateAndExecuteDirectives with justValidate=true runs the same setups but keeps its
	// Instance to itself, so MakeServers could not follow. An *Instance bound to a server type can
	// only be made inside caddy; caddy.NewTestController makes one (and the server type's context)
	// and keeps it in an unexported field, read here. The caddy version is pinned in go.mod, and
	// the tests fail loudly if this ever stops working.
	controller := caddy.NewTestController("dns", "")
	inst, err := instanceOf(controller)
	if err != nil {
		return Summary{}, err
	}
	if err := caddy.ValidateAndExecuteDirectives(input, inst, false); err != nil {
		return Summary{}, err
	}
	ctx := controller.Context()
	if ctx == nil {
		return Summary{}, errors.New("corefile-check: the dns server type produced no context")
	}
	if _, err := ctx.MakeServers(); err != nil {
		return Summary{}, err
	}
	// Parsed again only to count: the blocks as written.
	blocks, err := caddyfile.Parse(path, bytes.NewReader(body), caddy.ValidDirectives("dns"))
	if err != nil {
		return Summary{}, err
	}
	summary := Summary{ServerBlocks: len(blocks)}
	for _, b := range blocks {
		summary.Zones += len(b.Keys)
	}
	return summary, nil
}

func instanceOf(c *caddy.Controller) (*caddy.Instance, error) {
	field := reflect.ValueOf(c).Elem().FieldByName("instance")
	if !field.IsValid() || field.Type() != reflect.TypeOf((*caddy.Instance)(nil)) {
		return nil, fmt.Errorf("corefile-check: caddy.Controller has no field `instance *caddy.Instance` in this caddy version")
	}
	inst := reflect.NewAt(field.Type(), unsafe.Pointer(field.UnsafeAddr())).Elem().Interface().(*caddy.Instance)
	if inst == nil {
		return nil, errors.New("corefile-check: caddy.NewTestController made no Instance")
	}
	return inst, nil
}
