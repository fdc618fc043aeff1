// Command bccguard is an SMTP relay that stops mailings from leaking their
// recipient lists. See README.md for the commands.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// Exit codes, as DESIGN.md documents them.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `bccguard - an SMTP relay that stops mailings from leaking their recipient lists

Usage:
  bccguard serve [--config FILE] [--listen ADDR] [--upstream ADDR] [--data-dir DIR] [--admin-listen ADDR]
  bccguard check-config --config FILE
  bccguard policy test [--config FILE] MESSAGE.eml [--from ADDR] [--rcpt ADDR]... [--json]
  bccguard policy test --config FILE [--json]       runs the policy's own tests
  bccguard queue list [--data-dir DIR | --config FILE] [--state STATE] [--json]
  bccguard queue flush [--data-dir DIR | --config FILE]
  bccguard queue show|cat|hold|release|requeue|delete ID... [--data-dir DIR | --config FILE] ...
                     (bccguard queue help for details)
  bccguard quarantine list|show|raw|release|delete|bulk-release|bulk-delete|audit
                     [--data-dir DIR | --config FILE] ...   (bccguard quarantine for details)
  bccguard healthcheck [--config FILE | --admin ADDR] [--ready]   exit 0 if the relay's admin listener answers ok
  bccguard migrate --config FILE                   applies the PostgreSQL schema migrations (store.backend: postgres)
  bccguard dkim keygen --domain D --selector S [--type rsa|ed25519] [--bits 2048] [--out FILE]
  bccguard dkim check --domain D [--config FILE] [--resolver HOST:PORT]   exit 0 if DNS publishes the configured keys
  bccguard notify test --config FILE [--channel NAME] [--json]   sends a test notification to each channel: exit 0 if all took it
  bccguard version

Exit codes: 0 ok, 1 runtime failure, 2 usage or invalid configuration.
`

// usageError is a mistake on the command line: exit code 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	var err error
	switch args[0] {
	case "serve":
		err = cmdServe(args[1:], stderr)
	case "check-config":
		err = cmdCheckConfig(args[1:], stdout)
	case "queue":
		err = cmdQueue(args[1:], stdout)
	case "quarantine":
		err = cmdQuarantine(args[1:], stdout)
	case "policy":
		err = cmdPolicy(args[1:], stdout)
	case "migrate":
		err = cmdMigrate(args[1:], stdout)
	case "healthcheck":
		err = cmdHealthcheck(args[1:], stdout)
	case "dkim":
		err = cmdDKIM(args[1:], stdout)
	case "notify":
		err = cmdNotify(args[1:], stdout)
	case "version", "--version":
		fmt.Fprintln(stdout, "bccguard", version)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		err = usagef("unknown command %q: run 'bccguard help' for the list", args[0])
	}
	return exitCode(err, stderr)
}

func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	fmt.Fprintln(stderr, "bccguard:", err)
	var ue usageError
	var ce configError
	if errors.As(err, &ue) || errors.As(err, &ce) {
		return exitUsage
	}
	return exitFailure
}

// newFlags returns a FlagSet that reports errors instead of exiting.
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usagef("%s: %v (run 'bccguard help')", fs.Name(), err)
	}
	if fs.NArg() > 0 {
		return usagef("%s: unexpected argument %q (run 'bccguard help')", fs.Name(), fs.Arg(0))
	}
	return nil
}
