package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// NewCmdVersion returns `stateroom version`. Unlike the other commands it
// takes no runF and has no options struct: there are no flags to check
// apart from the work.
func NewCmdVersion() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of stateroom and of the Go toolchain that built it",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), versionString())
			return err
		},
	}
}

// versionString describes this binary from its build information, e.g.
// "stateroom v0.1.0 (go1.26.8 linux/amd64)", with the VCS revision when the
// binary was built from a checkout.
func versionString() string {
	version, goVersion, rev := "(unknown)", runtime.Version(), ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		version = bi.Main.Version
		goVersion = bi.GoVersion
		var modified bool
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev != "" && modified {
			rev += "+dirty"
		}
	}
	if version == "" {
		version = "(devel)"
	}
	s := fmt.Sprintf("stateroom %s (%s %s/%s", version, goVersion, runtime.GOOS, runtime.GOARCH)
	if rev != "" {
		s += ", revision " + rev
	}
	return s + ")"
}
