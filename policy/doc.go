// Package policy holds ssogate's pure decisions, with no I/O: where a
// sign-in may return to, which login route an email takes, whether social
// login is allowed, what IdP groups grant, and who may do which admin
// action. Everything here is table-tested.
package policy
