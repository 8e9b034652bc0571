package scim

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	elscim "github.com/elimity-com/scim"

	"github.com/ssogate/ssogate/store"
)

// GetAll implements elscim.ResourceHandler.
func (gh *groupHandler) GetAll(r *http.Request, params elscim.ListRequestParams) (elscim.Page, error) {
	return gh.list(r, params)
}

// Search implements elscim.ResourceSearcher (POST /Groups/.search).
func (gh *groupHandler) Search(r *http.Request, params elscim.SearchParams) (elscim.Page, error) {
	return gh.list(r, elscim.ListRequestParams{Count: params.Count, StartIndex: params.StartIndex, FilterValidator: params.FilterValidator})
}

func (gh *groupHandler) list(r *http.Request, params elscim.ListRequestParams) (elscim.Page, error) {
	h, ctx, t := gh.h, r.Context(), tenantOf(r)
	var groups []store.Group
	var err error
	indexed := false
	if params.FilterValidator != nil {
		var ids []string
		ids, indexed, err = candidates(params.FilterValidator.GetFilter(), uriGroup, func(l eqLookup) ([]string, bool, error) {
			var g *store.Group
			var err error
			switch {
			case l.attr == "displayname" && l.sub == "":
				g, err = h.st.GroupByDisplayName(ctx, t.orgID, l.value)
			case l.attr == "externalid" && l.sub == "":
				g, err = h.st.GroupByExternalID(ctx, t.orgID, l.value)
			case l.attr == "id" && l.sub == "" && validResourceID(l.value):
				g, err = h.st.GetGroup(ctx, t.orgID, l.value)
			default:
				return nil, false, nil
			}
			if errors.Is(err, store.ErrNotFound) {
				return nil, true, nil
			}
			if err != nil {
				return nil, false, err
			}
			return []string{g.ID}, true, nil
		})
		if err == nil && indexed {
			slices.Sort(ids)
			for _, id := range slices.Compact(ids) {
				g, gerr := h.st.GetGroup(ctx, t.orgID, id)
				if gerr == nil {
					groups = append(groups, *g)
				} else if !errors.Is(gerr, store.ErrNotFound) {
					err = gerr
					break
				}
			}
		}
	}
	if err == nil && !indexed {
		groups, err = h.st.ListGroups(ctx, t.orgID)
	}
	if err != nil {
		return elscim.Page{}, h.internal(t, "listing groups", err)
	}
	withMembers := !excluded(r, "members", uriGroup)
	var matched []*store.Group
	if params.FilterValidator != nil {
		expr := params.FilterValidator.GetFilter()
		v := h.groups.validator(expr)
		needMembers := strings.Contains(strings.ToLower(fmt.Sprint(expr)), "members")
		for i := range groups {
			g := &groups[i]
			a, err := gh.render(ctx, g, needMembers)
			if err != nil {
				return elscim.Page{}, h.internal(t, "rendering group", err)
			}
			a["id"] = g.ID
			if g.ExternalID != "" {
				a["externalId"] = g.ExternalID
			}
			a["meta"] = map[string]any{"resourceType": "Group",
				"created": g.CreatedAt.UTC().Format(time.RFC3339), "lastModified": g.UpdatedAt.UTC().Format(time.RFC3339)}
			if passes(v, a) {
				matched = append(matched, g)
			}
		}
	} else {
		for i := range groups {
			matched = append(matched, &groups[i])
		}
	}
	page := elscim.Page{TotalResults: len(matched), Resources: []elscim.Resource{}}
	lo, hi := listWindow(len(matched), params.StartIndex, params.Count)
	for _, g := range matched[lo:hi] {
		res, err := gh.resource(ctx, t, g, withMembers)
		if err != nil {
			return elscim.Page{}, err
		}
		page.Resources = append(page.Resources, res)
	}
	return page, nil
}
