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
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

// SecurityHeaders sets the headers every ssogate page carries.
func SecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
}
