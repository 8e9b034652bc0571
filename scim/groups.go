package scim

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	elscim "github.com/elimity-com/scim"
	"github.com/elimity-com/scim/optional"
	filter "github.com/scim2/filter-parser/v2"

	"github.com/ssogate/ssogate/store"
)

// groupHandler serves /Groups: the groups an IdP pushes into the token's
// org. Members must be users of the same org.
type groupHandler struct{ h *handler }

var _ elscim.ResourceSearcher = (*groupHandler)(nil)

// render turns a group into SCIM attributes; with members, each member
// carries its email as display.
func (gh *groupHandler) render(ctx context.Context, g *store.Group, withMembers bool) (map[string]any, error) {
	a := map[string]any{"displayName": g.DisplayName}
	if !withMembers {
		return a, nil
	}
	members := make([]any, 0, len(g.Members))
	for _, id := range g.Members {
		m := map[string]any{"value": id, "type": "User"}
		u, err := gh.h.st.GetUser(ctx, id)
		if err == nil {
			m["display"] = u.Email
		} else if !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		members = append(members, m)
	}
	a["members"] = members
	return a, nil
}

func (gh *groupHandler) resource(ctx context.Context, t *tenant, g *store.Group, withMembers bool) (elscim.Resource, error) {
	a, err := gh.render(ctx, g, withMembers)
	if err != nil {
		return elscim.Resource{}, gh.h.internal(t, "rendering group", err)
	}
	created, modified := g.CreatedAt, g.UpdatedAt
	res := elscim.Resource{ID: g.ID, Attributes: a, Meta: elscim.Meta{Created: &created, LastModified: &modified}}
	if g.ExternalID != "" {
		res.ExternalID = optional.NewString(g.ExternalID)
	}
	return res, nil
}

func (gh *groupHandler) load(ctx context.Context, t *tenant, id string) (*store.Group, error) {
	if !validResourceID(id) {
		return nil, errNotFound("Group")
	}
	g, err := gh.h.st.GetGroup(ctx, t.orgID, id)
	if err != nil {
		return nil, gh.h.storeErr(t, "reading group", err, "Group", "")
	}
	return g, nil
}

// groupInput is a validated Group body.
type groupInput struct {
	displayName   string
	externalID    string
	hasExternalID bool
	members       []string
}

func parseGroup(a map[string]any) (*groupInput, error) {
	in := &groupInput{displayName: str(a["displayName"])}
	if in.displayName == "" {
		return nil, errInvalidValue("displayName is required.")
	}
	if err := checkText("displayName", in.displayName, maxIDLen); err != nil {
		return nil, err
	}
	if ext, ok := a["externalId"]; ok && ext != nil {
		in.externalID, in.hasExternalID = str(ext), true
		if err := checkText("externalId", in.externalID, maxIDLen); err != nil {
			return nil, err
		}
	}
	for _, e := range asList(a["members"]) {
		m, _ := e.(map[string]any)
		id := str(m["value"])
		if id == "" {
			return nil, errInvalidValue("Every member needs a value (the user's id).")
		}
		if !slices.Contains(in.members, id) {
			in.members = append(in.members, id)
		}
	}
	return in, nil
}

// checkMembers answers 400 unless every id is a user of the org.
func (gh *groupHandler) checkMembers(ctx context.Context, t *tenant, ids []string) error {
	for _, id := range ids {
		if !validResourceID(id) {
			return errInvalidValue(fmt.Sprintf("members: %q is not a user of this organization.", id))
		}
		_, err := gh.h.st.GetMembership(ctx, t.orgID, id)
		if errors.Is(err, store.ErrNotFound) {
			return errInvalidValue(fmt.Sprintf("members: %q is not a user of this organization.", id))
		}
		if err != nil {
			return gh.h.internal(t, "reading membership", err)
		}
	}
	return nil
}

// checkNames answers 409 when displayName or externalId belongs to
// another group of the org than id ("" for a new group).
func (gh *groupHandler) checkNames(ctx context.Context, t *tenant, id string, in *groupInput) error {
	g, err := gh.h.st.GroupByDisplayName(ctx, t.orgID, in.displayName)
	switch {
	case err == nil && g.ID != id:
		return errUniqueness(fmt.Sprintf("A group named %q already exists in this organization.", in.displayName))
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return gh.h.internal(t, "looking up group name", err)
	}
	if in.externalID == "" {
		return nil
	}
	g, err = gh.h.st.GroupByExternalID(ctx, t.orgID, in.externalID)
	switch {
	case err == nil && g.ID != id:
		return errUniqueness(fmt.Sprintf("externalId %q is already used by another group.", in.externalID))
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return gh.h.internal(t, "looking up group externalId", err)
	}
	return nil
}

const groupTaken = "The group's displayName or externalId is already used in this organization."

// Create implements elscim.ResourceHandler.
func (gh *groupHandler) Create(r *http.Request, attrs elscim.ResourceAttributes) (elscim.Resource, error) {
	h, ctx, t := gh.h, r.Context(), tenantOf(r)
	in, err := parseGroup(attrs)
	if err != nil {
		return elscim.Resource{}, err
	}
	if err := gh.checkNames(ctx, t, "", in); err != nil {
		return elscim.Resource{}, err
	}
	if err := gh.checkMembers(ctx, t, in.members); err != nil {
		return elscim.Resource{}, err
	}
	g := &store.Group{OrgID: t.orgID, DisplayName: in.displayName, ExternalID: in.externalID, Members: in.members}
	if err := h.st.CreateGroup(ctx, g); err != nil {
		if errors.Is(err, store.ErrNotFound) { // a member left meanwhile
			return elscim.Resource{}, errInvalidValue("members: a member is not a user of this organization.")
		}
		return elscim.Resource{}, h.storeErr(t, "creating group", err, "", groupTaken)
	}
	h.auditChange(ctx, t, "scim.group.create", g.DisplayName, map[string]string{"group_id": g.ID, "members": fmt.Sprint(len(g.Members))})
	if err := h.groupsChanged(ctx, t, g.Members); err != nil {
		return elscim.Resource{}, err
	}
	return gh.resource(ctx, t, g, true)
}

// Get implements elscim.ResourceHandler.
func (gh *groupHandler) Get(r *http.Request, id string) (elscim.Resource, error) {
	ctx, t := r.Context(), tenantOf(r)
	g, err := gh.load(ctx, t, id)
	if err != nil {
		return elscim.Resource{}, err
	}
	return gh.resource(ctx, t, g, !excluded(r, "members", uriGroup))
}

// Replace implements elscim.ResourceHandler (PUT): absent members are
// removed; an absent externalId keeps the stored one.
func (gh *groupHandler) Replace(r *http.Request, id string, attrs elscim.ResourceAttributes) (elscim.Resource, error) {
	g, err := gh.load(r.Context(), tenantOf(r), id)
	if err != nil {
		return elscim.Resource{}, err
	}
	in, err := parseGroup(attrs)
	if err != nil {
		return elscim.Resource{}, err
	}
	return gh.update(r, g, in, in.members, "scim.group.replace")
}

// Patch implements elscim.ResourceHandler.
func (gh *groupHandler) Patch(r *http.Request, id string, ops []elscim.PatchOperation) (elscim.Resource, error) {
	ctx, t := r.Context(), tenantOf(r)
	g, err := gh.load(ctx, t, id)
	if err != nil {
		return elscim.Resource{}, err
	}
	res := map[string]any{"displayName": g.DisplayName}
	if g.ExternalID != "" {
		res["externalId"] = g.ExternalID
	}
	members := make([]any, 0, len(g.Members))
	for _, m := range g.Members {
		members = append(members, map[string]any{"value": m})
	}
	res["members"] = members
	if err := gh.h.groups.applyPatch(res, ops); err != nil {
		return elscim.Resource{}, err
	}
	in, err := parseGroup(res)
	if err != nil {
		return elscim.Resource{}, err
	}
	in.hasExternalID = true // the patched resource is complete: no externalId means removed
	return gh.update(r, g, in, referencedMembers(ops), "scim.group.patch")
}

// update writes a validated replacement of g as a delta (members added and
// removed), so concurrent patches of one group do not undo each other.
func (gh *groupHandler) update(r *http.Request, g *store.Group, in *groupInput, referenced []string, action string) (elscim.Resource, error) {
	h, ctx, t := gh.h, r.Context(), tenantOf(r)
	if !in.hasExternalID {
		in.externalID = g.ExternalID
	}
	if err := gh.checkNames(ctx, t, g.ID, in); err != nil {
		return elscim.Resource{}, err
	}
	added := slices.DeleteFunc(slices.Clone(in.members), func(id string) bool { return slices.Contains(g.Members, id) })
	removed := slices.DeleteFunc(slices.Clone(g.Members), func(id string) bool { return slices.Contains(in.members, id) })
	if err := gh.checkMembers(ctx, t, added); err != nil {
		return elscim.Resource{}, err
	}
	renamed := in.displayName != g.DisplayName
	if !renamed && in.externalID == g.ExternalID && len(added) == 0 && len(removed) == 0 {
		// Nothing to write; still re-run the hook for the users the request
		// named, so a retry after a failed hook repairs group mappings.
		if err := h.groupsChanged(ctx, t, existingOnly(referenced, g.Members)); err != nil {
			return elscim.Resource{}, err
		}
		return gh.resource(ctx, t, g, true)
	}
	updated, err := h.st.UpdateGroup(ctx, t.orgID, g.ID, func(x *store.Group) error {
		x.DisplayName, x.ExternalID = in.displayName, in.externalID
		x.Members = slices.DeleteFunc(x.Members, func(id string) bool { return slices.Contains(removed, id) })
		x.Members = append(x.Members, added...)
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		if _, gerr := h.st.GetGroup(ctx, t.orgID, g.ID); gerr == nil {
			return elscim.Resource{}, errInvalidValue("members: a member is not a user of this organization.")
		}
	}
	if err != nil {
		return elscim.Resource{}, h.storeErr(t, "updating group", err, "Group", groupTaken)
	}
	affected := append(slices.Clone(added), removed...)
	if renamed { // group mappings go by name: every member's groups changed
		affected = append(slices.Clone(g.Members), added...)
	}
	details := map[string]string{"group_id": g.ID, "added": fmt.Sprint(len(added)), "removed": fmt.Sprint(len(removed))}
	if renamed {
		details["renamed_from"] = g.DisplayName
	}
	h.auditChange(ctx, t, action, updated.DisplayName, details)
	if err := h.groupsChanged(ctx, t, affected); err != nil {
		return elscim.Resource{}, err
	}
	return gh.resource(ctx, t, updated, true)
}

// referencedMembers lists the member IDs PATCH operations name.
func referencedMembers(ops []elscim.PatchOperation) []string {
	var ids []string
	collect := func(v any) {
		for _, e := range asList(v) {
			if m, ok := e.(map[string]any); ok {
				if id := str(m["value"]); id != "" {
					ids = append(ids, id)
				}
			}
		}
	}
	for _, op := range ops {
		if op.Path == nil {
			if obj, ok := op.Value.(map[string]any); ok {
				if v, ok := getFold(obj, "members"); ok {
					collect(v)
				}
			}
			continue
		}
		if !strings.EqualFold(op.Path.AttributePath.AttributeName, "members") {
			continue
		}
		collect(op.Value)
		if ae, ok := op.Path.ValueExpression.(*filter.AttributeExpression); ok {
			if s, ok := ae.CompareValue.(string); ok {
				ids = append(ids, s)
			}
		}
	}
	return ids
}

// existingOnly keeps the ids that are in members.
func existingOnly(ids, members []string) []string {
	var out []string
	for _, id := range ids {
		if slices.Contains(members, id) && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// Delete implements elscim.ResourceHandler.
func (gh *groupHandler) Delete(r *http.Request, id string) error {
	h, ctx, t := gh.h, r.Context(), tenantOf(r)
	g, err := gh.load(ctx, t, id)
	if err != nil {
		return err
	}
	if err := h.st.DeleteGroup(ctx, t.orgID, id); err != nil {
		return h.storeErr(t, "deleting group", err, "Group", "")
	}
	h.auditChange(ctx, t, "scim.group.delete", g.DisplayName, map[string]string{"group_id": g.ID, "members": fmt.Sprint(len(g.Members))})
	return h.groupsChanged(ctx, t, g.Members)
}
