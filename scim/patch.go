package scim

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	elscim "github.com/elimity-com/scim"
	scimfilter "github.com/elimity-com/scim/filter"
	"github.com/elimity-com/scim/schema"
	filter "github.com/scim2/filter-parser/v2"
)

// The library validates PATCH operations (RFC 7644 §3.5.2) but leaves
// applying them to us. A resource is patched as its JSON map: the handler
// renders the stored resource, applies the operations here, then parses the
// result exactly like a PUT body, so one validation path guards all writes
// and nothing is written unless the whole request is valid.

// applyPatch applies ops to res in order.
func (s resSchema) applyPatch(res map[string]any, ops []elscim.PatchOperation) error {
	for _, op := range ops {
		if err := s.apply(res, strings.ToLower(op.Op), op.Path, op.Value); err != nil {
			return err
		}
	}
	return nil
}

func (s resSchema) apply(res map[string]any, op string, p *filter.Path, value any) error {
	if p == nil {
		if op == elscim.PatchOperationRemove {
			return errNoTarget("A remove operation needs a path.")
		}
		obj, ok := value.(map[string]any)
		if !ok {
			return errInvalidValue("An operation without a path needs an object value.")
		}
		return s.applyObject(res, op, obj, "")
	}
	sch, attr, ok := s.attribute(p.AttributePath)
	if !ok {
		return errInvalidPath(fmt.Sprintf("Unknown attribute %q.", p.AttributePath.String()))
	}
	container := res
	if sch.ID != s.core.ID {
		ext, _ := res[sch.ID].(map[string]any)
		if ext == nil {
			if op == elscim.PatchOperationRemove {
				return nil
			}
			ext = map[string]any{}
			res[sch.ID] = ext
		}
		container = ext
	}
	name := attr.Name()
	if p.ValueExpression != nil {
		return applyFiltered(container, attr, op, p, value)
	}
	if sub := p.AttributePath.SubAttributeName(); sub != "" {
		subAttr, ok := attr.SubAttributes().ContainsAttribute(sub)
		if !ok {
			return errInvalidPath(fmt.Sprintf("Unknown attribute %q.", p.AttributePath.String()))
		}
		if attr.MultiValued() {
			for _, e := range asList(container[name]) {
				if m, ok := e.(map[string]any); ok {
					setSub(m, subAttr.Name(), op, value)
				}
			}
			return nil
		}
		m, _ := container[name].(map[string]any)
		if m == nil {
			if op == elscim.PatchOperationRemove {
				return nil
			}
			m = map[string]any{}
			container[name] = m
		}
		setSub(m, subAttr.Name(), op, value)
		return nil
	}
	switch {
	case attr.MultiValued():
		cur := asList(container[name])
		switch op {
		case elscim.PatchOperationAdd:
			for _, v := range asList(value) {
				if !slices.ContainsFunc(cur, func(e any) bool { return sameElement(e, v) }) {
					cur = append(cur, v)
				}
			}
			container[name] = cur
		case elscim.PatchOperationReplace:
			container[name] = asList(value)
		case elscim.PatchOperationRemove:
			if value == nil {
				delete(container, name)
				return nil
			}
			// Entra ID removes members with path "members" and a value
			// list: remove only those, not the whole attribute.
			drop := asList(value)
			container[name] = slices.DeleteFunc(cur, func(e any) bool {
				return slices.ContainsFunc(drop, func(d any) bool { return sameElement(e, d) })
			})
		}
	case attr.AttributeType() == "complex" && op != elscim.PatchOperationRemove:
		obj, ok := value.(map[string]any)
		if !ok {
			return errInvalidValue(fmt.Sprintf("%s needs an object value.", name))
		}
		m, _ := container[name].(map[string]any)
		if m == nil {
			m = map[string]any{}
			container[name] = m
		}
		for k, v := range obj { // sub-attributes not given stay (RFC 7644 §3.5.2.3)
			m[k] = v
		}
	case op == elscim.PatchOperationRemove:
		delete(container, name)
	default:
		container[name] = value
	}
	return nil
}

// applyObject applies a path-less add/replace: each key of the value is an
// attribute path, or a schema URN holding that schema's attributes.
func (s resSchema) applyObject(res map[string]any, op string, obj map[string]any, uri string) error {
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := obj[k]
		if sch, ok := s.byURI(k); ok && uri == "" {
			inner, ok := v.(map[string]any)
			if !ok {
				return errInvalidValue(fmt.Sprintf("%s needs an object value.", k))
			}
			if err := s.applyObject(res, op, inner, sch.ID); err != nil {
				return err
			}
			continue
		}
		p, err := filter.ParsePath([]byte(k))
		if err != nil {
			return errInvalidPath(fmt.Sprintf("%q is not an attribute path.", k))
		}
		if uri != "" && p.AttributePath.URIPrefix == nil {
			p.AttributePath.URIPrefix = &uri
		}
		if err := s.apply(res, op, &p, v); err != nil {
			return err
		}
	}
	return nil
}

// applyFiltered applies an operation whose path selects elements of a
// multi-valued attribute, e.g. emails[type eq "work"].value or
// members[value eq "…"].
func applyFiltered(container map[string]any, attr schema.CoreAttribute, op string, p *filter.Path, value any) error {
	name := attr.Name()
	if !attr.MultiValued() {
		return errInvalidPath(fmt.Sprintf("%s is not multi-valued.", name))
	}
	sub := ""
	if s := p.SubAttributeName(); s != "" {
		a, ok := attr.SubAttributes().ContainsAttribute(s)
		if !ok {
			return errInvalidPath(fmt.Sprintf("Unknown attribute %q.", p.String()))
		}
		sub = a.Name()
	}
	v := scimfilter.NewFilterValidator(p.ValueExpression, schema.Schema{Attributes: scimfilter.MultiValuedFilterAttributes(attr)})
	list := asList(container[name])
	var matched []int
	for i, e := range list {
		if m, ok := e.(map[string]any); ok && passes(v, m) {
			matched = append(matched, i)
		}
	}
	switch op {
	case elscim.PatchOperationRemove:
		if sub != "" {
			for _, i := range matched {
				delete(list[i].(map[string]any), sub)
			}
		} else {
			keep := list[:0:0]
			for i, e := range list {
				if !slices.Contains(matched, i) {
					keep = append(keep, e)
				}
			}
			list = keep
		}
	default: // add, replace
		if len(matched) == 0 {
			// Entra ID adds emails[type eq "work"].value to a user without
			// one: create the element the filter describes.
			seed, ok := seedElement(p.ValueExpression)
			if !ok {
				return errNoTarget(fmt.Sprintf("No value of %s matches %s.", name, p.ValueExpression))
			}
			list = append(list, seed)
			matched = []int{len(list) - 1}
		}
		for _, i := range matched {
			m := list[i].(map[string]any)
			if sub != "" {
				m[sub] = value
				continue
			}
			obj, ok := value.(map[string]any)
			if !ok {
				return errInvalidValue(fmt.Sprintf("%s needs an object value.", name))
			}
			if op == elscim.PatchOperationReplace {
				clear(m)
			}
			for k, x := range obj {
				m[k] = x
			}
		}
	}
	container[name] = list
	return nil
}

// seedElement turns a simple `attr eq "v"` filter into a new element.
func seedElement(e filter.Expression) (map[string]any, bool) {
	ae, ok := e.(*filter.AttributeExpression)
	if !ok || ae.Operator != filter.EQ || ae.AttributePath.SubAttribute != nil {
		return nil, false
	}
	return map[string]any{ae.AttributePath.AttributeName: ae.CompareValue}, true
}

func setSub(m map[string]any, sub, op string, value any) {
	if op == elscim.PatchOperationRemove {
		delete(m, sub)
		return
	}
	m[sub] = value
}

// asList returns a multi-valued attribute's values as a fresh slice.
func asList(v any) []any {
	switch x := v.(type) {
	case nil:
		return nil
	case []any:
		return append([]any(nil), x...)
	default:
		return []any{x}
	}
}

// sameElement compares two values of a multi-valued attribute: complex
// values with a "value" sub-attribute by it, anything else wholly.
func sameElement(a, b any) bool {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		av, aHas := am["value"]
		bv, bHas := bm["value"]
		if aHas && bHas {
			return fmt.Sprint(av) == fmt.Sprint(bv)
		}
	}
	return reflect.DeepEqual(a, b)
}

// passes applies a filter to a resource map; the library panics on values
// of unexpected types, which counts as no match.
func passes(v scimfilter.Validator, m map[string]any) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	return v.PassesFilter(m) == nil
}
