package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/internal/sdkjson"
)

// socketTransport is the MCP transport of one client connection on the
// daemon's socket. It behaves as mcp.IOTransport does on the same stream,
// without two costs that transport has on every message:
//
//   - its own reader goroutine, which hands each message to the session's
//     reader over a channel: a goroutine hand-off per request, on the path
//     of every call. Here the session's reader reads the socket itself.
//   - two decodes of each message with the SDK's JSON package, each of which
//     allocates a 32 KiB buffer (a json.Decoder's, for one small value): the
//     first as a batch (a JSON array), which fails for every message but a
//     batch, the second as the message. Here a message is a batch when it
//     starts with '[', and decodeMessage decodes it as the SDK does,
//     without the buffer.
//
// What a client sees is the transport's: newline-delimited JSON values (a
// value may span lines, as encoding/json's Decoder reads them), at most
// maxLine bytes buffered per value, nothing but a line end after a value,
// each message decoded as jsonrpc.DecodeMessage decodes it, batches accepted
// until the negotiated protocol version is 2025-06-18 or later, and the
// responses to a batch written as one array once its last request is
// answered. Any read error ends the session, as it does there. One known
// difference: a batch that mixes notifications in with its requests is
// answered here, where go-sdk v1.8.0's transport never answers it.
// TestSocketTransportMatchesIOTransport holds the two side by side.
type socketTransport struct {
	r    io.Reader // the client's bytes, after the hello line
	conn net.Conn
	out  *outQueue
}

func (t *socketTransport) Connect(ctx context.Context) (mcp.Connection, error) {
	lim := &frameLimitReader{r: t.r, limit: maxLine}
	c := &socketConn{lim: lim, dec: json.NewDecoder(lim), conn: t.conn, out: t.out, closed: make(chan struct{})}
	// Once ctx ends the session ends: unblock the read of the socket, and
	// let Read return ctx's error. (The session's reader does not pass
	// ctx itself to Read: it reads under a context of its own.)
	c.stopCtx = context.AfterFunc(ctx, func() {
		c.ctxErr.Store(ctx.Err())
		_ = t.conn.SetReadDeadline(time.Unix(1, 0))
	})
	return c, nil
}

// protocolNoBatches is the first protocol version without JSON-RPC batches.
const protocolNoBatches = "2025-06-18"

type socketConn struct {
	lim  *frameLimitReader
	dec  *json.Decoder
	conn net.Conn
	out  *outQueue

	stopCtx func() bool
	ctxErr  atomic.Value // the Connect context's error, once it ended

	// queue holds the rest of the last batch read; only Read, which the
	// session never calls concurrently, touches it.
	queue []jsonrpc.Message

	closeOnce sync.Once
	closed    chan struct{}
	closeErr  error

	// writeMu orders writes, as the transport's does; mu guards what
	// Read and Write share.
	writeMu  sync.Mutex
	mu       sync.Mutex
	initID   jsonrpc.ID // the client's initialize request, until answered
	protocol string     // the protocol version the server answered it with
	batches  map[jsonrpc.ID]*msgBatch
}

// msgBatch is a batch of requests read together, and their responses as
// they come.
type msgBatch struct {
	unresolved map[jsonrpc.ID]int
	responses  []*jsonrpc.Response
}

func (c *socketConn) SessionID() string { return "" }

func (c *socketConn) Read(ctx context.Context) (jsonrpc.Message, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(c.queue) > 0 {
		next := c.queue[0]
		c.queue = c.queue[1:]
		return next, nil
	}
	if c.isClosed() {
		return nil, io.EOF
	}
	var raw json.RawMessage
	err := c.dec.Decode(&raw)
	if err == nil {
		// A value must end its line (\n or \r\n).
		var tr [1]byte
		if n, readErr := c.dec.Buffered().Read(tr[:]); n > 0 {
			if tr[0] != '\n' && tr[0] != '\r' {
				err = errors.New("invalid trailing data at the end of stream")
			}
		} else if readErr != nil && readErr != io.EOF {
			err = readErr
		}
	}
	if err != nil {
		if cerr, ok := c.ctxErr.Load().(error); ok {
			return nil, cerr
		}
		if c.isClosed() {
			return nil, io.EOF
		}
		return nil, err
	}
	c.lim.resetFrame()

	if !isArray(raw) {
		msg, err := decodeMessage(raw)
		if err != nil {
			return nil, err
		}
		if req, ok := msg.(*jsonrpc.Request); ok && req.Method == "initialize" && req.ID.IsValid() {
			c.mu.Lock()
			c.initID = req.ID
			c.mu.Unlock()
		}
		return msg, nil
	}
	return c.readBatch(raw)
}

// readBatch takes a batch apart, tracks its requests so that their
// responses go back as one array, and returns its first message.
func (c *socketConn) readBatch(raw json.RawMessage) (jsonrpc.Message, error) {
	var raws []json.RawMessage
	if err := json.Unmarshal(raw, &raws); err != nil {
		return nil, err
	}
	if len(raws) == 0 {
		return nil, errors.New("empty batch")
	}
	msgs := make([]jsonrpc.Message, 0, len(raws))
	for _, r := range raws {
		msg, err := decodeMessage(r)
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, msg)
	}
	c.mu.Lock()
	protocol := c.protocol
	c.mu.Unlock()
	if protocol >= protocolNoBatches {
		return nil, fmt.Errorf("JSON-RPC batching is not supported in %s and later (request version: %s)", protocolNoBatches, protocol)
	}
	c.queue = msgs[1:]
	var b *msgBatch
	for _, msg := range msgs {
		req, ok := msg.(*jsonrpc.Request)
		if !ok || !req.ID.IsValid() {
			continue
		}
		if b == nil {
			b = &msgBatch{unresolved: make(map[jsonrpc.ID]int)}
		}
		if _, dup := b.unresolved[req.ID]; dup {
			return nil, fmt.Errorf("duplicate message ID %q", req.ID)
		}
		b.unresolved[req.ID] = len(b.responses)
		b.responses = append(b.responses, nil)
	}
	if b != nil {
		c.mu.Lock()
		defer c.mu.Unlock()
		for id := range b.unresolved {
			if _, ok := c.batches[id]; ok {
				return nil, fmt.Errorf("invalid request: batch contains previously seen request %v", id.Raw())
			}
		}
		if c.batches == nil {
			c.batches = make(map[jsonrpc.ID]*msgBatch)
		}
		for id := range b.unresolved {
			c.batches[id] = b
		}
	}
	return msgs[0], nil
}

func (c *socketConn) Write(ctx context.Context, msg jsonrpc.Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if resp, ok := msg.(*jsonrpc.Response); ok {
		c.noteProtocol(resp)
		if batch, inBatch := c.updateBatch(resp); inBatch {
			if batch == nil {
				return nil
			}
			var raws []json.RawMessage
			for _, r := range batch {
				data, err := jsonrpc.EncodeMessage(r)
				if err != nil {
					return fmt.Errorf("encoding batch message: %w", err)
				}
				raws = append(raws, data)
			}
			data, err := json.Marshal(raws)
			if err != nil {
				return err
			}
			return c.out.send(append(data, '\n'))
		}
	}
	data, err := jsonrpc.EncodeMessage(msg)
	if err != nil {
		return fmt.Errorf("marshaling message: %v", err)
	}
	return c.out.send(append(data, '\n'))
}

// noteProtocol keeps the protocol version of the server's answer to the
// client's initialize: from then on it decides whether batches are allowed.
func (c *socketConn) noteProtocol(resp *jsonrpc.Response) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.initID.IsValid() || resp.ID != c.initID {
		return
	}
	c.initID = jsonrpc.ID{}
	if resp.Error != nil {
		return
	}
	var res struct {
		ProtocolVersion string `json:"protocolVersion"`
	}
	if json.Unmarshal(resp.Result, &res) == nil && res.ProtocolVersion != "" {
		c.protocol = res.ProtocolVersion
	}
}

// updateBatch records resp in its batch, if it answers a request of one;
// it returns the batch's responses once the last one is in.
func (c *socketConn) updateBatch(resp *jsonrpc.Response) ([]*jsonrpc.Response, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.batches[resp.ID]
	if !ok {
		return nil, false
	}
	b.responses[b.unresolved[resp.ID]] = resp
	delete(b.unresolved, resp.ID)
	delete(c.batches, resp.ID)
	if len(b.unresolved) == 0 {
		return b.responses, true
	}
	return nil, true
}

func (c *socketConn) Close() error {
	c.closeOnce.Do(func() {
		c.stopCtx()
		c.out.Close()
		c.closeErr = c.conn.Close()
		close(c.closed)
	})
	return c.closeErr
}

func (c *socketConn) isClosed() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

// isArray reports whether a JSON value is an array: a batch.
func isArray(raw json.RawMessage) bool {
	for _, b := range raw {
		switch b {
		case ' ', '\t', '\n', '\r':
			continue
		}
		return b == '['
	}
	return false
}

// frameLimitReader bounds the bytes buffered while decoding one message,
// as the SDK's transport does.
type frameLimitReader struct {
	r     io.Reader
	limit int
	count int
}

var errFrameTooLarge = errors.New("inbound JSON-RPC frame exceeded the configured maximum line length")

func (r *frameLimitReader) Read(p []byte) (int, error) {
	if r.count >= r.limit {
		return 0, errFrameTooLarge
	}
	if len(p) > r.limit-r.count {
		p = p[:r.limit-r.count]
	}
	n, err := r.r.Read(p)
	r.count += n
	return n, err
}

func (r *frameLimitReader) resetFrame() { r.count = 0 }

// decodeMessage is jsonrpc.DecodeMessage without its 32 KiB buffer: the
// same wire fields, decoded by the same JSON package with the same flags
// (exact-case field names) and the same nesting bound, in place.
func decodeMessage(data []byte) (jsonrpc.Message, error) {
	var msg struct {
		VersionTag string          `json:"jsonrpc"`
		ID         any             `json:"id,omitempty"`
		Method     json.RawMessage `json:"method"`
		Params     json.RawMessage `json:"params,omitempty"`
		Result     json.RawMessage `json:"result,omitempty"`
		Error      *jsonrpc.Error  `json:"error,omitempty"`
	}
	if err := sdkjson.Unmarshal(data, &msg); err != nil {
		return nil, fmt.Errorf("unmarshaling jsonrpc message: %w", err)
	}
	if msg.VersionTag != "2.0" {
		return nil, fmt.Errorf("invalid message version tag %q; expected %q", msg.VersionTag, "2.0")
	}
	id, err := jsonrpc.MakeID(msg.ID)
	if err != nil {
		return nil, err
	}
	if len(msg.Method) > 0 {
		// The "method" key was present. Decode its value (including "").
		var method string
		if err := sdkjson.Unmarshal(msg.Method, &method); err != nil {
			return nil, fmt.Errorf("unmarshaling jsonrpc message: %w", err)
		}
		return &jsonrpc.Request{Method: method, ID: id, Params: msg.Params}, nil
	}
	// No method: a response, which needs an id.
	if !id.IsValid() {
		return nil, errInvalidResponse
	}
	resp := &jsonrpc.Response{ID: id, Result: msg.Result}
	if msg.Error != nil { // not a typed nil error
		resp.Error = msg.Error
	}
	return resp, nil
}

// errInvalidResponse is what the SDK returns for a message with neither a
// method nor an id (its jsonrpc2.ErrInvalidRequest).
var errInvalidResponse = &jsonrpc.Error{Code: jsonrpc.CodeInvalidRequest, Message: "JSON RPC invalid request"}
