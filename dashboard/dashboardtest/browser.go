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
