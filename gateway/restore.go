package gateway

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/superset-gateway/superset-gateway/epoch"
	"github.com/superset-gateway/superset-gateway/guesttoken"
	"github.com/superset-gateway/superset-gateway/store"
)

// Restored is what MarkRestored wrote.
type Restored struct {
	// Epoch is the global epoch now stored (ms): every credential issued
	// before it is refused, sessions, API JWTs and access tokens alike.
	Epoch int64 `json:"epoch"`
	// GuestRevokedBefore is the global guest-token stamp now stored.
	GuestRevokedBefore time.Time `json:"guest_revoked_before"`
	// Generation is the store's new generation marker.
	Generation string `json:"generation"`
}

// MarkRestored makes a store that was restored from a backup safe to
// serve. A backup knows nothing of the revocations made after it was
// taken (a user's epoch, a dashboard's guest tokens, an access token), and
// nothing in the restored data says which those were; so, as for a wiped
// store, everything issued before now is refused: the global epoch and the
// global guest-token stamp move to now, and the generation marker is
// renewed, since the store now holds another history than the one the old
// marker named. Users sign in again and access tokens are created again;
// no revocation is forgotten. The stamps are published, so gateways that
// run on the store (Redis restored under them) drop their caches at once.
//
// It is idempotent: run again, it only moves the stamps forward. On error
// the stamps written so far stay (they only refuse more) and the call can
// be repeated.
func MarkRestored(ctx context.Context, st store.Store, actor string, now func() time.Time, log *zap.Logger) (Restored, error) {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = zap.NewNop()
	}
	ep, err := epoch.New(epoch.Options{Store: st, Now: now, Logger: log})
	if err != nil {
		return Restored{}, fmt.Errorf("restore: %w", err)
	}
	var out Restored
	if out.Epoch, err = ep.StampGlobal(ctx, epoch.Reason{Trigger: epoch.TriggerStoreRestored, Actor: actor,
		Note: "store restored from a backup: credentials issued before now are refused"}); err != nil {
		return Restored{}, fmt.Errorf("restore: global epoch: %w", err)
	}
	rev, err := guesttoken.NewRevoker(guesttoken.RevokerOptions{Store: st, Now: now, Logger: log})
	if err != nil {
		return Restored{}, fmt.Errorf("restore: %w", err)
	}
	g, err := rev.RevokeAll(ctx, now())
	if err != nil {
		return Restored{}, fmt.Errorf("restore: guest-token revocations: %w", err)
	}
	out.GuestRevokedBefore = g.RevokedBefore
	if out.Generation, err = store.RenewGeneration(ctx, st, now()); err != nil {
		return Restored{}, fmt.Errorf("restore: %w", err)
	}
	return out, nil
}
