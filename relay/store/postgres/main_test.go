package postgres

import (
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	"github.com/bccguard/bccguard/relay/store/postgres/pgtest"
)

// testDB is one database for the whole run of this package's tests; each
// test gets its own schema in it (freshSchema), far cheaper than a
// database each.
var testDB struct {
	dsn string
	err error
	n   atomic.Int64
}

func TestMain(m *testing.M) {
	var drop func() error
	if !pgtest.Skipped() {
		testDB.dsn, drop, testDB.err = pgtest.Create("bccguard_test")
	}
	code := m.Run()
	if drop != nil {
		if err := drop(); err != nil {
			fmt.Fprintln(os.Stderr, "drop test database:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// requirePostgres skips the test with BCCGUARD_SKIP_POSTGRES=1 and fails
// it, saying why, when the run has no test database.
func requirePostgres(t testing.TB) {
	t.Helper()
	if pgtest.Skipped() {
		t.Skipf("%s=1: skipping a test that needs PostgreSQL", pgtest.SkipEnv)
	}
	if testDB.err != nil {
		t.Fatal(testDB.err)
	}
}

// freshSchema returns the DSN of a new, empty schema in the run's database.
func freshSchema(t testing.TB) string {
	t.Helper()
	requirePostgres(t)
	return pgtest.Schema(t, testDB.dsn, fmt.Sprintf("s%d", testDB.n.Add(1)))
}
