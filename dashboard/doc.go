// Package dashboard serves switchboard's live page in the browser: teams and
// their pairs' processes, messages, a session's conversation, the broker's
// logs and the permission requests waiting for an operator, with buttons to
// wake, sleep, cancel, reboot, send and approve or deny.
//
// It knows nothing of the broker: it reads and acts through Backend, defined
// here, and renders its own view types. Everything is in this binary (the
// page, CSS and plain JS are embedded); updates reach the page over
// Server-Sent Events at /events as JSON snapshots of the views that changed,
// computed on Backend.Changes signals (at most every 500 ms) and on a poll
// as the fallback.
//
// # Access
//
// The daemon makes a random per-daemon token and `switchboard dashboard`
// opens (or prints) http://ADDR/?token=TOKEN. That first request sets an
// HttpOnly, SameSite=Strict cookie and redirects to / so the token leaves the
// address bar. Every request needs the token (the cookie, or
// "Authorization: Bearer TOKEN" for scripts) or gets 401; its Host header
// must be one of Options.AllowedHosts or it gets 403 (a DNS-rebinding page
// carries its own host name); a POST must come from the page's own Origin
// (or carry no Origin and a JSON body) or it gets 403.
//
// # Wiring it into the daemon
//
// Package brokerview is the Backend over the broker (it imports both; this
// package imports neither broker nor models). `switchboard serve`
// (cmd/switchboard/dashboard.go) listens on settings.dashboard, makes a
// token with NewToken, writes it and the address with WriteAccess to
// TokenPath(socket) (0600), and runs Serve with AllowedHosts(listener):
//
//	h := dashboard.New(dashboard.Options{
//		Backend:      brokerview.New(brokerview.Options{Broker: b, Store: store, Logs: ring}),
//		Token:        token,
//		AllowedHosts: dashboard.AllowedHosts(ln.Addr()),
//		Logger:       log.With("component", "dashboard"),
//	})
//	err := dashboard.Serve(ctx, ln, h)
//
// An open page holds its /events request until the page closes, so
// http.Server.Shutdown would wait for it: Serve gives the server a
// BaseContext that ends with ctx, so streams end when the daemon stops.
//
// Serve it only on a loopback address unless TLS is configured (settings
// validation belongs in configs/). dashboardtest.Fake is a Backend for tests
// and for trying the page without a broker (dashboardtest.Demo has sample
// state).
package dashboard
