package broker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-mcp/switchboard/local"
	"github.com/switchboard-mcp/switchboard/proc"
)

// A process that prints one line over 16 MiB fails the turn with a clear
// error and is stopped, instead of growing the daemon without bound.
func TestOverlongStdoutLineFailsTurnAndStopsProcess(t *testing.T) {
	t.Parallel()
	script := `printf '{"type":"system","subtype":"init"}\n'; head -c 17000000 /dev/zero | tr '\0' a; exec sleep 600`
	cl, err := startClaude(context.Background(), local.New(local.Options{}), proc.Spec{Dir: t.TempDir(), Command: "/bin/sh", Args: []string{"-c", script}}, "00000000-0000-4000-8000-000000000000", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.stop(time.Second) })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = cl.turn(ctx, "hi", 0, nil, nil)
	if !errors.Is(err, errLineTooLong) || !strings.Contains(err.Error(), "16 MiB") {
		t.Fatalf("turn error %v, want the 16 MiB line limit", err)
	}
	waitFor(t, "the process to be stopped", func() bool { return !cl.alive() })
}

func events(t *testing.T, data []byte, max int) ([]event, error) {
	t.Helper()
	var got []event
	err := readEvents(bytes.NewReader(data), max, func(e event) { got = append(got, e) })
	return got, err
}

func TestReadEvents(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		in    string
		max   int
		types []string
		long  bool
	}{
		{"lines", "{\"type\":\"a\"}\n{\"type\":\"b\"}\n", 100, []string{"a", "b"}, false},
		{"no final newline", "{\"type\":\"a\"}\n{\"type\":\"b\"}", 100, []string{"a", "b"}, false},
		{"noise skipped", "hello\n{}\n[1]\n {\"type\":\"a\"} \r\n", 100, []string{"a"}, false},
		{"exactly max", "{\"type\":\"abcd\"}\n", 15, []string{"abcd"}, false},
		{"one over max", "{\"type\":\"a\"}\n{\"type\":\"abcde\"}\n{\"type\":\"c\"}\n", 15, []string{"a"}, true},
		{"long line past the buffer", "{\"type\":\"a\",\"x\":\"" + strings.Repeat("y", 200000) + "\"}\n", 300000, []string{"a"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := events(t, []byte(tt.in), tt.max)
			if errors.Is(err, errLineTooLong) != tt.long || (err != nil && !tt.long) {
				t.Fatalf("err %v, want line-too-long %v", err, tt.long)
			}
			var types []string
			for _, e := range got {
				types = append(types, e.Type)
			}
			if strings.Join(types, ",") != strings.Join(tt.types, ",") {
				t.Fatalf("events %q, want %q", types, tt.types)
			}
		})
	}
}

// FuzzReadEvents checks the stream-json reader against a plain split of the
// input: the same events in the same order, the line cap enforced exactly,
// and never a panic.
func FuzzReadEvents(f *testing.F) {
	for _, s := range []string{
		`{"type":"system","subtype":"init","session_id":"x"}` + "\n" + `{"type":"assistant","message":{"content":[{"type":"text","text":"hi"}]}}` + "\n" + `{"type":"result","subtype":"success","result":"hi","is_error":false}` + "\n",
		`{"type":"result","errors":["a","b"],"is_error":true}`,
		"\n\n  \r\n",
		`{"type":"control_request","request_id":"r","request":{"subtype":"can_use_tool"}}` + "\n",
		`{"type":1}` + "\n" + `{"type":"a"` + "\n" + "\xff\xfe\n",
	} {
		f.Add([]byte(s), uint8(64))
	}
	f.Fuzz(func(t *testing.T, data []byte, m uint8) {
		max := int(m)
		got, err := events(t, data, max)
		var want []event
		long := false
		for _, line := range bytes.Split(data, []byte("\n")) {
			if len(line) > max {
				long = true
				break
			}
			var e event
			if tl := bytes.TrimSpace(line); len(tl) > 0 && json.Unmarshal(tl, &e) == nil && e.Type != "" {
				want = append(want, e)
			}
		}
		if long != errors.Is(err, errLineTooLong) || (err != nil && !long) {
			t.Fatalf("err %v, want line-too-long %v", err, long)
		}
		if len(got) != len(want) {
			t.Fatalf("%d events, want %d", len(got), len(want))
		}
		for i := range got {
			if got[i].Type != want[i].Type || got[i].Subtype != want[i].Subtype || got[i].Result != want[i].Result {
				t.Fatalf("event %d = %+v, want %+v", i, got[i], want[i])
			}
		}
	})
}
