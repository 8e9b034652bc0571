package ui

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/http"
)

//go:embed templates/*.html
var files embed.FS

var pages = template.Must(template.New("").ParseFS(files, "templates/*.html"))

// Page is the data every page template gets.
type Page struct {
	Title    string
	BasePath string
	// Message is the main text; Detail an optional second paragraph.
	Message string
	Detail  string
	// Link, if set, is a call to action.
	LinkURL  string
	LinkText string
	// Data is page-specific.
	Data any
}

// Render writes the named page with status, with headers that keep it out
// of frames and caches.
func Render(w http.ResponseWriter, status int, name string, p Page) error {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, p); err != nil {
		return fmt.Errorf("ui: rendering %s: %w", name, err)
	}
	SecurityHeaders(w.Header())
	if name == "login.html" {
		w.Header().Set("Content-Security-Policy", cspIdPForms)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

// SecurityPolicy is the Content-Security-Policy of ssogate's pages.
const SecurityPolicy = "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// cspIdPForms is the policy of pages whose forms may be answered with a
// redirect to an identity provider (the sign-in page; the console's Test
// sign-in): browsers apply form-action to every redirect after a form
// is sent, so 'self' there would stop the redirect to the IdP. Nothing
// else is relaxed: no script or style from elsewhere, no frames.
const cspIdPForms = "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'"

// SecurityHeaders sets the headers every ssogate page carries.
func SecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", SecurityPolicy)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
}
