// Package wiretest is a packet-level conformance testbench in the manner of
// gVisor's packetimpact: a test sends hand-built frames to a device under
// test (DUT) and checks the frames it answers with, and every test runs
// against two DUTs, so that each expectation is first proved on Linux:
//
//   - "linux": the kernel. A veth pair joins two fresh namespaces; the
//     DUT's end has 198.18.N.2/24 and a permanent neighbour entry for the
//     testbench, the testbench's end no address. Socket calls go through
//     package net on a thread inside the DUT's namespace
//     (netnstest.NS.Run).
//   - "netstack": a netstack.Stack with 198.18.N.2/24 on a TAP device,
//     opened with offloads as netstack.OpenTAP does. The TAP's kernel end
//     is in a namespace with no address and IPv6 off; the testbench sits
//     on it.
//
// The testbench (Bench) is an AF_PACKET socket on its end of the link,
// using the testbench address 198.18.N.1 and MAC BenchMAC (not the
// interface's, so the kernel there drops what the DUT sends it, and it has
// no address to answer for anyway). It answers ARP for its address. It
// reads with PACKET_VNET_HDR: TCP super-segments the DUT hands its device
// (TSO on the TAP, GSO on the veth) are cut into MSS-sized segments and
// partial checksums completed, as a NIC would, so a test sees wire frames.
// WIRETEST_TRACE=1 prints every frame sent and read.
//
// # Writing a test
//
// A test is a function of a testing.TB and a *Harness, run by both (in the
// test files) once per DUT, the two in parallel:
//
//	func TestSomething(t *testing.T) {
//		both(t, func(t testing.TB, h *Harness) {
//			c, dc := h.Establish(t, 80) // handshake; dc is the DUT's net.Conn
//			c.Send(t, Seg{Flags: ACK | PSH, Payload: []byte("hi")})
//			c.Expect(t, "ACK of the data", AckAtLeast(c.SndNxt))
//			if got := ReadFull(t, dc, 2); string(got) != "hi" {
//				t.Fatalf("DUT read %q", got)
//			}
//		})
//	}
//
// Harness embeds the Bench (Addr, DUTAddr, DUTMAC, SendIP, Expect,
// ExpectBefore, ExpectNone) and holds the DUT (Listen, Dial, ListenUDP).
// A Conn is the testbench's end of one TCP connection: Send fills in what
// a Seg leaves zero from the connection's state (sequence and
// acknowledgment numbers, window, timestamps), and Expect waits for a
// segment of the connection matching a predicate, updating the state
// from every segment it reads. Frames are built with BuildIPv4, BuildTCP,
// BuildUDP, BuildEcho and the option encoders (MSSOpt, TSOpt, SACKOpt,
// ...), and decoded by ParseFrame.
//
// Waits are for events: Expect returns as soon as its frame arrives and
// fails after a generous timeout (Timeout, 5 s). To check that something
// does not happen, provoke it and then a sentinel that must happen (an
// echo reply, a RST) and use ExpectBefore: the link delivers in order, so
// the forbidden frame would have come first. ExpectNone, a fixed window, is
// for the rare case with no sentinel.
//
// Where netstack still differs from Linux, the test goes in
// knownNetstackFailures with its issue item: its netstack subtest runs and
// is skipped with the reason when it fails. Everything else must pass on
// both DUTs.
package wiretest
