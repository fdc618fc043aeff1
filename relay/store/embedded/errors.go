package embedded

import (
	"errors"
	"fmt"
	"strings"
	"syscall"

	"github.com/bccguard/bccguard/relay/store"
)

// ioErr wraps an error of operation op, adding store.ErrNoSpace when the
// cause is a full disk or quota, so the relay can answer 452 and accept
// again once space returns. nil stays nil.
func ioErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if isNoSpace(err) && !errors.Is(err, store.ErrNoSpace) {
		return fmt.Errorf("embedded: %s: %w: %w", op, store.ErrNoSpace, err)
	}
	return fmt.Errorf("embedded: %s: %w", op, err)
}

func isNoSpace(err error) bool {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return true
	}
	// bbolt formats some file errors with %s (growing the file), which
	// drops the errno; its text is all that is left.
	msg := err.Error()
	return strings.Contains(msg, syscall.ENOSPC.Error()) || strings.Contains(msg, syscall.EDQUOT.Error())
}
