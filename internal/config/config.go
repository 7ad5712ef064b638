// Package config reads stateroom.toml, the project file of a Stateroom
// service directory.
//
// The keys are upstream Stateroom's where they apply, so a project file
// written for jamsocket/stateroom reads the same here:
//
//	# Directory of static files served at "/" (relative to this file).
//	# Default: "static" when that directory exists, else none.
//	static_files = "static"
//
//	# Upstream's deployment id. Accepted for compatibility; unused.
//	service_id = "my-service"
//
//	[service]
//	# The Go package of the service, relative to this file. Default ".".
//	package = "."
//
//	[client]
//	# Optional: a Go package compiled for the browser (GOOS=js GOARCH=wasm)
//	# to dist/client/client.wasm and served at /client/.
//	package = "./client"
//	# Upstream's optimisation level. Accepted for compatibility; unused.
//	optimization_level = "s"
//
// Keys of our own hold settings of the flags of `stateroom serve` and
// `stateroom dev`, so a project keeps them in one place;
// [Config.ApplyFlags] sets a command's flags from them, and a flag given
// on the command line wins over the file:
//
//	[state]
//	# Where rooms' saved state is kept (the file rooms.db): a directory
//	# relative to this file, or absolute (--state-dir). Default: .stateroom
//	# in the working directory.
//	dir = ".stateroom"
//	# false keeps rooms in memory only: their state is lost when the
//	# process stops (--no-state). Default true.
//	persist = true
//	# The most often a room with events is saved; a crash loses at most
//	# this much (--checkpoint-interval). Default "1s".
//	checkpoint_interval = "1s"
//	# Drop the instance of a room idle this long, keeping its state and
//	# clients; "0s" never (--hibernate-after). Default "5m".
//	hibernate_after = "5m"
//
//	[limits]
//	# The abuse limits, one key per flag (see Limits): max_message_size,
//	# max_message_fragments, max_room_id_length, max_rooms_created_per_ip,
//	# allowed_hosts, send_queue_size, write_timeout.
//	max_message_size = "1MiB"
//	allowed_hosts = ["app.example.com"]
//
// A directory without stateroom.toml uses the defaults. A key not listed
// above is an error that names the file, the line and the valid keys: a typo
// silently ignored would leave the user wondering why a setting has no effect.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// FileName is the name of the project file in a service directory.
const FileName = "stateroom.toml"

// DefaultStaticDir is the static directory used when static_files is not
// set and a directory of that name exists.
const DefaultStaticDir = "static"

// ErrInvalid matches (errors.Is) every error about the content of a project
// file. Those errors start with file:line:column or the file name, as a
// compiler's do, rather than with a package prefix.
var ErrInvalid = errors.New("config: invalid " + FileName)

// invalidError is an error about a project file's content.
type invalidError struct{ msg string }

func (e *invalidError) Error() string        { return e.msg }
func (e *invalidError) Is(target error) bool { return target == ErrInvalid }

// invalid formats an error that matches ErrInvalid.
func invalid(format string, args ...any) error {
	return &invalidError{msg: fmt.Sprintf(format, args...)}
}

// validKeys lists the keys a project file may hold, as the user writes them.
// Error messages quote it so the fix is in the message.
const validKeys = `static_files, service_id, [service] package, [client] package, [client] optimization_level` +
	`, [state] dir, [state] persist, [state] checkpoint_interval, [state] hibernate_after` +
	limitKeys

// expected says what each key holds, for type errors.
var expected = map[string]string{
	"static_files":              "a string",
	"service_id":                "a string",
	"service":                   "a table [service]",
	"service.package":           "a string",
	"client":                    "a table [client]",
	"client.package":            "a string",
	"client.optimization_level": "a string",

	"state":                     "a table [state]",
	"state.dir":                 "a string",
	"state.persist":             "true or false",
	"state.checkpoint_interval": `a duration such as "1s"`,
	"state.hibernate_after":     `a duration such as "5m", or "0s"`,
}

// Config is a parsed project file.
type Config struct {
	// File is the path of the file read; "" when the directory has none and
	// the defaults apply.
	File string
	// StaticFiles is the static directory as written in the file (key
	// static_files), relative to the file's directory; "" when not set.
	StaticFiles string
	// ServiceID is upstream's deployment id (key service_id); unused.
	ServiceID string
	// ServicePackage is the Go package of the service (key [service]
	// package), relative to the file's directory. Default ".".
	ServicePackage string
	// ClientPackage is the Go package built for the browser (key [client]
	// package); "" when the file has no [client] table.
	ClientPackage string
	// ClientOptimizationLevel is upstream's key [client]
	// optimization_level; accepted and unused.
	ClientOptimizationLevel string

	// State is the [state] table: settings of serve's and dev's state
	// flags; see ApplyFlags.
	State State

	// Limits is the [limits] table: settings of serve's and dev's abuse
	// limit flags (see ApplyFlags); nil when the file has none.
	Limits *Limits
}

// file mirrors the TOML document. Pointers tell "absent" from "empty".
type file struct {
	StaticFiles *string `toml:"static_files"`
	ServiceID   *string `toml:"service_id"`
	Service     *struct {
		Package *string `toml:"package"`
	} `toml:"service"`
	Client *struct {
		Package           *string `toml:"package"`
		OptimizationLevel *string `toml:"optimization_level"`
	} `toml:"client"`
	State *stateTable `toml:"state"`

	Limits *limitsTable `toml:"limits"`
}

// Parse parses the content of a project file. name is used in error
// messages (usually the file's path). Parse does not touch the file system:
// paths are checked for shape only.
func Parse(name string, data []byte) (*Config, error) {
	var f file
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, decodeError(name, err)
	}
	c := &Config{File: name, ServicePackage: "."}
	if f.StaticFiles != nil {
		if err := checkRelDir(name, "static_files", *f.StaticFiles); err != nil {
			return nil, err
		}
		c.StaticFiles = *f.StaticFiles
	}
	if f.ServiceID != nil {
		c.ServiceID = *f.ServiceID
	}
	if f.Service != nil && f.Service.Package != nil {
		if err := checkRelDir(name, "[service] package", *f.Service.Package); err != nil {
			return nil, err
		}
		c.ServicePackage = *f.Service.Package
	}
	if f.Client != nil {
		if f.Client.Package == nil {
			return nil, invalid("%s: the [client] table needs a package key, e.g. package = \"./client\"", name)
		}
		if err := checkRelDir(name, "[client] package", *f.Client.Package); err != nil {
			return nil, err
		}
		c.ClientPackage = *f.Client.Package
		if f.Client.OptimizationLevel != nil {
			c.ClientOptimizationLevel = *f.Client.OptimizationLevel
		}
	}
	if f.State != nil {
		if err := f.State.parse(name, &c.State); err != nil {
			return nil, err
		}
	}
	if f.Limits != nil {
		c.Limits = new(Limits)
		if err := f.Limits.parse(name, c.Limits); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Load reads dir/stateroom.toml. A missing file is not an error: Load then
// returns the defaults with File "".
func Load(dir string) (*Config, error) {
	path := filepath.Join(dir, FileName)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &Config{ServicePackage: "."}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data)
}

// StaticDir returns the static directory of the project in dir, or "" when
// there is none. It is an error when static_files names a directory that
// does not exist; the default, "static", is used only if it exists.
func (c *Config) StaticDir(dir string) (string, error) {
	if c.StaticFiles == "" {
		p := filepath.Join(dir, DefaultStaticDir)
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			return p, nil
		}
		return "", nil
	}
	p := filepath.Join(dir, filepath.FromSlash(c.StaticFiles))
	st, err := os.Stat(p)
	if err != nil || !st.IsDir() {
		return "", invalid("%s: static_files = %q: no such directory %s; create it or fix the key", c.File, c.StaticFiles, p)
	}
	return p, nil
}

// checkRelDir checks that a path value is a non-empty relative directory.
// Absolute paths are refused so a project stays movable.
func checkRelDir(name, key, v string) error {
	switch {
	case strings.TrimSpace(v) == "":
		return invalid("%s: %s is empty; set a directory relative to %s such as \".\"", name, key, FileName)
	case filepath.IsAbs(v) || strings.HasPrefix(v, "/") || strings.HasPrefix(v, `\`):
		return invalid("%s: %s = %q is absolute; write it relative to %s", name, key, v, FileName)
	case strings.Contains(v, "..."):
		return invalid("%s: %s = %q is a package pattern; name one directory", name, key, v)
	case strings.ContainsRune(v, 0):
		return invalid("%s: %s holds a NUL byte", name, key)
	}
	return nil
}

// decodeError turns go-toml's errors into messages with file:line:column,
// the offending key and, for unknown keys, the list of valid ones.
func decodeError(name string, err error) error {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		msgs := make([]string, 0, len(strict.Errors))
		for i := range strict.Errors {
			e := &strict.Errors[i]
			line, col := e.Position()
			msgs = append(msgs, fmt.Sprintf("%s:%d:%d: unknown key %s", name, line, col, keyString(e.Key())))
		}
		return invalid("%s\nvalid keys: %s", strings.Join(msgs, "\n"), validKeys)
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		line, col := de.Position()
		msg := strings.TrimPrefix(de.Error(), "toml: ")
		k := de.Key()
		// go-toml words type errors in Go terms ("cannot decode TOML
		// integer into struct field config.file.X of type string"); say
		// what the key wants and what the file has instead.
		if want, ok := expected[strings.Join(k, ".")]; ok {
			if found, ok := strings.CutPrefix(msg, "cannot decode TOML "); ok {
				found, _, _ = strings.Cut(found, " ")
				msg = fmt.Sprintf("must be %s, found %s", want, found)
			} else if strings.Contains(msg, "array table") {
				msg = fmt.Sprintf("must be %s, found an array of tables [[...]]", want)
			}
		}
		if len(k) > 0 {
			msg = keyString(k) + ": " + msg
		}
		return invalid("%s:%d:%d: %s", name, line, col, msg)
	}
	return invalid("%s: %v", name, err)
}

// keyString writes a key as the user would: [table] key, or key.
func keyString(k toml.Key) string {
	switch len(k) {
	case 0:
		return "(document)"
	case 1:
		return fmt.Sprintf("%q", k[0])
	default:
		return fmt.Sprintf("%q in [%s]", k[len(k)-1], strings.Join(k[:len(k)-1], "."))
	}
}
