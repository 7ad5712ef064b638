package main

import (
	"context"
	"fmt"
)

// Each command's constructor takes the function that does the work, so the
// flags can be checked apart from it.
func ExampleNewCmdServe() {
	cmd := NewCmdServe(func(_ context.Context, o *ServeOptions) error {
		fmt.Println(o.Target, o.Server.Host, o.Server.Port, o.Server.MemoryLimit.String(), o.Server.RoomGrace.String())
		return nil
	})
	cmd.SetArgs([]string{"dist", "-p", "9000", "--memory-limit", "32MiB", "--room-grace", "forever"})
	if err := cmd.Execute(); err != nil {
		fmt.Println(err)
	}
	// Output: dist 127.0.0.1 9000 32MiB forever
}
