package hoptrace

import (
	"bytes"
	"reflect"
	"testing"
)

// The benchmark reads what a switchboard process wrote: marks recorded only
// once enabled, taken once, and read back as written.
func TestMarksRoundTrip(t *testing.T) {
	Here(ClientSend) // off: not recorded
	Enable()
	Here(ProxyIn)
	Here(TurnStart)
	marks, dropped := Take()
	if dropped != 0 || len(marks) != 2 || marks[0].Name != ProxyIn || marks[1].Name != TurnStart || marks[1].At < marks[0].At {
		t.Fatalf("Take = %+v, %d dropped; want proxy.in then turn.start, in time order", marks, dropped)
	}
	if again, _ := Take(); len(again) != 0 {
		t.Errorf("a second Take returned %+v; want nothing (taken already)", again)
	}
	var buf bytes.Buffer
	if err := Write(&buf, marks); err != nil {
		t.Fatal(err)
	}
	got, err := Read(&buf)
	if err != nil || !reflect.DeepEqual(got, marks) {
		t.Errorf("Read(Write(marks)) = %+v, %v; want %+v", got, err, marks)
	}
}
