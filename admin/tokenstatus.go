package admin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/superset-gateway/superset-gateway/epoch"
)

// EpochReader reads a user's invalidation epoch and the global one (Unix
// ms, 0 when none); *epoch.Epochs satisfies it.
type EpochReader interface {
	Epoch(ctx context.Context, userID string) (user, global int64, err error)
}

var _ EpochReader = (*epoch.Epochs)(nil)

// What RevokedBy says of a token an epoch revoked.
const (
	revokedByUserEpoch   = "revocation of user:"
	revokedByGlobalEpoch = "global revocation"
)

// EnforcedStatus returns toks with the status the gateway enforces: an
// "active" token whose owner's epoch or the global epoch is at or after
// its creation is refused by the gateway (the guard checks the creation,
// in ms, against the epochs), so it is shown "revoked", Revoked the
// epoch's time and RevokedBy "revocation of user:<id>" or "global
// revocation", and gets no Revoke button. Before this the admin page
// offered to revoke a token the gateway already refused. toks is not
// modified; each owner's epochs are read once (through the epoch cache).
// A store failure is an error wrapping it: the page must not claim a
// token is active when it cannot tell.
func EnforcedStatus(ctx context.Context, ep EpochReader, toks []AccessToken) ([]AccessToken, error) {
	type epochs struct{ user, global int64 }
	seen := map[string]epochs{}
	out := make([]AccessToken, len(toks))
	for i, t := range toks {
		out[i] = t
		if t.Status != "active" {
			continue
		}
		e, ok := seen[t.OwnerID]
		if !ok {
			u, g, err := ep.Epoch(ctx, t.OwnerID)
			if errors.Is(err, epoch.ErrBadUser) {
				// The guard refuses a token whose owner is no user id
				// (bad_subject); it cannot come from Superset's /me.
				out[i].Status, out[i].RevokedBy = "revoked", "invalid owner id"
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("admin: epochs of user %s: %w", t.OwnerID, err)
			}
			e = epochs{u, g}
			seen[t.OwnerID] = e
		}
		// The first epoch that covered it names the revocation.
		user := epoch.Covers(e.user, t.Created, time.Millisecond)
		global := epoch.Covers(e.global, t.Created, time.Millisecond)
		switch {
		case user && (!global || e.user <= e.global):
			out[i].Status, out[i].Revoked, out[i].RevokedBy = "revoked", time.UnixMilli(e.user).UTC(), revokedByUserEpoch+t.OwnerID
		case global:
			out[i].Status, out[i].Revoked, out[i].RevokedBy = "revoked", time.UnixMilli(e.global).UTC(), revokedByGlobalEpoch
		}
	}
	return out, nil
}
