package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/switchboard-mcp/switchboard/dashboard/dashboardtest"
	"github.com/switchboard-mcp/switchboard/internal/fakeapi"
)

// browser starts Debian's headless Chromium (see dashboardtest.Browser).
func browser(t *testing.T) context.Context { return dashboardtest.Browser(t, 4*time.Minute) }

func jsEval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	return dashboardtest.Eval[T](t, ctx, js)
}

// waitJS polls a JavaScript condition until it holds.
func waitJS(t *testing.T, ctx context.Context, what, js string) {
	t.Helper()
	dashboardtest.WaitJS(t, ctx, what, js, 90*time.Second)
}

// The dashboard in real headless Chromium against the real daemon (the
// built binary) running the real Claude Code on the fake Messages API: the
// URL `switchboard dashboard` prints opens it, two teams show, a question
// asked with `switchboard ask` makes its pair go answering then idle and
// appears with its answer, all without a reload; without the token the
// browser gets 401; a Write in ask mode is approved with one click and its
// turn finishes. Every view is captured into the test's temp dir
// (UPDATE_SCREENSHOT=1 refreshes docs/dashboard.png with the Teams view
// while one pair answers and another waits for a permission).
func TestDashboardInBrowserAgainstDaemon(t *testing.T) {
	w := newWorld(t, "web", "api") // first, so its cleanup runs after the browser's
	ctx := browser(t)
	addr := w.enableDashboard()
	r := w.run("", "dashboard")
	if r.code != 0 {
		t.Fatalf("dashboard: exit %d, %q", r.code, r.stderr)
	}
	url := strings.TrimSpace(r.stdout)

	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse("http://"+addr+"/"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != 401 {
		t.Fatalf("without the token: status %d, want 401", resp.Status)
	}

	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800), chromedp.Navigate(url),
		chromedp.WaitReady(chromedp.CSS(`body[data-ready="1"]`))); err != nil {
		t.Fatal(err)
	}
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); loc != "http://"+addr+"/" {
		t.Errorf("location %q still carries the token", loc)
	}
	jsEval[any](t, ctx, `window.noReload = 1`)
	waitJS(t, ctx, "two teams", `document.querySelectorAll('#teams > article').length === 2`)
	for _, name := range []string{"api", "web"} {
		waitJS(t, ctx, "team "+name, fmt.Sprintf(`document.querySelector('#teams [data-key=%q] h2')?.textContent === %q`, name, name))
	}

	// Ask through the broker, as a user in a terminal would.
	const question = "Is /v1/orders paginated?"
	asked := make(chan result, 1)
	go func() { asked <- w.run("", "ask", "--from", "web", "api", "SLEEP 4s\n"+question) }()
	pairState := `document.querySelector('.pair[data-key="web>api"] .state')?.textContent`
	waitJS(t, ctx, "web>api answering", pairState+` === 'answering'`)
	shot(t, ctx, "teams-answering")
	waitJS(t, ctx, "web>api idle", pairState+` === 'idle'`)
	if r := <-asked; r.code != 0 || !strings.Contains(r.stdout, question) {
		t.Fatalf("ask: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	jsEval[any](t, ctx, `location.hash = '#messages'`)
	waitJS(t, ctx, "message 1 answered", `document.querySelector('#messages [data-key="1"] .status')?.textContent === 'answered'`)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#messages [data-key="1"] .msg-row`))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the answer shown", `document.querySelector('#messages [data-key="1"] .msg-body')?.innerText.includes('ECHO') || document.querySelector('#messages [data-key="1"] .msg-body')?.innerText.split(`+"`"+question+"`"+`).length > 2`)
	if !jsEval[bool](t, ctx, `window.noReload === 1`) {
		t.Fatal("the page reloaded")
	}

	// The session read from the real session file.
	jsEval[any](t, ctx, `(() => { const s = document.getElementById('s-pair'); s.value = 'web>api'; s.dispatchEvent(new Event('change')); })()`)
	waitJS(t, ctx, "session loaded", `document.querySelectorAll('#session .entry').length >= 2`)

	// A Write in ask mode waits for the operator: the pair says so, the
	// request shows with its countdown, one click approves it and the turn
	// finishes.
	// Meanwhile web answers a question of api's.
	asked2 := make(chan result, 1)
	go func() {
		asked2 <- w.run("", "ask", "--from", "api", "web", "SLEEP 8s\nWhich fields does the orders page show?")
	}()
	waitJS(t, ctx, "api>web answering", `document.querySelector('.pair[data-key="api>web"] .state')?.textContent === 'answering'`)
	msg, path := writeTool(w.teamDir("api"), "approved.txt")
	asked3 := make(chan result, 1)
	go func() { asked3 <- w.run("", "ask", "--from", "web", "api", msg) }()
	jsEval[any](t, ctx, `location.hash = '#teams'`)
	waitJS(t, ctx, "web>api waiting for permission", pairState+` === 'waiting for permission'`)
	png := shot(t, ctx, "teams-waiting")
	if os.Getenv("UPDATE_SCREENSHOT") == "1" {
		if err := os.WriteFile(filepath.Join("..", "..", "docs", "dashboard.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	jsEval[any](t, ctx, `location.hash = '#permissions'`)
	pending := `#pending [data-key="1"]`
	waitJS(t, ctx, "the pending Write", `document.querySelector('`+pending+`')?.innerText.includes('Write')`)
	waitJS(t, ctx, "its countdown", `document.querySelector('`+pending+` .countdown')?.textContent.startsWith('denies in ')`)
	shot(t, ctx, "permissions-pending")
	if _, err := os.Stat(path); err == nil {
		t.Fatal("the file exists before the approval")
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(pending+` button[data-action="approve"]`))); err != nil {
		t.Fatal(err)
	}
	if r := <-asked3; r.code != 0 || !strings.Contains(r.stdout, fakeapi.WriteCreated(path)) {
		t.Fatalf("ask with a Write, approved from the page: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("approved, but no file: %v", err)
	}
	waitJS(t, ctx, "the decision listed", `!document.querySelector('`+pending+`') && document.querySelector('#recent [data-key="1"] .status')?.textContent === 'allowed'`)
	waitJS(t, ctx, "web>api idle after the approved turn", pairState+` === 'idle'`)

	for _, view := range []string{"teams", "messages", "session", "logs", "permissions"} {
		jsEval[any](t, ctx, `location.hash = '#`+view+`'; window.scrollTo(0, 0)`)
		waitJS(t, ctx, view+" shown", `!document.getElementById('view-`+view+`').hidden`)
		shot(t, ctx, view)
	}
	if r := <-asked2; r.code != 0 || !strings.Contains(r.stdout, "Which fields") {
		t.Errorf("api's ask of web: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
}

// shot captures the page into the test's temp dir (or
// $DASHBOARD_SCREENSHOTS, to keep them) and returns the PNG.
func shot(t *testing.T, ctx context.Context, name string) []byte {
	t.Helper()
	dir := os.Getenv("DASHBOARD_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
	return png
}
