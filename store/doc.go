// Package store owns ssogate's data: the model types (parent orgs, orgs,
// domains, users, memberships, groups, connections, tokens, merge proposals,
// sessions, audit events and short-lived auth state), the Backend interface
// that the bolt and Redis backends implement, and the Store that enforces
// every uniqueness and atomicity rule on top of any Backend.
package store
