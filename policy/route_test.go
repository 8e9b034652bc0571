package policy

import "testing"

func TestLoginRoute(t *testing.T) {
	tests := []struct {
		name   string
		c      Capture
		want   Method
		conn   string
		nonSSO bool
	}{
		{"not captured", Capture{}, RouteDefault, "", true},
		{"not captured, stray connections", Capture{Connections: []string{"c1"}}, RouteDefault, "", true},
		{"captured, nothing configured", Capture{Captured: true, ParentID: "p"}, RouteDefault, "", true},
		{"captured, SSO configured, not enforced", Capture{Captured: true, ParentID: "p", Connections: []string{"c1"}}, RouteSSOOffered, "c1", true},
		{"captured, enforced", Capture{Captured: true, ParentID: "p", SSOEnforced: true, Connections: []string{"c1", "c2"}}, RouteSSO, "c1", false},
		{"captured, enforced, connection deleted", Capture{Captured: true, ParentID: "p", SSOEnforced: true}, RouteSSOUnavailable, "", false},
	}
	for _, tt := range tests {
		r := LoginRoute(tt.c)
		if r.Method != tt.want || r.ConnectionID != tt.conn {
			t.Errorf("%s: route = %+v, want %s via %q", tt.name, r, tt.want, tt.conn)
		}
		if r.Method != RouteDefault && r.ParentID != tt.c.ParentID {
			t.Errorf("%s: parent = %q", tt.name, r.ParentID)
		}
		if got := NonSSOAllowed(tt.c); got != tt.nonSSO {
			t.Errorf("%s: NonSSOAllowed = %v, want %v", tt.name, got, tt.nonSSO)
		}
	}
}

func TestSSOIdentityAllowed(t *testing.T) {
	tests := []struct {
		name       string
		connParent string
		c          Capture
		want       bool
	}{
		{"own verified domain", "p1", Capture{Captured: true, ParentID: "p1"}, true},
		{"another parent's domain", "p1", Capture{Captured: true, ParentID: "p2"}, false},
		{"unverified domain", "p1", Capture{}, false},
		{"empty parent on both sides", "", Capture{Captured: true}, false},
	}
	for _, tt := range tests {
		if got := SSOIdentityAllowed(tt.connParent, tt.c); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}
