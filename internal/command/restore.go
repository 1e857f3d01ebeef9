package command

import (
	"context"

	"github.com/eventfold/eventfold/internal/domain"
)

// UserClaim returns the key of the unique value the user's stream holds according to its
// events: the claim on its current email address. It returns "" for an unknown or erased user,
// and for one whose address can no longer be read (their key is erased). A restore of the events
// table reconciles the claims table with it.
func (s *Service) UserClaim(ctx context.Context, userID string) (string, error) {
	stream, err := users.streamID(userID)
	if err != nil {
		return "", err
	}
	u, _, _, _, err := load[domain.User](ctx, s, users, stream)
	if err != nil || !u.Exists() || u.Status == domain.UserStatusErased || u.Email == "" {
		return "", err
	}
	return s.emailClaim(u.Email, false).Key, nil
}
