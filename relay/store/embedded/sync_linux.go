package embedded

import (
	"os"

	"golang.org/x/sys/unix"
)

// datasync flushes a file's data and the metadata needed to read it back
// (its size); fdatasync skips timestamps, which we do not need.
func datasync(f *os.File) error {
	for {
		err := unix.Fdatasync(int(f.Fd()))
		if err != unix.EINTR {
			return err
		}
	}
}
