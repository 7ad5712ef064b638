package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// VersionOptions are the inputs of `stateroom version`.
type VersionOptions struct {
	// Stdout receives the version line.
	Stdout io.Writer
}

// NewCmdVersion returns `stateroom version`. runF does the work; nil means
// runVersion.
func NewCmdVersion(runF func(context.Context, *VersionOptions) error) *cobra.Command {
	opts := &VersionOptions{}
	if runF == nil {
		runF = runVersion
	}
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of stateroom and of the Go toolchain that built it",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Stdout = cmd.OutOrStdout()
			return runF(cmd.Context(), opts)
		},
	}
}

// runVersion prints e.g. "stateroom v0.1.0 (go1.26.8 linux/amd64)", with
// the VCS revision when the binary was built from a checkout.
func runVersion(_ context.Context, opts *VersionOptions) error {
	_, err := fmt.Fprintln(opts.Stdout, versionString())
	return err
}

// versionString describes this binary from its build information.
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
