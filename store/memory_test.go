package store_test

import (
	"testing"

	"github.com/stateroom-go/stateroom/store"
	"github.com/stateroom-go/stateroom/store/storetest"
)

func TestMemoryConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return store.NewMemory() })
}
