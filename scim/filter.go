package scim

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	elscim "github.com/elimity-com/scim"
	scimfilter "github.com/elimity-com/scim/filter"
	filter "github.com/scim2/filter-parser/v2"

	"github.com/ssogate/ssogate/store"
)

// Filters: the common equality filters (userName, externalId, emails.value
// and id for users; displayName, externalId and id for groups), alone or
// joined with and/or, become index lookups whose few candidates are then
// checked against the whole filter. Any other filter scans the org.

// memberBatch is how many memberships one scan step reads.
const memberBatch = 1000

// validator returns the filter to check resources with. It rewrites
// `multi.sub op v` into `multi[sub op v]`, which the library's PassesFilter
// evaluates correctly on multi-valued attributes (it cannot the first form).
func (s resSchema) validator(e filter.Expression) scimfilter.Validator {
	return scimfilter.NewFilterValidator(s.rewrite(e), s.core, s.exts...)
}

func (s resSchema) rewrite(e filter.Expression) filter.Expression {
	switch x := e.(type) {
	case *filter.AttributeExpression:
		ap := x.AttributePath
		if sub := ap.SubAttributeName(); sub != "" && s.multi[strings.ToLower(ap.AttributeName)] &&
			(ap.URI() == "" || strings.EqualFold(ap.URI(), s.core.ID)) {
			return &filter.ValuePath{
				AttributePath: filter.AttributePath{URIPrefix: ap.URIPrefix, AttributeName: ap.AttributeName},
				ValueFilter: &filter.AttributeExpression{
					AttributePath: filter.AttributePath{AttributeName: sub},
					Operator:      x.Operator, CompareValue: x.CompareValue,
				},
			}
		}
	case *filter.LogicalExpression:
		return &filter.LogicalExpression{Left: s.rewrite(x.Left), Right: s.rewrite(x.Right), Operator: x.Operator}
	case *filter.NotExpression:
		return &filter.NotExpression{Expression: s.rewrite(x.Expression)}
	}
	return e
}

// eqLookup is an `attr eq "string"` on a core attribute, if e is one.
type eqLookup struct{ attr, sub, value string }

func asEqLookup(e filter.Expression, core string) (eqLookup, bool) {
	switch x := e.(type) {
	case *filter.AttributeExpression:
		v, ok := x.CompareValue.(string)
		uri := x.AttributePath.URI()
		if !ok || x.Operator != filter.EQ || (uri != "" && !strings.EqualFold(uri, core)) {
			return eqLookup{}, false
		}
		return eqLookup{strings.ToLower(x.AttributePath.AttributeName), strings.ToLower(x.AttributePath.SubAttributeName()), v}, true
	case *filter.ValuePath: // emails[value eq "x"]
		l, ok := asEqLookup(x.ValueFilter, "")
		if !ok || l.sub != "" || x.AttributePath.SubAttributeName() != "" {
			return eqLookup{}, false
		}
		uri := x.AttributePath.URI()
		if uri != "" && !strings.EqualFold(uri, core) {
			return eqLookup{}, false
		}
		return eqLookup{strings.ToLower(x.AttributePath.AttributeName), l.attr, l.value}, true
	}
	return eqLookup{}, false
}

// candidates returns the IDs an indexed filter can match (ok false: the
// filter needs a scan). lookup answers one equality, ok false if unindexed.
func candidates(e filter.Expression, core string, lookup func(eqLookup) ([]string, bool, error)) ([]string, bool, error) {
	if l, ok := asEqLookup(e, core); ok {
		return lookup(l)
	}
	x, ok := e.(*filter.LogicalExpression)
	if !ok {
		return nil, false, nil
	}
	left, lok, err := candidates(x.Left, core, lookup)
	if err != nil {
		return nil, false, err
	}
	if x.Operator == filter.AND && lok {
		return left, true, nil // the full filter is checked afterwards
	}
	right, rok, err := candidates(x.Right, core, lookup)
	if err != nil {
		return nil, false, err
	}
	switch {
	case x.Operator == filter.AND:
		return right, rok, nil
	case lok && rok:
		return append(left, right...), true, nil
	}
	return nil, false, nil
}

// userLookup answers the indexed equalities on users of org t.
func (h *handler) userLookup(ctx context.Context, t *tenant) func(eqLookup) ([]string, bool, error) {
	found := func(m *store.Membership, err error) ([]string, bool, error) {
		if errors.Is(err, store.ErrNotFound) {
			return nil, true, nil
		}
		if err != nil {
			return nil, false, err
		}
		return []string{m.UserID}, true, nil
	}
	byEmail := func(email string) ([]string, bool, error) {
		u, err := h.st.GetUserByEmail(ctx, email)
		if errors.Is(err, store.ErrNotFound) {
			return nil, true, nil
		}
		if err != nil {
			return nil, false, err
		}
		return found(h.st.GetMembership(ctx, t.orgID, u.ID))
	}
	return func(l eqLookup) ([]string, bool, error) {
		switch {
		case l.attr == "username" && l.sub == "":
			ids, ok, err := found(h.st.MembershipBySCIMUserName(ctx, t.orgID, l.value))
			if err != nil || len(ids) > 0 || !strings.Contains(l.value, "@") {
				return ids, ok, err
			}
			return byEmail(l.value) // members SCIM did not provision show their email as userName
		case l.attr == "externalid" && l.sub == "":
			return found(h.st.MembershipBySCIMExternalID(ctx, t.orgID, l.value))
		case l.attr == "emails" && l.sub == "value":
			return byEmail(l.value)
		case l.attr == "id" && l.sub == "":
			if !validResourceID(l.value) {
				return nil, true, nil
			}
			return found(h.st.GetMembership(ctx, t.orgID, l.value))
		}
		return nil, false, nil
	}
}

// listUsers serves GET /Users: unfiltered, filtered through an index, or
// filtered by scanning the org's members.
func (h *handler) listUsers(ctx context.Context, t *tenant, params elscim.ListRequestParams) (elscim.Page, error) {
	page := elscim.Page{Resources: []elscim.Resource{}}
	if params.FilterValidator == nil {
		// Count every member, read users only for the page.
		var window []store.Membership
		lo := max(params.StartIndex, 1)
		err := h.eachMember(ctx, t, func(m *store.Membership) error {
			page.TotalResults++
			if page.TotalResults >= lo && len(window) < params.Count {
				window = append(window, *m)
			}
			return nil
		})
		if err != nil {
			return elscim.Page{}, h.internal(t, "listing members", err)
		}
		for i := range window {
			su, err := h.userOf(ctx, t, &window[i], true)
			if err != nil {
				return elscim.Page{}, h.internal(t, "reading member", err)
			}
			if su != nil {
				page.Resources = append(page.Resources, su.resource())
			}
		}
		return page, nil
	}
	expr := params.FilterValidator.GetFilter()
	v := h.users.validator(expr)
	needGroups := strings.Contains(strings.ToLower(fmt.Sprint(expr)), "groups")
	var matched []*scimUser
	check := func(m *store.Membership) error {
		su, err := h.userOf(ctx, t, m, needGroups)
		if err != nil || su == nil {
			return err
		}
		if passes(v, su.filterMap()) {
			matched = append(matched, su)
		}
		return nil
	}
	ids, indexed, err := candidates(expr, uriUser, h.userLookup(ctx, t))
	if err != nil {
		return elscim.Page{}, h.internal(t, "filter lookup", err)
	}
	if indexed {
		slices.Sort(ids)
		for _, id := range slices.Compact(ids) {
			m, err := h.st.GetMembership(ctx, t.orgID, id)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err == nil {
				err = check(m)
			}
			if err != nil {
				return elscim.Page{}, h.internal(t, "reading member", err)
			}
		}
	} else if err := h.eachMember(ctx, t, check); err != nil {
		return elscim.Page{}, h.internal(t, "scanning members", err)
	}
	page.TotalResults = len(matched)
	lo, hi := listWindow(len(matched), params.StartIndex, params.Count)
	for _, su := range matched[lo:hi] {
		if su.groups == nil {
			if su.groups, err = h.st.GroupsOfUser(ctx, t.orgID, su.u.ID); err != nil {
				return elscim.Page{}, h.internal(t, "reading groups of user", err)
			}
		}
		page.Resources = append(page.Resources, su.resource())
	}
	return page, nil
}

// eachMember calls fn for every membership of the org, by user ID.
func (h *handler) eachMember(ctx context.Context, t *tenant, fn func(*store.Membership) error) error {
	after := ""
	for {
		batch, err := h.st.ListOrgMembersPage(ctx, t.orgID, after, memberBatch)
		if err != nil {
			return err
		}
		for i := range batch {
			if err := fn(&batch[i]); err != nil {
				return err
			}
		}
		if len(batch) < memberBatch {
			return nil
		}
		after = batch[len(batch)-1].UserID
	}
}

// userOf reads a member's user (nil if it vanished meanwhile).
func (h *handler) userOf(ctx context.Context, t *tenant, m *store.Membership, withGroups bool) (*scimUser, error) {
	u, err := h.st.GetUser(ctx, m.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	su := &scimUser{u: u, m: m}
	if withGroups {
		if su.groups, err = h.st.GroupsOfUser(ctx, t.orgID, u.ID); err != nil {
			return nil, err
		}
	}
	return su, nil
}
