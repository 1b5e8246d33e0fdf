package h1

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"strconv"
	"testing"
)

// loopConn answers every write with resp, from memory: the client's own
// cost of a request, without the network's.
type loopConn struct {
	nopConn
	resp, pending []byte
}

func (c *loopConn) Write(b []byte) (int, error) {
	c.pending = c.resp
	return len(b), nil
}

func (c *loopConn) Read(p []byte) (int, error) {
	if len(c.pending) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}

// BenchmarkDo measures a tools/call's POST on a pooled connection: the
// request rendered and written, the response head parsed, the body read.
func BenchmarkDo(b *testing.B) {
	result := `{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"hello, upstream"}]}}`
	resp := "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDate: Mon, 01 Jun 2026 00:00:00 GMT\r\nContent-Length: " +
		strconv.Itoa(len(result)) + "\r\n\r\n" + result
	head, err := NewHead(http.MethodPost, "/mcp", "127.0.0.1:8080", http.Header{
		"Content-Type":         {"application/json"},
		"Accept":               {"application/json, text/event-stream"},
		"Mcp-Protocol-Version": {"2026-07-28"},
	})
	if err != nil {
		b.Fatal(err)
	}
	req := &Request{Head: head, Body: []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello, upstream"}}}`), Fields: [][2]string{
		{"Mcp-Method", "tools/call"}, {"Mcp-Name", "echo"}, {"X-Request-Id", "bench"}, {"Authorization", "Bearer token"},
	}}
	tr := NewTransport("127.0.0.1:8080", 1)
	pc := &conn{t: tr, nc: &loopConn{resp: []byte(resp)}}
	pc.br = bufio.NewReaderSize(pc.nc, readBuffer)
	pc.abort = func() {}
	tr.put(pc)
	buf := make([]byte, 512)
	b.ReportAllocs()
	for b.Loop() {
		r, err := tr.Do(b.Context(), req)
		if err != nil {
			b.Fatal(err)
		}
		for err == nil {
			_, err = r.Body.Read(buf)
		}
		if !errors.Is(err, io.EOF) {
			b.Fatal(err)
		}
	}
}
