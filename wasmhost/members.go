package wasmhost

import (
	"github.com/tetratelabs/wazero/api"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/internal/abi"
)

// The members extension (internal/abi/ABI.md, "Extension: members"): a
// hibernated room wakes on a fresh instance while its clients stay
// connected, and the runtime names them in InitEvent.Clients. A guest that
// exports stateroom_member hears of each, one call per client, before its
// Init; a guest without the export (every upstream module) gets Init alone,
// as before, and learns of a kept client from its next message.

// members tells the guest of the clients already in the room as this
// instance starts, before its Init, and counts them among the clients it
// knows of (which a raw snapshot carries). A trap or a send during the
// call faults the instance, as in an event.
func (s *service) members(ids []stateroom.ClientID) {
	if len(ids) == 0 || s.closed {
		return
	}
	if s.clients == nil {
		s.clients = make(map[stateroom.ClientID]struct{}, len(ids))
	}
	for _, id := range ids {
		s.clients[id] = struct{}{}
	}
	if !s.module.memberExport {
		return
	}
	if s.broken != nil {
		s.fault(s.broken)
	}
	for _, id := range ids {
		if err := s.member(id); err != nil {
			s.fault(err)
		}
	}
}

// member calls stateroom_member for one client, under the event budget.
func (s *service) member(id stateroom.ClientID) error {
	ctx := s.beginCall()
	defer s.endCall()
	s.stack[0] = api.EncodeU32(uint32(id))
	if err := s.exported(&s.memberFn, abi.ExportMember).CallWithStack(ctx, s.stack[:]); err != nil {
		return s.callError(ctx, abi.ExportMember, err)
	}
	return nil
}
