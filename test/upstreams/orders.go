package upstreams

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"
)

// The orders server's schemas are raw JSON so that they reach the wire
// exactly as written here (encoding/json only compacts whitespace); mcp-go's
// typed schema builders would reorder and drop keywords.
const (
	orderSchema = `{
  "type": "object",
  "properties": {
    "id": {"type": "string", "pattern": "^o-[0-9]{4}$"},
    "customer_id": {"type": "string"},
    "status": {"type": "string", "enum": ["pending", "paid", "shipped", "delivered", "cancelled"]},
    "priority": {"type": "string", "enum": ["standard", "express", "overnight"]},
    "items": {
      "type": "array",
      "items": {
        "type": "object",
        "properties": {
          "sku": {"type": "string"},
          "quantity": {"type": "integer"},
          "unit_price_cents": {"type": "integer"}
        },
        "required": ["sku", "quantity", "unit_price_cents"]
      }
    },
    "total_cents": {"type": "integer", "minimum": 0},
    "shipping_country": {"type": "string"},
    "created_at": {"type": "string", "format": "date-time"},
    "cancel_reason": {"type": "string"}
  },
  "required": ["id", "customer_id", "status", "priority", "items", "total_cents", "shipping_country", "created_at"]
}`

	getOrderInput = `{
  "type": "object",
  "properties": {
    "id": {"type": "string", "description": "Order id, e.g. o-1001.", "pattern": "^o-[0-9]{4}$"}
  },
  "required": ["id"],
  "additionalProperties": false
}`

	listOrdersInput = `{
  "type": "object",
  "properties": {
    "status": {"type": "string", "enum": ["pending", "paid", "shipped", "delivered", "cancelled"]},
    "customer_id": {"type": "string", "pattern": "^c-[0-9]{3}$"},
    "limit": {"type": "integer", "minimum": 1, "maximum": 50, "default": 20}
  },
  "additionalProperties": false
}`

	listOrdersOutput = `{
  "type": "object",
  "properties": {
    "orders": {"type": "array", "items": {"type": "object"}},
    "total": {"type": "integer"}
  },
  "required": ["orders", "total"]
}`

	createOrderInput = `{
  "type": "object",
  "properties": {
    "customer_id": {"type": "string", "pattern": "^c-[0-9]{3}$"},
    "items": {
      "type": "array",
      "minItems": 1,
      "maxItems": 20,
      "items": {
        "type": "object",
        "properties": {
          "sku": {"type": "string", "pattern": "^sku-[a-z]+$"},
          "quantity": {"type": "integer", "minimum": 1, "maximum": 100}
        },
        "required": ["sku", "quantity"],
        "additionalProperties": false
      }
    },
    "shipping": {
      "type": "object",
      "properties": {
        "address": {
          "type": "object",
          "properties": {
            "line1": {"type": "string", "minLength": 1},
            "line2": {"type": "string"},
            "city": {"type": "string", "minLength": 1},
            "postal_code": {"type": "string", "minLength": 1},
            "country": {"type": "string", "pattern": "^[A-Z]{2}$"}
          },
          "required": ["line1", "city", "postal_code", "country"],
          "additionalProperties": false
        },
        "instructions": {"type": "string", "maxLength": 200}
      },
      "required": ["address"],
      "additionalProperties": false
    },
    "priority": {"type": "string", "enum": ["standard", "express", "overnight"], "default": "standard"}
  },
  "required": ["customer_id", "items", "shipping"],
  "additionalProperties": false
}`

	cancelOrderInput = `{
  "type": "object",
  "properties": {
    "id": {"type": "string", "pattern": "^o-[0-9]{4}$"},
    "reason": {"type": "string", "minLength": 1, "maxLength": 200}
  },
  "required": ["id", "reason"],
  "additionalProperties": false
}`

	exportOrdersInput = `{
  "type": "object",
  "description": "Exports every order in steps, reporting progress after each one.",
  "properties": {
    "steps": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 5},
    "delay_ms": {"type": "integer", "minimum": 0, "maximum": 60000, "default": 100}
  },
  "additionalProperties": false
}`

	labelPreviewInput = `{
  "type": "object",
  "properties": {
    "id": {"type": "string", "pattern": "^o-[0-9]{4}$"}
  },
  "required": ["id"],
  "additionalProperties": false
}`
)

// orderItem is one line of an order.
type orderItem struct {
	SKU            string `json:"sku"`
	Quantity       int    `json:"quantity"`
	UnitPriceCents int    `json:"unit_price_cents"`
}

// order is one seeded or created order.
type order struct {
	ID              string      `json:"id"`
	CustomerID      string      `json:"customer_id"`
	Status          string      `json:"status"`
	Priority        string      `json:"priority"`
	Items           []orderItem `json:"items"`
	TotalCents      int         `json:"total_cents"`
	ShippingCountry string      `json:"shipping_country"`
	CreatedAt       string      `json:"created_at"`
	CancelReason    string      `json:"cancel_reason,omitempty"`
}

// skuPrice returns the unit price of a catalogue SKU in cents.
func skuPrice(sku string) (int, bool) {
	switch sku {
	case "sku-keyboard":
		return 8900, true
	case "sku-mouse":
		return 2900, true
	case "sku-monitor":
		return 24900, true
	case "sku-cable":
		return 900, true
	case "sku-dock":
		return 15900, true
	case "sku-headset":
		return 7900, true
	}
	return 0, false
}

// orderCreatedAt returns the created_at of the order with zero-based
// index n: the first order was created at a fixed instant and each later
// one an hour after the previous, so created_at is deterministic.
func orderCreatedAt(n int) string {
	first := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	return first.Add(time.Duration(n) * time.Hour).Format(time.RFC3339)
}

// seedOrders returns the twelve fixed orders o-1001 … o-1012.
func seedOrders() []order {
	type line struct {
		sku string
		qty int
	}
	seed := []struct {
		customer, status, priority, country string
		lines                               []line
	}{
		{"c-001", "delivered", "standard", "GB", []line{{"sku-keyboard", 1}, {"sku-mouse", 1}}},
		{"c-002", "delivered", "express", "US", []line{{"sku-monitor", 2}}},
		{"c-003", "shipped", "standard", "GB", []line{{"sku-cable", 3}}},
		{"c-001", "shipped", "overnight", "GB", []line{{"sku-dock", 1}, {"sku-cable", 2}}},
		{"c-004", "paid", "standard", "US", []line{{"sku-headset", 1}}},
		{"c-005", "paid", "express", "NL", []line{{"sku-keyboard", 2}}},
		{"c-006", "pending", "standard", "US", []line{{"sku-mouse", 4}}},
		{"c-007", "cancelled", "standard", "US", []line{{"sku-monitor", 1}}},
		{"c-008", "pending", "overnight", "US", []line{{"sku-dock", 2}, {"sku-headset", 2}}},
		{"c-002", "paid", "standard", "US", []line{{"sku-cable", 10}}},
		{"c-009", "pending", "express", "GB", []line{{"sku-keyboard", 1}}},
		{"c-010", "shipped", "standard", "US", []line{{"sku-monitor", 1}, {"sku-mouse", 1}}},
	}
	out := make([]order, 0, len(seed))
	for i, s := range seed {
		o := order{
			ID:              fmt.Sprintf("o-%d", 1001+i),
			CustomerID:      s.customer,
			Status:          s.status,
			Priority:        s.priority,
			ShippingCountry: s.country,
			CreatedAt:       orderCreatedAt(i),
		}
		if s.status == "cancelled" {
			o.CancelReason = "customer request"
		}
		for _, l := range s.lines {
			price, _ := skuPrice(l.sku)
			o.Items = append(o.Items, orderItem{SKU: l.sku, Quantity: l.qty, UnitPriceCents: price})
			o.TotalCents += price * l.qty
		}
		out = append(out, o)
	}
	return out
}

// orderStore is the orders server's mutable, in-memory data.
type orderStore struct {
	mu     sync.Mutex
	orders []order // In creation order; ids ascend with it.
}

func newOrderStore() *orderStore {
	return &orderStore{orders: seedOrders()}
}

// get returns a copy of the order with the given id.
func (st *orderStore) get(id string) (order, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	i := slices.IndexFunc(st.orders, func(o order) bool { return o.ID == id })
	if i < 0 {
		return order{}, false
	}
	return st.orders[i].clone(), true
}

// list returns up to limit orders matching the filters (empty means any),
// newest first, and the number of matches overall.
func (st *orderStore) list(status, customerID string, limit int) ([]order, int) {
	st.mu.Lock()
	defer st.mu.Unlock()
	out := []order{}
	total := 0
	for i := len(st.orders) - 1; i >= 0; i-- {
		o := &st.orders[i]
		if status != "" && o.Status != status || customerID != "" && o.CustomerID != customerID {
			continue
		}
		total++
		if len(out) < limit {
			out = append(out, o.clone())
		}
	}
	return out, total
}

// create adds a pending order and returns it.
func (st *orderStore) create(customerID, priority, country string, items []orderItem) order {
	st.mu.Lock()
	defer st.mu.Unlock()
	n := len(st.orders)
	o := order{
		ID:              fmt.Sprintf("o-%d", 1001+n),
		CustomerID:      customerID,
		Status:          "pending",
		Priority:        priority,
		Items:           items,
		ShippingCountry: country,
		CreatedAt:       orderCreatedAt(n),
	}
	for _, it := range items {
		o.TotalCents += it.UnitPriceCents * it.Quantity
	}
	st.orders = append(st.orders, o)
	return o.clone()
}

// cancel marks an order cancelled, unless it has already shipped.
func (st *orderStore) cancel(id, reason string) (order, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	i := slices.IndexFunc(st.orders, func(o order) bool { return o.ID == id })
	if i < 0 {
		return order{}, fmt.Errorf("order %q not found", id)
	}
	o := &st.orders[i]
	switch o.Status {
	case "shipped", "delivered":
		return order{}, fmt.Errorf("order %s has already %s and cannot be cancelled", id, o.Status)
	case "cancelled":
		return order{}, fmt.Errorf("order %s is already cancelled", id)
	}
	o.Status = "cancelled"
	o.CancelReason = reason
	return o.clone(), nil
}

// clone returns a copy of o that shares no memory with it.
func (o *order) clone() order {
	c := *o
	c.Items = slices.Clone(o.Items)
	return c
}

// labelContent is a tool-result content item of the non-standard type
// "x-label", used to check that unknown content types pass through intact.
//
// mcp-go's Content interface is sealed by an unexported method; embedding
// TextContent provides it, and MarshalJSON replaces the text encoding.
type labelContent struct {
	mcp.TextContent
	Format string
	Data   string
}

// MarshalJSON encodes the item as {"type":"x-label","format":…,"data":…}.
func (c labelContent) MarshalJSON() ([]byte, error) { //nolint:gocritic // hugeParam: a value receiver, so that values of labelContent marshal too
	return json.Marshal(struct {
		Type   string `json:"type"`
		Format string `json:"format"`
		Data   string `json:"data"`
	}{"x-label", c.Format, c.Data})
}

// OrdersHandler returns the orders server: mcp-go behind a stateful
// Streamable HTTP transport (real session ids, an in-memory event store)
// restricted to the session-era protocol versions, so 2026-07-28 clients
// negotiate down. It serves at any path.
//
// Tools: get_order, list_orders, create_order, cancel_order, export_orders
// (slow; reports progress and honours cancellation, recording it in obs) and
// label_preview (returns an "x-label" content item). Resources: orders://recent
// and the template orders://{id}. Prompt: order_summary (argument order_id).
// Seeded orders are o-1001 … o-1012.
func OrdersHandler(obs *Observer) http.Handler {
	st := newOrderStore()
	srv := mcpserver.NewMCPServer("orders", "1.0.0",
		mcpserver.WithToolCapabilities(false),
		mcpserver.WithResourceCapabilities(false, false),
		mcpserver.WithPromptCapabilities(false),
		mcpserver.WithInputSchemaValidation(),
		mcpserver.WithOutputSchemaValidation(),
		mcpserver.WithRecovery(),
		mcpserver.WithInstructions("Order management. Ids look like o-1001."),
	)
	addOrderTools(srv, st, obs)
	addOrderResources(srv, st)
	addOrderPrompts(srv, st)
	h := mcpserver.NewStreamableHTTPServer(srv,
		mcpserver.WithStateful(true),
		// Without an event store a notification sent just before a handler
		// returns can be lost.
		mcpserver.WithEventStore(mcpserver.NewInMemoryEventStore()),
		mcpserver.WithStreamableHTTPProtocolVersions(mcp.LegacyProtocolVersions()...),
	)
	return observe(obs, h)
}

func addOrderTools(srv *mcpserver.MCPServer, st *orderStore, obs *Observer) {
	getOrder := mcp.NewToolWithRawSchema("get_order", "Returns one order by id.", json.RawMessage(getOrderInput))
	getOrder.Title = "Get order"
	getOrder.RawOutputSchema = json.RawMessage(orderSchema)
	getOrder.Annotations = readOnlyAnnotations("Get order")
	srv.AddTool(getOrder, func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		id := req.GetString("id", "")
		o, ok := st.get(id)
		if !ok {
			return mcp.NewToolResultErrorf("order %q not found", id), nil
		}
		return mcp.NewToolResultStructuredOnly(o), nil
	})

	listOrders := mcp.NewToolWithRawSchema("list_orders", "Lists orders, newest first, optionally filtered by status and customer.", json.RawMessage(listOrdersInput))
	listOrders.RawOutputSchema = json.RawMessage(listOrdersOutput)
	listOrders.Annotations = readOnlyAnnotations("List orders")
	srv.AddTool(listOrders, func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		found, total := st.list(req.GetString("status", ""), req.GetString("customer_id", ""), req.GetInt("limit", 20))
		return mcp.NewToolResultStructuredOnly(struct {
			Orders []order `json:"orders"`
			Total  int     `json:"total"`
		}{found, total}), nil
	})

	createOrder := mcp.NewToolWithRawSchema("create_order", "Creates a pending order for a customer.", json.RawMessage(createOrderInput))
	createOrder.Annotations = mcp.ToolAnnotation{
		Title:           "Create order",
		ReadOnlyHint:    new(false),
		DestructiveHint: new(false),
		IdempotentHint:  new(false),
		OpenWorldHint:   new(false),
	}
	srv.AddTool(createOrder, func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		var in struct {
			CustomerID string `json:"customer_id"`
			Items      []struct {
				SKU      string `json:"sku"`
				Quantity int    `json:"quantity"`
			} `json:"items"`
			Shipping struct {
				Address struct {
					Country string `json:"country"`
				} `json:"address"`
			} `json:"shipping"`
			Priority string `json:"priority"`
		}
		if err := req.BindArguments(&in); err != nil {
			return mcp.NewToolResultErrorf("invalid arguments: %v", err), nil
		}
		items := make([]orderItem, 0, len(in.Items))
		for i, it := range in.Items {
			price, ok := skuPrice(it.SKU)
			if !ok {
				return mcp.NewToolResultErrorf("items[%d].sku: unknown SKU %q", i, it.SKU), nil
			}
			items = append(items, orderItem{SKU: it.SKU, Quantity: it.Quantity, UnitPriceCents: price})
		}
		o := st.create(in.CustomerID, cmp.Or(in.Priority, "standard"), in.Shipping.Address.Country, items)
		return mcp.NewToolResultStructuredOnly(o), nil
	})

	cancelOrder := mcp.NewToolWithRawSchema("cancel_order", "Cancels an order that has not shipped yet.", json.RawMessage(cancelOrderInput))
	cancelOrder.Annotations = mcp.ToolAnnotation{
		Title:           "Cancel order",
		ReadOnlyHint:    new(false),
		DestructiveHint: new(true),
		IdempotentHint:  new(false),
		OpenWorldHint:   new(false),
	}
	srv.AddTool(cancelOrder, func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		o, err := st.cancel(req.GetString("id", ""), req.GetString("reason", ""))
		if err != nil {
			return mcp.NewToolResultError(err.Error()), nil
		}
		return mcp.NewToolResultStructuredOnly(o), nil
	})

	exportOrders := mcp.NewToolWithRawSchema("export_orders", "Exports all orders slowly, one step at a time.", json.RawMessage(exportOrdersInput))
	exportOrders.Annotations = readOnlyAnnotations("Export orders")
	srv.AddTool(exportOrders, func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return exportOrdersTool(ctx, &req, st, obs)
	})

	labelPreview := mcp.NewToolWithRawSchema("label_preview", "Renders an order's shipping label in a vendor format (content type x-label).", json.RawMessage(labelPreviewInput))
	labelPreview.Annotations = readOnlyAnnotations("Label preview")
	srv.AddTool(labelPreview, func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		id := req.GetString("id", "")
		o, ok := st.get(id)
		if !ok {
			return mcp.NewToolResultErrorf("order %q not found", id), nil
		}
		return &mcp.CallToolResult{Content: []mcp.Content{
			mcp.NewTextContent(fmt.Sprintf("Shipping label for %s (%s, %s).", o.ID, o.CustomerID, o.ShippingCountry)),
			labelContent{Format: "zpl", Data: fmt.Sprintf("^XA^FO50,50^FD%s %s %s^FS^XZ", o.ID, o.CustomerID, o.ShippingCountry)},
		}}, nil
	})
}

// exportOrdersTool runs export_orders: steps steps of delay_ms each, with a
// notifications/progress after every step when the client sent a progress
// token. It stops as soon as ctx is cancelled and records that in obs.
func exportOrdersTool(ctx context.Context, req *mcp.CallToolRequest, st *orderStore, obs *Observer) (*mcp.CallToolResult, error) {
	steps := req.GetInt("steps", 5)
	delay := time.Duration(req.GetInt("delay_ms", 100)) * time.Millisecond
	if steps < 1 {
		return mcp.NewToolResultErrorf("steps: %d is less than 1", steps), nil
	}
	var token mcp.ProgressToken
	if req.Params.Meta != nil {
		token = req.Params.Meta.ProgressToken
	}
	srv := mcpserver.ServerFromContext(ctx)

	timer := time.NewTimer(delay)
	defer timer.Stop()
	for i := 1; i <= steps; i++ {
		timer.Reset(delay)
		select {
		case <-ctx.Done():
			obs.recordCancelled("export_orders")
			return nil, fmt.Errorf("export_orders cancelled at step %d of %d: %w", i, steps, context.Cause(ctx))
		case <-timer.C:
		}
		if token == nil || srv == nil {
			continue
		}
		// A failed send (a full notification queue) only loses progress,
		// never the export, so it is not an error.
		_ = srv.SendNotificationToClient(ctx, string(mcp.MethodNotificationProgress), map[string]any{
			"progressToken": token,
			"progress":      i,
			"total":         steps,
			"message":       fmt.Sprintf("exported step %d of %d", i, steps),
		})
	}
	st.mu.Lock()
	n := len(st.orders)
	st.mu.Unlock()
	return mcp.NewToolResultStructuredOnly(struct {
		OrdersExported int `json:"orders_exported"`
		Steps          int `json:"steps"`
	}{n, steps}), nil
}

func addOrderResources(srv *mcpserver.MCPServer, st *orderStore) {
	srv.AddResource(mcp.NewResource("orders://recent", "recent-orders",
		mcp.WithResourceDescription("The five most recent orders."),
		mcp.WithMIMEType("application/json"),
	), func(_ context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		recent, _ := st.list("", "", 5)
		b, err := json.Marshal(recent)
		if err != nil {
			return nil, err
		}
		return []mcp.ResourceContents{mcp.TextResourceContents{URI: req.Params.URI, MIMEType: "application/json", Text: string(b)}}, nil
	})

	srv.AddResourceTemplate(mcp.NewResourceTemplate("orders://{id}", "order",
		mcp.WithTemplateDescription("One order as JSON."),
		mcp.WithTemplateMIMEType("application/json"),
	), func(_ context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		uri := req.Params.URI
		o, ok := st.get(strings.TrimPrefix(uri, "orders://"))
		if !ok {
			return nil, fmt.Errorf("order resource %q: %w", uri, mcpserver.ErrResourceNotFound)
		}
		b, err := json.Marshal(o)
		if err != nil {
			return nil, err
		}
		return []mcp.ResourceContents{mcp.TextResourceContents{URI: uri, MIMEType: "application/json", Text: string(b)}}, nil
	})
}

func addOrderPrompts(srv *mcpserver.MCPServer, st *orderStore) {
	srv.AddPrompt(mcp.NewPrompt("order_summary",
		mcp.WithPromptDescription("Asks for a customer-facing summary of one order."),
		mcp.WithArgument("order_id", mcp.RequiredArgument(), mcp.ArgumentDescription("Order id, e.g. o-1001.")),
	), func(_ context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		id := req.Params.Arguments["order_id"]
		o, ok := st.get(id)
		if !ok {
			return nil, fmt.Errorf("order %q not found", id)
		}
		b, err := json.Marshal(o)
		if err != nil {
			return nil, err
		}
		return mcp.NewGetPromptResult("Summary of order "+o.ID, []mcp.PromptMessage{
			mcp.NewPromptMessage(mcp.RoleUser, mcp.NewTextContent(
				"Summarise this order for the customer in two sentences:\n"+string(b))),
		}), nil
	})
}

// readOnlyAnnotations returns the annotations of a tool that only reads
// this server's own data.
func readOnlyAnnotations(title string) mcp.ToolAnnotation {
	return mcp.ToolAnnotation{
		Title:           title,
		ReadOnlyHint:    new(true),
		DestructiveHint: new(false),
		IdempotentHint:  new(true),
		OpenWorldHint:   new(false),
	}
}
