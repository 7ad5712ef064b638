// Command hubserver serves the gorilla/websocket baseline hub (bench/hub)
// with the same URLs as bench/relayserver, for `stateroom bench`.
//
//	go run ./bench/hubserver --addr 127.0.0.1:8081
//	stateroom bench fanout --url ws://127.0.0.1:8081/ws
//	go run ./bench/hubserver --cpuprofile /tmp/hub.prof   # profile written on SIGTERM
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/stateroom-go/stateroom/bench/hub"
	"github.com/stateroom-go/stateroom/bench/profile"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8081", "address to listen on")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file (go tool pprof reads it)")
	flag.Parse()
	if err := run(*addr, *cpuProfile); err != nil {
		fmt.Fprintln(os.Stderr, "hubserver:", err)
		os.Exit(1)
	}
}

func run(addr, cpuProfile string) error {
	stopProfile, err := profile.StartCPU(cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	h, err := hub.New(hub.Options{})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%w (is another server on %s? pick another port with --addr)", err, addr)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = errors.Join(srv.Shutdown(shutCtx), h.Shutdown(shutCtx))
	<-served
	return err
}
