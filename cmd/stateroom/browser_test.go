package main

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stateroom-go/stateroom/internal/browsertest"
)

// TestBrowserDemo drives the counter page (static/index.html, the same as
// examples/counter/static/index.html) in headless Chromium under
// `stateroom dev`: clicks in one tab update the other, and after a rebuild
// closes the room with 1012 both pages reconnect by themselves and get the
// new build's behaviour on the room's saved value.
func TestBrowserDemo(t *testing.T) {
	dir := copyOfScaffold(t)
	p := start(t, dir, "dev", "-p", "0", "--debounce", "50ms")
	httpURL, _ := p.ready(t)
	page := httpURL + "/?room=browser-demo"

	alloc, cancelAlloc := browsertest.Allocator(t)
	defer cancelAlloc()
	tab1, cancel1 := chromedp.NewContext(alloc)
	defer cancel1()
	// The first Run starts the browser: no timeout on it (see chromedp.Run).
	if err := chromedp.Do(tab1, chromedp.Navigate(page)); err != nil {
		t.Fatalf("open tab 1: %v", err)
	}
	// A child of a context that has a browser is a second tab in it.
	tab2, cancel2 := chromedp.NewContext(tab1)
	defer cancel2()
	if err := chromedp.Do(tab2, chromedp.Navigate(page)); err != nil {
		t.Fatalf("open tab 2: %v", err)
	}

	// waitJS polls a JavaScript condition in a tab.
	waitJS := func(tab context.Context, name, cond string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(tab, 90*time.Second)
		defer cancel()
		if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](cond, chromedp.WithPollingTimeout(0), chromedp.WithPollingInterval(20*time.Millisecond))); err != nil {
			state, _ := chromedp.Run(tab, chromedp.Evaluate[string](`document.getElementById("state").textContent + " / value " + document.getElementById("value").textContent`))
			t.Fatalf("%s: waiting for %s: %v (page: %s)", name, cond, err, state)
		}
	}
	click := func(tab context.Context, name, sel string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(tab, 30*time.Second)
		defer cancel()
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
			t.Fatalf("%s: click %s: %v", name, sel, err)
		}
	}
	connected := func(n int) string {
		return fmt.Sprintf(`document.getElementById("state").dataset.state === "open" && document.getElementById("state").dataset.connects === "%d"`, n)
	}
	value := func(v string) string {
		return fmt.Sprintf(`document.getElementById("value").textContent === %q`, v)
	}

	waitJS(tab1, "tab 1", connected(1))
	waitJS(tab2, "tab 2", connected(1))
	waitJS(tab1, "tab 1", value("0"))

	click(tab1, "tab 1", "#inc")
	waitJS(tab2, "tab 2", value("1"))
	waitJS(tab1, "tab 1", value("1"))
	click(tab2, "tab 2", "#dec")
	click(tab2, "tab 2", "#dec")
	waitJS(tab1, "tab 1", value("-1"))

	// A rebuild: the room closes with 1012; both pages reconnect on their
	// own to the room, restored from its snapshot by the new build.
	editFile(t, filepath.Join(dir, "counter.go"), "c.value++", "c.value += 10")
	p.waitFor(t, swappedLine, 0, 2*time.Minute)
	for i, tab := range []context.Context{tab1, tab2} {
		name := fmt.Sprintf("tab %d", i+1)
		waitJS(tab, name, connected(2))
		waitJS(tab, name, `document.getElementById("state").dataset.lastClose === "1012"`)
		waitJS(tab, name, value("-1"))
	}
	click(tab2, "tab 2", "#inc")
	waitJS(tab1, "tab 1", value("9"))
	waitJS(tab2, "tab 2", value("9"))

	// Close the browser before the dev server, so the pages do not keep
	// reconnecting to a server that is going away.
	cancel2()
	cancel1()
	cancelAlloc()
	if err := p.interrupt(t); err != nil {
		t.Fatalf("exit after SIGINT: %v", err)
	}
}
