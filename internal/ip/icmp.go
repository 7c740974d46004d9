package ip

import (
	"encoding/binary"
	"syscall"
)

// RFC 792 ICMP types and codes used here.
const (
	ICMPHeaderLen = 8

	ICMPEchoReply      = 0
	ICMPDestUnreach    = 3
	ICMPSourceQuench   = 4
	ICMPRedirect       = 5
	ICMPEchoRequest    = 8
	ICMPTimeExceeded   = 11
	ICMPParamProblem   = 12
	ICMPTimestamp      = 13
	ICMPTimestampReply = 14

	CodeNetUnreach       = 0
	CodeHostUnreach      = 1
	CodeProtoUnreach     = 2
	CodePortUnreach      = 3
	CodeFragNeeded       = 4
	CodeSourceRouteFail  = 5
	CodeNetUnknown       = 6
	CodeHostUnknown      = 7
	CodeHostIsolated     = 8
	CodeNetProhibited    = 9
	CodeHostProhibited   = 10
	CodeNetTOSUnreach    = 11
	CodeHostTOSUnreach   = 12
	CodeAdminProhibited  = 13
	CodeHostPrecViolated = 14
	CodePrecCutoff       = 15
)

// ICMPHeader is a view of an ICMP message; callers check ICMPHeaderLen.
type ICMPHeader []byte

// Type returns the message type.
func (m ICMPHeader) Type() uint8 { return m[0] }

// Code returns the message code.
func (m ICMPHeader) Code() uint8 { return m[1] }

// ID returns the echo identifier.
func (m ICMPHeader) ID() uint16 { return binary.BigEndian.Uint16(m[4:6]) }

// Seq returns the echo sequence number.
func (m ICMPHeader) Seq() uint16 { return binary.BigEndian.Uint16(m[6:8]) }

// NextHopMTU returns the MTU of a fragmentation-needed message (RFC 1191).
func (m ICMPHeader) NextHopMTU() uint16 { return binary.BigEndian.Uint16(m[6:8]) }

// unreachErrno maps a destination-unreachable code to the errno Linux
// reports to the socket (net/ipv4/icmp.c, icmp_err_convert).
func unreachErrno(code uint8) syscall.Errno {
	switch code {
	case CodeNetUnreach, CodeNetUnknown, CodeNetProhibited, CodeNetTOSUnreach:
		return syscall.ENETUNREACH
	case CodeProtoUnreach:
		return syscall.ENOPROTOOPT
	case CodePortUnreach:
		return syscall.ECONNREFUSED
	case CodeFragNeeded:
		return syscall.EMSGSIZE
	case CodeSourceRouteFail:
		return syscall.EOPNOTSUPP
	case CodeHostUnknown:
		return syscall.EHOSTDOWN
	case CodeHostIsolated:
		return errNoNet
	default:
		return syscall.EHOSTUNREACH
	}
}
