package admin

import (
	"context"
	"io"
	"net/http"
	"strings"
)

// Backupper writes a consistent copy of the store while it serves;
// *bolt.Store implements it.
type Backupper interface {
	Backup(ctx context.Context, w io.Writer, size func(int64)) (int64, error)
}

// storeBackup: GET store/backup → the embedded store's file, a consistent
// hot copy (`superset-gateway store backup` calls it). The bbolt file is
// locked by the running gateway, so a copy taken from the disk meanwhile
// is not to be trusted: this route is the way to back it up live.
func (h *Handler) storeBackup(_ context.Context, c *Call) (any, error) {
	c.Subject = "store"
	// The whole store is an operator's artefact, not a Superset admin's:
	// it takes an admin API token (the CLI's credential), never a
	// browser session, so a stolen admin session cannot carry it off.
	if !strings.HasPrefix(c.Actor, "admin-token:") {
		c.Reason = "admin_token_required"
		return nil, &HTTPError{Code: http.StatusForbidden, Msg: "the store backup takes an admin API token (superset-gateway admin-token create)"}
	}
	if h.backup == nil {
		c.Reason = "not_embedded"
		return nil, &HTTPError{Code: http.StatusConflict,
			Msg: "the store is Redis: back it up with Redis persistence (RDB snapshots or the AOF), see docs/deploy.md"}
	}
	name := "superset-gateway-" + h.now().UTC().Format("20060102T150405Z") + ".db"
	return &Download{Name: name, Write: h.backup.Backup}, nil
}
