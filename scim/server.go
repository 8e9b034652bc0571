package scim

import (
	"net/http"
	"strings"

	elscim "github.com/elimity-com/scim"
	"github.com/elimity-com/scim/optional"
	"github.com/elimity-com/scim/schema"
	filter "github.com/scim2/filter-parser/v2"
)

// Schema URNs.
const (
	uriUser       = schema.UserSchema
	uriGroup      = schema.GroupSchema
	uriEnterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
)

// maxResults is the largest page a list returns (ServiceProviderConfig
// filter.maxResults; the library clamps count to it).
const maxResults = 200

func init() {
	// Entra ID sends booleans as strings ("active": "False"). The switch is
	// process-wide in the library; it is set once here, before any request.
	schema.SetAllowStringValues(true)
}

// resSchema is a resource type's core schema (with externalId) and its
// extensions, for applying PATCH operations and filters.
type resSchema struct {
	core  schema.Schema
	exts  []schema.Schema
	multi map[string]bool // lower-case names of multi-valued core attributes
}

func newResSchema(core schema.Schema, exts ...schema.Schema) resSchema {
	s := resSchema{core: core, exts: exts, multi: map[string]bool{}}
	attrs := append(schema.Attributes{}, core.Attributes...)
	s.core.Attributes = append(attrs, schema.CommonAttributes()...)
	for _, a := range core.Attributes {
		if a.MultiValued() {
			s.multi[strings.ToLower(a.Name())] = true
		}
	}
	return s
}

func userResSchema() resSchema {
	return newResSchema(schema.CoreUserSchema(), schema.ExtensionEnterpriseUser())
}

func groupResSchema() resSchema { return newResSchema(schema.CoreGroupSchema()) }

// byURI returns the schema (core or extension) a URN names.
func (s resSchema) byURI(uri string) (schema.Schema, bool) {
	if strings.EqualFold(uri, s.core.ID) {
		return s.core, true
	}
	for _, e := range s.exts {
		if strings.EqualFold(uri, e.ID) {
			return e, true
		}
	}
	return schema.Schema{}, false
}

// attribute finds the schema and attribute an attribute path names: the
// URN's schema, or without a URN the core schema, then the extensions.
func (s resSchema) attribute(ap filter.AttributePath) (schema.Schema, schema.CoreAttribute, bool) {
	if uri := ap.URI(); uri != "" {
		sch, ok := s.byURI(uri)
		if !ok {
			return schema.Schema{}, schema.CoreAttribute{}, false
		}
		a, ok := sch.Attributes.ContainsAttribute(ap.AttributeName)
		return sch, a, ok
	}
	for _, sch := range append([]schema.Schema{s.core}, s.exts...) {
		if a, ok := sch.Attributes.ContainsAttribute(ap.AttributeName); ok {
			return sch, a, true
		}
	}
	return schema.Schema{}, schema.CoreAttribute{}, false
}

func (h *handler) newServer() (elscim.Server, error) {
	cfg := &elscim.ServiceProviderConfig{
		AuthenticationSchemes: []elscim.AuthenticationScheme{{
			Type:        elscim.AuthenticationTypeOauthBearerToken,
			Name:        "OAuth Bearer Token",
			Description: "A per-organization SCIM token, sent as Authorization: Bearer <token>.",
			SpecURI:     optional.NewString("https://www.rfc-editor.org/info/rfc6750"),
			Primary:     true,
		}},
		MaxResults:       maxResults,
		SupportFiltering: true,
		SupportPatch:     true,
	}
	types := []elscim.ResourceType{
		{
			ID:          optional.NewString("User"),
			Name:        "User",
			Description: optional.NewString("User Account"),
			Endpoint:    "/Users",
			Schema:      schema.CoreUserSchema(),
			SchemaExtensions: []elscim.SchemaExtension{
				{Schema: schema.ExtensionEnterpriseUser()},
			},
			Handler: &userHandler{h: h},
		},
		{
			ID:          optional.NewString("Group"),
			Name:        "Group",
			Description: optional.NewString("Group"),
			Endpoint:    "/Groups",
			Schema:      schema.CoreGroupSchema(),
			Handler:     &groupHandler{h: h},
		},
	}
	return elscim.NewServer(
		&elscim.ServerArgs{ServiceProviderConfig: cfg, ResourceTypes: types},
		elscim.WithBaseURL(h.basePath),
		elscim.WithLogger(h.log.Sugar()),
	)
}

// listWindow returns the slice bounds of page (startIndex is 1-based).
func listWindow(total, startIndex, count int) (lo, hi int) {
	lo = min(max(startIndex-1, 0), total)
	hi = min(lo+max(count, 0), total)
	return lo, hi
}

// excluded reports whether the request's excludedAttributes names attr.
func excluded(r *http.Request, attr, uri string) bool {
	for _, a := range strings.Split(r.URL.Query().Get("excludedAttributes"), ",") {
		a = strings.TrimSpace(a)
		if strings.EqualFold(a, attr) || strings.EqualFold(a, uri+":"+attr) {
			return true
		}
	}
	return false
}
