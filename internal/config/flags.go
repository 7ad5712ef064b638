package config

import (
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// FlagSetting is a key of the project file that sets a flag of `stateroom
// serve` and `stateroom dev`.
type FlagSetting struct {
	// Key is the key as the user writes it, e.g. "[state] dir".
	Key string
	// Flag is the flag's name, without dashes, e.g. "state-dir".
	Flag string
	// Value is the flag's value as it would be written on the command
	// line, already checked by Parse.
	Value string
}

// FlagSettings returns the file's settings of serve's and dev's flags, in
// a fixed order.
func (c *Config) FlagSettings() []FlagSetting {
	var out []FlagSetting
	out = c.State.appendFlags(out)
	out = c.Limits.appendFlags(out)
	return out
}

// ApplyFlags sets fs's flags from the file's settings, except those the
// command line set: the command line wins over the file, and the file
// over the flags' defaults. A setting of a flag fs does not have is
// skipped (the file serves every command, and build takes no server
// flags). Call it after fs is parsed and before the flags are validated.
// An error names the file and the key.
func (c *Config) ApplyFlags(fs *pflag.FlagSet) error {
	for _, s := range c.FlagSettings() {
		fl := fs.Lookup(s.Flag)
		if fl == nil || fl.Changed {
			continue
		}
		if err := fl.Value.Set(s.Value); err != nil {
			return invalid("%s: %s = %q: %v", c.File, s.Key, s.Value, err)
		}
	}
	return nil
}

// State is the [state] table: where and how often rooms' state is saved.
// Its keys are the state flags of serve and dev; a zero field was not set.
type State struct {
	// Dir is [state] dir, joined to the file's directory when relative
	// (--state-dir).
	Dir string
	// Memory is set by persist = false: rooms are kept in memory only
	// (--no-state).
	Memory bool
	// CheckpointInterval is [state] checkpoint_interval, positive
	// (--checkpoint-interval).
	CheckpointInterval time.Duration
	// HibernateAfter is [state] hibernate_after (--hibernate-after), when
	// HibernateSet: zero then means never.
	HibernateAfter time.Duration
	HibernateSet   bool
}

// appendFlags appends the table's flag settings to out.
func (st State) appendFlags(out []FlagSetting) []FlagSetting {
	if st.Memory {
		out = append(out, FlagSetting{"[state] persist", "no-state", "true"})
	}
	if st.Dir != "" {
		out = append(out, FlagSetting{"[state] dir", "state-dir", st.Dir})
	}
	if st.CheckpointInterval != 0 {
		out = append(out, FlagSetting{"[state] checkpoint_interval", "checkpoint-interval", st.CheckpointInterval.String()})
	}
	if st.HibernateSet {
		out = append(out, FlagSetting{"[state] hibernate_after", "hibernate-after", st.HibernateAfter.String()})
	}
	return out
}

// stateTable mirrors the [state] table of the TOML document.
type stateTable struct {
	Dir                *string `toml:"dir"`
	Persist            *bool   `toml:"persist"`
	CheckpointInterval *string `toml:"checkpoint_interval"`
	HibernateAfter     *string `toml:"hibernate_after"`
}

// parse checks the table into st. name is the file's path: a relative dir
// is taken relative to the file's directory, as the file's other paths
// are, so the state stays with the project whatever directory the command
// runs in.
func (t *stateTable) parse(name string, st *State) error {
	if t.Persist != nil && !*t.Persist {
		if t.Dir != nil {
			return invalid("%s: [state] persist = false and [state] dir = %q contradict each other: remove dir to keep rooms in memory only, or persist to keep their state there", name, *t.Dir)
		}
		st.Memory = true
	}
	if t.Dir != nil {
		dir := *t.Dir
		switch {
		case strings.TrimSpace(dir) == "":
			return invalid("%s: [state] dir is empty; set a directory (relative to %s, or absolute), or persist = false to keep rooms in memory only", name, FileName)
		case strings.ContainsRune(dir, 0):
			return invalid("%s: [state] dir holds a NUL byte", name)
		}
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(filepath.Dir(name), filepath.FromSlash(dir))
		}
		st.Dir = dir
	}
	var err error
	if t.CheckpointInterval != nil {
		if st.CheckpointInterval, err = duration(name, "checkpoint_interval", *t.CheckpointInterval, false); err != nil {
			return err
		}
	}
	if t.HibernateAfter != nil {
		if st.HibernateAfter, err = duration(name, "hibernate_after", *t.HibernateAfter, true); err != nil {
			return err
		}
		st.HibernateSet = true
	}
	return nil
}

// duration parses the value of [state] key: positive, or zero when
// zeroOK (it then means "never").
func duration(name, key, v string, zeroOK bool) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil {
		return 0, invalid("%s: [state] %s = %q is not a duration; write one such as \"1s\", \"500ms\" or \"5m\"", name, key, v)
	}
	if d < 0 || (d == 0 && !zeroOK) {
		want := `a positive duration such as "1s"`
		if zeroOK {
			want += `, or "0s" for never`
		}
		return 0, invalid("%s: [state] %s = %q must be %s", name, key, v, want)
	}
	return d, nil
}
