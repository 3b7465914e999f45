package fakesuperset

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/superset-gateway/superset-gateway/superset/flaskcookie"
)

// mvcRoutes adds the legacy FAB MVC user views that 6.1.0 still registers.
// Compared with the live 6.1.0: the list (admin 200, others 302 to the
// login page), edit (an absent "active" checkbox disables the user),
// delete, /resetpassword/form and /resetmypassword/form, each 302 to "/"
// (edit and delete 500 with server-side sessions, see legacyDone). All are
// CSRF-protected forms; the conformance suite holds them to 6.1.0.
func (f *Fake) mvcRoutes(m *http.ServeMux) {
	m.Handle("GET /users/list/", f.page(f.mvcAdmin(func(r *http.Request, st *reqState) resp {
		return htmlResp(http.StatusOK, "<!doctype html><title>List Users</title><table></table>")
	})))
	m.Handle("POST /users/edit/{pk}", f.form(f.mvcAdmin(f.legacyEdit)))
	m.Handle("POST /users/delete/{pk}", f.form(f.mvcAdmin(f.legacyDelete)))
	m.Handle("POST /resetpassword/form", f.form(f.mvcAdmin(f.resetPassword)))
	m.Handle("POST /resetmypassword/form", f.form(f.resetMyPassword))
}

// mvcAdmin is FAB's @has_access for MVC views: without the permission the
// browser is flashed "Access is Denied" and sent to the login page.
func (f *Fake) mvcAdmin(h handler) handler {
	return func(r *http.Request, st *reqState) resp {
		if st.user == nil || !hasPermission(st.user.Roles, "can_put_user") {
			st.set("_flashes", append(flashList(st.sess), flaskcookie.Tuple{"danger", "Access is Denied"}))
			scheme := "http"
			if r.TLS != nil {
				scheme = "https"
			}
			return redirect("/login/?next=" + werkzeugQuote(scheme+"://"+r.Host+r.URL.RequestURI()))
		}
		return h(r, st)
	}
}

func (f *Fake) legacyEdit(r *http.Request, st *reqState) resp {
	id, _ := strconv.Atoi(r.PathValue("pk"))
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.users[id]
	if !ok {
		return htmlResp(http.StatusNotFound, "<!doctype html><title>404 Not Found</title>")
	}
	for k, set := range map[string]*string{"first_name": &u.FirstName, "last_name": &u.LastName, "username": &u.Username, "email": &u.Email} {
		if v := r.PostFormValue(k); v != "" {
			*set = v
		}
	}
	// An unchecked checkbox is absent from the form: the user is disabled.
	u.Active = r.PostFormValue("active") != ""
	u.ChangedBy = st.user.ID
	return f.legacyDone(r)
}

func (f *Fake) legacyDelete(r *http.Request, st *reqState) resp {
	id, _ := strconv.Atoi(r.PathValue("pk"))
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.users[id]; !ok {
		return htmlResp(http.StatusNotFound, "<!doctype html><title>404 Not Found</title>")
	}
	delete(f.users, id)
	return f.legacyDone(r)
}

// legacyDone answers a committed edit or delete. FAB redirects to the page
// history's previous page; a scripted client without history lands on the
// index (seen on 6.1.0). With server-side sessions the change is committed
// but the answer is 500: FAB flashes a lazy_gettext string, which Flask's
// cookie serializer turns into text and flask-session's msgspec encoder
// refuses when the session is saved (seen on 6.1.0 with flask-session
// 0.8.0).
func (f *Fake) legacyDone(r *http.Request) resp {
	if f.opt.ServerSideSessions {
		return httpError(r, http.StatusInternalServerError, internalErrorDescription)
	}
	return redirect("/")
}

// passwordForm validates ResetPasswordForm: password equals conf_password.
func passwordForm(r *http.Request) (string, bool) {
	pw := r.PostFormValue("password")
	return pw, pw != "" && pw == r.PostFormValue("conf_password")
}

func (f *Fake) resetPassword(r *http.Request, st *reqState) resp {
	id, err := strconv.Atoi(r.URL.Query().Get("pk"))
	pw, ok := passwordForm(r)
	if err != nil || !ok {
		return htmlResp(http.StatusOK, "<!doctype html><title>Reset Password</title><form method=post></form>")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	u, found := f.users[id]
	if !found {
		return htmlResp(http.StatusNotFound, "<!doctype html><title>404 Not Found</title>")
	}
	u.Password = pw
	st.set("_flashes", append(flashList(st.sess), flaskcookie.Tuple{"info", "Password Changed"}))
	return redirect("/")
}

func (f *Fake) resetMyPassword(r *http.Request, st *reqState) resp {
	if st.user == nil {
		return redirect("/login/?next=" + werkzeugQuote(strings.TrimSuffix(r.URL.RequestURI(), "?")))
	}
	pw, ok := passwordForm(r)
	if !ok {
		return htmlResp(http.StatusOK, "<!doctype html><title>Reset Password</title><form method=post></form>")
	}
	f.mu.Lock()
	if u, found := f.users[st.user.ID]; found {
		u.Password = pw
	}
	f.mu.Unlock()
	st.set("_flashes", append(flashList(st.sess), flaskcookie.Tuple{"info", "Password Changed"}))
	return redirect("/")
}
