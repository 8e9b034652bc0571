// Package domains owns domain capture: adding a parent org's claim on an
// email domain, proving it with a DNS TXT record, re-checking pending
// claims in the background, and failing claims that never verify.
package domains
