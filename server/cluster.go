package server

import (
	"encoding/json"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/internal/rooms"
	"github.com/stateroom-go/stateroom/store"
)

// Cluster is what a server needs of a cluster it belongs to (Options.Cluster).
// Package cluster's *Node implements it; its methods name the server's
// internal room runtime, so no other package can.
type Cluster interface {
	// Bind makes local, this server's room runtime, serve the rooms the
	// node owns, and returns the placement clients join rooms through;
	// closeAll closes every local room (the node calls it when it must
	// stop serving).
	Bind(local rooms.Placement, closeAll func(code stateroom.CloseCode, reason string) int) (rooms.Placement, error)
	// StateStore is the cluster's replicated store of room state.
	StateStore() store.Store
	// ClusterStatus says whether the node is in the cluster, for /status:
	// a JSON-encodable description.
	ClusterStatus() (inCluster bool, status any)
	// Collectors are the cluster's metrics, registered with the server's.
	Collectors() []prometheus.Collector
}

// roomStore is where rooms are saved: Options.Store, else the cluster's.
func roomStore(o Options) store.Store {
	if o.Store == nil && o.Cluster != nil {
		return o.Cluster.StateStore()
	}
	return o.Store
}

// serveStatus answers "ok", or with a cluster, the node's status as JSON
// (503 when the node is not in the cluster, so a load balancer's health
// check moves clients to a node that is).
func (s *Server) serveStatus(w http.ResponseWriter, _ *http.Request) {
	if s.opts.Cluster == nil {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok"))
		return
	}
	in, st := s.opts.Cluster.ClusterStatus()
	w.Header().Set("Content-Type", "application/json")
	if !in {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	json.NewEncoder(w).Encode(st)
}
