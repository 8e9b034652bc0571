package scim

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	scimerrors "github.com/elimity-com/scim/errors"
	"go.uber.org/zap"

	"github.com/ssogate/ssogate/store"
)

// Handlers return scimerrors.ScimError values (never pointers, never plain
// errors): the library turns anything else into a 500 whose detail is
// err.Error(), which would leak internals.

func scimError(status int, typ scimerrors.ScimType, detail string) scimerrors.ScimError {
	return scimerrors.ScimError{Status: status, ScimType: typ, Detail: detail}
}

func errInvalidValue(detail string) error {
	return scimError(http.StatusBadRequest, scimerrors.ScimTypeInvalidValue, detail)
}

func errInvalidSyntax(detail string) scimerrors.ScimError {
	return scimError(http.StatusBadRequest, scimerrors.ScimTypeInvalidSyntax, detail)
}

func errInvalidPath(detail string) error {
	return scimError(http.StatusBadRequest, scimerrors.ScimTypeInvalidPath, detail)
}

func errNoTarget(detail string) error {
	return scimError(http.StatusBadRequest, scimerrors.ScimTypeNoTarget, detail)
}

func errMutability(detail string) error {
	return scimError(http.StatusBadRequest, scimerrors.ScimTypeMutability, detail)
}

func errUniqueness(detail string) error {
	return scimError(http.StatusConflict, scimerrors.ScimTypeUniqueness, detail)
}

func errNotFound(what string) error {
	return scimError(http.StatusNotFound, "", what+" not found.")
}

// internal logs the cause and returns a 500 with safe text.
func (h *handler) internal(t *tenant, op string, err error) error {
	var se scimerrors.ScimError
	if errors.As(err, &se) {
		return se
	}
	h.log.Error("scim: "+op, zap.String("org_id", t.orgID), zap.Error(err))
	return scimError(http.StatusInternalServerError, "", "Internal error; the server log has the cause.")
}

// storeErr maps a directory error to a SCIM error: not found, taken and
// invalid get their statuses with the given safe texts, anything else is
// an internal error.
func (h *handler) storeErr(t *tenant, op string, err error, notFound, taken string) error {
	switch {
	case errors.Is(err, store.ErrNotFound) && notFound != "":
		return errNotFound(notFound)
	case errors.Is(err, store.ErrAlreadyExists) && taken != "":
		return errUniqueness(taken)
	case errors.Is(err, store.ErrInvalid):
		h.log.Info("scim: refused by the directory", zap.String("op", op), zap.Error(err))
		return errInvalidValue("The directory refused the value.")
	}
	return h.internal(t, op, err)
}

// writeError writes a SCIM error response (RFC 7644 §3.12) ourselves, for
// the answers given before the library runs.
func writeError(w http.ResponseWriter, e scimerrors.ScimError) {
	raw, _ := json.Marshal(e)
	w.Header().Set("Content-Type", "application/scim+json")
	w.WriteHeader(e.Status)
	_, _ = w.Write(raw)
}

func unauthorized(w http.ResponseWriter, code, detail string) {
	v := `Bearer realm="scim"`
	if code != "" {
		v += `, error="` + code + `"`
	}
	w.Header().Set("WWW-Authenticate", v)
	writeError(w, scimError(http.StatusUnauthorized, "", detail))
}

// isListRequest tells the requests that answer a ListResponse.
func isListRequest(method, path string) bool {
	p := strings.TrimPrefix(path, "/v2")
	switch method {
	case http.MethodGet:
		return p == "/Users" || p == "/Groups" || p == "/Schemas" || p == "/ResourceTypes"
	case http.MethodPost:
		return p == "/Users/.search" || p == "/Groups/.search"
	}
	return false
}

// listFixer buffers a ListResponse to correct two things the library gets
// wrong: an empty list rendered as "Resources": null (clients expect an
// array), and itemsPerPage set to the requested count rather than the
// number of resources returned (RFC 7644 §3.4.2).
type listFixer struct {
	http.ResponseWriter
	status int
	buf    bytes.Buffer
}

func (f *listFixer) WriteHeader(status int) {
	if f.status == 0 {
		f.status = status
	}
}

func (f *listFixer) Write(b []byte) (int, error) { return f.buf.Write(b) }

func (f *listFixer) flush() {
	if f.status == 0 {
		f.status = http.StatusOK
	}
	out := f.buf.Bytes()
	var m map[string]json.RawMessage
	if f.status == http.StatusOK && json.Unmarshal(out, &m) == nil && m["totalResults"] != nil {
		var list []json.RawMessage
		_ = json.Unmarshal(m["Resources"], &list)
		if list == nil {
			list = []json.RawMessage{}
		}
		m["Resources"], _ = json.Marshal(list)
		m["itemsPerPage"], _ = json.Marshal(len(list))
		if fixed, err := json.Marshal(m); err == nil {
			out = fixed
		}
	}
	f.ResponseWriter.WriteHeader(f.status)
	_, _ = f.ResponseWriter.Write(out)
}
