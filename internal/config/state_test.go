package config

import (
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestStateKeys(t *testing.T) {
	doc := `[state]
dir = "var/state"
checkpoint_interval = "250ms"
hibernate_after = "0s"
`
	c, err := Parse(filepath.Join("proj", "stateroom.toml"), []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	want := State{Dir: filepath.Join("proj", "var", "state"), CheckpointInterval: 250 * time.Millisecond, HibernateSet: true}
	if c.State != want {
		t.Fatalf("State = %+v\nwant %+v", c.State, want)
	}
	wantFlags := []FlagSetting{
		{"[state] dir", "state-dir", filepath.Join("proj", "var", "state")},
		{"[state] checkpoint_interval", "checkpoint-interval", "250ms"},
		{"[state] hibernate_after", "hibernate-after", "0s"},
	}
	if got := c.FlagSettings(); !reflect.DeepEqual(got, wantFlags) {
		t.Fatalf("FlagSettings = %+v\nwant %+v", got, wantFlags)
	}

	abs := filepath.Join(t.TempDir(), "state")
	c, err = Parse("stateroom.toml", []byte("[state]\ndir = "+quote(abs)+"\n"))
	if err != nil || c.State.Dir != abs {
		t.Fatalf("an absolute dir: %+v, %v; want it kept as %s", c, err, abs)
	}
	c, err = Parse("stateroom.toml", []byte("[state]\npersist = false\n"))
	if err != nil || !c.State.Memory || !reflect.DeepEqual(c.FlagSettings(), []FlagSetting{{"[state] persist", "no-state", "true"}}) {
		t.Fatalf("persist = false: %+v, %v", c, err)
	}
	c, err = Parse("stateroom.toml", []byte("[state]\npersist = true\n"))
	if err != nil || len(c.FlagSettings()) != 0 {
		t.Fatalf("persist = true (the default) set flags: %+v, %v", c, err)
	}
}

func TestStateKeyErrors(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		want      []string
	}{
		{"persist false with dir", "[state]\npersist = false\ndir = \"s\"\n", []string{"f.toml: [state] persist = false and [state] dir = \"s\" contradict each other"}},
		{"empty dir", "[state]\ndir = \" \"\n", []string{"[state] dir is empty"}},
		{"not a duration", "[state]\ncheckpoint_interval = \"soon\"\n", []string{`[state] checkpoint_interval = "soon" is not a duration`}},
		{"zero checkpoint", "[state]\ncheckpoint_interval = \"0s\"\n", []string{`checkpoint_interval = "0s" must be a positive duration`}},
		{"negative hibernate", "[state]\nhibernate_after = \"-1m\"\n", []string{`hibernate_after = "-1m" must be a positive duration such as "1s", or "0s" for never`}},
		{"integer duration", "[state]\ncheckpoint_interval = 5\n", []string{`"checkpoint_interval" in [state]: must be a duration such as "1s", found integer`}},
		{"string persist", "[state]\npersist = \"no\"\n", []string{`"persist" in [state]: must be true or false, found string`}},
		{"state not a table", "state = \"x\"\n", []string{`"state": must be a table [state], found string`}},
		{"unknown key", "[state]\ndirectory = \"s\"\n", []string{`f.toml:2:1: unknown key "directory" in [state]`, "[state] dir, [state] persist"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("f.toml", []byte(tc.doc))
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not match ErrInvalid: %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

// serverFlags registers the state flags as serve and dev do
// (cmd/stateroom flags.go), with their defaults.
func serverFlags() *pflag.FlagSet {
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	fs.String("state-dir", ".stateroom", "")
	fs.Bool("no-state", false, "")
	fs.Duration("checkpoint-interval", time.Second, "")
	fs.Duration("hibernate-after", 5*time.Minute, "")
	return fs
}

// TestApplyFlags: the file sets the flags the command line left alone,
// and a flag given on the command line wins over the file.
func TestApplyFlags(t *testing.T) {
	c, err := Parse("p/stateroom.toml", []byte("[state]\ndir = \"st\"\ncheckpoint_interval = \"10s\"\nhibernate_after = \"0s\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	fs := serverFlags()
	if err := fs.Parse([]string{"--checkpoint-interval", "3s"}); err != nil {
		t.Fatal(err)
	}
	if err := c.ApplyFlags(fs); err != nil {
		t.Fatal(err)
	}
	for flag, want := range map[string]string{
		"state-dir":           filepath.Join("p", "st"),
		"checkpoint-interval": "3s", // the command line's
		"hibernate-after":     "0s",
		"no-state":            "false",
	} {
		if got := fs.Lookup(flag).Value.String(); got != want {
			t.Errorf("--%s = %s, want %s", flag, got, want)
		}
	}

	// A command without the flags (build) takes none of them.
	build := pflag.NewFlagSet("build", pflag.ContinueOnError)
	build.Bool("strip", false, "")
	if err := c.ApplyFlags(build); err != nil {
		t.Fatalf("ApplyFlags on a command without state flags: %v", err)
	}
}

// FuzzParseState checks that a [state] table Parse accepts sets flags
// that take its values, as ApplyFlags promises (Parse checks them first).
func FuzzParseState(f *testing.F) {
	f.Add([]byte("[state]\ndir = \"s\"\npersist = true\ncheckpoint_interval = \"1s\"\nhibernate_after = \"5m\"\n"))
	f.Add([]byte("[state]\npersist = false\nhibernate_after = \"0s\"\n"))
	f.Add([]byte("[state]\ncheckpoint_interval = \"1h2m3.5s\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("f.toml", data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not match ErrInvalid: %v", err)
			}
			return
		}
		if st := c.State; st.CheckpointInterval < 0 || st.HibernateAfter < 0 || (st.Memory && st.Dir != "") {
			t.Fatalf("State %+v accepted", st)
		}
		if err := c.ApplyFlags(serverFlags()); err != nil {
			t.Fatalf("ApplyFlags of a parsed file: %v", err)
		}
	})
}

func quote(s string) string { return `'` + s + `'` } // a TOML literal string: no escapes
