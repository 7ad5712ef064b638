package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// openBucket binds to the key-value bucket of cfg, creating it if it does
// not exist. Nodes starting together all call it: one creates the bucket,
// the others bind to it. (CreateOrUpdateKeyValue from several nodes at once
// was seen to hang the losers until their deadline on nats-server 2.15.)
// Each attempt is bounded so that a JetStream still electing its leaders is
// retried until ctx ends.
func openBucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	var last error
	for {
		c, cancel := context.WithTimeout(ctx, 2*time.Second)
		kv, err := js.KeyValue(c, cfg.Bucket)
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			kv, err = js.CreateKeyValue(c, cfg)
		}
		cancel()
		if err == nil {
			return kv, nil
		}
		if !errors.Is(err, jetstream.ErrBucketExists) {
			last = err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("cluster: open the key-value bucket %q (replicas %d): %w (last error: %v); check that JetStream is enabled and that enough servers are up for the replicas", cfg.Bucket, cfg.Replicas, ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
