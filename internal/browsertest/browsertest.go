// Package browsertest starts headless Chromium for the repository's browser
// tests, with the flags this machine needs: no sandbox (tests run as root),
// no GPU, and no background networking (the machine's network is closed, and
// Chromium's own connections would be refused).
package browsertest

import (
	"context"
	"os/exec"
	"testing"

	"github.com/chromedp/chromedp"
)

// Allocator returns a context that starts a fresh headless Chromium with a
// profile of its own in a temporary directory on the first chromedp.Run of
// a child context (chromedp.NewContext). The browser ends with the test. It
// fails the test if Chromium is not installed, saying how to install it.
// cancel ends the browser earlier; calling it again does nothing.
func Allocator(t testing.TB) (alloc context.Context, cancel context.CancelFunc) {
	t.Helper()
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("this test needs Chromium: apt-get install -y chromium (CI installs it)")
	}
	alloc, cancel = chromedp.NewExecAllocator(context.Background(),
		append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath(chromium),
			chromedp.Headless,
			chromedp.NoSandbox,
			chromedp.DisableGPU,
			chromedp.Flag("disable-background-networking", true),
			chromedp.Flag("disable-component-update", true),
			chromedp.Flag("disable-sync", true),
			chromedp.NoFirstRun,
			chromedp.UserDataDir(t.TempDir()),
		)...)
	t.Cleanup(cancel)
	return alloc, cancel
}
