package dashboard_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/switchboard-mcp/switchboard/dashboard"
	"github.com/switchboard-mcp/switchboard/dashboard/dashboardtest"
)

// browser starts Debian's headless Chromium (see dashboardtest.Browser).
func browser(t *testing.T) context.Context { return dashboardtest.Browser(t, 3*time.Minute) }

func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	return dashboardtest.Eval[T](t, ctx, js)
}

// waitJS polls a JavaScript condition until it holds.
func waitJS(t *testing.T, ctx context.Context, what, js string) {
	t.Helper()
	dashboardtest.WaitJS(t, ctx, what, js, 15*time.Second)
}

func TestBrowserLiveDashboard(t *testing.T) {
	e := start(t) // first, so its Close runs after the browser has gone
	ctx := browser(t)

	// Without the token the browser gets the 401 page.
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(e.srv.URL+"/"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != 401 {
		t.Fatalf("without token: status %d, want 401", resp.Status)
	}
	if txt := eval[string](t, ctx, `document.body.innerText`); !strings.Contains(txt, "switchboard dashboard") {
		t.Errorf("401 page says %q", txt)
	}

	// With it: the cookie is set and the token leaves the address bar.
	do(t, ctx, chromedp.EmulateViewport(1280, 800), chromedp.Navigate(e.srv.URL+"/?token="+token),
		chromedp.WaitReady(chromedp.CSS(`body[data-ready="1"]`)))
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); loc != e.srv.URL+"/" {
		t.Errorf("location %q still carries the token", loc)
	}
	eval[any](t, ctx, `window.noReload = 1`)
	if n := eval[int](t, ctx, `document.querySelectorAll('#teams > article').length`); n != 2 {
		t.Fatalf("%d team cards, want 2", n)
	}
	for _, name := range []string{"api", "db"} {
		waitJS(t, ctx, "team "+name, fmt.Sprintf(`document.querySelector('#teams [data-key=%q] h2').textContent === %q`, name, name))
	}

	// A pair goes answering, then idle with its message answered: the page
	// follows without a reload.
	pairState := `document.querySelector('.pair[data-key="web>api"] .state').textContent`
	waitJS(t, ctx, "web>api idle", pairState+` === 'idle'`)
	e.fake.Update(func(s *dashboardtest.State) {
		s.Teams[0].Pairs[0].State = dashboard.StateAnswering
		s.Messages = append([]dashboard.Message{{ID: "m-2000", From: "web", To: "api", Status: "running", Created: time.Now(), Question: "Is /v1/orders paginated?"}}, s.Messages...)
	})
	waitJS(t, ctx, "web>api answering", pairState+` === 'answering'`)
	e.fake.Update(func(s *dashboardtest.State) {
		s.Teams[0].Pairs[0].State = dashboard.StateIdle
		s.Teams[0].Pairs[0].Turns++
		s.Messages[0].Status, s.Messages[0].Answer, s.Messages[0].Latency = "answered", "Yes: ?cursor= and ?limit=, see api/orders.go.", 3200*time.Millisecond
	})
	waitJS(t, ctx, "web>api idle again", pairState+` === 'idle'`)
	eval[any](t, ctx, `location.hash = '#messages'`)
	waitJS(t, ctx, "message m-2000 answered", `document.querySelector('#messages [data-key="m-2000"] .status')?.textContent === 'answered'`)
	do(t, ctx, chromedp.Click(chromedp.CSS(`#messages [data-key="m-2000"] .msg-row`)))
	waitJS(t, ctx, "answer shown", `document.querySelector('#messages [data-key="m-2000"] .msg-body').innerText.includes('?cursor= and ?limit=')`)
	if !eval[bool](t, ctx, `window.noReload === 1`) {
		t.Fatal("the page reloaded")
	}

	// Approve the pending permission with one click.
	eval[any](t, ctx, `location.hash = '#permissions'`)
	waitJS(t, ctx, "pending request", `!!document.querySelector('#pending [data-key="p-7"]')`)
	waitJS(t, ctx, "countdown", `document.querySelector('#pending [data-key="p-7"] .countdown').textContent.startsWith('denies in ')`)
	do(t, ctx, chromedp.Click(chromedp.CSS(`#pending [data-key="p-7"] button[data-action="approve"]`)))
	deadline := time.Now().Add(10 * time.Second)
	for !hasCall(e.fake.Calls(), dashboardtest.Call{Action: "decide", ID: "p-7", Allow: true}) {
		if time.Now().After(deadline) {
			t.Fatalf("backend never got the approval; calls %+v", e.fake.Calls())
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitJS(t, ctx, "decision listed", `!document.querySelector('#pending [data-key="p-7"]') && document.querySelector('#recent [data-key="p-7"] .status')?.textContent === 'allowed'`)

	// The Teams view's buttons and send box reach the backend.
	eval[any](t, ctx, `location.hash = '#teams'`)
	do(t, ctx, chromedp.Click(chromedp.CSS(`.pair[data-key="web>api"] button[data-action="sleep"]`)),
		chromedp.SendKeys(chromedp.CSS(`#teams [data-key="api"] .send input`), "What changed in /v1/orders?"),
		chromedp.Click(chromedp.CSS(`#teams [data-key="api"] .send button`)))
	for _, want := range []dashboardtest.Call{
		{Action: "sleep", From: "web", To: "api"},
		{Action: "send", To: "api", Text: "What changed in /v1/orders?"},
	} {
		deadline := time.Now().Add(10 * time.Second)
		for !hasCall(e.fake.Calls(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("backend never got %+v; calls %+v", want, e.fake.Calls())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if !eval[bool](t, ctx, `window.noReload === 1`) {
		t.Fatal("the page reloaded")
	}
}

func hasCall(calls []dashboardtest.Call, want dashboardtest.Call) bool {
	for _, c := range calls {
		if c == want {
			return true
		}
	}
	return false
}

// TestBrowserScreenshots captures every view at desktop and phone widths in
// both themes. UPDATE_SCREENSHOT=1 also refreshes docs/dashboard.png;
// DASHBOARD_SCREENSHOTS=dir keeps them all for a look.
func TestBrowserScreenshots(t *testing.T) {
	e := start(t) // first, so its Close runs after the browser has gone
	ctx := browser(t)
	dir := t.TempDir()
	if d := os.Getenv("DASHBOARD_SCREENSHOTS"); d != "" {
		dir = d
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	do(t, ctx, chromedp.EmulateViewport(1280, 800), chromedp.Navigate(e.srv.URL+"/?token="+token),
		chromedp.WaitReady(chromedp.CSS(`body[data-ready="1"]`)))
	eval[any](t, ctx, `(() => { const s = document.getElementById('s-pair'); s.value = 'web>api'; s.dispatchEvent(new Event('change')); })()`)
	waitJS(t, ctx, "session loaded", `document.querySelectorAll('#session .entry').length === 3`)
	eval[any](t, ctx, `document.querySelector('#messages [data-key="m-1041"] .msg-row').click(); document.querySelector('#messages [data-key="m-1040"] .msg-row').click()`)

	for _, size := range []struct {
		name string
		w, h int64
	}{{"1280", 1280, 800}, {"420", 420, 860}} {
		for _, scheme := range []string{"light", "dark"} {
			do(t, ctx, chromedp.EmulateViewport(size.w, size.h), chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
				_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
					Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
				})
				return err
			}))
			for _, view := range []string{"teams", "messages", "session", "logs", "permissions"} {
				eval[any](t, ctx, `location.hash = '#`+view+`'; window.scrollTo(0, 0)`)
				waitJS(t, ctx, view+" shown", `!document.getElementById('view-`+view+`').hidden`)
				png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
				if err != nil {
					t.Fatal(err)
				}
				name := filepath.Join(dir, fmt.Sprintf("%s-%s-%s.png", view, size.name, scheme))
				if err := os.WriteFile(name, png, 0o644); err != nil {
					t.Fatal(err)
				}
				if view == "teams" && size.name == "1280" && scheme == "light" && os.Getenv("UPDATE_SCREENSHOT") == "1" {
					if err := os.WriteFile(filepath.Join("..", "docs", "dashboard.png"), png, 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
	}
	t.Logf("screenshots in %s", dir)
}
