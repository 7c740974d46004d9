package ip

import (
	"net/netip"
	"time"

	"github.com/gotcpip/netstack/internal/stats"
)

func (h *Host) inputARP(now time.Time, frame []byte) {
	stats.Inc(&h.st.ARP.Received)
	p := ARPPacket(frame[EthernetHeaderLen:])
	if !p.Valid() {
		stats.Inc(&h.st.ARP.DropMalformed)
		return
	}
	sender := p.SenderIP()
	smac := p.SenderMAC()
	if smac.IsMulticast() || !sender.IsValid() {
		stats.Inc(&h.st.ARP.DropMalformed)
		return
	}
	target := p.TargetIP()
	if w := h.arpWatch.Load(); w != 0 && smac != h.cfg.MAC {
		// RFC 5227 §2.1.1: while we probe an address, another host's ARP
		// from it, or its probe for it, shows it in use.
		a := netip.AddrFrom4([4]byte{byte(w >> 24), byte(w >> 16), byte(w >> 8), byte(w)})
		if sender == a || sender.IsUnspecified() && target == a && p.Op() == ARPOpRequest {
			stats.Inc(&h.st.ARP.Conflicts)
			if h.h.ARPConflict != nil {
				h.h.ARPConflict(a)
			}
		}
	}
	forUs := target.Is4() && h.HasAddr(target)
	if p.Op() == ARPOpRequest {
		stats.Inc(&h.st.ARP.RequestsIn)
	} else {
		stats.Inc(&h.st.ARP.RepliesIn)
	}
	// RFC 826 "packet reception": update a known sender; add it when the
	// packet is addressed to us. A gratuitous ARP (sender == target) updates
	// only. Addresses off our subnet are never learned.
	var flush [][]byte
	if !h.HasAddr(sender) && !sender.IsUnspecified() && h.onLink4(sender) {
		flush = h.neigh.learn(sender, smac, now, forUs)
	}
	h.flush(sender, smac, flush)
	if !forUs {
		if p.Op() == ARPOpRequest {
			stats.Inc(&h.st.ARP.DropNotForUs)
		}
		return
	}
	if p.Op() == ARPOpRequest {
		// Answer in place: swap the roles and send back to the asker.
		ARPPacket(frame[EthernetHeaderLen:]).Encode(ARPOpReply, h.cfg.MAC, target, smac, sender)
		EthernetHeader(frame).Encode(smac, h.cfg.MAC, EtherTypeARP)
		stats.Inc(&h.st.ARP.RepliesOut)
		h.writeFrame(frame[:EthernetHeaderLen+ARPLen])
	}
}

// minFrame is the shortest Ethernet frame without its FCS; ARP packets are
// padded to it as a real NIC would.
const minFrame = 60

func (h *Host) sendARPRequest(target netip.Addr, mac MAC, unicast bool) {
	var f [minFrame]byte
	dst := BroadcastMAC
	if unicast {
		dst = mac
	}
	EthernetHeader(f[:]).Encode(dst, h.cfg.MAC, EtherTypeARP)
	from, ok := h.SourceAddr(target)
	if !ok {
		return
	}
	ARPPacket(f[EthernetHeaderLen:]).Encode(ARPOpRequest, h.cfg.MAC, from, MAC{}, target)
	stats.Inc(&h.st.ARP.RequestsOut)
	h.writeFrame(f[:])
}

// Announce sends a gratuitous ARP request for each of our IPv4 addresses
// (RFC 5227 §3), so neighbours update their caches when a stack starts.
func (h *Host) Announce() {
	for _, p := range h.v4.Load().prefixes {
		h.announce(p.Addr())
	}
}

// announce sends a gratuitous ARP request for a.
func (h *Host) announce(a netip.Addr) {
	if !h.cfg.Ethernet {
		return
	}
	var f [minFrame]byte
	EthernetHeader(f[:]).Encode(BroadcastMAC, h.cfg.MAC, EtherTypeARP)
	ARPPacket(f[EthernetHeaderLen:]).Encode(ARPOpRequest, h.cfg.MAC, a, MAC{}, a)
	stats.Inc(&h.st.ARP.Gratuitous)
	h.writeFrame(f[:])
}

// Probe sends an ARP probe for a (RFC 5227 §2.1.1): a request for it from
// the unspecified address, which no neighbour learns from, and watches for
// a conflict: until Unwatch, an ARP packet from another host whose sender
// is a, or a probe of its for a, is counted and reported to
// Handlers.ARPConflict.
func (h *Host) Probe(a netip.Addr) {
	if !h.cfg.Ethernet || !a.Is4() {
		return
	}
	b := a.As4()
	h.arpWatch.Store(uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]))
	var f [minFrame]byte
	EthernetHeader(f[:]).Encode(BroadcastMAC, h.cfg.MAC, EtherTypeARP)
	ARPPacket(f[EthernetHeaderLen:]).Encode(ARPOpRequest, h.cfg.MAC, netip.IPv4Unspecified(), MAC{}, a)
	stats.Inc(&h.st.ARP.Probes)
	h.writeFrame(f[:])
}

// Unwatch ends the conflict watch of Probe.
func (h *Host) Unwatch() { h.arpWatch.Store(0) }

// Resolve starts resolving the on-link neighbour addr, unless the cache
// has it, so that a later packet to it need not wait (a DHCP client
// resolves its server, which its RELEASE goes to when the stack closes).
func (h *Host) Resolve(now time.Time, addr netip.Addr) {
	if h.cfg.Ethernet && h.neigh.probe(addr, now) {
		h.solicit(now, addr, MAC{}, false)
		h.wake()
	}
}
