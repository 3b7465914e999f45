package admin

import "net/http"

// Admits reports whether the admin page would admit the caller of r: a
// signed-in Superset user with a role in admin.roles, decided by the same
// check the page and the API use (userAdmin). The gateway's other pages
// ask it before showing the "Gateway admin" link; any doubt (not signed
// in, identity unknown) is a no, so the link is never shown to someone the
// page would refuse.
func (h *Handler) Admits(r *http.Request) bool {
	_, _, herr := h.userAdmin(r)
	return herr == nil
}
