package review

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/bccguard/bccguard/relay/store"
)

// Code is a stable, machine-readable error code. The HTTP API, the control
// socket and the CLI all report errors with these codes; scripts may rely
// on them.
type Code string

// Error codes.
const (
	CodeBadRequest   Code = "bad_request"  // invalid input: unknown rewrite, recipients not in the envelope, ...
	CodeUnauthorized Code = "unauthorized" // no or wrong credentials
	CodeForbidden    Code = "forbidden"    // the actor's role does not allow the action
	CodeNotFound     Code = "not_found"    // no held message with that ID
	CodeNotHeld      Code = "not_held"     // the message was already released, deleted or expired
	CodeGone         Code = "gone"         // the message body was removed (deleted or expired hold)
	// CodeNeedsSecondReviewer: a four-eyes hold needs a release by a
	// different reviewer. As the status of a ReleaseResult it means an
	// approval was recorded; as an error, that this reviewer had already
	// approved and cannot be the second one too.
	CodeNeedsSecondReviewer Code = "needs_second_reviewer"
	// CodeUnsafeCopy: the copies of the chosen rewrite would still show
	// other recipients (in a field no rewrite can clean); releasing them
	// needs force.
	CodeUnsafeCopy       Code = "unsafe_copy"
	CodeTooMany          Code = "too_many"               // a bulk filter matches more than MaxBulk holds
	CodeUnsupportedMedia Code = "unsupported_media_type" // a POST body that is not JSON
	CodeMethodNotAllowed Code = "method_not_allowed"
	CodeTooManyRequests  Code = "too_many_requests" // failed sign-ins from this client or for this user: wait (Retry-After)
	CodeInternal         Code = "internal"          // the store failed; details are in the relay's log only
)

// HTTPStatus is the status code the HTTP API answers with for c.
func (c Code) HTTPStatus() int {
	switch c {
	case CodeBadRequest, CodeTooMany:
		return http.StatusBadRequest
	case CodeUnauthorized:
		return http.StatusUnauthorized
	case CodeForbidden:
		return http.StatusForbidden
	case CodeNotFound:
		return http.StatusNotFound
	case CodeNotHeld, CodeNeedsSecondReviewer, CodeUnsafeCopy:
		return http.StatusConflict
	case CodeGone:
		return http.StatusGone
	case CodeUnsupportedMedia:
		return http.StatusUnsupportedMediaType
	case CodeMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case CodeTooManyRequests:
		return http.StatusTooManyRequests
	default:
		return http.StatusInternalServerError
	}
}

// Error is what every Service method returns on failure. Message is safe to
// show to the actor; Err (the cause, e.g. a store error) is only logged.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
	Err     error  `json:"-"`
}

func (e *Error) Error() string {
	if e.Err != nil && e.Code == CodeInternal {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return string(e.Code) + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

func errorf(c Code, format string, a ...any) *Error {
	return &Error{Code: c, Message: fmt.Sprintf(format, a...)}
}

// CodeOf returns the code of err: its own if it is an *Error, CodeInternal
// otherwise.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// storeErr turns a store error into an *Error for the message id.
func storeErr(err error, id, doing string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		return &Error{Code: CodeNotFound, Message: fmt.Sprintf("no quarantined message %q", id), Err: err}
	case errors.Is(err, store.ErrNotHeld):
		return &Error{Code: CodeNotHeld, Message: fmt.Sprintf("message %s is no longer held", id), Err: err}
	default:
		return &Error{Code: CodeInternal, Message: doing + " failed", Err: err}
	}
}
