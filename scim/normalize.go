package scim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
)

// The library matches body attributes by their short names only: a
// fully-qualified key ("urn:…:core:2.0:User:userName") or attributes nested
// under the core schema's URN would be dropped, and a required userName
// would then look missing. normalizeBody rewrites such bodies into the
// short form before the library reads them, and fixes Entra ID's manager
// sent as a bare string. Bodies that are not JSON objects pass unchanged
// (the library answers invalidSyntax).

func (h *handler) normalizeBody(method, path string, body []byte) []byte {
	p := strings.TrimPrefix(path, "/v2")
	var core string
	var exts []string
	switch {
	case p == "/Users" || strings.HasPrefix(p, "/Users/"):
		core, exts = uriUser, []string{uriEnterprise}
	case p == "/Groups" || strings.HasPrefix(p, "/Groups/"):
		core = uriGroup
	default:
		return body
	}
	collection := p == "/Users" || p == "/Groups"
	switch {
	case method == http.MethodPost && collection, method == http.MethodPut && !collection:
		return rewriteJSON(body, func(m map[string]any) bool { return normalizeResource(m, core, exts) })
	case method == http.MethodPatch && !collection:
		return rewriteJSON(body, normalizePatch)
	}
	return body
}

func rewriteJSON(body []byte, fn func(map[string]any) bool) []byte {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil || m == nil || d.More() {
		return body
	}
	if !fn(m) {
		return body
	}
	out, err := json.Marshal(m)
	if err != nil {
		return body
	}
	return out
}

// hasPrefixFold reports whether s starts with prefix, ignoring case.
func hasPrefixFold(s, prefix string) bool {
	return len(s) > len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// setFold sets m[key], replacing any key that differs only in case.
func setFold(m map[string]any, key string, v any) {
	for k := range m {
		if strings.EqualFold(k, key) {
			delete(m, k)
		}
	}
	m[key] = v
}

// getFold returns m's value for key, ignoring case.
func getFold(m map[string]any, key string) (any, bool) {
	if v, ok := m[key]; ok {
		return v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return nil, false
}

// setPath sets a short attribute name, or "attr.sub" inside a complex value.
func setPath(m map[string]any, name string, v any) {
	attr, sub, dotted := strings.Cut(name, ".")
	if !dotted {
		setFold(m, name, v)
		return
	}
	inner, _ := getFold(m, attr)
	obj, ok := inner.(map[string]any)
	if !ok {
		obj = map[string]any{}
	}
	setFold(obj, sub, v)
	setFold(m, attr, obj)
}

// normalizeResource moves URN-qualified attributes of a POST/PUT body to
// their short names (core) or into their extension's object.
func normalizeResource(m map[string]any, core string, exts []string) bool {
	changed := false
	for k, v := range m {
		if !strings.EqualFold(k, core) {
			continue
		}
		if obj, ok := v.(map[string]any); ok {
			delete(m, k)
			for name, x := range obj {
				setPath(m, name, x)
			}
			changed = true
		}
	}
	for k, v := range m {
		if hasPrefixFold(k, core+":") {
			delete(m, k)
			setPath(m, k[len(core)+1:], v)
			changed = true
		}
	}
	for _, ext := range exts {
		var obj map[string]any
		for k, v := range m {
			if strings.EqualFold(k, ext) {
				if o, ok := v.(map[string]any); ok {
					obj = o
					if k != ext {
						delete(m, k)
						changed = true
					}
				}
			}
		}
		for k, v := range m {
			if hasPrefixFold(k, ext+":") {
				if obj == nil {
					obj = map[string]any{}
				}
				delete(m, k)
				setPath(obj, k[len(ext)+1:], v)
				changed = true
			}
		}
		if obj == nil {
			continue
		}
		if ext == uriEnterprise {
			if s, ok := obj["manager"].(string); ok {
				setFold(obj, "manager", map[string]any{"value": s})
				changed = true
			}
		}
		m[ext] = obj
	}
	return changed
}

// normalizePatch fixes Entra ID's manager sent as a bare string, in
// "path" operations and in path-less values.
func normalizePatch(m map[string]any) bool {
	raw, _ := getFold(m, "Operations")
	ops, _ := raw.([]any)
	changed := false
	for _, o := range ops {
		op, ok := o.(map[string]any)
		if !ok {
			continue
		}
		pathV, _ := getFold(op, "path")
		path, _ := pathV.(string)
		val, _ := getFold(op, "value")
		if s, ok := val.(string); ok && isManagerPath(path) {
			setFold(op, "value", map[string]any{"value": s})
			changed = true
			continue
		}
		obj, ok := val.(map[string]any)
		if !ok || path != "" {
			continue
		}
		for k, v := range obj {
			if s, ok := v.(string); ok && isManagerPath(k) {
				obj[k] = map[string]any{"value": s}
				changed = true
			}
			if strings.EqualFold(k, uriEnterprise) {
				if ext, ok := v.(map[string]any); ok {
					if mv, ok := getFold(ext, "manager"); ok {
						if s, ok := mv.(string); ok {
							setFold(ext, "manager", map[string]any{"value": s})
							changed = true
						}
					}
				}
			}
		}
	}
	return changed
}

func isManagerPath(p string) bool {
	return strings.EqualFold(strings.TrimSpace(p), uriEnterprise+":manager")
}
