package sdkjson

import (
	"strings"
	"testing"
)

// What the MCP SDK's decoding does and encoding/json's does not: field
// names match exactly, nesting is bounded, and what follows the first value
// is ignored (the SDK decodes through a json.Decoder).
func TestUnmarshalAsTheSDK(t *testing.T) {
	type msg struct {
		Method string `json:"method"`
		Params any    `json:"params"`
	}
	for _, tc := range []struct {
		name, in string
		want     string // Method after decoding
		err      string // part of the error, "" for none
	}{
		{"exact name", `{"method":"ping"}`, "ping", ""},
		{"other case is another field", `{"Method":"ping"}`, "", ""},
		{"trailing data ignored", `{"method":"a"} {"method":"b"}`, "a", ""},
		{"1000 deep", `{"method":"d","params":` + strings.Repeat("[", 999) + strings.Repeat("]", 999) + `}`, "d", ""},
		{"1001 deep", `{"method":"d","params":` + strings.Repeat("[", 1000) + strings.Repeat("]", 1000) + `}`, "", "maximum nesting depth of 1000"},
		{"brackets in strings do not count", `{"method":"` + strings.Repeat("[", 2000) + `"}`, strings.Repeat("[", 2000), ""},
		{"not JSON", `{"method":`, "", "json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m msg
			err := Unmarshal([]byte(tc.in), &m)
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("Unmarshal: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("Unmarshal error %v, want one saying %q", err, tc.err)
			case m.Method != tc.want:
				t.Errorf("method %q, want %q", m.Method, tc.want)
			}
		})
	}
}
