package slapdtest

import (
	"encoding/base64"
	"strings"
	"testing"
)

// TestDirectory exercises every helper against a real slapd: binds succeed
// only with the current password, memberOf follows group membership, and a
// deleted person can no longer bind and leaves their groups.
func TestDirectory(t *testing.T) {
	s := Start(t, Options{Groups: []string{"analysts", "admins"}})
	if !strings.HasPrefix(s.URL(), "ldap://127.0.0.1:") {
		t.Fatalf("URL %q", s.URL())
	}
	s.AddUser(t, User{UID: "carol", Password: "carol-pw", Mail: "carol@example.test", Groups: []string{"analysts"}})
	if !s.Bind(s.UserDN("carol"), "carol-pw") {
		t.Fatal("carol cannot bind with her password")
	}
	if s.Bind(s.UserDN("carol"), "wrong") {
		t.Fatal("carol binds with a wrong password")
	}
	if s.Bind(s.UserDN("nobody"), "carol-pw") {
		t.Fatal("a DN without an entry binds")
	}
	memberOf := func() string { return s.Search(t, "(uid=carol)", "memberOf") }
	if got := memberOf(); !strings.Contains(got, "memberOf: "+s.GroupDN("analysts")) || strings.Contains(got, s.GroupDN("admins")) {
		t.Fatalf("carol's memberOf after the add:\n%s", got)
	}
	s.AddToGroup(t, "carol", "admins")
	if got := memberOf(); !strings.Contains(got, "memberOf: "+s.GroupDN("admins")) {
		t.Fatalf("carol's memberOf after joining admins:\n%s", got)
	}
	s.RemoveFromGroup(t, "carol", "analysts")
	if got := memberOf(); strings.Contains(got, s.GroupDN("analysts")) {
		t.Fatalf("carol's memberOf after leaving analysts:\n%s", got)
	}

	s.SetPassword(t, "carol", "carol-new")
	if s.Bind(s.UserDN("carol"), "carol-pw") || !s.Bind(s.UserDN("carol"), "carol-new") {
		t.Fatal("after the password change: the old password binds or the new one does not")
	}
	// ldappasswd has slapd hash it ({SSHA}), as a real directory would.
	got := s.Search(t, "(uid=carol)", "userPassword")
	_, b64, ok := strings.Cut(got, "userPassword:: ")
	stored, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
	if !ok || err != nil || !strings.HasPrefix(string(stored), "{SSHA}") {
		t.Fatalf("the stored password is not a salted hash: %q (%v)\n%s", stored, err, got)
	}

	s.DeleteUser(t, "carol")
	if s.Bind(s.UserDN("carol"), "carol-new") {
		t.Fatal("a deleted person still binds")
	}
	if got := s.Search(t, "(cn=admins)", "member"); strings.Contains(got, s.UserDN("carol")) {
		t.Fatalf("the deleted person is still a member:\n%s", got)
	}

	s.Stop()
	if s.Bind(s.RootDN(), s.RootPassword()) {
		t.Fatal("slapd still answers after Stop")
	}
}
