package broker

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// maxLineBytes caps one stream-json line from Claude, as the socket side caps
// its lines: a runaway or hostile process must not grow the daemon without
// bound (a 400 MB line once took it to 406 MiB).
const maxLineBytes = 16 << 20

// errLineTooLong fails a turn whose process printed a line over the cap.
var errLineTooLong = errors.New("claude printed a stream-json line over the 16 MiB limit; the process was stopped")

// readEvents decodes stream-json lines from r and hands each event with a
// type to emit, in order. Lines that are not JSON objects with a type are
// skipped (Claude Code may print other text). A line (without its newline)
// longer than max ends the read with errLineTooLong before more than max
// bytes of it are held; the end of r is nil; other read errors are returned.
func readEvents(r io.Reader, max int, emit func(event)) error {
	br := bufio.NewReaderSize(r, 64*1024)
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		n := len(line)
		if n > 0 && line[n-1] == '\n' {
			n--
		}
		if n > max {
			return fmt.Errorf("%w (over %d bytes)", errLineTooLong, max)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if t := bytes.TrimSpace(line); len(t) > 0 {
			var e event
			if json.Unmarshal(t, &e) == nil && e.Type != "" {
				emit(e)
			}
		}
		if cap(line) > 1<<20 {
			line = nil // give a one-off long line's memory back
		} else {
			line = line[:0]
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
