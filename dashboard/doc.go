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
// The coordinator owns the adapter and the command; the shape is:
//
//	// in daemon/ (or cmd/switchboard): a small type over *broker.Broker that
//	// satisfies dashboard.Backend, converting broker/models rows to the view
//	// types here and calling the same Broker methods the MCP tools call:
//	//   Teams        <- list_teams/team_status data (pairs' proc state, queue)
//	//   Messages     <- the store's latest messages (message_status data)
//	//   Session      <- session_report (local file or over SFTP)
//	//   Logs         <- a ring buffer slog.Handler teed into the daemon's logger
//	//   Permissions  <- the pending "ask" requests and recent decisions (issue 12)
//	//   Changes      <- the broker's state-change notifier (proc state, queue,
//	//                   message status, permission requests, new log records)
//	//   Wake/Sleep/Cancel/Reboot/Send/Decide <- the tools' Broker calls, with
//	//                   the operator as the sender
//	h := dashboard.New(dashboard.Options{
//		Backend:      adapter,
//		Token:        token, // crypto/rand, 32 bytes hex, kept in the state dir (0600)
//		AllowedHosts: []string{ln.Addr().String(), "localhost:" + port},
//		Logger:       logger.With("component", "dashboard"),
//	})
//	mux.Handle("/", h) // on the loopback httpAddr listener only
//
// An open page holds its /events request until the page closes, so
// http.Server.Shutdown would wait for it: give the server a BaseContext that
// is cancelled when the daemon stops (streams end with their request's
// context), or use Close.
//
// Serve it only on a loopback address unless TLS is configured (settings
// validation belongs in configs/). dashboardtest.Fake is a Backend for tests
// and for trying the page without a broker (dashboardtest.Demo has sample
// state).
package dashboard
