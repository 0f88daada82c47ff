package admin

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// openAPI is the part of docs/openapi.yaml the tests read.
type openAPI struct {
	OpenAPI string                          `yaml:"openapi"`
	Paths   map[string]map[string]operation `yaml:"paths"`
	Comps   struct {
		Schemas   map[string]*schema   `yaml:"schemas"`
		Responses map[string]*response `yaml:"responses"`
	} `yaml:"components"`
}

type operation struct {
	Responses map[string]*response `yaml:"responses"`
}

type response struct {
	Ref     string `yaml:"$ref"`
	Content map[string]struct {
		Schema *schema `yaml:"schema"`
	} `yaml:"content"`
}

type schema struct {
	Ref        string             `yaml:"$ref"`
	Type       string             `yaml:"type"`
	Required   []string           `yaml:"required"`
	Properties map[string]*schema `yaml:"properties"`
	Items      *schema            `yaml:"items"`
	AllOf      []*schema          `yaml:"allOf"`
	// Additional is false, true or a schema; any of them but false lets
	// unlisted properties through.
	Additional any `yaml:"additionalProperties"`
}

func loadOpenAPI(t *testing.T) *openAPI {
	t.Helper()
	data, err := os.ReadFile("../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc openAPI
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("docs/openapi.yaml: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.0") || len(doc.Paths) == 0 {
		t.Fatalf("docs/openapi.yaml: openapi %q with %d paths", doc.OpenAPI, len(doc.Paths))
	}
	return &doc
}

// resolve follows a schema's $ref and merges its allOf.
func (d *openAPI) resolve(t *testing.T, s *schema) *schema {
	t.Helper()
	for s != nil && s.Ref != "" {
		name, ok := strings.CutPrefix(s.Ref, "#/components/schemas/")
		if !ok || d.Comps.Schemas[name] == nil {
			t.Fatalf("unresolved $ref %q", s.Ref)
		}
		s = d.Comps.Schemas[name]
	}
	if s == nil || len(s.AllOf) == 0 {
		return s
	}
	merged := &schema{Type: "object", Properties: map[string]*schema{}}
	for _, part := range s.AllOf {
		p := d.resolve(t, part)
		merged.Required = append(merged.Required, p.Required...)
		maps.Copy(merged.Properties, p.Properties)
	}
	return merged
}

// check reports where v does not fit s: missing required properties,
// undocumented ones, wrong JSON types; into arrays and objects.
func (d *openAPI) check(t *testing.T, where string, s *schema, v any) {
	t.Helper()
	s = d.resolve(t, s)
	if s == nil {
		return
	}
	switch s.Type {
	case "object":
		o, ok := v.(map[string]any)
		if !ok {
			t.Errorf("%s: %T, documented as an object", where, v)
			return
		}
		for _, r := range s.Required {
			if _, ok := o[r]; !ok {
				t.Errorf("%s: no %q, documented as required", where, r)
			}
		}
		for k, x := range o {
			if p, ok := s.Properties[k]; ok {
				d.check(t, where+"."+k, p, x)
			} else if s.Additional == nil || s.Additional == false {
				t.Errorf("%s: %q is not documented", where, k)
			}
		}
	case "array":
		a, ok := v.([]any)
		if !ok {
			t.Errorf("%s: %T, documented as an array", where, v)
			return
		}
		for i, x := range a {
			d.check(t, fmt.Sprintf("%s[%d]", where, i), s.Items, x)
		}
	case "string":
		if _, ok := v.(string); !ok {
			t.Errorf("%s: %T, documented as a string", where, v)
		}
	case "integer", "number":
		if _, ok := v.(float64); !ok {
			t.Errorf("%s: %T, documented as a number", where, v)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			t.Errorf("%s: %T, documented as a boolean", where, v)
		}
	}
}

// TestOpenAPIMatchesRoutes: every path and method of docs/openapi.yaml is
// served, and every route is documented.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	ts := start(t, "127.0.0.1:0", Config{Auth: Auth{Token: testToken}, Reload: func() error { return nil }})
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			switch method {
			case "get", "post", "put", "delete", "patch", "head":
			default:
				t.Errorf("%s: unexpected key %q", path, method)
				continue
			}
			pattern := strings.ToUpper(method) + " " + path
			documented = append(documented, pattern)
			// Served: whatever the answer, not "no such path or method".
			url := strings.ReplaceAll(path, "{id}", "alpha")
			code, b := ts.call(t, strings.ToUpper(method), url, "", "Authorization: Bearer "+testToken)
			if code == 404 && !strings.Contains(string(b), "no such") || code == 405 {
				t.Errorf("%s documented but not served: %d %s", pattern, code, b)
			}
		}
	}
	slices.Sort(documented)
	routed := slices.Sorted(slices.Values(ts.patterns))
	if !slices.Equal(documented, routed) {
		t.Errorf("docs/openapi.yaml and the routes differ:\ndocumented %q\nrouted     %q", documented, routed)
	}
}

// TestOpenAPIResponses: the main endpoints answer with what the document
// says.
func TestOpenAPIResponses(t *testing.T) {
	doc := loadOpenAPI(t)
	ts := start(t, "127.0.0.1:0", Config{Auth: Auth{Token: testToken}, Version: "test",
		Listeners: []Listener{{Type: "tcp", Address: "127.0.0.1:1883"}}, Limits: map[string]any{"max_inflight": 10}})
	tests := []struct {
		path, url string
		code      string
	}{
		{"/healthz", "/healthz", "200"},
		{"/readyz", "/readyz", "200"},
		{"/api/v1/info", "/api/v1/info", "200"},
		{"/api/v1/stats", "/api/v1/stats", "200"},
		{"/api/v1/clients", "/api/v1/clients", "200"},
		{"/api/v1/clients/{id}", "/api/v1/clients/alpha", "200"},
		{"/api/v1/clients/{id}", "/api/v1/clients/nobody", "404"},
		{"/api/v1/subscriptions", "/api/v1/subscriptions", "200"},
		{"/api/v1/retained", "/api/v1/retained", "200"},
		{"/api/v1/retained/message", "/api/v1/retained/message?topic=t%2F1", "200"},
		{"/api/v1/clients", "/api/v1/clients?limit=0", "400"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			op, ok := doc.Paths[tt.path]["get"]
			if !ok {
				t.Fatalf("GET %s not documented", tt.path)
			}
			resp := op.Responses[tt.code]
			if resp == nil {
				t.Fatalf("GET %s: response %s not documented", tt.path, tt.code)
			}
			if name, ok := strings.CutPrefix(resp.Ref, "#/components/responses/"); ok {
				resp = doc.Comps.Responses[name]
			}
			code, b := ts.call(t, "GET", tt.url, "", "Authorization: Bearer "+testToken)
			if fmt.Sprint(code) != tt.code {
				t.Fatalf("%d %s, want %s", code, b, tt.code)
			}
			var v any
			if err := json.Unmarshal(b, &v); err != nil {
				t.Fatalf("%v: %s", err, b)
			}
			doc.check(t, "GET "+tt.url, resp.Content["application/json"].Schema, v)
		})
	}
}
