package mail

import (
	"bytes"
	"embed"
	"fmt"
	htmltemplate "html/template"
	"slices"
	"strings"
	texttemplate "text/template"
	"time"
)

// Template names for Render.
const (
	TemplateSigninLink    = "signin_link"
	TemplateInvite        = "invite"
	TemplateMergeProposal = "merge_proposal"
)

// SigninLinkData is the data of the "signin_link" template.
type SigninLinkData struct {
	Link      string
	SiteName  string
	ExpiresIn any // a time.Duration ("15 minutes") or a string shown as is
}

// InviteData is the data of the "invite" template.
type InviteData struct {
	Link         string
	OrgName      string
	InviterEmail string
	SiteName     string
}

// MergeProposalData is the data of the "merge_proposal" template.
type MergeProposalData struct {
	SurvivingName string
	IncomingName  string
	Link          string
	ProposedBy    string
}

//go:embed templates/*.html templates/*.txt
var templateFS embed.FS

type mailTemplate struct {
	text *texttemplate.Template // defines "subject"; the file itself is the body
	html *htmltemplate.Template // layout.html with the name's "content"
}

var templateFuncs = map[string]any{"duration": humanDuration}

var templates = func() map[string]mailTemplate {
	layout := htmltemplate.Must(htmltemplate.New("layout.html").Funcs(templateFuncs).
		Option("missingkey=error").ParseFS(templateFS, "templates/layout.html"))
	ts := make(map[string]mailTemplate)
	for _, name := range []string{TemplateSigninLink, TemplateInvite, TemplateMergeProposal} {
		text := texttemplate.Must(texttemplate.New(name+".txt").Funcs(templateFuncs).
			Option("missingkey=error").ParseFS(templateFS, "templates/"+name+".txt"))
		html := htmltemplate.Must(htmltemplate.Must(layout.Clone()).ParseFS(templateFS, "templates/"+name+".html"))
		ts[name] = mailTemplate{text: text, html: html}
	}
	return ts
}()

// TemplateNames lists the templates Render knows, sorted.
func TemplateNames() []string {
	names := make([]string, 0, len(templates))
	for name := range templates {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// Render builds a message (Subject, Text, HTML; no recipients) from the named
// template: "signin_link" (SigninLinkData), "invite" (InviteData) or
// "merge_proposal" (MergeProposalData); a map with the same keys works too.
// The HTML part escapes all data.
func Render(name string, data any) (*Message, error) {
	t, ok := templates[name]
	if !ok {
		return nil, fmt.Errorf("mail: unknown template %q (known: %s)", name, strings.Join(TemplateNames(), ", "))
	}
	var subject, text, html bytes.Buffer
	if err := t.text.ExecuteTemplate(&subject, "subject", data); err != nil {
		return nil, fmt.Errorf("mail: render %s subject: %w", name, err)
	}
	if err := t.text.Execute(&text, data); err != nil {
		return nil, fmt.Errorf("mail: render %s text: %w", name, err)
	}
	if err := t.html.Execute(&html, data); err != nil {
		return nil, fmt.Errorf("mail: render %s HTML: %w", name, err)
	}
	return &Message{
		Subject: cleanSubject(subject.String()),
		Text:    strings.TrimSpace(text.String()) + "\n",
		HTML:    strings.TrimSpace(html.String()) + "\n",
	}, nil
}

// humanDuration shows a time.Duration as "15 minutes", "1 hour", "2 days";
// anything else is shown as is.
func humanDuration(v any) string {
	if v == nil {
		return "a short time"
	}
	d, ok := v.(time.Duration)
	if !ok {
		return fmt.Sprint(v)
	}
	unit := func(n int64, word string) string {
		if n == 1 {
			return "1 " + word
		}
		return fmt.Sprintf("%d %ss", n, word)
	}
	switch {
	case d >= 24*time.Hour && d%(24*time.Hour) == 0:
		return unit(int64(d/(24*time.Hour)), "day")
	case d >= time.Hour && d%time.Hour == 0:
		return unit(int64(d/time.Hour), "hour")
	case d >= time.Minute:
		return unit(int64((d+30*time.Second)/time.Minute), "minute")
	default:
		return unit(int64((d+time.Second/2)/time.Second), "second")
	}
}
