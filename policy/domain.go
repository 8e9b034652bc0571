package policy

import (
	"net"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"
)

// DomainError is a refusal with a stable code for API clients.
type DomainError struct {
	Code    string // e.g. "domain_public_suffix"
	Message string
}

func (e *DomainError) Error() string { return e.Message }

func domainErr(code, msg string) error { return &DomainError{Code: code, Message: msg} }

// ConsumerMailDomains are shared mail providers: nobody can prove they own
// them for their company, so they can never be captured. Operators extend
// the list with the `blocked_domains` option.
var ConsumerMailDomains = []string{
	"gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "hotmail.co.uk", "live.com", "msn.com",
	"yahoo.com", "yahoo.co.uk", "yahoo.co.jp", "ymail.com", "rocketmail.com", "icloud.com", "me.com", "mac.com",
	"aol.com", "proton.me", "protonmail.com", "pm.me", "gmx.com", "gmx.de", "gmx.net", "web.de", "mail.com",
	"yandex.ru", "yandex.com", "mail.ru", "qq.com", "163.com", "126.com", "zoho.com", "hey.com", "fastmail.com",
	"tutanota.com", "tuta.io", "comcast.net", "att.net", "verizon.net", "orange.fr", "free.fr", "t-online.de",
}

var domainProfile = idna.New(
	idna.MapForLookup(),
	idna.BidiRule(),
	idna.ValidateLabels(true),
	idna.StrictDomainName(true),
	idna.VerifyDNSLength(true),
	idna.Transitional(false),
)

// NormalizeDomain turns what an owner typed into the form domains are
// stored and compared in (lower-case ASCII, punycode, no trailing dot), or
// refuses it with a DomainError. blocked holds extra refused domains
// (normalised); the consumer mail list always applies.
func NormalizeDomain(raw string, blocked map[string]bool) (string, error) {
	d := strings.TrimSpace(raw)
	if d == "" {
		return "", domainErr("domain_empty", "enter a domain, like example.com")
	}
	d = strings.TrimSuffix(d, ".")
	if len(d) > 253 {
		return "", domainErr("domain_too_long", "a domain name is at most 253 characters")
	}
	if hasInvisible(d) {
		return "", domainErr("domain_invalid", "the domain contains invisible or control characters")
	}
	if strings.ContainsAny(d, "*?") {
		return "", domainErr("domain_wildcard", "wildcards are not allowed: add each domain itself")
	}
	if strings.ContainsAny(d, "/:@ \t\r\n\\") {
		if net.ParseIP(strings.Trim(d, "[]")) != nil {
			return "", domainErr("domain_ip", "an IP address is not a domain")
		}
		return "", domainErr("domain_invalid", "enter only the domain name, like example.com, without a scheme, path, port or email")
	}
	if net.ParseIP(d) != nil {
		return "", domainErr("domain_ip", "an IP address is not a domain")
	}
	ascii, err := domainProfile.ToASCII(d)
	if err != nil {
		if len(d) > 253 && strings.Contains(err.Error(), "length") {
			return "", domainErr("domain_too_long", "a domain name is at most 253 characters")
		}
		return "", domainErr("domain_invalid", "not a valid domain name")
	}
	ascii = strings.TrimSuffix(strings.ToLower(ascii), ".")
	if !validLabels(ascii) {
		return "", domainErr("domain_invalid", "not a valid domain name")
	}
	if len(ascii) > 253 {
		return "", domainErr("domain_too_long", "a domain name is at most 253 characters")
	}
	if !strings.Contains(ascii, ".") {
		return "", domainErr("domain_single_label", "add the full domain, like example.com")
	}
	if isAllDigitsTLD(ascii) {
		return "", domainErr("domain_ip", "an IP address is not a domain")
	}
	if suffix, _ := publicsuffix.PublicSuffix(ascii); suffix == ascii {
		return "", domainErr("domain_public_suffix", ascii+" is a public suffix that many organizations share; add your own domain under it")
	}
	if blocked[ascii] || isConsumer(ascii) {
		return "", domainErr("domain_consumer", ascii+" is a shared email provider and cannot be captured")
	}
	return ascii, nil
}

func isConsumer(d string) bool {
	for _, c := range ConsumerMailDomains {
		if d == c {
			return true
		}
	}
	return false
}

// isAllDigitsTLD catches dotted numbers (1.2.3 or 10.0.0.300) that are not
// valid IPs but are not names either.
func isAllDigitsTLD(d string) bool {
	i := strings.LastIndexByte(d, '.')
	tld := d[i+1:]
	if tld == "" {
		return false
	}
	for _, c := range tld {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// NormalizeEmail lower-cases an email and normalises its domain to ASCII.
// It refuses anything that is not exactly local@domain: two @, control
// characters, spaces, empty parts, or an invalid domain.
func NormalizeEmail(raw string) (email, domain string, err error) {
	e := strings.TrimSpace(raw)
	if e == "" || len(e) > 254 {
		return "", "", domainErr("email_invalid", "enter a valid email address")
	}
	if strings.Count(e, "@") != 1 {
		return "", "", domainErr("email_invalid", "an email address has exactly one @")
	}
	local, host, _ := strings.Cut(e, "@")
	if local == "" || len(local) > 64 || host == "" {
		return "", "", domainErr("email_invalid", "enter a valid email address")
	}
	for i := 0; i < len(local); i++ {
		c := local[i]
		if c <= 0x20 || c == 0x7f || c >= 0x80 || strings.IndexByte(`"(),:;<>[\]`, c) >= 0 {
			return "", "", domainErr("email_invalid", "the part before @ has characters email addresses cannot use")
		}
	}
	if local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, "..") {
		return "", "", domainErr("email_invalid", "enter a valid email address")
	}
	if strings.ContainsAny(host, "/:\\ []") || net.ParseIP(host) != nil || hasInvisible(host) {
		return "", "", domainErr("email_invalid", "the part after @ must be a domain name")
	}
	ascii, err := domainProfile.ToASCII(strings.TrimSuffix(host, "."))
	ascii = strings.TrimSuffix(strings.ToLower(ascii), ".")
	if err != nil || !strings.Contains(ascii, ".") || !validLabels(ascii) || isAllDigitsTLD(ascii) {
		return "", "", domainErr("email_invalid", "the part after @ is not a valid domain name")
	}
	return strings.ToLower(local) + "@" + ascii, ascii, nil
}

// hasInvisible reports control and format characters (zero-width spaces,
// bidi overrides): IDNA mapping would silently drop some of them, and a
// name that looks like another must be refused, not repaired.
func hasInvisible(s string) bool {
	if !utf8.ValidString(s) {
		return true
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Cc, r) {
			return true
		}
	}
	return false
}

// validLabels checks what IDNA leaves to us: no empty labels, LDH only.
func validLabels(d string) bool {
	if d == "" {
		return false
	}
	for _, l := range strings.Split(d, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			if c := l[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}
