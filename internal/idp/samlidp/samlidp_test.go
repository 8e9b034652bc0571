package samlidp

import (
	"net/http"
	"net/url"
	"testing"
)

// RemoveUser also ends the user's IdP sessions: samlidp keeps the user's
// data in the session, which would otherwise still sign them in.
func TestRemoveUserEndsSessions(t *testing.T) {
	idp, err := Start(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer idp.Close()
	for _, n := range []string{"ann", "bo"} {
		if err := idp.AddUser(User{Name: n, Password: "pw", Email: n + "@example.com", Groups: []string{"g"}}); err != nil {
			t.Fatal(err)
		}
		resp, err := http.PostForm(idp.URL()+"/login", url.Values{"user": {n}, "password": {"pw"}})
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("login %s: %v %v", n, resp, err)
		}
		resp.Body.Close()
	}
	sessions := func() int {
		ids, err := idp.Server.Store.List("/sessions/")
		if err != nil {
			t.Fatal(err)
		}
		return len(ids)
	}
	if n := sessions(); n != 2 {
		t.Fatalf("%d sessions", n)
	}
	req, _ := http.NewRequest("DELETE", idp.URL()+"/users/ann", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("DELETE /users/ann: %v %v", resp, err)
	}
	if n := sessions(); n != 1 {
		t.Fatalf("%d sessions after removing ann", n)
	}
	if err := idp.RemoveUser("ann"); err == nil {
		t.Fatal("removing a missing user succeeded")
	}
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 403 {
		t.Fatalf("cross-site DELETE: %v %v", resp, err)
	}
}
