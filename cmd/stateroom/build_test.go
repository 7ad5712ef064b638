package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/stateroom-go/stateroom/internal/wasmpatch"
)

// TestBuild checks what `stateroom build` wrote: a module with the ABI's
// exports and version globals, and the static files.
func TestBuild(t *testing.T) {
	dir := builtScaffold(t)
	if !strings.Contains(builtLog, "built ./dist/server.wasm in ") {
		t.Errorf("no progress line with the build time in:\n%s", builtLog)
	}
	if !strings.Contains(builtLog, "pre-initialised ./dist/server.wasm: start-up ran at build time") {
		t.Errorf("the build does not say it pre-initialised the module:\n%s", builtLog)
	}
	wasm, err := os.ReadFile(filepath.Join(dir, "dist", "server.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	// Pre-initialised: no start function is left to run.
	if _, _, err := wasmpatch.ExportState(wasm); !errors.Is(err, wasmpatch.ErrUnsupported) {
		t.Errorf("the built module still has a start function (ExportState: %v)", err)
	}

	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(ctx)
	cm, err := rt.CompileModule(ctx, wasm)
	if err != nil {
		t.Fatalf("the built module does not compile: %v", err)
	}
	fns := cm.ExportedFunctions()
	for name, sig := range map[string][2]int{ // params, results (all i32)
		"stateroom_recv":   {2, 0},
		"stateroom_malloc": {1, 1},
		"stateroom_free":   {2, 0},
	} {
		f, ok := fns[name]
		if !ok {
			t.Errorf("no export %s", name)
			continue
		}
		if len(f.ParamTypes()) != sig[0] || len(f.ResultTypes()) != sig[1] {
			t.Errorf("%s: %v -> %v", name, f.ParamTypes(), f.ResultTypes())
		}
	}
	if _, ok := cm.ExportedMemories()["memory"]; !ok {
		t.Error("no exported memory")
	}

	// The version globals hold addresses of the little-endian i32s 1 and 0.
	// Instantiating without start functions loads the data segments and
	// runs no guest code.
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	if _, err := rt.NewHostModuleBuilder("env").NewFunctionBuilder().
		WithFunc(func(context.Context, uint32, uint32) {}).Export("stateroom_send").
		Instantiate(ctx); err != nil {
		t.Fatal(err)
	}
	mod, err := rt.InstantiateModule(ctx, cm, wazero.NewModuleConfig().WithStartFunctions())
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]uint32{"STATEROOM_API_VERSION": 1, "STATEROOM_API_PROTOCOL": 0} {
		g := mod.ExportedGlobal(name)
		if g == nil {
			t.Errorf("no exported global %s", name)
			continue
		}
		if g.Type() != api.ValueTypeI32 {
			t.Errorf("%s is %v, want i32", name, g.Type())
		}
		b, ok := mod.Memory().Read(uint32(g.Get()), 4)
		if !ok {
			t.Errorf("%s = %d points outside memory", name, g.Get())
		} else if v := binary.LittleEndian.Uint32(b); v != want {
			t.Errorf("*%s = %d, want %d", name, v, want)
		}
	}

	src, _ := os.ReadFile(filepath.Join(dir, "static", "index.html"))
	dst, err := os.ReadFile(filepath.Join(dir, "dist", "static", "index.html"))
	if err != nil || !bytes.Equal(src, dst) || len(src) == 0 {
		t.Errorf("dist/static/index.html is not a copy of static/index.html (%v)", err)
	}
}

// TestBuildNoPreinit: --no-preinit writes the module with its start-up
// (a start function) and says so.
func TestBuildNoPreinit(t *testing.T) {
	dir := copyOfScaffold(t)
	_, stderr := mustRun(t, dir, "build", "--no-preinit")
	if !strings.Contains(stderr, "not pre-initialised (--no-preinit)") || strings.Contains(stderr, "pre-initialised ./dist") {
		t.Errorf("output does not say the module was left as it is:\n%s", stderr)
	}
	wasm, err := os.ReadFile(filepath.Join(dir, "dist", "server.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := wasmpatch.ExportState(wasm); err != nil {
		t.Errorf("the module has no start-up left: %v", err)
	}
}

// TestBuildClient builds a [client] package for the browser and serves it
// at /client/.
func TestBuildClient(t *testing.T) {
	dir := copyOfScaffold(t)
	if err := os.MkdirAll(filepath.Join(dir, "web"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "web", "main.go"), []byte("package main\n\nfunc main() { println(\"hello from the browser\") }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	toml := filepath.Join(dir, "stateroom.toml")
	b, _ := os.ReadFile(toml)
	if err := os.WriteFile(toml, append(b, "\n[client]\npackage = \"./web\"\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr := mustRun(t, dir, "build")
	if !strings.Contains(stderr, "built ./dist/client/client.wasm") {
		t.Errorf("no client progress line:\n%s", stderr)
	}
	wasm, err := os.ReadFile(filepath.Join(dir, "dist", "client", "client.wasm"))
	if err != nil || !bytes.HasPrefix(wasm, []byte("\x00asm")) {
		t.Fatalf("dist/client/client.wasm: %v", err)
	}
	p := start(t, dir, "serve", ".", "-p", "0", "--cache-dir", cacheDir)
	httpURL, _ := p.ready(t)
	if code, body := get(t, httpURL+"/client/wasm_exec.js"); code != 200 || !strings.Contains(body, "Go") {
		t.Errorf("GET /client/wasm_exec.js: %d", code)
	}
	if code, body := get(t, httpURL+"/client/client.wasm"); code != 200 || body != string(wasm) {
		t.Errorf("GET /client/client.wasm: %d, %d bytes", code, len(body))
	}
}

// TestBuildErrors checks that each mistake fails with advice.
func TestBuildErrors(t *testing.T) {
	tmp := t.TempDir()
	mk := func(name string, files map[string]string) string {
		d := filepath.Join(tmp, name)
		for f, content := range files {
			p := filepath.Join(d, f)
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		os.MkdirAll(d, 0o755)
		return d
	}
	const gomod = "module x\n\ngo 1.24\n"
	broken := copyOfScaffold(t)
	editFile(t, filepath.Join(broken, "counter.go"), "c.value++", "c.value += \"one\"")
	panics := copyOfScaffold(t)
	editFile(t, filepath.Join(panics, "main_wasip1.go"), "func init() {", "func init() {\n\tpanic(\"no config for the counter\")\n")
	inMain := copyOfScaffold(t)
	editFile(t, filepath.Join(inMain, "main_wasip1.go"), "func init() { guest.Register(stateroom.New(NewCounter)) }\n\nfunc main() {}",
		"func main() { guest.Register(stateroom.New(NewCounter)) }")

	for _, tc := range []struct {
		name string
		dir  string
		env  []string
		want []string
	}{
		{"compile error", broken, nil, []string{"counter.go:", "go build failed", "(compiler output above)"}},
		{"no Go files", mk("empty", map[string]string{"go.mod": gomod}), nil, []string{"has no Go files", "guest.Register"}},
		{"not main", mk("lib", map[string]string{"go.mod": gomod, "lib.go": "package lib\n"}), nil, []string{"holds package lib", "package main"}},
		{"no such dir", filepath.Join(tmp, "nope"), nil, []string{"is not a directory"}},
		{"unknown key", mk("badtoml", map[string]string{"stateroom.toml": "static_files = \"static\"\nport = 1\n"}), nil,
			[]string{"stateroom.toml:2:1: unknown key \"port\"", "valid keys: static_files"}},
		{"missing static dir", mk("nostatic", map[string]string{"stateroom.toml": "static_files = \"www\"\n"}), nil,
			[]string{`static_files = "www": no such directory`}},
		{"no go", builtScaffold(t), offlineEnv("PATH=" + tmp), []string{"not on PATH", "install Go"}},
		{"panic in init", panics, nil, []string{"start-up failed", "panic: no config for the counter", "main.init"}},
		{"register in main", inMain, nil, []string{"no service was registered", "from an init function of package main, not from main"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, err := run(t, tmp, tc.env, "build", tc.dir)
			if err == nil {
				t.Fatalf("exit 0; stderr:\n%s", stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr does not contain %q:\n%s", w, stderr)
				}
			}
			if tc.dir == panics || tc.dir == inMain {
				if _, err := os.Stat(filepath.Join(tc.dir, "dist", "server.wasm")); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("a module that fails at start-up is left in dist/ (%v)", err)
				}
			}
		})
	}
}
