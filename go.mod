module github.com/gotcpip/netstack

go 1.26.0

require (
	github.com/miekg/dns v1.1.73
	github.com/songgao/water v0.0.0-20200317203138-2b4b6d7c09d8
	golang.org/x/net v0.62.0
	golang.org/x/sys v0.49.0
)
