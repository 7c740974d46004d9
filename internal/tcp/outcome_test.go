package tcp

import "testing"

// TestListenerOutcome: Listener.Input reports what it did with each kind
// of segment, so the shell counts without comparing counters.
func TestListenerOutcome(t *testing.T) {
	tt := newListening(t, nil, 1)
	check := func(spec string, port uint16, want Outcome, wantConn bool) {
		t.Helper()
		c := tt.lin(0, spec, port)
		if got := tt.l.LastOutcome(); got != want || (c != nil) != wantConn {
			t.Fatalf("%q: outcome %d, conn %v; want %d, conn %v", spec, got, c != nil, want, wantConn)
		}
	}
	check("ACK seq=1 ack=1", 2000, Reset, false) // no cookie ever sent
	tt.want(0, "RST seq=1")
	check("RST seq=1", 2001, Ignored, false)
	check("SYN|FIN seq=7000", 2002, DropSynFin, false)
	check("SYN seq=9000", 2003, HalfOpened, true)
	tt.want(0, "SYN|ACK seq=1000 ack=9001")
	check("SYN seq=5000 mss=1400", 2004, CookieSent, false) // the half-open slot is taken
	tt.want(0, "SYN|ACK ack=5001")
	check("ACK seq=5001 ack=77", 2004, CookieRejected, false)
	tt.want(0, "RST seq=77")
}
