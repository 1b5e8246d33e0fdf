// Command upstream is the benchmark's MCP server: Streamable HTTP written
// directly on net/http, so that it costs less than anything placed in front
// of it. It speaks the 2025-11-25 session era (initialize, Mcp-Session-Id)
// and the 2026-07-28 stateless era (server/discover, MCP-Protocol-Version on
// every request), and offers echo, sleep and N filler tools.
//
// It counts accepted TCP connections and MCP requests and serves them at
// GET /stats as {"conns":N,"requests":M,...}; the runner reads it before
// and after a measurement to compute upstream connections opened per call.
//
//	go run ./bench/upstream -listen 127.0.0.1:0 -filler 998
//
// prints MCP_URL=http://127.0.0.1:PORT/mcp on stdout once listening.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mcpgw/mcpgw/internal/mcpwire"
	"github.com/mcpgw/mcpgw/internal/rawjson"
)

const maxBody = 4 << 20

// versionsOffered is what server/discover and an unsupported-version error
// name: the stateless version and the newest session-era one.
const versionsOffered = `"` + mcpwire.Version20260728 + `","` + mcpwire.Version20251125 + `"`

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	filler := flag.Int("filler", 0, "number of filler tools (filler_0001…) besides echo and sleep")
	pageSize := flag.Int("page-size", 500, "tools per tools/list page")
	flag.Parse()
	log.SetFlags(0)
	if *filler < 0 || *pageSize < 1 {
		log.Fatal("upstream: -filler must be >= 0 and -page-size >= 1") //nolint:forbidigo // a main package; a bad flag ends it.
	}

	var lc net.ListenConfig
	ln, err := lc.Listen(context.Background(), "tcp", *listen)
	if err != nil {
		log.Fatalf("upstream: %v", err) //nolint:forbidigo // a main package; it cannot listen.
	}
	s := newServer(*filler, *pageSize)
	cl := &countingListener{Listener: ln, n: &s.conns}
	mux := http.NewServeMux()
	mux.Handle("/mcp", s)
	mux.HandleFunc("GET /stats", s.serveStats)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	fmt.Printf("MCP_URL=http://%s/mcp\n", ln.Addr()) //nolint:forbidigo // the bench runner reads this line from stdout.

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(cl); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatalf("upstream: %v", err) //nolint:forbidigo,gocritic // a main package; it cannot serve, and stop only undoes signal.Notify.
	}
}

// countingListener counts the TCP connections it accepts.
type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// server is the MCP endpoint. Everything the requests need is computed in
// newServer; the hot path only scans the envelope and appends bytes.
type server struct {
	conns, requests, calls, lists, inits atomic.Int64

	sessions sync.Map // session id → struct{}
	// bufs holds request body buffers (*[]byte).
	bufs sync.Pool

	// pages[i] is the result object of tools/list page i.
	pages [][]byte
	// cursors maps a nextCursor value to its page index.
	cursors map[string]int

	// initPrefix + version + initSuffix is the initialize result.
	initPrefix, initSuffix []byte
	discoverResult         []byte
}

func newServer(filler, pageSize int) *server {
	s := &server{cursors: map[string]int{}}
	s.bufs.New = func() any { b := make([]byte, 0, 4096); return &b }
	tools := []json.RawMessage{
		json.RawMessage(`{"name":"echo","description":"Returns its text argument.","inputSchema":{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}}`),
		json.RawMessage(`{"name":"sleep","description":"Sleeps ms milliseconds, then answers.","inputSchema":{"type":"object","properties":{"ms":{"type":"integer","minimum":0}},"required":["ms"]}}`),
	}
	for i := 1; i <= filler; i++ {
		tools = append(tools, json.RawMessage(fmt.Sprintf(
			`{"name":"filler_%04d","description":"Filler tool %d for catalog benchmarks.","inputSchema":{"type":"object","properties":{"q":{"type":"string","description":"query"}}}}`, i, i)))
	}
	for start := 0; start < len(tools); start += pageSize {
		end := min(start+pageSize, len(tools))
		page := struct {
			Tools      []json.RawMessage `json:"tools"`
			NextCursor string            `json:"nextCursor,omitempty"`
		}{Tools: tools[start:end]}
		if end < len(tools) {
			page.NextCursor = "page-" + strconv.Itoa(len(s.pages)+1)
			s.cursors[page.NextCursor] = len(s.pages) + 1
		}
		b, err := json.Marshal(page)
		if err != nil {
			panic(err)
		}
		s.pages = append(s.pages, b)
	}
	serverInfo := `{"name":"mcpgw-bench-upstream","version":"1.0.0"}`
	caps := `{"tools":{"listChanged":false}}`
	s.initPrefix = []byte(`{"protocolVersion":"`)
	s.initSuffix = []byte(`","capabilities":` + caps + `,"serverInfo":` + serverInfo + `}`)
	s.discoverResult = []byte(`{"supportedVersions":[` + versionsOffered + `],"capabilities":` + caps + `,"serverInfo":` + serverInfo + `}`)
	return s
}

var (
	ctJSON    = []string{"application/json"} //nolint:gochecknoglobals // a read-only header value, set on every response without allocating.
	errNoBody = errors.New("empty body")
)

func (s *server) serveStats(w http.ResponseWriter, _ *http.Request) {
	w.Header()["Content-Type"] = ctJSON
	n := 0
	s.sessions.Range(func(_, _ any) bool { n++; return true })
	fmt.Fprintf(w, `{"conns":%d,"requests":%d,"calls":%d,"lists":%d,"initializes":%d,"sessions":%d}`+"\n",
		s.conns.Load(), s.requests.Load(), s.calls.Load(), s.lists.Load(), s.inits.Load(), n)
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPost:
		s.post(w, r)
	case http.MethodDelete:
		sid := r.Header.Get(mcpwire.HeaderSessionID)
		if _, ok := s.sessions.LoadAndDelete(sid); !ok {
			http.Error(w, "unknown session", http.StatusNotFound)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		// No server-initiated SSE stream: the spec allows 405 for GET.
		w.Header().Set("Allow", "POST, DELETE")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// request is the scanned JSON-RPC envelope.
type request struct {
	id     []byte // raw; nil for a notification
	method string
	params []byte // raw; nil when absent
}

func scanRequest(body []byte) (request, error) {
	var req request
	var method []byte
	// Names are compared raw, quotes included: the benchmark's clients
	// never escape them.
	err := rawjson.EachMember(body, func(k, v []byte) bool {
		switch string(k) {
		case `"id"`:
			req.id = v
		case `"method"`:
			method = v
		case `"params"`:
			req.params = v
		}
		return true
	})
	if err != nil {
		return req, err
	}
	m, ok := rawjson.DecodeString(method)
	if !ok {
		return req, errors.New("method is not a string")
	}
	req.method = m
	if rawjson.IsNull(req.id) {
		req.id = nil
	}
	return req, nil
}

func (s *server) post(w http.ResponseWriter, r *http.Request) {
	bp := s.bufs.Get().(*[]byte) //nolint:errcheck // bufs holds only *[]byte.
	defer s.bufs.Put(bp)
	body, err := readBody(r.Body, (*bp)[:0])
	*bp = body[:0]
	if err != nil {
		writeError(w, http.StatusBadRequest, nil, mcpwire.CodeParseError, "reading body: "+err.Error(), "")
		return
	}
	s.requests.Add(1)
	req, err := scanRequest(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, nil, mcpwire.CodeParseError, "parse error: "+err.Error(), "")
		return
	}

	version := r.Header.Get(mcpwire.HeaderProtocolVersion)
	modern := version == mcpwire.Version20260728
	switch {
	case modern:
		// Stateless: the headers must mirror the body.
		if h := r.Header.Get(mcpwire.HeaderMethod); h != req.method {
			writeError(w, http.StatusBadRequest, req.id, mcpwire.CodeHeaderMismatch, fmt.Sprintf("%s header %q does not match method %q", mcpwire.HeaderMethod, h, req.method), "")
			return
		}
	case version != "" && !isLegacy(version):
		writeError(w, http.StatusBadRequest, req.id, mcpwire.CodeUnsupportedVersion, "unsupported protocol version "+version,
			`{"supported":[`+versionsOffered+`]}`)
		return
	case req.method != mcpwire.MethodInitialize && req.method != mcpwire.MethodDiscover:
		sid := r.Header.Get(mcpwire.HeaderSessionID)
		if sid == "" {
			writeError(w, http.StatusBadRequest, req.id, mcpwire.CodeInvalidRequest, "missing "+mcpwire.HeaderSessionID, "")
			return
		}
		if _, ok := s.sessions.Load(sid); !ok {
			writeError(w, http.StatusNotFound, req.id, mcpwire.CodeInvalidRequest, "unknown session", "")
			return
		}
	}

	if req.id == nil { // A notification: accepted, nothing to answer.
		w.WriteHeader(http.StatusAccepted)
		return
	}

	switch req.method {
	case mcpwire.MethodInitialize:
		s.initialize(w, req)
	case mcpwire.MethodDiscover:
		writeResult(w, req.id, s.discoverResult)
	case mcpwire.MethodPing:
		writeResult(w, req.id, []byte("{}"))
	case mcpwire.MethodToolsList:
		s.lists.Add(1)
		s.toolsList(w, req)
	case mcpwire.MethodToolsCall:
		s.calls.Add(1)
		s.toolsCall(w, r, req, modern)
	default:
		writeError(w, http.StatusOK, req.id, mcpwire.CodeMethodNotFound, "method not found: "+req.method, "")
	}
}

// isLegacy reports whether v is a session-era version (accepted at
// initialize and on the session's requests).
func isLegacy(v string) bool {
	return mcpwire.VersionIndex(v) >= 0 && !mcpwire.IsModern(v)
}

func (s *server) initialize(w http.ResponseWriter, req request) {
	s.inits.Add(1)
	version := mcpwire.Version20251125
	if raw := rawjson.Member(req.params, "protocolVersion"); raw != nil {
		if v, ok := rawjson.DecodeString(raw); ok && isLegacy(v) {
			version = v
		}
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	sid := hex.EncodeToString(b[:])
	s.sessions.Store(sid, struct{}{})
	w.Header().Set(mcpwire.HeaderSessionID, sid)
	res := append(append(append([]byte(nil), s.initPrefix...), version...), s.initSuffix...)
	writeResult(w, req.id, res)
}

func (s *server) toolsList(w http.ResponseWriter, req request) {
	page := 0
	if len(req.params) > 0 {
		var raw []byte
		err := rawjson.EachMember(req.params, func(k, v []byte) bool {
			if string(k) == `"cursor"` {
				raw = v
			}
			return true
		})
		if err != nil {
			writeError(w, http.StatusOK, req.id, mcpwire.CodeInvalidParams, "invalid params", "")
			return
		}
		if !rawjson.IsNull(raw) {
			c, _ := rawjson.DecodeString(raw)
			p, ok := s.cursors[c]
			if !ok {
				writeError(w, http.StatusOK, req.id, mcpwire.CodeInvalidParams, "invalid cursor", "")
				return
			}
			page = p
		}
	}
	writeResult(w, req.id, s.pages[page])
}

func (s *server) toolsCall(w http.ResponseWriter, r *http.Request, req request, modern bool) {
	var nameRaw, args []byte
	err := rawjson.EachMember(req.params, func(k, v []byte) bool {
		switch string(k) {
		case `"name"`:
			nameRaw = v
		case `"arguments"`:
			args = v
		}
		return true
	})
	name, ok := rawjson.DecodeString(nameRaw)
	if err != nil || !ok {
		writeError(w, http.StatusOK, req.id, mcpwire.CodeInvalidParams, "invalid params: name", "")
		return
	}
	if modern {
		if h := r.Header.Get(mcpwire.HeaderName); h != name {
			writeError(w, http.StatusBadRequest, req.id, mcpwire.CodeHeaderMismatch, fmt.Sprintf("%s header %q does not match params.name %q", mcpwire.HeaderName, h, name), "")
			return
		}
	}
	switch name {
	case "echo":
		text := rawjson.Member(args, "text")
		if text != nil && (len(text) < 2 || text[0] != '"') { //nolint:gocritic // nil means no text member; present, it must be a string.
			writeError(w, http.StatusOK, req.id, mcpwire.CodeInvalidParams, "echo: text must be a string", "")
			return
		}
		if text == nil {
			text = []byte(`""`)
		}
		res := make([]byte, 0, len(text)+48)
		res = append(res, `{"content":[{"type":"text","text":`...)
		res = append(res, text...)
		res = append(res, `}]}`...)
		writeResult(w, req.id, res)
	case "sleep":
		raw := rawjson.Member(args, "ms")
		ms, err := strconv.ParseFloat(string(raw), 64)
		if err != nil || ms < 0 {
			writeError(w, http.StatusOK, req.id, mcpwire.CodeInvalidParams, "sleep: ms must be a non-negative number", "")
			return
		}
		t := time.NewTimer(time.Duration(ms * float64(time.Millisecond)))
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		}
		writeResult(w, req.id, []byte(`{"content":[{"type":"text","text":"slept"}]}`))
	default:
		if len(name) > 7 && name[:7] == "filler_" {
			writeResult(w, req.id, []byte(`{"content":[{"type":"text","text":"filler"}]}`))
			return
		}
		writeError(w, http.StatusOK, req.id, mcpwire.CodeInvalidParams, "unknown tool: "+name, "")
	}
}

func readBody(r io.Reader, buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			if len(buf) >= maxBody {
				return buf, errors.New("body too large")
			}
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			if len(buf) == 0 {
				return buf, errNoBody
			}
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

func writeResult(w http.ResponseWriter, id, result []byte) {
	b := make([]byte, 0, len(result)+len(id)+40)
	b = append(b, `{"jsonrpc":"2.0","id":`...)
	b = append(b, id...)
	b = append(b, `,"result":`...)
	b = append(b, result...)
	b = append(b, "}\n"...)
	writeBody(w, http.StatusOK, b)
}

func writeError(w http.ResponseWriter, status int, id []byte, code int, msg, data string) {
	if id == nil {
		id = []byte("null")
	}
	e := map[string]any{"code": code, "message": msg}
	if data != "" {
		e["data"] = json.RawMessage(data)
	}
	eb, _ := json.Marshal(e)
	b := append([]byte(`{"jsonrpc":"2.0","id":`), id...)
	b = append(b, `,"error":`...)
	b = append(b, eb...)
	b = append(b, "}\n"...)
	writeBody(w, status, b)
}

func writeBody(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h["Content-Type"] = ctJSON
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
