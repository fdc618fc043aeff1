package main

import (
	"errors"
	"flag"
)

// parseMixed reads flags and positional arguments in any order (an ID
// first or last), and refuses the flags that are set but not in allowed
// (besides --config and --data-dir): a subcommand of quarantine or queue
// takes only the flags that mean something for it.
func parseMixed(fs *flag.FlagSet, args []string, usage string, allowed ...string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usagef("%s: %v\n%s", fs.Name(), err, usage)
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	ok := map[string]bool{"config": true, "data-dir": true}
	for _, a := range allowed {
		ok[a] = true
	}
	var bad error
	fs.Visit(func(f *flag.Flag) {
		if !ok[f.Name] && bad == nil {
			bad = usagef("%s does not take --%s\n%s", fs.Name(), f.Name, usage)
		}
	})
	return pos, bad
}
