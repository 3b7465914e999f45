// Package slapdtest starts a real OpenLDAP slapd (Debian's slapd package)
// for one test: its own loopback port, a throw-away slapd.conf and mdb
// database in a temporary directory, stopped by t.Cleanup. The directory
// holds people under ou=people and groupOfNames groups under ou=groups, with
// the memberof overlay maintaining each person's memberOf, which is what
// Flask-AppBuilder's AUTH_LDAP_GROUP_FIELD reads for AUTH_ROLES_MAPPING.
//
// Directory changes go through ldap-utils (ldapadd, ldapmodify,
// ldapdelete, ldappasswd) as an operator's would, so this package needs no
// LDAP client library. A missing slapd or ldap-utils fails the test; it
// never skips, so a CI machine without them cannot pass by testing nothing.
package slapdtest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/internal/proctest"
)

// Options shapes the server. The zero value serves dc=example,dc=test with
// no people and no groups.
type Options struct {
	// Suffix is the database's naming context; empty means
	// dc=example,dc=test. It must be a single dc=… component list.
	Suffix string
	// Groups are created empty (cn=<name>,ou=groups,<suffix>) at start.
	Groups []string
	// Binary is the slapd path; empty means /usr/sbin/slapd.
	Binary string
	// StartTimeout bounds how long Start waits for slapd to answer a
	// search; zero means 15s (a loaded CI machine, not slapd, is slow).
	StartTimeout time.Duration
}

// User is one person: uid=<UID>,ou=people,<suffix>, an inetOrgPerson.
type User struct {
	UID, Password string
	// GivenName, Surname and Mail fill givenName, sn and mail; empty
	// GivenName and Surname default to UID (sn is mandatory).
	GivenName, Surname, Mail string
	// Groups are names passed in Options.Groups; the user is added as a
	// member of each, and memberof sets the user's memberOf.
	Groups []string
}

// Server is one running slapd. Its methods are safe for use by one test
// goroutine at a time.
type Server struct {
	opts   Options
	bin    string
	dir    string
	port   int
	rootPW string
	mu     sync.Mutex
	proc   *proctest.Proc
	tools  map[string]string // ldap-utils name → path
}

// placeholder is the member every group is created with: groupOfNames
// requires one, and the root DN has no entry, so it gains no memberOf.
func (s *Server) placeholder() string { return s.RootDN() }

// Start launches slapd (New) for one test, failing it with t.Fatalf if
// slapd or ldap-utils is missing or the server does not come up. It is
// stopped, and on failure its log printed, by t.Cleanup.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := New(opts)
	if err != nil {
		t.Fatalf("slapdtest: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("slapdtest: log of slapd on %s (tail):\n%s", s.URL(), s.LogTail())
		}
		s.Close()
	})
	return s
}

// New launches slapd and creates the base entries and Options.Groups, for
// a server that outlives one test (a package's shared directory, stopped
// by TestMain with Close). A missing slapd or ldap-utils is an error.
func New(opts Options) (*Server, error) {
	if opts.Suffix == "" {
		opts.Suffix = "dc=example,dc=test"
	}
	if !strings.HasPrefix(opts.Suffix, "dc=") {
		return nil, fmt.Errorf("suffix %q must start with dc=", opts.Suffix)
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 15 * time.Second
	}
	bin := opts.Binary
	if bin == "" {
		bin = "/usr/sbin/slapd"
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("slapd binary: %w (install Debian's slapd package)", err)
	}
	tools := map[string]string{}
	for _, name := range []string{"ldapadd", "ldapmodify", "ldapdelete", "ldappasswd", "ldapsearch", "ldapwhoami"} {
		p, err := exec.LookPath(name)
		if err != nil {
			return nil, fmt.Errorf("%w (install Debian's ldap-utils package)", err)
		}
		tools[name] = p
	}
	dir, err := os.MkdirTemp("", "slapdtest-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	s := &Server{opts: opts, bin: bin, dir: dir, rootPW: randomHex(12), tools: tools}
	if err := s.launch(); err != nil {
		if tail := s.LogTail(); tail != "" {
			err = fmt.Errorf("%w\nslapd log (tail):\n%s", err, tail)
		}
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Server) launch() error {
	if err := os.Mkdir(filepath.Join(s.dir, "db"), 0o700); err != nil {
		return err
	}
	err := proctest.OnFreePort(func(port int) error {
		s.port = port
		if err := s.writeConfig(); err != nil {
			return err
		}
		if err := s.start(); err != nil {
			s.Stop()
			return err
		}
		return nil
	}, func() bool { return s.logContains("Address already in use") })
	if err != nil {
		return fmt.Errorf("start slapd: %w", err)
	}
	base := fmt.Sprintf("dn: %[1]s\nobjectClass: dcObject\nobjectClass: organization\no: slapdtest\ndc: %[2]s\n\n"+
		"dn: ou=people,%[1]s\nobjectClass: organizationalUnit\nou: people\n\n"+
		"dn: ou=groups,%[1]s\nobjectClass: organizationalUnit\nou: groups\n",
		s.opts.Suffix, strings.TrimPrefix(strings.SplitN(s.opts.Suffix, ",", 2)[0], "dc="))
	for _, g := range s.opts.Groups {
		base += fmt.Sprintf("\ndn: %s\nobjectClass: groupOfNames\ncn: %s\nmember: %s\n", s.GroupDN(g), g, s.placeholder())
	}
	if err := s.ldap("ldapadd", base); err != nil {
		return fmt.Errorf("base entries: %w", err)
	}
	return nil
}

// URL is ldap://127.0.0.1:<port>.
func (s *Server) URL() string {
	return "ldap://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// Suffix is the database's naming context.
func (s *Server) Suffix() string { return s.opts.Suffix }

// RootDN and RootPassword are the database's rootdn credentials: what a
// directory service account binds with to search (read everything).
func (s *Server) RootDN() string       { return "cn=admin," + s.opts.Suffix }
func (s *Server) RootPassword() string { return s.rootPW }

// PeopleBase is ou=people,<suffix>, the search base for users.
func (s *Server) PeopleBase() string { return "ou=people," + s.opts.Suffix }

// UserDN is uid=<uid>,ou=people,<suffix>.
func (s *Server) UserDN(uid string) string { return "uid=" + uid + "," + s.PeopleBase() }

// GroupDN is cn=<name>,ou=groups,<suffix>: the value memberOf holds.
func (s *Server) GroupDN(name string) string { return "cn=" + name + ",ou=groups," + s.opts.Suffix }

// AddUser creates u's entry and makes it a member of u.Groups.
func (s *Server) AddUser(t testing.TB, u User) {
	t.Helper()
	if err := s.Add(u); err != nil {
		t.Fatalf("slapdtest: %v", err)
	}
}

// Add is AddUser returning an error, for set-up outside a test.
func (s *Server) Add(u User) error {
	if u.UID == "" || strings.ContainsAny(u.UID, ",=+<>#;\\\"\n") {
		return fmt.Errorf("uid %q is empty or needs DN escaping", u.UID)
	}
	if u.Password == "" {
		return fmt.Errorf("empty password for %s (slapd would then refuse every bind)", u.UID)
	}
	given, sn := u.GivenName, u.Surname
	if given == "" {
		given = u.UID
	}
	if sn == "" {
		sn = u.UID
	}
	var b strings.Builder
	fmt.Fprintf(&b, "dn: %s\nobjectClass: inetOrgPerson\nuid: %s\ncn: %s %s\ngivenName: %s\nsn: %s\n",
		s.UserDN(u.UID), u.UID, given, sn, given, sn)
	if u.Mail != "" {
		fmt.Fprintf(&b, "mail: %s\n", u.Mail)
	}
	if err := s.ldap("ldapadd", b.String()); err != nil {
		return fmt.Errorf("add %s: %w", u.UID, err)
	}
	// ldappasswd has slapd store a salted hash, as a real directory would.
	if err := s.run("ldappasswd", "", "-s", u.Password, s.UserDN(u.UID)); err != nil {
		return fmt.Errorf("set password of %s: %w", u.UID, err)
	}
	for _, g := range u.Groups {
		ldif := fmt.Sprintf("dn: %s\nchangetype: modify\nadd: member\nmember: %s\n", s.GroupDN(g), s.UserDN(u.UID))
		if err := s.ldap("ldapmodify", ldif); err != nil {
			return fmt.Errorf("add %s to %s: %w", u.UID, g, err)
		}
	}
	return nil
}

// SetPassword replaces uid's password (LDAP Password Modify, as the
// root DN).
func (s *Server) SetPassword(t testing.TB, uid, password string) {
	t.Helper()
	if password == "" {
		t.Fatalf("slapdtest: empty password for %s (slapd would then refuse every bind)", uid)
	}
	if err := s.run("ldappasswd", "", "-s", password, s.UserDN(uid)); err != nil {
		t.Fatalf("slapdtest: set password of %s: %v", uid, err)
	}
}

// AddToGroup adds uid as a member of group; memberof adds the group's DN
// to the user's memberOf.
func (s *Server) AddToGroup(t testing.TB, uid, group string) {
	t.Helper()
	ldif := fmt.Sprintf("dn: %s\nchangetype: modify\nadd: member\nmember: %s\n", s.GroupDN(group), s.UserDN(uid))
	if err := s.ldap("ldapmodify", ldif); err != nil {
		t.Fatalf("slapdtest: add %s to %s: %v", uid, group, err)
	}
}

// RemoveFromGroup removes uid from group.
func (s *Server) RemoveFromGroup(t testing.TB, uid, group string) {
	t.Helper()
	ldif := fmt.Sprintf("dn: %s\nchangetype: modify\ndelete: member\nmember: %s\n", s.GroupDN(group), s.UserDN(uid))
	if err := s.ldap("ldapmodify", ldif); err != nil {
		t.Fatalf("slapdtest: remove %s from %s: %v", uid, group, err)
	}
}

// DeleteUser removes uid's entry; memberof (memberof-refint) removes it
// from every group.
func (s *Server) DeleteUser(t testing.TB, uid string) {
	t.Helper()
	if err := s.run("ldapdelete", "", s.UserDN(uid)); err != nil {
		t.Fatalf("slapdtest: delete %s: %v", uid, err)
	}
}

// Search runs ldapsearch under the suffix as the root DN with an LDAP
// filter and returns its LDIF output, requesting attrs (operational ones
// such as memberOf must be named).
func (s *Server) Search(t testing.TB, filter string, attrs ...string) string {
	t.Helper()
	out, err := s.output("ldapsearch", "", append([]string{"-LLL", "-b", s.opts.Suffix, filter}, attrs...)...)
	if err != nil {
		t.Fatalf("slapdtest: search %s: %v", filter, err)
	}
	return out
}

// Bind reports whether dn binds with password (ldapwhoami as that DN): how
// a test checks what the directory itself says about a credential.
func (s *Server) Bind(dn, password string) bool {
	cmd := exec.Command(s.tools["ldapwhoami"], "-x", "-H", s.URL(), "-D", dn, "-w", password)
	return cmd.Run() == nil
}

// Close stops slapd and removes its directory (database, config, log).
func (s *Server) Close() {
	s.Stop()
	_ = os.RemoveAll(s.dir)
}

// Stop terminates slapd (SIGTERM, SIGKILL after five seconds) and waits
// for it. Stopping a stopped server is a no-op.
func (s *Server) Stop() {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p != nil {
		p.Stop(syscall.SIGTERM, 5*time.Second)
	}
}

func (s *Server) writeConfig() error {
	var b strings.Builder
	for _, schema := range []string{"core", "cosine", "inetorgperson"} {
		fmt.Fprintf(&b, "include /etc/ldap/schema/%s.schema\n", schema)
	}
	fmt.Fprintf(&b, "modulepath /usr/lib/ldap\nmoduleload back_mdb\nmoduleload memberof\n")
	fmt.Fprintf(&b, "pidfile %s\nargsfile %s\n", filepath.Join(s.dir, "slapd.pid"), filepath.Join(s.dir, "slapd.args"))
	// Passwords are readable by nobody, usable by anyone to bind; the rest
	// is readable after a bind (FAB's service account searches).
	b.WriteString("access to attrs=userPassword by self write by anonymous auth by * none\n")
	b.WriteString("access to * by users read by * none\n")
	fmt.Fprintf(&b, "database mdb\nmaxsize 16777216\nsuffix %q\nrootdn %q\nrootpw %s\ndirectory %s\n",
		s.opts.Suffix, s.RootDN(), s.rootPW, filepath.Join(s.dir, "db"))
	// memberof keeps memberOf on people in step with groupOfNames member
	// values, and removes a deleted person from their groups (refint).
	b.WriteString("overlay memberof\nmemberof-group-oc groupOfNames\nmemberof-member-ad member\n" +
		"memberof-memberof-ad memberOf\nmemberof-refint TRUE\n")
	if err := os.WriteFile(filepath.Join(s.dir, "slapd.conf"), []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("write slapd.conf: %w", err)
	}
	return nil
}

func (s *Server) start() error {
	// -d keeps slapd in the foreground (a child we can wait for and kill);
	// level 256 logs one line per operation, which the failure dump shows.
	// The root DN binds before any entry exists.
	p, err := proctest.Start(proctest.Spec{Bin: s.bin, Args: []string{"-d", "256", "-f", filepath.Join(s.dir, "slapd.conf"), "-h", s.URL() + "/"},
		Dir: s.dir, Log: s.logPath(), Timeout: s.opts.StartTimeout, Poll: 50 * time.Millisecond,
		Ready: func() error {
			if s.Bind(s.RootDN(), s.rootPW) {
				return nil
			}
			return proctest.ErrNotReady
		}})
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()
	return nil
}

// ldap runs an ldap-utils tool as the root DN with ldif on stdin.
func (s *Server) ldap(tool, ldif string) error {
	return s.run(tool, ldif)
}

func (s *Server) run(tool, stdin string, args ...string) error {
	_, err := s.output(tool, stdin, args...)
	return err
}

func (s *Server) output(tool, stdin string, args ...string) (string, error) {
	all := append([]string{"-x", "-H", s.URL(), "-D", s.RootDN(), "-w", s.rootPW}, args...)
	cmd := exec.Command(s.tools[tool], all...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s: %w: %s", tool, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

func (s *Server) logPath() string { return filepath.Join(s.dir, "slapd.log") }

func (s *Server) logContains(sub string) bool {
	b, err := os.ReadFile(s.logPath())
	return err == nil && bytes.Contains(b, []byte(sub))
}

// LogTail is the last 16 KiB of slapd's log (one line per operation).
func (s *Server) LogTail() string {
	b, err := os.ReadFile(s.logPath())
	if err != nil {
		return ""
	}
	if len(b) > 16<<10 {
		b = b[len(b)-16<<10:]
	}
	return string(b)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go ≥1.24)
	return hex.EncodeToString(b)
}
