package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sync"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/internal/sdkjson"
)

// addTool is mcp.AddTool, doing what it does for a typed tool (the schemas
// inferred from In and Out, arguments validated against the input schema
// with its defaults applied, then decoded into In; Out validated and sent
// as structured content) with two costs fewer:
//
//   - the SDK decodes the arguments twice per call (to validate, then into
//     In) with its JSON package, which allocates a 32 KiB buffer each time;
//     addTool decodes them the same way (internal/sdkjson), in place.
//   - every MCP connection builds its own server (NewMCPServer), and the SDK
//     infers and resolves each tool's schemas again for it; addTool does it
//     once per type, for every connection of the daemon's life.
//
// The schemas are the SDK's (TestToolSchemas holds them), and so are the
// error results a client gets.
func addTool[In, Out any](s *mcp.Server, t *mcp.Tool, h mcp.ToolHandlerFor[In, Out]) {
	tt := *t
	var inResolved *jsonschema.Resolved
	if tt.InputSchema == nil {
		sc := schemaFor(reflect.TypeFor[In]())
		tt.InputSchema, inResolved = sc.schema, sc.resolved
	} else {
		panic(fmt.Sprintf("addTool %q: give no input schema; it is inferred from the arguments' type", t.Name))
	}
	var (
		outResolved *jsonschema.Resolved
		elemZero    any // Out's element's zero value, when Out is a pointer
	)
	if reflect.TypeFor[Out]() != reflect.TypeFor[any]() {
		if tt.OutputSchema != nil {
			panic(fmt.Sprintf("addTool %q: give no output schema; it is inferred from the result's type", t.Name))
		}
		rt := reflect.TypeFor[Out]()
		if rt.Kind() == reflect.Pointer {
			elemZero = reflect.Zero(rt.Elem()).Interface()
		}
		sc := schemaFor(rt)
		tt.OutputSchema, outResolved = sc.schema, sc.resolved
	}
	s.AddTool(&tt, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		var input json.RawMessage
		if req.Params.Arguments != nil {
			input = req.Params.Arguments
		}
		input, err := applySchema(input, inResolved, false)
		if err != nil {
			var errRes mcp.CallToolResult
			errRes.SetError(fmt.Errorf("validating \"arguments\": %v", err))
			return &errRes, nil
		}
		var in In
		if input != nil {
			if err := sdkjson.Unmarshal(input, &in); err != nil {
				var errRes mcp.CallToolResult
				errRes.SetError(err)
				return &errRes, nil
			}
		}
		res, out, err := h(ctx, req, in)
		if err != nil {
			// A JSON-RPC error goes back as one; any other error is a
			// tool result with isError, which a model can act on.
			if wireErr, ok := err.(*jsonrpc.Error); ok {
				return nil, wireErr
			}
			var errRes mcp.CallToolResult
			errRes.SetError(err)
			return &errRes, nil
		}
		if res == nil {
			res = &mcp.CallToolResult{}
		}
		var outval any = out
		if res.InputRequests != nil {
			outval = nil
		} else if elemZero != nil {
			// A typed nil would be sent as null: send the zero value.
			var z Out
			if any(out) == any(z) {
				outval = elemZero
			}
		}
		if outval != nil {
			outbytes, err := json.Marshal(outval)
			if err != nil {
				return nil, fmt.Errorf("marshaling output: %w", err)
			}
			outJSON, err := applySchema(json.RawMessage(outbytes), outResolved, true)
			if err != nil {
				return nil, fmt.Errorf("validating tool output: %w", err)
			}
			res.StructuredContent = outJSON
			if res.Content == nil {
				res.Content = []mcp.Content{&mcp.TextContent{Text: string(outJSON)}}
			} else if !isObjectJSON(outJSON) {
				res.Content = append(res.Content, &mcp.TextContent{Text: string(outJSON)})
			}
		}
		return res, nil
	})
}

// toolSchema is a type's inferred schema, resolved.
type toolSchema struct {
	schema   *jsonschema.Schema
	resolved *jsonschema.Resolved
}

var schemas sync.Map // reflect.Type -> toolSchema

// schemaFor infers and resolves the schema of a tool's arguments or result
// type as the SDK does, once per type.
func schemaFor(rt reflect.Type) toolSchema {
	if rt.Kind() == reflect.Pointer {
		rt = rt.Elem()
	}
	if sc, ok := schemas.Load(rt); ok {
		return sc.(toolSchema)
	}
	schema, err := jsonschema.ForType(rt, &jsonschema.ForOptions{})
	if err != nil {
		panic(fmt.Sprintf("schema of %v: %v", rt, err))
	}
	resolved, err := schema.Resolve(&jsonschema.ResolveOptions{ValidateDefaults: true})
	if err != nil {
		panic(fmt.Sprintf("resolve the schema of %v: %v", rt, err))
	}
	sc, _ := schemas.LoadOrStore(rt, toolSchema{schema, resolved})
	return sc.(toolSchema)
}

// applySchema is the SDK's (mcp/tool.go): data validated against resolved
// after its defaults are applied, and returned with them.
func applySchema(data json.RawMessage, resolved *jsonschema.Resolved, forOutput bool) (json.RawMessage, error) {
	if resolved == nil {
		return data, nil
	}
	var unmarshaled any
	if !forOutput {
		v := make(map[string]any)
		if len(data) > 0 {
			if err := sdkjson.Unmarshal(data, &v); err != nil {
				return nil, fmt.Errorf("unmarshaling arguments: %w", err)
			}
		}
		unmarshaled = v
	} else if len(data) > 0 {
		if err := sdkjson.Unmarshal(data, &unmarshaled); err != nil {
			return nil, fmt.Errorf("unmarshaling output: %w", err)
		}
	}
	appliedDefaults := false
	if _, ok := unmarshaled.(map[string]any); ok {
		if err := resolved.ApplyDefaults(&unmarshaled); err != nil {
			return nil, fmt.Errorf("applying schema defaults:\n%w", err)
		}
		appliedDefaults = true
	} else if forOutput && unmarshaled == nil && resolved.Schema().Type == "object" {
		unmarshaled = make(map[string]any)
		if err := resolved.ApplyDefaults(&unmarshaled); err != nil {
			return nil, fmt.Errorf("applying schema defaults:\n%w", err)
		}
		appliedDefaults = true
	}
	if err := resolved.Validate(&unmarshaled); err != nil {
		return nil, err
	}
	if !appliedDefaults {
		return data, nil
	}
	out, err := json.Marshal(unmarshaled)
	if err != nil {
		return nil, fmt.Errorf("marshalling with defaults: %v", err)
	}
	return out, nil
}

// isObjectJSON reports whether data is a JSON object.
func isObjectJSON(data json.RawMessage) bool {
	for _, b := range data {
		switch b {
		case ' ', '\t', '\n', '\r':
			continue
		case '{':
			return true
		default:
			return false
		}
	}
	return false
}
