# netstack: build, test and measure.
#
#   make test   install what the tests need (as root on Debian), then vet and
#               run every test under the race detector
#   make fuzz   run each fuzz target for FUZZTIME
#   make demo   the in-memory demo (no root needed)

GO       ?= go
FUZZTIME ?= 30s
# Debian packages the tests call: ip (iproute2), ping, tshark (pcap check),
# curl, dig, socat, nftables, wg (wireguard-tools: configures the wireguard-go
# program in the WireGuard drop-in's namespace test), radvd (router
# advertisements for the SLAAC test), dnsmasq-base (the DHCP server of the
# DHCP client's tests; the program only, without the system service), iperf3
# (TCP and UDP throughput through examples/tunnel).
TEST_DEBS = iproute2 iputils-ping tshark curl dnsutils socat nftables wireguard-tools radvd dnsmasq-base iperf3

.PHONY: test deps vet fuzz soak demo bench bench-all

test: deps vet
	$(GO) test -race -timeout 18m ./...
	# The bulk transfers (1 GiB each way) and the soak (20,000 cycles) again
	# at full size, without the race detector, which slows them tenfold.
	$(GO) test -count=1 -timeout 15m -run 'Bulk|Soak' -v .
	# The WireGuard drop-in is a module of its own (wireguard-go and, in its
	# tests, gVisor stay out of the core module): vet it, test it under the
	# race detector, then its bulk transfers at full size without it.
	cd wireguard && $(GO) vet ./... && $(GO) test -race -timeout 10m ./...
	cd wireguard && $(GO) test -count=1 -timeout 10m -run Bulk -v .

# deps installs the tools the privileged tests run, when it can (root with
# apt-get) and they are missing; elsewhere those tests skip with a reason.
deps:
	@missing=""; \
	for p in $(TEST_DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing:$$missing"; \
			echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
		else \
			echo "not root: missing$$missing; privileged tests will skip"; \
		fi; \
	fi
	$(GO) mod download
	cd wireguard && $(GO) mod download

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

fuzz:
	@for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "== $$pkg $$f"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

# soak churns connections for longer than make test does.
SOAK_CYCLES ?= 200000
soak:
	NETSTACK_SOAK_CYCLES=$(SOAK_CYCLES) $(GO) test -count=1 -timeout 60m -run Soak -v .

demo:
	$(GO) run ./examples/http

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# bench-all runs the whole-workload comparison with gVisor's netstack and the
# kernel (the bench/ module; root for the TAP workloads) and writes
# bench/RESULTS.md and bench/ratios.svg.
bench-all:
	command -v wrk >/dev/null || apt-get install -y -qq wrk
	cd bench && $(GO) run ./cmd/bench -runs 5 -out RESULTS.md
