package dsn

import "strings"

// ShouldNotify reports whether a recipient's NOTIFY parameter (RFC 3461)
// asks for a DSN with this action. Without NOTIFY only failures are
// reported; NEVER silences everything. Values are case-blind and may also
// come comma-joined as in the SMTP parameter.
func ShouldNotify(notify []string, action string) bool {
	var want string
	switch strings.ToLower(action) {
	case "failed":
		want = "FAILURE"
	case "delayed":
		want = "DELAY"
	case "delivered", "relayed", "expanded":
		want = "SUCCESS"
	default:
		return false
	}
	found, given := false, false
	for _, v := range notify {
		for _, n := range strings.Split(v, ",") {
			switch n = strings.ToUpper(strings.TrimSpace(n)); n {
			case "":
			case "NEVER":
				return false
			default:
				given = true
				found = found || n == want
			}
		}
	}
	if !given {
		return want == "FAILURE"
	}
	return found
}
