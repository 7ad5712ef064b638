package wasmhost

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/internal/abi"
)

// Module is one compiled guest. It is a [stateroom.Factory]: NewService
// instantiates a fresh, sandboxed instance for each room. A Module is safe
// for concurrent use; Close it when done to free the compiled code and every
// instance.
type Module struct {
	name     string
	set      settings
	rt       wazero.Runtime
	cache    wazero.CompilationCache // nil without a cache
	compiled wazero.CompiledModule
	config   wazero.ModuleConfig // shared by every instance; stdout/stderr added per instance
	reactor  bool                // exports _initialize
	image    *memoryImage        // the shared initial memory (memory.go); nil when wazero copies the data segments
	metrics  *metrics            // nil without Options.Metrics

	// What snapshots need (see snapshot.go). snapExports: the module
	// exports stateroom_snapshot and stateroom_restore; memberExport, it
	// exports stateroom_member (members.go). hash is the
	// sha256 of the module's binary as given (before exportGlobals), which
	// a raw-memory snapshot must match. globals are the mutable globals
	// exportGlobals exported, and base the linear memory of an instance
	// after instantiation and _initialize, before the room id and any
	// event: a raw snapshot stores only the pages that differ from it.
	// rawErr says why raw snapshots are unavailable (nil when they are).
	snapExports  bool
	memberExport bool
	hash         [sha256.Size]byte
	globals      []globalExport
	base         [][]byte // by page; nil for a page of zeros
	rawErr       error
	pristine     pristineMemo // which base pages are the image's own (snapshot_pristine.go)

	closed    atomic.Bool
	done      chan struct{} // closed by Close, to wake guests asleep in WASI (see nanosleep)
	liveMu    sync.Mutex
	live      map[*service]struct{} // the instances not closed yet, for Close (inflight.go)
	closeOnce sync.Once
	closeErr  error
}

var _ stateroom.Factory = (*Module)(nil)

// Load reads, validates and compiles the module at path: a WebAssembly
// binary (.wasm), or WebAssembly text (.wat) which it converts with wat2wasm
// when wabt is installed. Errors name the problem and its fix; test them with
// errors.Is against ErrNotWasm, ErrWAT, ErrInvalid, ErrExport, ErrImport,
// ErrVersion and ErrOptions.
func Load(ctx context.Context, path string, opts Options) (*Module, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("wasmhost: reading the module: %w", err)
	}
	return compile(ctx, b, path, opts)
}

// Compile is [Load] for a module already in memory; errors call it
// "module".
func Compile(ctx context.Context, wasm []byte, opts Options) (*Module, error) {
	return compile(ctx, wasm, "module", opts)
}

func compile(ctx context.Context, src []byte, name string, opts Options) (_ *Module, err error) {
	set, err := opts.settings()
	if err != nil {
		return nil, err
	}
	bin, err := toBinary(ctx, src, name)
	if err != nil {
		return nil, err
	}

	m := &Module{name: name, set: set, done: make(chan struct{})}
	if m.metrics, err = newMetrics(opts.Metrics); err != nil {
		return nil, err
	}
	cfg := wazero.NewRuntimeConfig(). // the compiler where supported, else the interpreter
						WithMemoryLimitPages(set.memoryPages).
						WithCloseOnContextDone(set.budget > 0)
	if set.cacheDir != "" {
		if m.cache, err = wazero.NewCompilationCacheWithDir(set.cacheDir); err != nil {
			return nil, fmt.Errorf("wasmhost: compilation cache in %s: %w (set Options.CacheDir to a writable directory, or Options.DisableCache)", set.cacheDir, err)
		}
		cfg = cfg.WithCompilationCache(m.cache)
	}
	m.rt = wazero.NewRuntimeWithConfig(ctx, cfg)
	defer func() {
		if err != nil {
			_ = m.Close(context.Background())
		}
	}()

	if err := m.instantiateHostModules(ctx); err != nil {
		return nil, err
	}
	if err := m.compileGuest(ctx, bin); err != nil {
		return nil, err
	}
	if err := m.checkImports(); err != nil {
		return nil, err
	}
	if err := m.checkExports(); err != nil {
		return nil, err
	}
	funcs := m.compiled.ExportedFunctions()
	_, m.reactor = funcs["_initialize"]
	_, m.snapExports = funcs[abi.ExportSnapshot] // checkExports saw to it that both or neither are there
	_, m.memberExport = funcs[abi.ExportMember]

	// No start functions: a reactor's _initialize is called explicitly,
	// and a command's _start would run main and exit. Each instance adds
	// its own sleep (service.nanosleep), which the budget can cut short.
	m.config = wazero.NewModuleConfig().
		WithName(""). // anonymous: one instance per room from the same code
		WithStartFunctions().
		WithSysWalltime().
		WithSysNanotime().
		WithRandSource(rand.Reader)

	// A probe instance checks at load what only an instance can show: the
	// ABI version (globals point into memory, or functions return it),
	// that imported globals and tables resolve, and that _initialize runs.
	// It also takes the memory image raw snapshots are compared with.
	probe, err := m.instantiateWith("(probe)", m.takeBase)
	if err != nil {
		return nil, err
	}
	probe.close()
	return m, nil
}

// compileGuest compiles the guest with its mutable globals exported (see
// exportGlobals), which raw snapshots need. If they cannot be exported, or
// the patched module does not compile, it compiles bin as it is: the
// module runs as before and only raw snapshots are unavailable
// (m.rawErr). Errors are about bin, never about the host's patch.
func (m *Module) compileGuest(ctx context.Context, bin []byte) error {
	m.hash = sha256.Sum256(bin)
	patched, globals, err := exportGlobals(bin)
	if err == nil {
		if m.compiled, err = m.compileShared(ctx, patched); err == nil {
			m.globals = globals
			return nil
		}
		// bin is invalid (wazero tells why below), or the patch broke it.
		err = fmt.Errorf("the module with its mutable globals exported does not compile: %w", err)
	}
	m.rawErr = err
	if m.compiled, err = m.compileShared(ctx, bin); err != nil {
		hint := "; rebuild it, or check it with wasm-validate (wabt)"
		if strings.Contains(err.Error(), "over limit") { // wazero's words for a memory minimum past the cap
			hint = fmt.Sprintf("; raise Options.MemoryLimit (now %d pages of 64 KiB)", m.set.memoryPages)
		}
		return fmt.Errorf("%w: %s: %w%s", ErrInvalid, m.name, err, hint)
	}
	return nil
}

// takeBase keeps a copy of the probe instance's memory as the module's
// base image (see Module.base). Pages of zeros are not copied: a module
// that declares a large initial memory holds little more than its data.
func (m *Module) takeBase(s *service) {
	if m.rawErr != nil {
		return
	}
	m.base = make([][]byte, s.pages())
	for i := range m.base {
		if p, _ := s.mem.Read(uint32(i)*pageSize, pageSize); !bytes.Equal(p, zeroPage[:]) {
			m.base[i] = bytes.Clone(p)
		}
	}
}

// toBinary returns src as a WebAssembly binary, converting WebAssembly text.
func toBinary(ctx context.Context, src []byte, name string) ([]byte, error) {
	if bytes.HasPrefix(src, []byte("\x00asm")) {
		if len(src) >= 8 && !bytes.Equal(src[4:8], []byte{1, 0, 0, 0}) {
			return nil, fmt.Errorf("%w: %s is a WebAssembly binary of version/layer % x (a component?); the host runs core modules (version 01 00 00 00): build a wasip1 core module", ErrNotWasm, name, src[4:8])
		}
		return src, nil
	}
	if looksLikeWAT(src) {
		return watToWasm(ctx, src, name)
	}
	return nil, fmt.Errorf("%w: %s starts with %s, not the WebAssembly magic \\0asm; point at the .wasm file that `stateroom build` (or cargo build --target wasm32-wasip1) produces", ErrNotWasm, name, describePrefix(src))
}

// describePrefix shows the first bytes of a file, naming common formats.
func describePrefix(b []byte) string {
	switch {
	case len(b) == 0:
		return "nothing (the file is empty)"
	case bytes.HasPrefix(b, []byte("\x7fELF")):
		return "\\x7fELF (a native executable)"
	case bytes.HasPrefix(b, []byte("PK\x03\x04")):
		return "PK (a zip archive)"
	}
	return fmt.Sprintf("%q", b[:min(len(b), 16)])
}

// instantiateHostModules provides the guest's imports: env.stateroom_send
// and WASI preview 1.
func (m *Module) instantiateHostModules(ctx context.Context) error {
	_, err := m.rt.NewHostModuleBuilder("env").
		NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(hostSend), []api.ValueType{api.ValueTypeI32, api.ValueTypeI32}, nil).
		WithParameterNames("ptr", "len").
		Export("stateroom_send").
		Instantiate(ctx)
	if err != nil {
		return fmt.Errorf("wasmhost: host module env: %w", err)
	}
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, m.rt); err != nil {
		return fmt.Errorf("wasmhost: host module wasi_snapshot_preview1: %w", err)
	}
	return nil
}

// checkImports reports, all at once, every import the host does not
// provide or provides with another signature.
func (m *Module) checkImports() error {
	var bad []string
	for _, def := range m.compiled.ImportedFunctions() {
		mod, name, _ := def.Import()
		want := m.hostFunction(mod, name)
		switch {
		case want == nil:
			bad = append(bad, fmt.Sprintf("function %s.%s%s (not provided)", mod, name, signature(def)))
		case signature(want) != signature(def):
			bad = append(bad, fmt.Sprintf("function %s.%s%s (the host's is %s)", mod, name, signature(def), signature(want)))
		}
	}
	for _, def := range m.compiled.ImportedMemories() {
		mod, name, _ := def.Import()
		bad = append(bad, fmt.Sprintf("memory %s.%s (the guest must define and export its own memory)", mod, name))
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: %s imports %s; the host provides env.stateroom_send(i32, i32) and the wasi_snapshot_preview1 functions only: build for wasm32-wasip1 and do not import anything else", ErrImport, m.name, strings.Join(bad, ", "))
	}
	return nil
}

// hostFunction returns the definition of a host function, or nil.
func (m *Module) hostFunction(module, name string) api.FunctionDefinition {
	if module != "env" && module != wasi_snapshot_preview1.ModuleName {
		return nil
	}
	host := m.rt.Module(module)
	if host == nil {
		return nil
	}
	return host.ExportedFunctionDefinitions()[name]
}

// export is one function of the ABI a guest exports.
type export struct {
	name     string
	params   []api.ValueType
	results  []api.ValueType
	required bool
	hint     string // what it is for and how to fix it, when the SDK's general advice is not enough
}

var (
	i32   = api.ValueTypeI32
	abiFn = []export{
		{name: "stateroom_recv", params: []api.ValueType{i32, i32}, required: true},
		{name: "stateroom_malloc", params: []api.ValueType{i32}, results: []api.ValueType{i32}, required: true},
		{name: "stateroom_free", params: []api.ValueType{i32, i32}, required: true},
		{name: "_initialize"},
		{name: versionFunc, results: []api.ValueType{i32}},
		{name: protocolFunc, results: []api.ValueType{i32}},
		{name: abi.ExportSnapshot, results: []api.ValueType{i32}, hint: "it returns 0, -1 or the address of the snapshot's (ptr, len) pair; " + snapshotHint},
		{name: abi.ExportRestore, params: []api.ValueType{i32, i32}, results: []api.ValueType{i32}, hint: "it returns 0 when it took the snapshot, else a refusal code; " + snapshotHint},
		{name: abi.ExportMember, params: []api.ValueType{i32}, hint: "it takes one client id and returns nothing; see internal/abi/ABI.md, \"Extension: members\""},
	}
)

// snapshotHint is the advice for the optional snapshot exports.
const snapshotHint = "see internal/abi/ABI.md, \"Extension: snapshots\": export stateroom_snapshot and stateroom_restore with these signatures, or neither, and the host snapshots raw memory instead"

// checkExports reports, all at once, every ABI export that is missing or
// has the wrong type.
func (m *Module) checkExports() error {
	var bad []string
	if _, ok := m.compiled.ExportedMemories()["memory"]; !ok {
		bad = append(bad, `no memory exported as "memory"`)
	}
	funcs := m.compiled.ExportedFunctions()
	for _, want := range abiFn {
		wantSig := formatSignature(want.params, want.results)
		def, ok := funcs[want.name]
		var msg string
		switch {
		case !ok && want.required:
			msg = fmt.Sprintf("no function %s%s", want.name, wantSig)
		case ok && signature(def) != wantSig:
			msg = fmt.Sprintf("%s is %s%s, want %s%s", want.name, want.name, signature(def), want.name, wantSig)
		}
		if msg != "" && want.hint != "" {
			msg += " (" + want.hint + ")"
		}
		if msg != "" {
			bad = append(bad, msg)
		}
	}
	_, snap := funcs[abi.ExportSnapshot]
	_, restore := funcs[abi.ExportRestore]
	if snap != restore {
		have, lack := abi.ExportSnapshot, abi.ExportRestore
		if restore {
			have, lack = lack, have
		}
		bad = append(bad, fmt.Sprintf("%s is exported without %s (%s)", have, lack, snapshotHint))
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: %s: %s; build the service with the Stateroom SDK (`stateroom build` for Go, the stateroom-wasm crate for Rust)", ErrExport, m.name, strings.Join(bad, "; "))
	}
	return nil
}

func signature(def api.FunctionDefinition) string {
	return formatSignature(def.ParamTypes(), def.ResultTypes())
}

// formatSignature writes a signature the way WAT reads: (i32, i32) -> i32.
func formatSignature(params, results []api.ValueType) string {
	var b strings.Builder
	b.WriteByte('(')
	for i, p := range params {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(api.ValueTypeName(p))
	}
	b.WriteByte(')')
	switch len(results) {
	case 0:
	case 1:
		b.WriteString(" -> " + api.ValueTypeName(results[0]))
	default:
		b.WriteString(" -> (")
		for i, r := range results {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(api.ValueTypeName(r))
		}
		b.WriteByte(')')
	}
	return b.String()
}

// compileModule is rt.CompileModule with its panics turned into errors:
// wazero v1.12.0 panics on some malformed modules (an index out of range in
// its validator, found by fuzzing internal/wasmpatch), and a bad module must
// not take the server down.
func compileModule(ctx context.Context, rt wazero.Runtime, bin []byte) (cm wazero.CompiledModule, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("the runtime's validator failed on it (%v)", v)
		}
	}()
	return rt.CompileModule(ctx, bin)
}

// NewService instantiates the module for a room: it runs _initialize if the
// module is a reactor and checks the ABI version. The Init event is
// delivered by the service's Init method, as for any service. The returned
// service implements io.Closer.
func (m *Module) NewService(roomID string) (stateroom.Service, error) {
	if m.closed.Load() {
		return nil, fmt.Errorf("%w: cannot start room %q", ErrClosed, roomID)
	}
	if m.metrics == nil {
		return m.instantiate(roomID)
	}
	start := time.Now()
	s, err := m.instantiate(roomID)
	if err == nil {
		observeSince(m.metrics.instantiate, start)
	}
	return s, err
}

// Close closes every instance, the compiled code and the compilation cache.
// Services of this module fault on their next event. A call into a guest
// in progress is stopped first (a guest asleep in WASI wakes, one under the
// event budget stops at its next check) and Close waits for it to return,
// at most a second for a guest without a budget caught in a loop, so that
// nothing an instance's call still uses is released under it
// (inflight.go). An instance's memory is unmapped when its service is
// closed too. Close is idempotent.
func (m *Module) Close(ctx context.Context) error {
	m.closeOnce.Do(func() {
		m.liveMu.Lock() // so that track sees it: no instance starts after this
		m.closed.Store(true)
		m.liveMu.Unlock()
		close(m.done)
		release := m.stopCalls(ctx)
		m.closeErr = m.rt.Close(ctx)
		release()
		m.image.close() // instances keep their mappings of it
		if m.cache != nil {
			m.closeErr = errors.Join(m.closeErr, m.cache.Close(ctx))
		}
	})
	return m.closeErr
}
