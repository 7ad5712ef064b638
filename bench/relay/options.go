package relay

import "github.com/stateroom-go/stateroom/server"

// Unlimited turns off the server limits a load test would trip: one
// loopback address sending as fast as it can is exactly what MessageRate,
// MaxConnectionsPerIP, MaxRoomsCreatedPerIP and the others refuse, and the
// baseline it is compared with has no limits. bench/relayserver (without --limits) and the load
// tool's tests serve with it.
func Unlimited(opts server.Options) server.Options {
	opts.MessageRate = server.NoLimit
	opts.MaxConnections = server.NoLimit
	opts.MaxConnectionsPerIP = server.NoLimit
	opts.MaxRooms = server.NoLimit
	opts.MaxClientsPerRoom = server.NoLimit
	opts.MaxRoomsCreatedPerIP = server.NoLimit
	return opts
}
