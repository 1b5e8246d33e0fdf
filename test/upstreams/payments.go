package upstreams

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"
)

// The payments server's schemas are raw JSON so that they reach the wire
// exactly as written; find_payment's oneOf in particular would not survive
// mcp-go's typed schema.
const (
	paymentSchema = `{
  "type": "object",
  "properties": {
    "payment_id": {"type": "string"},
    "order_id": {"type": "string"},
    "customer_id": {"type": "string"},
    "amount_cents": {"type": "integer"},
    "refunded_cents": {"type": "integer"},
    "currency": {"type": "string"},
    "method": {"type": "string", "enum": ["card", "bank_transfer"]},
    "status": {"type": "string", "enum": ["captured", "partially_refunded", "refunded"]},
    "refunds": {
      "type": "array",
      "items": {
        "type": "object",
        "properties": {
          "amount_cents": {"type": "integer"},
          "reason": {"type": "string"}
        },
        "required": ["amount_cents", "reason"]
      }
    }
  },
  "required": ["payment_id", "order_id", "customer_id", "amount_cents", "refunded_cents", "currency", "method", "status", "refunds"]
}`

	getPaymentInput = `{
  "type": "object",
  "properties": {
    "payment_id": {"type": "string", "description": "Payment id, e.g. p-5001.", "pattern": "^p-[0-9]{4}$"}
  },
  "required": ["payment_id"],
  "additionalProperties": false
}`

	findPaymentInput = `{
  "type": "object",
  "description": "Identify the payment either by its own id or by the order it paid for, not both.",
  "properties": {
    "payment_id": {"type": "string", "pattern": "^p-[0-9]{4}$"},
    "order_id": {"type": "string", "pattern": "^o-[0-9]{4}$"}
  },
  "oneOf": [
    {"required": ["payment_id"]},
    {"required": ["order_id"]}
  ],
  "additionalProperties": false
}`

	refundInput = `{
  "type": "object",
  "properties": {
    "payment_id": {"type": "string", "pattern": "^p-[0-9]{4}$"},
    "amount": {"type": "integer", "description": "Amount to refund, in cents.", "minimum": 1},
    "reason": {"type": "string", "minLength": 1, "maxLength": 200}
  },
  "required": ["payment_id", "amount", "reason"],
  "additionalProperties": false
}`
)

// refundRecord is one refund applied to a payment.
type refundRecord struct {
	AmountCents int    `json:"amount_cents"`
	Reason      string `json:"reason"`
}

// payment is one captured payment.
type payment struct {
	ID            string         `json:"payment_id"`
	OrderID       string         `json:"order_id"`
	CustomerID    string         `json:"customer_id"`
	AmountCents   int            `json:"amount_cents"`
	RefundedCents int            `json:"refunded_cents"`
	Currency      string         `json:"currency"`
	Method        string         `json:"method"`
	Status        string         `json:"status"`
	Refunds       []refundRecord `json:"refunds"`
}

// seedPayments returns one payment per seeded order that has been paid for
// (paid, shipped or delivered), numbered p-5001 upwards in order id order.
func seedPayments() []payment {
	var out []payment
	orders := seedOrders()
	for i := range orders {
		o := &orders[i]
		switch o.Status {
		case "paid", "shipped", "delivered":
		default:
			continue
		}
		n := len(out)
		method := "card"
		if n%3 == 2 {
			method = "bank_transfer"
		}
		out = append(out, payment{
			ID:          fmt.Sprintf("p-%d", 5001+n),
			OrderID:     o.ID,
			CustomerID:  o.CustomerID,
			AmountCents: o.TotalCents,
			Currency:    "EUR",
			Method:      method,
			Status:      "captured",
			Refunds:     []refundRecord{},
		})
	}
	return out
}

// paymentStore is the payments server's mutable, in-memory data.
type paymentStore struct {
	mu       sync.Mutex
	payments []payment
}

func newPaymentStore() *paymentStore {
	return &paymentStore{payments: seedPayments()}
}

// find returns a copy of the first payment for which match is true.
func (st *paymentStore) find(match func(p payment) bool) (payment, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	i := slices.IndexFunc(st.payments, match)
	if i < 0 {
		return payment{}, false
	}
	return st.payments[i].clone(), true
}

// refund refunds amount cents of a payment, up to what is left of it.
func (st *paymentStore) refund(id string, amount int, reason string) (payment, error) {
	if amount < 1 {
		return payment{}, fmt.Errorf("amount: %d is less than 1", amount)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	i := slices.IndexFunc(st.payments, func(p payment) bool { return p.ID == id })
	if i < 0 {
		return payment{}, fmt.Errorf("payment %q not found", id)
	}
	p := &st.payments[i]
	if left := p.AmountCents - p.RefundedCents; amount > left {
		return payment{}, fmt.Errorf("amount: %d exceeds the %d cents left to refund on %s", amount, left, id)
	}
	p.RefundedCents += amount
	p.Refunds = append(p.Refunds, refundRecord{AmountCents: amount, Reason: reason})
	p.Status = "partially_refunded"
	if p.RefundedCents == p.AmountCents {
		p.Status = "refunded"
	}
	return p.clone(), nil
}

// clone returns a copy of p that shares no memory with it.
func (p *payment) clone() payment {
	c := *p
	c.Refunds = slices.Clone(p.Refunds)
	return c
}

// newPaymentsServer builds the transport-independent payments server.
func newPaymentsServer() *mcpserver.MCPServer {
	st := newPaymentStore()
	srv := mcpserver.NewMCPServer("payments", "1.0.0",
		mcpserver.WithToolCapabilities(false),
		mcpserver.WithResourceCapabilities(false, false),
		mcpserver.WithPromptCapabilities(false),
		mcpserver.WithInputSchemaValidation(),
		mcpserver.WithOutputSchemaValidation(),
		mcpserver.WithRecovery(),
		mcpserver.WithInstructions("Payments and refunds. Amounts are in cents."),
	)

	getPayment := mcp.NewToolWithRawSchema("get_payment", "Returns one payment by id.", json.RawMessage(getPaymentInput))
	getPayment.RawOutputSchema = json.RawMessage(paymentSchema)
	getPayment.Annotations = readOnlyAnnotations("Get payment")
	srv.AddTool(getPayment, func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		id := req.GetString("payment_id", "")
		p, ok := st.find(func(p payment) bool { return p.ID == id })
		if !ok {
			return mcp.NewToolResultErrorf("payment %q not found", id), nil
		}
		return mcp.NewToolResultStructuredOnly(p), nil
	})

	findPayment := mcp.NewToolWithRawSchema("find_payment", "Finds a payment by payment id or by order id.", json.RawMessage(findPaymentInput))
	findPayment.RawOutputSchema = json.RawMessage(paymentSchema)
	findPayment.Annotations = readOnlyAnnotations("Find payment")
	srv.AddTool(findPayment, func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		paymentID, orderID := req.GetString("payment_id", ""), req.GetString("order_id", "")
		if (paymentID == "") == (orderID == "") {
			return mcp.NewToolResultError("give exactly one of payment_id and order_id"), nil
		}
		p, ok := st.find(func(p payment) bool {
			return paymentID != "" && p.ID == paymentID || orderID != "" && p.OrderID == orderID
		})
		if !ok {
			return mcp.NewToolResultErrorf("no payment found for payment_id=%q order_id=%q", paymentID, orderID), nil
		}
		return mcp.NewToolResultStructuredOnly(p), nil
	})

	refund := mcp.NewToolWithRawSchema("refund", "Refunds part or all of a captured payment. This moves money and cannot be undone.", json.RawMessage(refundInput))
	refund.RawOutputSchema = json.RawMessage(paymentSchema)
	refund.Annotations = mcp.ToolAnnotation{
		Title:           "Refund payment",
		ReadOnlyHint:    new(false),
		DestructiveHint: new(true),
		IdempotentHint:  new(false),
		OpenWorldHint:   new(true),
	}
	srv.AddTool(refund, func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		p, err := st.refund(req.GetString("payment_id", ""), req.GetInt("amount", 0), req.GetString("reason", ""))
		if err != nil {
			return mcp.NewToolResultError(err.Error()), nil
		}
		return mcp.NewToolResultStructuredOnly(p), nil
	})

	// approve_refund asks for the user's approval with a 2026-07-28
	// multi round-trip request (basic/patterns/mrtr): the first call
	// returns input_required with an elicitation and a requestState, the
	// retry carries the answer. mcp-go performs the session-era
	// elicitation/create itself for clients older than 2026-07-28.
	approve := mcp.NewToolWithRawSchema("approve_refund", "Asks the user to approve a refund of a payment and reports the answer. Moves no money.", json.RawMessage(getPaymentInput))
	approve.Annotations = readOnlyAnnotations("Approve refund")
	srv.AddTool(approve, func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		id := req.GetString("payment_id", "")
		if _, ok := st.find(func(p payment) bool { return p.ID == id }); !ok {
			return mcp.NewToolResultErrorf("payment %q not found", id), nil
		}
		ans := mcpserver.ElicitationResponse(req.Params.InputResponses, "approval")
		if ans == nil {
			return mcpserver.NewInputRequestBuilder("approve:"+id).Elicit("approval", mcp.ElicitationParams{
				Message:         "Approve the refund of " + id + "? Give a reason.",
				RequestedSchema: json.RawMessage(`{"type":"object","properties":{"reason":{"type":"string"}},"required":["reason"]}`),
			}).ToolResult(), nil
		}
		if req.Params.RequestState != "approve:"+id {
			return mcp.NewToolResultErrorf("requestState %q does not belong to this request", req.Params.RequestState), nil
		}
		if ans.Action != mcp.ElicitationResponseActionAccept {
			return mcp.NewToolResultText(fmt.Sprintf("refund of %s %sd by the user", id, ans.Action)), nil
		}
		reason := ""
		if m, ok := ans.Content.(map[string]any); ok {
			reason, _ = m["reason"].(string)
		}
		return mcp.NewToolResultText(fmt.Sprintf("refund of %s approved (reason: %s); nothing moved", id, reason)), nil
	})
	addPaymentResources(srv, st)
	addPaymentPrompts(srv, st)
	return srv
}

func addPaymentResources(srv *mcpserver.MCPServer, st *paymentStore) {
	srv.AddResourceTemplate(mcp.NewResourceTemplate("payment://{id}", "payment",
		mcp.WithTemplateDescription("One payment as JSON, with its refunds."),
		mcp.WithTemplateMIMEType("application/json"),
	), func(_ context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		uri := req.Params.URI
		id := strings.TrimPrefix(uri, "payment://")
		p, ok := st.find(func(p payment) bool { return p.ID == id })
		if !ok {
			return nil, fmt.Errorf("payment resource %q: %w", uri, mcpserver.ErrResourceNotFound)
		}
		b, err := json.Marshal(p)
		if err != nil {
			return nil, err
		}
		return []mcp.ResourceContents{mcp.TextResourceContents{URI: uri, MIMEType: "application/json", Text: string(b)}}, nil
	})
}

func addPaymentPrompts(srv *mcpserver.MCPServer, st *paymentStore) {
	srv.AddPrompt(mcp.NewPrompt("refund_note",
		mcp.WithPromptDescription("Asks for a short note to the customer explaining a refund of one payment."),
		mcp.WithArgument("payment_id", mcp.RequiredArgument(), mcp.ArgumentDescription("Payment id, e.g. p-5001.")),
		mcp.WithArgument("reason", mcp.ArgumentDescription("Why the payment is refunded, in a few words.")),
	), func(_ context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		id := req.Params.Arguments["payment_id"]
		p, ok := st.find(func(p payment) bool { return p.ID == id })
		if !ok {
			return nil, fmt.Errorf("payment %q not found", id)
		}
		reason := cmp.Or(req.Params.Arguments["reason"], "not given")
		return mcp.NewGetPromptResult("Refund note for payment "+p.ID, []mcp.PromptMessage{
			mcp.NewPromptMessage(mcp.RoleUser, mcp.NewTextContent(fmt.Sprintf(
				"Write a short, polite note to customer %s: payment %s for order %s (%d.%02d %s) is being refunded. Reason: %s.",
				p.CustomerID, p.ID, p.OrderID, p.AmountCents/100, p.AmountCents%100, p.Currency, reason))),
		}), nil
	})
}

// PaymentsHandler returns the payments server (mcp-go) over Streamable HTTP,
// serving at any path. It uses mcp-go's default transport settings, so it
// serves both protocol eras: session-era clients through initialize, and
// 2026-07-28 clients statelessly.
//
// Tools: get_payment, find_payment (input schema uses oneOf), refund
// (destructiveHint true) and approve_refund (asks for approval with a
// multi round-trip request). Resource: the template payment://{id}.
// Prompt: refund_note (arguments payment_id and, optionally, reason).
// Seeded payments are p-5001 … p-5008, one per paid seeded order.
func PaymentsHandler(obs *Observer) http.Handler {
	return observe(obs, mcpserver.NewStreamableHTTPServer(newPaymentsServer()))
}

// ServePaymentsStdio serves the payments server over stdio: newline-delimited
// JSON-RPC read from in and written to out. It returns nil when in reaches
// EOF, and ctx's error when ctx is cancelled first.
//
// mcp-go keeps its stdio session in a package-level variable, so at most one
// stdio server should run per process at a time.
func ServePaymentsStdio(ctx context.Context, in io.Reader, out io.Writer) error {
	if err := mcpserver.NewStdioServer(newPaymentsServer()).Listen(ctx, in, out); err != nil {
		return fmt.Errorf("serving payments over stdio: %w", err)
	}
	return nil
}
