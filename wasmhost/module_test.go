package wasmhost

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/stateroomtest"
)

// variant returns the WAT of testdata/<name>.wat with each old string
// replaced by its new one (pairs), for one-off bad modules.
func variant(t *testing.T, name string, oldnew ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".wat"))
	if err != nil {
		t.Fatal(err)
	}
	src := string(b)
	for i := 0; i < len(oldnew); i += 2 {
		if !strings.Contains(src, oldnew[i]) {
			t.Fatalf("%s.wat has no %q", name, oldnew[i])
		}
		src = strings.ReplaceAll(src, oldnew[i], oldnew[i+1])
	}
	return []byte(src)
}

// loadError compiles src, which must fail with target; it returns the
// message.
func loadError(t *testing.T, src []byte, opts Options, target error) string {
	t.Helper()
	m, err := Compile(context.Background(), src, opts)
	if err == nil {
		_ = m.Close(context.Background())
		t.Fatalf("Compile succeeded, want an error wrapping %v", target)
	}
	if !errors.Is(err, target) {
		t.Fatalf("error %q does not wrap %v", err, target)
	}
	return err.Error()
}

func wantInMessage(t *testing.T, msg string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(msg, s) {
			t.Errorf("error %q does not mention %q", msg, s)
		}
	}
}

func TestLoadNotWasm(t *testing.T) {
	for _, c := range []struct {
		name string
		src  string
		want string
	}{
		{"empty", "", "empty"},
		{"text", "hello, world", `"hello, world"`},
		{"elf", "\x7fELF\x02\x01\x01", "native executable"},
		{"zip", "PK\x03\x04....", "zip archive"},
		{"component", "\x00asm\x0d\x00\x01\x00", "component"},
	} {
		t.Run(c.name, func(t *testing.T) {
			msg := loadError(t, []byte(c.src), testOptions(), ErrNotWasm)
			wantInMessage(t, msg, c.want, "module")
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(context.Background(), filepath.Join(t.TempDir(), "nope.wasm"), testOptions())
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("error %v, want one wrapping os.ErrNotExist", err)
	}
}

func TestLoadInvalidBinary(t *testing.T) {
	msg := loadError(t, []byte("\x00asm\x01\x00\x00\x00\x01\xff\xff"), testOptions(), ErrInvalid)
	wantInMessage(t, msg, "module")
}

// TestLoadWAT loads WebAssembly text, converted with wat2wasm, and runs it.
func TestLoadWAT(t *testing.T) {
	m, err := Load(context.Background(), filepath.Join("testdata", "versionfunc.wat"), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	svc, err := m.NewService("r")
	if err != nil {
		t.Fatal(err)
	}
	defer svc.(*service).Close()
	room := newRoom()
	svc.Init(room, stateroom.InitEvent{})
	if len(room.Sent) != 1 || room.Sent[0].Payload.String() != "ready" || room.Sent[0].Payload.Binary {
		t.Fatalf("sends %+v, want Text(ready)", room.Sent)
	}
}

func TestLoadWATWithoutWabt(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := Load(context.Background(), filepath.Join("testdata", "relay.wat"), testOptions())
	if !errors.Is(err, ErrWAT) {
		t.Fatalf("error %v, want one wrapping ErrWAT", err)
	}
	wantInMessage(t, err.Error(), "relay.wat", "wat2wasm", "install wabt")
}

func TestLoadBadWAT(t *testing.T) {
	msg := loadError(t, []byte(";; a comment\n(module (func (param i32) (i32.add)))"), testOptions(), ErrWAT)
	wantInMessage(t, msg, "wat2wasm rejected module", "module:")
}

func TestLoadMissingExports(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "noexports.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	msg := loadError(t, b, testOptions(), ErrExport)
	wantInMessage(t, msg,
		`no memory exported as "memory"`,
		"no function stateroom_recv(i32, i32)",
		"stateroom_malloc is stateroom_malloc(i64) -> i32, want stateroom_malloc(i32) -> i32",
		"stateroom build")
	if strings.Contains(msg, "stateroom_free") {
		t.Errorf("error %q blames stateroom_free, which is right", msg)
	}
}

func TestLoadBadImports(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "badimport.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	msg := loadError(t, b, testOptions(), ErrImport)
	wantInMessage(t, msg,
		"env.database_query(i32) -> i32 (not provided)",
		"wasi_snapshot_preview1.fd_write(i32, i32, i32) -> i32 (the host's is (i32, i32, i32, i32) -> i32)")
}

func TestLoadVersion(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "version2.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	msg := loadError(t, b, testOptions(), ErrVersion)
	wantInMessage(t, msg, "declares ABI version 2, this host runs 1")

	msg = loadError(t, variant(t, "versionfunc", "(result i32) (i32.const 0)", "(result i32) (i32.const 7)"), testOptions(), ErrVersion)
	wantInMessage(t, msg, "declares ABI protocol 7, this host runs 0")

	msg = loadError(t, variant(t, "versionfunc", `"stateroom_api_version"`, `"other"`), testOptions(), ErrVersion)
	wantInMessage(t, msg, "STATEROOM_API_VERSION", "stateroom_api_version() -> i32", "stateroom build")

	msg = loadError(t, variant(t, "versionfunc", `"stateroom_api_version") (result i32)`, `"stateroom_api_version") (result i64)`, "(i32.const 1)", "(i64.const 1)"), testOptions(), ErrExport)
	wantInMessage(t, msg, "stateroom_api_version is stateroom_api_version() -> i64, want stateroom_api_version() -> i32")
}

func TestLoadVersionGlobals(t *testing.T) {
	msg := loadError(t, variant(t, "reactor", `"STATEROOM_API_VERSION") i32 (i32.const 16)`, `"STATEROOM_API_VERSION") i64 (i64.const 16)`), testOptions(), ErrExport)
	wantInMessage(t, msg, "global STATEROOM_API_VERSION is i64, want i32")

	msg = loadError(t, variant(t, "reactor", "(i32.const 20))", "(i32.const 65534))"), testOptions(), ErrExport)
	wantInMessage(t, msg, "global STATEROOM_API_PROTOCOL holds address 0xfffe, outside the 65536-byte memory")
}

// TestLoadInitializeTraps: a reactor whose _initialize traps fails at
// load, not at the first connection.
func TestLoadInitializeTraps(t *testing.T) {
	msg := loadError(t, variant(t, "reactor", "(global.set $inits", "unreachable (global.set $inits"), testOptions(), ErrTrap)
	wantInMessage(t, msg, "_initialize", "unreachable")
}

func TestLoadMemoryOverLimit(t *testing.T) {
	opts := testOptions()
	opts.MemoryLimit = 64 << 10 // one page; relay starts with two
	b, err := os.ReadFile(filepath.Join("testdata", "relay.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	msg := loadError(t, b, opts, ErrInvalid)
	wantInMessage(t, msg, "MemoryLimit")
}

func TestOptionsValidation(t *testing.T) {
	for _, c := range []struct {
		name string
		opts Options
		want string
	}{
		{"negative budget", Options{EventBudget: -2 * time.Second}, "EventBudget is -2s"},
		{"negative memory", Options{MemoryLimit: -1}, "MemoryLimit is -1 bytes"},
		{"memory over 4 GiB", Options{MemoryLimit: 5 << 30}, "MemoryLimit is 5368709120 bytes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.opts.DisableCache = true
			msg := loadError(t, []byte("irrelevant"), c.opts, ErrOptions)
			wantInMessage(t, msg, c.want)
		})
	}
}

// TestOptionsDefaults checks the documented defaults and that settings
// leave the caller's Options alone.
func TestOptionsDefaults(t *testing.T) {
	var o Options
	s, err := o.settings()
	if err != nil {
		t.Fatal(err)
	}
	if s.budget != DefaultEventBudget || s.memoryPages != DefaultMemoryLimit/pageSize || s.logger == nil {
		t.Errorf("defaults: %+v", s)
	}
	if dir, err := os.UserCacheDir(); err == nil && s.cacheDir != filepath.Join(dir, "stateroom", "wazero") {
		t.Errorf("cache dir %q", s.cacheDir)
	}
	if o != (Options{}) {
		t.Errorf("settings changed the caller's Options: %+v", o)
	}
	s, _ = Options{EventBudget: NoBudget, MemoryLimit: 1, DisableCache: true, CacheDir: "x"}.settings()
	if s.budget != 0 || s.memoryPages != 1 || s.cacheDir != "" {
		t.Errorf("NoBudget, 1 byte, DisableCache gave %+v", s)
	}
}

func TestModuleClosed(t *testing.T) {
	m, err := Load(context.Background(), filepath.Join("testdata", "relay.wasm"), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	svc, err := m.NewService("before")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(context.Background()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := m.NewService("after"); !errors.Is(err, ErrClosed) {
		t.Fatalf("NewService after Close: %v, want ErrClosed", err)
	}
	room := newRoom()
	mustFault(t, "wasm module closed", ErrClosed, func() { svc.Init(room, stateroom.InitEvent{}) })
	svc.Init(room, stateroom.InitEvent{}) // a faulted service ignores later events
	if len(room.Sent) != 0 {
		t.Fatalf("a closed module's service sent %+v", room.Sent)
	}
}

// TestCompilationCache loads the same module twice with a cache directory:
// the first load fills it and the second runs from it.
func TestCompilationCache(t *testing.T) {
	opts := testOptions()
	opts.DisableCache = false
	opts.CacheDir = filepath.Join(t.TempDir(), "cache")
	for i := range 2 {
		m, err := Load(context.Background(), filepath.Join("testdata", "relay.wasm"), opts)
		if err != nil {
			t.Fatalf("load %d: %v", i, err)
		}
		s, err := m.NewService("r")
		if err != nil {
			t.Fatal(err)
		}
		room := newRoom()
		s.Init(room, stateroom.InitEvent{})
		if len(room.Sent) != 1 {
			t.Fatalf("load %d: sends %+v", i, room.Sent)
		}
		if err := m.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		var files int
		_ = filepath.WalkDir(opts.CacheDir, func(_ string, d os.DirEntry, _ error) error {
			if d != nil && !d.IsDir() {
				files++
			}
			return nil
		})
		if files == 0 {
			t.Fatalf("load %d: the cache directory is empty", i)
		}
	}
}

// TestModuleIsFactory: a *Module plugs into anything that takes a
// stateroom.Factory.
func TestModuleIsFactory(t *testing.T) {
	m := loadGuest(t, "relay", testOptions())
	var f stateroom.Factory = m
	svc, err := f.NewService("room")
	if err != nil {
		t.Fatal(err)
	}
	_ = svc.(*service).Close()
}

// signalRoom is a recorder that closes sent at the first Send.
type signalRoom struct {
	*stateroomtest.Room
	sent chan struct{}
}

func (r *signalRoom) Send(to stateroom.Recipient, p stateroom.Payload) {
	r.Room.Send(to, p)
	select {
	case <-r.sent:
	default:
		close(r.sent)
	}
}

// TestCloseStopsRunningGuest: Module.Close stops a guest that is looping or
// asleep (WASI poll_oneoff) mid-event, so a shutdown never waits on a
// runaway room. The budget is far off (a minute, or none at all for the
// sleep: the close alone must end it).
//
// The sleeping guest is closed once it sleeps, to test that the close
// wakes it; closing at any other moment of a call is TestCloseDuringCall's
// (wazero's release of an instance's WASI state raced a WASI call until
// Close waited for calls in progress: inflight.go).
func TestCloseStopsRunningGuest(t *testing.T) {
	for _, c := range []struct {
		name    string
		command string
		budget  time.Duration
	}{
		{"loop", "l", time.Minute},
		{"sleep", "s", time.Minute},
		{"sleep without budget", "s", NoBudget},
	} {
		t.Run(c.name, func(t *testing.T) {
			opts := testOptions()
			opts.EventBudget = c.budget
			m, err := Load(context.Background(), filepath.Join("testdata", "relay.wasm"), opts)
			if err != nil {
				t.Fatal(err)
			}
			s := newService(t, m)
			room := &signalRoom{Room: newRoom(), sent: make(chan struct{})}
			running := room.sent // the envelope is sent, then the guest loops
			if c.command == "s" {
				asleep := make(chan struct{})
				s.onSleep = func() { close(asleep) }
				running = asleep
			}
			faults := make(chan *stateroom.Fault, 1)
			go func() {
				defer func() {
					f, _ := recover().(*stateroom.Fault)
					faults <- f
				}()
				command(s, room, c.command)
			}()
			<-running
			start := time.Now()
			if err := m.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			select {
			case fault := <-faults:
				if fault == nil || fault.Reason != "wasm module closed" || !errors.Is(fault.Err, ErrClosed) {
					t.Fatalf("fault %v, want the module-closed fault", fault)
				}
				t.Logf("stopped %v after Module.Close", time.Since(start))
			case <-time.After(10 * time.Second):
				t.Fatal("the guest still runs 10 s after Module.Close")
			}
		})
	}
}
