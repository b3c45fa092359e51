package dashboardtest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// ChromiumPath is where Debian's chromium package puts the browser.
const ChromiumPath = "/usr/bin/chromium"

// Browser starts Debian's headless Chromium with a fresh profile at
// 1280x800 and returns a tab's context, ended after timeout or with the
// test. It skips under -short, and where chromium is missing it skips, or
// fails when CI=true (CI installs it, so a missing one is a broken setup).
func Browser(t testing.TB, timeout time.Duration) context.Context {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test needs real chromium; skipped under -short")
	}
	if _, err := os.Stat(ChromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s missing in CI (install the chromium package): %v", ChromiumPath, err)
		}
		t.Skipf("%s not installed", ChromiumPath)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	// The flags keep a root, offline Chromium quiet: no sandbox (tests run
	// as root), and none of its background connections, which this
	// machine's closed network would refuse.
	actx, acancel := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(ChromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
	)
	t.Cleanup(acancel)
	tab, tcancel := chromedp.NewContext(actx)
	t.Cleanup(tcancel)
	return tab
}

// Eval evaluates js in the tab and returns its value, failing the test on
// an error.
func Eval[T any](t testing.TB, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// WaitJS polls the JavaScript condition js until it holds, failing with
// what the page shows once timeout has passed.
func WaitJS(t testing.TB, ctx context.Context, what, js string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !Eval[bool](t, ctx, js) {
		if time.Now().After(deadline) {
			body := Eval[string](t, ctx, `document.querySelector('main').innerText.slice(0, 2000)`)
			t.Fatalf("timed out waiting for %s (%s); page shows:\n%s", what, js, body)
		}
		time.Sleep(25 * time.Millisecond)
	}
}
