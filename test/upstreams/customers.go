package upstreams

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// The customers server's tool schemas are raw JSON so that they reach the
// wire exactly as written here (encoding/json only compacts whitespace).
const (
	customerSchema = `{
  "type": "object",
  "properties": {
    "id": {"type": "string", "pattern": "^c-[0-9]{3}$"},
    "name": {"type": "string"},
    "email": {"type": "string", "format": "email"},
    "tier": {"type": "string", "enum": ["free", "pro", "enterprise"]},
    "country": {"type": "string", "minLength": 2, "maxLength": 2},
    "since": {"type": "string", "format": "date"}
  },
  "required": ["id", "name", "email", "tier", "country", "since"],
  "additionalProperties": false
}`

	lookupCustomerInput = `{
  "type": "object",
  "description": "Look a customer up by id.",
  "properties": {
    "id": {"type": "string", "description": "Customer id, e.g. c-001.", "pattern": "^c-[0-9]{3}$"}
  },
  "required": ["id"],
  "additionalProperties": false
}`

	searchCustomersInput = `{
  "type": "object",
  "properties": {
    "query": {"type": "string", "description": "Case-insensitive substring of the name or email.", "minLength": 1},
    "limit": {"type": "integer", "description": "Maximum number of matches to return.", "minimum": 1, "maximum": 10, "default": 5}
  },
  "required": ["query"],
  "additionalProperties": false
}`

	searchCustomersOutput = `{
  "type": "object",
  "properties": {
    "customers": {"type": "array", "items": {"$ref": "#/$defs/customer"}},
    "total": {"type": "integer", "description": "Number of matches before the limit was applied."}
  },
  "required": ["customers", "total"],
  "$defs": {"customer": ` + customerSchema + `}
}`

	updateCustomerInput = `{
  "type": "object",
  "properties": {
    "id": {"type": "string", "pattern": "^c-[0-9]{3}$"},
    "fields": {
      "type": "object",
      "description": "The fields to change; at least one.",
      "properties": {
        "name": {"type": "string", "minLength": 1},
        "email": {"type": "string", "format": "email"},
        "tier": {"type": "string", "enum": ["free", "pro", "enterprise"]}
      },
      "minProperties": 1,
      "additionalProperties": false
    }
  },
  "required": ["id", "fields"],
  "additionalProperties": false
}`
)

// customer is one seeded customer record.
type customer struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Email   string `json:"email"`
	Tier    string `json:"tier"`
	Country string `json:"country"`
	Since   string `json:"since"`
}

// validTier reports whether t is one of the tier enum's values.
func validTier(t string) bool {
	switch t {
	case "free", "pro", "enterprise":
		return true
	}
	return false
}

// seedCustomers returns the ten fixed customers c-001 … c-010.
func seedCustomers() []customer {
	return []customer{
		{ID: "c-001", Name: "Ada Lovelace", Email: "ada@example.com", Tier: "enterprise", Country: "GB", Since: "2021-03-14"},
		{ID: "c-002", Name: "Grace Hopper", Email: "grace@example.com", Tier: "pro", Country: "US", Since: "2021-07-02"},
		{ID: "c-003", Name: "Alan Turing", Email: "alan@example.org", Tier: "free", Country: "GB", Since: "2022-01-23"},
		{ID: "c-004", Name: "Katherine Johnson", Email: "katherine@example.com", Tier: "enterprise", Country: "US", Since: "2022-05-30"},
		{ID: "c-005", Name: "Edsger Dijkstra", Email: "edsger@example.nl", Tier: "pro", Country: "NL", Since: "2022-09-11"},
		{ID: "c-006", Name: "Barbara Liskov", Email: "barbara@example.com", Tier: "pro", Country: "US", Since: "2023-02-08"},
		{ID: "c-007", Name: "Donald Knuth", Email: "don@example.org", Tier: "free", Country: "US", Since: "2023-06-19"},
		{ID: "c-008", Name: "Margaret Hamilton", Email: "margaret@example.com", Tier: "enterprise", Country: "US", Since: "2023-10-01"},
		{ID: "c-009", Name: "Tim Berners-Lee", Email: "timbl@example.org", Tier: "free", Country: "GB", Since: "2024-04-04"},
		{ID: "c-010", Name: "Frances Allen", Email: "frances@example.com", Tier: "pro", Country: "US", Since: "2024-08-27"},
	}
}

// customerStore is the customers server's mutable, in-memory data.
type customerStore struct {
	mu   sync.Mutex
	byID map[string]*customer
	ids  []string // Seed order, which is also id order.
}

func newCustomerStore() *customerStore {
	st := &customerStore{byID: make(map[string]*customer)}
	for _, c := range seedCustomers() {
		st.byID[c.ID] = &c
		st.ids = append(st.ids, c.ID)
	}
	return st
}

// get returns a copy of the customer with the given id.
func (st *customerStore) get(id string) (customer, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	c, ok := st.byID[id]
	if !ok {
		return customer{}, false
	}
	return *c, true
}

// search returns up to limit customers whose name or email contains query
// (case-insensitively), in id order, and the number of matches overall.
func (st *customerStore) search(query string, limit int) ([]customer, int) {
	q := strings.ToLower(query)
	st.mu.Lock()
	defer st.mu.Unlock()
	out := []customer{}
	total := 0
	for _, id := range st.ids {
		c := st.byID[id]
		if !strings.Contains(strings.ToLower(c.Name), q) && !strings.Contains(strings.ToLower(c.Email), q) {
			continue
		}
		total++
		if len(out) < limit {
			out = append(out, *c)
		}
	}
	return out, total
}

// customerFields are the fields update_customer may change.
type customerFields struct {
	Name  *string `json:"name"`
	Email *string `json:"email"`
	Tier  *string `json:"tier"`
}

// update applies f to the customer with the given id and returns the result.
func (st *customerStore) update(id string, f customerFields) (customer, error) {
	if f.Name == nil && f.Email == nil && f.Tier == nil {
		return customer{}, fmt.Errorf("fields: at least one of name, email, tier is required")
	}
	if f.Name != nil && *f.Name == "" {
		return customer{}, fmt.Errorf("fields.name: must not be empty")
	}
	if f.Email != nil && !strings.Contains(*f.Email, "@") {
		return customer{}, fmt.Errorf("fields.email: %q is not an email address", *f.Email)
	}
	if f.Tier != nil && !validTier(*f.Tier) {
		return customer{}, fmt.Errorf("fields.tier: %q is not one of free, pro, enterprise", *f.Tier)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	c, ok := st.byID[id]
	if !ok {
		return customer{}, fmt.Errorf("customer %q not found", id)
	}
	if f.Name != nil {
		c.Name = *f.Name
	}
	if f.Email != nil {
		c.Email = *f.Email
	}
	if f.Tier != nil {
		c.Tier = *f.Tier
	}
	return *c, nil
}

// CustomersHandler returns the customers server: an official go-sdk server
// behind a stateful Streamable HTTP handler (sessions, not stateless), which
// serves at any path.
//
// Tools: lookup_customer, search_customers, update_customer, confirm_delete
// (elicits a confirmation). Resources: the
// static customer://index and the template customer://{id}. Prompt:
// customer_brief (argument id). Seeded customers are c-001 … c-010.
//
// Because it is stateful, go-sdk v1.8.0 serves it in the session era only
// (protocol versions up to 2025-11-25).
func CustomersHandler(obs *Observer) http.Handler { return customersHandler(obs, false) }

// CustomersStatelessHandler is the same customers server served by go-sdk in
// stateless mode, which is how go-sdk v1.8.0 speaks MCP 2026-07-28 over
// HTTP. Request cancellation is propagated to handlers, as the spec requires
// when a client closes the stream.
func CustomersStatelessHandler(obs *Observer) http.Handler { return customersHandler(obs, true) }

func customersHandler(obs *Observer, stateless bool) http.Handler {
	st := newCustomerStore()
	srv := sdk.NewServer(&sdk.Implementation{Name: "customers", Version: "1.0.0"}, &sdk.ServerOptions{
		Instructions: "Customer directory. Ids look like c-001.",
		// No logging capability: this server never logs to the client.
		Capabilities: &sdk.ServerCapabilities{},
	})
	addCustomerTools(srv, st, obs)
	addCustomerResources(srv, st)
	addCustomerPrompts(srv, st)
	var opts *sdk.StreamableHTTPOptions
	if stateless {
		opts = &sdk.StreamableHTTPOptions{Stateless: true, PropagateRequestCancellation: true}
	}
	h := sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return srv }, opts)
	return observe(obs, h)
}

func addCustomerTools(srv *sdk.Server, st *customerStore, obs *Observer) {
	openWorld := false
	notDestructive := false
	srv.AddTool(&sdk.Tool{
		Name:         "lookup_customer",
		Title:        "Look up customer",
		Description:  "Returns one customer by id.",
		InputSchema:  json.RawMessage(lookupCustomerInput),
		OutputSchema: json.RawMessage(customerSchema),
		Annotations:  &sdk.ToolAnnotations{ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: &openWorld},
	}, func(_ context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
		var in struct {
			ID string `json:"id"`
		}
		if err := decodeArguments(req.Params.Arguments, &in); err != nil {
			return sdkToolError(err.Error()), nil
		}
		c, ok := st.get(in.ID)
		if !ok {
			return sdkToolError(fmt.Sprintf("customer %q not found", in.ID)), nil
		}
		return sdkStructured(c)
	})

	srv.AddTool(&sdk.Tool{
		Name:         "search_customers",
		Title:        "Search customers",
		Description:  "Finds customers whose name or email contains the query.",
		InputSchema:  json.RawMessage(searchCustomersInput),
		OutputSchema: json.RawMessage(searchCustomersOutput),
		Annotations:  &sdk.ToolAnnotations{ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: &openWorld},
	}, func(_ context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
		in := struct {
			Query string `json:"query"`
			Limit int    `json:"limit"`
		}{Limit: 5}
		if err := decodeArguments(req.Params.Arguments, &in); err != nil {
			return sdkToolError(err.Error()), nil
		}
		if in.Query == "" {
			return sdkToolError("query: must not be empty"), nil
		}
		if in.Limit < 1 || in.Limit > 10 {
			return sdkToolError(fmt.Sprintf("limit: %d is outside 1..10", in.Limit)), nil
		}
		found, total := st.search(in.Query, in.Limit)
		return sdkStructured(struct {
			Customers []customer `json:"customers"`
			Total     int        `json:"total"`
		}{found, total})
	})

	srv.AddTool(&sdk.Tool{
		Name:         "update_customer",
		Title:        "Update customer",
		Description:  "Changes a customer's name, email or tier and returns the updated record.",
		InputSchema:  json.RawMessage(updateCustomerInput),
		OutputSchema: json.RawMessage(customerSchema),
		Annotations:  &sdk.ToolAnnotations{DestructiveHint: &notDestructive, IdempotentHint: true, OpenWorldHint: &openWorld},
	}, func(_ context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
		var in struct {
			ID     string         `json:"id"`
			Fields customerFields `json:"fields"`
		}
		if err := decodeArguments(req.Params.Arguments, &in); err != nil {
			return sdkToolError(err.Error()), nil
		}
		c, err := st.update(in.ID, in.Fields)
		if err != nil {
			return sdkToolError(err.Error()), nil
		}
		return sdkStructured(c)
	})

	srv.AddTool(&sdk.Tool{
		Name:        "confirm_delete",
		Title:       "Confirm customer deletion",
		Description: "Asks the user, by elicitation, to confirm deleting a customer and why. A dry run: it reports the answer and deletes nothing.",
		InputSchema: json.RawMessage(lookupCustomerInput),
		Annotations: &sdk.ToolAnnotations{ReadOnlyHint: true, OpenWorldHint: &openWorld},
	}, func(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
		var in struct {
			ID string `json:"id"`
		}
		if err := decodeArguments(req.Params.Arguments, &in); err != nil {
			return sdkToolError(err.Error()), nil
		}
		c, ok := st.get(in.ID)
		if !ok {
			return sdkToolError(fmt.Sprintf("customer %q not found", in.ID)), nil
		}
		// A session-era server-to-client request on the call's stream
		// (2025-11-25 client/elicitation).
		res, err := req.Session.Elicit(ctx, &sdk.ElicitParams{
			Message:         fmt.Sprintf("Delete customer %s (%s)? Give a reason to confirm.", c.ID, c.Name),
			RequestedSchema: json.RawMessage(confirmSchema),
		})
		if err != nil {
			if ctx.Err() != nil {
				obs.recordCancelled("confirm_delete")
			}
			return sdkToolError("elicitation failed: " + err.Error()), nil
		}
		return confirmText(c.ID, res.Action, res.Content["reason"]), nil
	})
}

// confirmSchema is the elicitation form of the confirm tools.
const confirmSchema = `{"type":"object","properties":{"reason":{"type":"string","description":"Why"}},"required":["reason"]}`

// confirmText reports an elicitation answer.
func confirmText(id, action string, reason any) *sdk.CallToolResult {
	if action != "accept" {
		return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: fmt.Sprintf("deletion of %s %sd by the user", id, action)}}}
	}
	return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: fmt.Sprintf("deletion of %s confirmed (reason: %v); dry run, nothing deleted", id, reason)}}}
}

func addCustomerResources(srv *sdk.Server, st *customerStore) {
	// go-sdk looks static resources up before templates, so customer://index
	// is not mistaken for a customer id.
	srv.AddResource(&sdk.Resource{
		URI:         "customer://index",
		Name:        "customer-index",
		Title:       "Customer index",
		Description: "The ids of every customer.",
		MIMEType:    "application/json",
	}, func(_ context.Context, req *sdk.ReadResourceRequest) (*sdk.ReadResourceResult, error) {
		st.mu.Lock()
		ids := slices.Clone(st.ids)
		st.mu.Unlock()
		b, err := json.Marshal(struct {
			IDs []string `json:"ids"`
		}{ids})
		if err != nil {
			return nil, err
		}
		return &sdk.ReadResourceResult{Contents: []*sdk.ResourceContents{
			{URI: req.Params.URI, MIMEType: "application/json", Text: string(b)},
		}}, nil
	})

	srv.AddResourceTemplate(&sdk.ResourceTemplate{
		URITemplate: "customer://{id}",
		Name:        "customer",
		Title:       "Customer",
		Description: "One customer as JSON.",
		MIMEType:    "application/json",
	}, func(_ context.Context, req *sdk.ReadResourceRequest) (*sdk.ReadResourceResult, error) {
		uri := req.Params.URI
		c, ok := st.get(strings.TrimPrefix(uri, "customer://"))
		if !ok {
			return nil, sdk.ResourceNotFoundError(uri)
		}
		b, err := json.Marshal(c)
		if err != nil {
			return nil, err
		}
		return &sdk.ReadResourceResult{Contents: []*sdk.ResourceContents{
			{URI: uri, MIMEType: "application/json", Text: string(b)},
		}}, nil
	})
}

func addCustomerPrompts(srv *sdk.Server, st *customerStore) {
	srv.AddPrompt(&sdk.Prompt{
		Name:        "customer_brief",
		Title:       "Customer brief",
		Description: "Asks for a short account brief about one customer.",
		Arguments: []*sdk.PromptArgument{
			{Name: "id", Description: "Customer id, e.g. c-001.", Required: true},
		},
	}, func(_ context.Context, req *sdk.GetPromptRequest) (*sdk.GetPromptResult, error) {
		id := req.Params.Arguments["id"]
		c, ok := st.get(id)
		if !ok {
			return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: fmt.Sprintf("customer %q not found", id)}
		}
		b, err := json.Marshal(c)
		if err != nil {
			return nil, err
		}
		return &sdk.GetPromptResult{
			Description: "Account brief for " + c.Name,
			Messages: []*sdk.PromptMessage{{
				Role: "user",
				Content: &sdk.TextContent{Text: fmt.Sprintf(
					"Write a three-sentence account brief for this %s-tier customer:\n%s", c.Tier, b)},
			}},
		}, nil
	})
}

// decodeArguments decodes raw tool arguments into v, rejecting unknown
// fields. Absent arguments decode as an empty object.
func decodeArguments(raw json.RawMessage, v any) error {
	if len(raw) == 0 || string(raw) == "null" {
		raw = json.RawMessage("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("invalid arguments: %w", err)
	}
	return nil
}

// sdkStructured returns v as both structured content and its JSON text.
func sdkStructured(v any) (*sdk.CallToolResult, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding result: %w", err)
	}
	return &sdk.CallToolResult{
		Content:           []sdk.Content{&sdk.TextContent{Text: string(b)}},
		StructuredContent: json.RawMessage(b),
	}, nil
}

// sdkToolError returns a tool execution error the model can read.
func sdkToolError(msg string) *sdk.CallToolResult {
	return &sdk.CallToolResult{
		Content: []sdk.Content{&sdk.TextContent{Text: msg}},
		IsError: true,
	}
}
