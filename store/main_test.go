package store_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(path) // the child of TestBoltKill9; never returns
	}
	goleak.VerifyTestMain(m)
}
