package netstack

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// httpPair runs an http.Server on one stack and returns a client that
// dials through the other, over a Pipe.
func httpPair(t *testing.T, h http.Handler) (*http.Client, *http.Server, *Stack) {
	t.Helper()
	a, b := newPipePair(t)
	ln, err := b.Listen("tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	tr := &http.Transport{DialContext: a.DialContext, MaxIdleConnsPerHost: 100}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 5 * time.Minute}, srv, a
}

func TestHTTPKeepAliveAndConcurrency(t *testing.T) {
	checkGoroutines(t)
	var conns atomic.Int64
	hc, srv, _ := httpPair(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s", r.URL.Path)
	}))
	srv.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	get := func(path string) string {
		resp, err := hc.Get("http://198.18.0.2" + path)
		if err != nil {
			t.Error(err)
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	// Sequential requests reuse one connection.
	for i := range 10 {
		if got := get("/seq" + strconv.Itoa(i)); got != "/seq"+strconv.Itoa(i) {
			t.Fatalf("got %q", got)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("10 sequential requests used %d connections, want 1 (keep-alive)", n)
	}
	// 100 concurrent clients.
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 5 {
				p := fmt.Sprintf("/c%d/%d", i, j)
				if got := get(p); got != p {
					t.Errorf("got %q want %q", got, p)
				}
			}
		}()
	}
	wg.Wait()
	// Shutdown completes once idle connections close.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

func TestHTTPBulkUploadDownload(t *testing.T) {
	checkGoroutines(t)
	size := int64(256 << 20)
	if raceEnabled {
		size = 64 << 20
	}
	hc, _, _ := httpPair(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case "PUT":
			h := sha256.New()
			n, err := io.Copy(h, r.Body)
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
		case "GET":
			n, _ := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
			w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
			io.Copy(w, newStream(9, n))
		}
	}))
	want := sha256.New()
	io.Copy(want, newStream(9, size))
	wantSum := hex.EncodeToString(want.Sum(nil))

	req, _ := http.NewRequest("PUT", "http://198.18.0.2/up", newStream(9, size))
	req.ContentLength = size
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != fmt.Sprintf("%d %s", size, wantSum) {
		t.Fatalf("upload: server saw %q", body)
	}

	resp, err = hc.Get(fmt.Sprintf("http://198.18.0.2/down?n=%d", size))
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	resp.Body.Close()
	if err != nil || n != size || hex.EncodeToString(h.Sum(nil)) != wantSum {
		t.Fatalf("download: %d bytes, %v, hash match %v", n, err, hex.EncodeToString(h.Sum(nil)) == wantSum)
	}
}
