package tcp

import "errors"

// State is one of the eleven connection states of RFC 9293 §3.3.2.
type State uint8

// The connection states.
const (
	Closed State = iota
	Listen
	SynSent
	SynReceived
	Established
	FinWait1
	FinWait2
	CloseWait
	Closing
	LastAck
	TimeWait
)

var stateNames = [...]string{
	"CLOSED", "LISTEN", "SYN-SENT", "SYN-RECEIVED", "ESTABLISHED", "FIN-WAIT-1",
	"FIN-WAIT-2", "CLOSE-WAIT", "CLOSING", "LAST-ACK", "TIME-WAIT",
}

// String returns the state's name as RFC 9293 spells it.
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "STATE?"
}

// synchronized reports whether the state is one in which both ISNs are known
// (RFC 9293 §3.5.2).
func (s State) synchronized() bool { return s >= Established }

// Event is a set of bits a connection raises for its shell; TakeEvents
// returns and clears them.
type Event uint8

// The event bits.
const (
	// EvEstablished: the handshake completed.
	EvEstablished Event = 1 << iota
	// EvReadable: data, end of stream or an error became available to Read.
	EvReadable
	// EvWritable: send-buffer space was freed (or writing became an error).
	EvWritable
	// EvError: the connection failed; Err reports why.
	EvError
	// EvClosed: the connection reached CLOSED for good (after TIME_WAIT, a
	// reset, a failure or a finished close); the shell may forget it.
	EvClosed
	// EvHeld: output stopped for the link (Config.LinkFull); the shell
	// calls Resume once the link has room.
	EvHeld
)

// Errors a connection reports through Err, Read and Write. The root package
// maps them to *net.OpError with the matching errno.
var (
	// ErrRefused: our SYN was answered by a RST (ECONNREFUSED).
	ErrRefused = errors.New("tcp: connection refused")
	// ErrReset: the peer reset the connection (ECONNRESET).
	ErrReset = errors.New("tcp: connection reset by peer")
	// ErrTimedOut: retransmissions, SYN retries or keepalive probes went
	// unanswered (ETIMEDOUT).
	ErrTimedOut = errors.New("tcp: connection timed out")
	// ErrClosed: the local side closed or aborted the connection, or shut
	// down the direction in question.
	ErrClosed = errors.New("tcp: use of closed connection")
	// ErrAborted: the stack ended the connection under its user, as when
	// its local address was removed (ECONNABORTED, as Linux's tcp_abort).
	ErrAborted = errors.New("tcp: connection aborted")
)
