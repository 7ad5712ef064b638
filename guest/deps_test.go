//go:build !wasip1

package guest_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestSDKLinksNoFmt: what every Go guest links from the SDK (the root
// package, guest, internal/abi), built for wasip1, does not depend on fmt.
// fmt and what it pulls in (reflect's printing, unicode tables) were a
// fifth of the counter's module (0.52 MB of 3.13 MB, issue 14); a
// service may still use it, but the SDK must not force it on them. The
// error names the SDK packages that import a package leading to fmt.
func TestSDKLinksNoFmt(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command: %v", err)
	}
	sdk := []string{"github.com/stateroom-go/stateroom", "github.com/stateroom-go/stateroom/guest", "github.com/stateroom-go/stateroom/internal/abi"}
	cmd := exec.Command(goCmd, append([]string{"list", "-deps", "-f", "{{.ImportPath}}: {{join .Deps \" \"}}"}, sdk...)...)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var listed int
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, deps, _ := strings.Cut(line, ": ")
		if !strings.HasPrefix(pkg, "github.com/stateroom-go/stateroom") {
			continue
		}
		listed++
		if pkg == "fmt" || strings.Contains(" "+deps+" ", " fmt ") {
			t.Errorf("%s depends on fmt when built for wasip1 (GOOS=wasip1 GOARCH=wasm go list -deps %s); write errors with errors.New and strconv instead", pkg, pkg)
		}
	}
	if listed < len(sdk) {
		t.Fatalf("go list named %d of the SDK's %d packages:\n%s", listed, len(sdk), out)
	}
}
