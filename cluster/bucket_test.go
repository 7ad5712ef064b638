package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// Nodes starting together open the directory's buckets at once: one
// creates each bucket, the others bind to it, none waits for its deadline.
func TestNodesOpenBucketsTogether(t *testing.T) {
	c := startCluster(t, 3)
	errs := make(chan error, 3)
	for i, js := range c.js {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			start := time.Now()
			_, err := openDirectory(ctx, js, fmt.Sprintf("n%d", i), 5*time.Second, 3)
			if err != nil {
				err = fmt.Errorf("node %d after %v: %w", i, time.Since(start), err)
			}
			errs <- err
		}()
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
