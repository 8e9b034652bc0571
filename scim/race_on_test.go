//go:build race

package scim

// raceEnabled scales the provisioning test down under the race detector,
// which slows the CPU-bound part of each request several times.
const raceEnabled = true
