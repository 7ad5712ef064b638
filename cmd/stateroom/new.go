package main

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"text/template"

	"github.com/spf13/cobra"
)

// scaffold holds the files of a new service. Go sources end in .tmpl so
// the go command does not take the directory for a package of this module;
// gitignore becomes .gitignore.
//
//go:embed scaffold
var scaffold embed.FS

// NewOptions are the inputs of `stateroom new`.
type NewOptions struct {
	// Dir is the directory to create; its base name names the service.
	Dir string
	// Module is the new go.mod's module path (--module, default the base
	// name of Dir).
	Module string
	// Framework is the Stateroom source directory the new go.mod's replace
	// directive points at (--framework; default STATEROOM_SOURCE, else the
	// source this binary was built from).
	Framework string
	// Stdout receives the next steps.
	Stdout io.Writer
}

// NewCmdNew returns `stateroom new`. runF does the work; nil means runNew.
func NewCmdNew(runF func(context.Context, *NewOptions) error) *cobra.Command {
	opts := &NewOptions{}
	if runF == nil {
		runF = runNew
	}
	cmd := &cobra.Command{
		Use:   "new NAME",
		Short: "Create a new service (a counter) in directory NAME",
		Long: `Create a service in the new directory NAME: a counter shared by everyone in a
room, with its web page, ready for "stateroom dev".

The new go.mod imports the Stateroom framework through a replace directive
pointing at its source (it is not published as a module): --framework DIR, else
$STATEROOM_SOURCE, else the source tree this stateroom binary was built from.
Third-party modules come from the local module cache, so the service builds
without a network on a machine that has built Stateroom.`,
		Example: `  stateroom new myservice && cd myservice && stateroom dev
  stateroom new ./svc --module example.com/team/svc`,
		Args: exactArgs(1, "the name of the directory to create"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Dir = args[0]
			opts.Stdout = cmd.OutOrStdout()
			return runF(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Module, "module", "", "module path of the new go.mod (default: the directory's name)")
	cmd.Flags().StringVar(&opts.Framework, "framework", "", "Stateroom source directory for the replace directive (default: $STATEROOM_SOURCE, else this binary's source)")
	return cmd
}

// moduleElem is one element of a module path we accept: what the go
// command accepts, minus the rare characters that would need quoting.
var moduleElem = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._~-]*$`)

// runNew writes the scaffold.
func runNew(ctx context.Context, opts *NewOptions) error {
	dir := filepath.Clean(opts.Dir)
	name := filepath.Base(dir)
	module := opts.Module
	if module == "" {
		module = name
	}
	if err := checkModulePath(module, opts.Module == ""); err != nil {
		return err
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("%s already exists and is not empty; choose a new name, or remove it", dir)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s exists and is not a directory; choose a new name", dir)
	}
	fw, fwMod, err := findFramework(ctx, opts.Framework)
	if err != nil {
		return err
	}
	data := struct{ Name, Module string }{Name: name, Module: module}
	if err := writeScaffold(dir, data); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), goModFor(module, fw, fwMod), 0o644); err != nil {
		return err
	}
	// The framework's go.sum holds the hashes of every module the
	// scaffold can need: a superset, and it lets the go command verify
	// modules from the cache without asking the checksum database.
	if sum, err := os.ReadFile(filepath.Join(fw, "go.sum")); err == nil {
		if err := os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644); err != nil {
			return err
		}
	}
	if err := tidyOffline(ctx, dir); err != nil {
		fmt.Fprintf(opts.Stdout, "note: go mod tidy failed (%v);\nthe go.mod lists every module Stateroom uses, which is enough to build.\n", err)
	}
	fmt.Fprintf(opts.Stdout, "Created %s (module %s, Stateroom from %s).\n\nNext:\n\n  cd %s\n  stateroom dev\n\nthen open http://127.0.0.1:8080 in two tabs.\n", dir, module, fw, dir)
	return nil
}

// checkModulePath checks a module path; fromDir says it came from the
// directory name, so the advice is to pass --module.
func checkModulePath(module string, fromDir bool) error {
	for _, elem := range strings.Split(module, "/") {
		if !moduleElem.MatchString(elem) {
			if fromDir {
				return fmt.Errorf("%q cannot name a Go module; use letters, digits, '-', '_' or '.', or pass --module, e.g. --module example.com/%s", module, "myservice")
			}
			return fmt.Errorf("--module %q is not a module path; use slash-separated elements of letters, digits, '-', '_' or '.', e.g. example.com/team/myservice", module)
		}
	}
	return nil
}

// writeScaffold renders the embedded scaffold into dir.
func writeScaffold(dir string, data any) error {
	return fs.WalkDir(scaffold, "scaffold", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(path, "scaffold"), "/")
		target := filepath.Join(dir, filepath.FromSlash(rel))
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		content, err := scaffold.ReadFile(path)
		if err != nil {
			return err
		}
		if base, ok := strings.CutSuffix(target, ".tmpl"); ok {
			t, err := template.New(rel).Option("missingkey=error").Parse(string(content))
			if err != nil {
				return fmt.Errorf("scaffold %s: %w", rel, err)
			}
			var b bytes.Buffer
			if err := t.Execute(&b, data); err != nil {
				return fmt.Errorf("scaffold %s: %w", rel, err)
			}
			target, content = base, b.Bytes()
		}
		if filepath.Base(target) == "gitignore" {
			target = filepath.Join(filepath.Dir(target), ".gitignore")
		}
		return os.WriteFile(target, content, 0o644)
	})
}

// goModFor writes the new service's go.mod: the framework through a
// replace directive, and the framework's own requirements, so the build
// list is the one the framework was tested with and every module in it is
// already in the local cache.
func goModFor(module, fw string, fwMod *goModule) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "module %s\n\ngo %s\n\nrequire %s v0.0.0-00010101000000-000000000000\n", module, fwMod.Go, modulePath)
	if len(fwMod.Require) > 0 {
		b.WriteString("\nrequire (\n")
		for _, r := range fwMod.Require {
			fmt.Fprintf(&b, "\t%s %s // indirect\n", r.Path, r.Version)
		}
		b.WriteString(")\n")
	}
	fmt.Fprintf(&b, "\n// Stateroom is not published as a module yet: build it from source.\nreplace %s => %s\n", modulePath, quoteModPath(fw))
	return b.Bytes()
}

// tidyOffline trims the copied requirements and go.sum to what the new
// service uses. GOPROXY=off keeps it to the local module cache: `new` must
// work without a network, and every module the service needs is there
// because the framework was built on this machine.
func tidyOffline(ctx context.Context, dir string) error {
	cmd := exec.CommandContext(ctx, "go", "mod", "tidy")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOPROXY=off", "GOFLAGS=-mod=mod")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// quoteModPath quotes a file path for go.mod when it holds spaces or
// quotes.
func quoteModPath(p string) string {
	if strings.ContainsAny(p, " \t\"'`\\") {
		return fmt.Sprintf("%q", p)
	}
	return p
}
