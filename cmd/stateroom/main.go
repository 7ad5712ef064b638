// Command stateroom builds, serves and develops Stateroom services.
//
// Usage:
//
//	stateroom new NAME        scaffold a service (a counter) in NAME/
//	stateroom dev [DIR]       build, serve on 127.0.0.1:8080, rebuild on change
//	stateroom build [DIR]     build DIR's Go service to DIR/dist/server.wasm
//	stateroom serve MODULE|DIR  serve a .wasm module (and its static files)
//	stateroom bench ...       load-test a Stateroom server
//	stateroom version         print the version
//
// serve and dev keep the rooms' state in .stateroom/rooms.db under the
// working directory (--state-dir, --no-state), so rooms outlive a restart
// or a rebuild.
//
// Run "stateroom COMMAND --help" for the flags of each command. The project
// file stateroom.toml is described in package internal/config.
package main

import "os"

func main() {
	os.Exit(Execute(os.Args[1:], os.Stdout, os.Stderr))
}
