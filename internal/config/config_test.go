package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseUpstreamKeys(t *testing.T) {
	doc := `static_files = "web"
service_id = "abc"

[service]
package = "./svc"

[client]
package = "./client"
optimization_level = "s"
`
	c, err := Parse("p/stateroom.toml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		File:                    "p/stateroom.toml",
		StaticFiles:             "web",
		ServiceID:               "abc",
		ServicePackage:          "./svc",
		ClientPackage:           "./client",
		ClientOptimizationLevel: "s",
	}
	if *c != want {
		t.Fatalf("got %+v\nwant %+v", *c, want)
	}
}

func TestParseEmptyMeansDefaults(t *testing.T) {
	c, err := Parse("stateroom.toml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.ServicePackage != "." || c.StaticFiles != "" || c.ClientPackage != "" {
		t.Fatalf("defaults: got %+v", *c)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		want      []string // substrings of the message
	}{
		{"unknown top-level key", "static_files = \"s\"\nstatc_files = \"x\"\n",
			[]string{`f.toml:2:1: unknown key "statc_files"`, "valid keys: static_files"}},
		{"unknown key in table", "[client]\npackage = \"c\"\npackages = \"d\"\n",
			[]string{`f.toml:3:1: unknown key "packages" in [client]`, "[client] package"}},
		{"two unknown keys", "a = 1\n[service]\nb = 2\n",
			[]string{`f.toml:1:1: unknown key "a"`, `f.toml:3:1: unknown key "b" in [service]`}},
		{"wrong type", "static_files = 3\n",
			[]string{`f.toml:1:16: "static_files": must be a string, found integer`}},
		{"table expected", "service = \"x\"\n",
			[]string{`"service": must be a table [service], found string`}},
		{"array of tables", "[[client]]\npackage = \"x\"\n",
			[]string{`must be a table [client], found an array of tables`}},
		{"syntax", "static_files = \n", []string{"f.toml:1:"}},
		{"client without package", "[client]\noptimization_level = \"s\"\n",
			[]string{"[client] table needs a package key"}},
		{"empty package", "[service]\npackage = \"\"\n", []string{"[service] package is empty"}},
		{"absolute", "static_files = \"/srv/www\"\n", []string{`static_files = "/srv/www" is absolute`}},
		{"pattern", "[service]\npackage = \"./...\"\n", []string{"is a package pattern"}},
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

func TestLoadMissingFileMeansDefaults(t *testing.T) {
	dir := t.TempDir()
	c, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.File != "" || c.ServicePackage != "." {
		t.Fatalf("got %+v", *c)
	}
	// No static directory: none served.
	if d, err := c.StaticDir(dir); err != nil || d != "" {
		t.Fatalf("StaticDir = %q, %v; want none", d, err)
	}
	// The default static directory is used once it exists.
	if err := os.Mkdir(filepath.Join(dir, "static"), 0o755); err != nil {
		t.Fatal(err)
	}
	if d, err := c.StaticDir(dir); err != nil || d != filepath.Join(dir, "static") {
		t.Fatalf("StaticDir = %q, %v; want %s", d, err, filepath.Join(dir, "static"))
	}
}

func TestLoadStaticFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte("static_files = \"public\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.File != filepath.Join(dir, FileName) {
		t.Errorf("File = %q", c.File)
	}
	_, err = c.StaticDir(dir)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `static_files = "public": no such directory`) {
		t.Fatalf("missing explicit static dir: err = %v", err)
	}
	if err := os.Mkdir(filepath.Join(dir, "public"), 0o755); err != nil {
		t.Fatal(err)
	}
	if d, err := c.StaticDir(dir); err != nil || d != filepath.Join(dir, "public") {
		t.Fatalf("StaticDir = %q, %v", d, err)
	}
}

func TestLoadReportsFileAndLine(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	if err := os.WriteFile(path, []byte("\n\nport = 8080\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(dir)
	if err == nil || !strings.Contains(err.Error(), path+`:3:1: unknown key "port"`) {
		t.Fatalf("err = %v", err)
	}
}

// FuzzParse checks that no input panics, that every error matches
// ErrInvalid, and that a document that parses yields values Parse promised
// to check. Seeds live in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add([]byte("static_files = \"static\"\n[service]\npackage = \".\"\n[client]\npackage = \"./client\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("f.toml", data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not match ErrInvalid: %v", err)
			}
			return
		}
		if c.ServicePackage == "" {
			t.Fatal("empty service package accepted")
		}
		for _, p := range []string{c.ServicePackage, c.StaticFiles, c.ClientPackage} {
			if filepath.IsAbs(p) || strings.Contains(p, "...") {
				t.Fatalf("path %q accepted", p)
			}
		}
	})
}
