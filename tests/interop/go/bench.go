// Benchmark dial actions for bench/run (see tests/interop/README.md,
// "Benchmark actions"): perfn, rtt, handshakes.
package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
)

func msSince(t time.Time) float64 { return float64(time.Since(t).Microseconds()) / 1000 }

// perfOnce runs one /perf/1.0.0 client stream on the existing connection.
func perfOnce(ctx context.Context, h host.Host, p peer.ID, up, down uint64) error {
	s, err := h.NewStream(ctx, p, protoPerf)
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	var hdr [8]byte
	binary.BigEndian.PutUint64(hdr[:], down)
	if _, err := s.Write(hdr[:]); err != nil {
		s.Reset()
		return err
	}
	if err := writeZeros(s, up); err != nil {
		s.Reset()
		return err
	}
	if err := s.CloseWrite(); err != nil {
		s.Reset()
		return err
	}
	got, err := io.Copy(io.Discard, s)
	if err != nil {
		s.Reset()
		return err
	}
	s.Close()
	if uint64(got) != down {
		return fmt.Errorf("downloaded %d bytes, want %d", got, down)
	}
	return nil
}

// benchClient is a dial-only host like newHost's (same transports and limits).
func benchClient() host.Host {
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(rcmgr.InfiniteLimits))
	if err != nil {
		fail("resource manager: %v", err)
	}
	h, err := libp2p.New(
		libp2p.Identity(identity("")),
		libp2p.NoListenAddrs,
		libp2p.NoTransports,
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionManager(&connmgr.NullConnMgr{}),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
		libp2p.UserAgent(userAgent()),
	)
	if err != nil {
		fail("host: %v", err)
	}
	return h
}

func runBenchAction(ctx context.Context, h host.Host, ai peer.AddrInfo, action string, args []string) bool {
	switch action {
	case "perfn":
		n := intArg(args, 0, -1, "streams")
		up := uint64(intArg(args, 1, -1, "upload bytes"))
		down := uint64(intArg(args, 2, -1, "download bytes"))
		t0 := time.Now()
		errs := make(chan error, n)
		for i := int64(0); i < n; i++ {
			go func() { errs <- perfOnce(ctx, h, ai.ID, up, down) }()
		}
		for i := int64(0); i < n; i++ {
			if err := <-errs; err != nil {
				fail("perfn: %v", err)
			}
		}
		emit("perfn", "streams", n, "uploadBytes", up*uint64(n), "downloadBytes", down*uint64(n), "ms", msSince(t0))

	case "rtt":
		iters := intArg(args, 0, -1, "iterations")
		out := make([]float64, 0, iters)
		for i := int64(0); i < iters; i++ {
			h.Network().ClosePeer(ai.ID)    // a fresh connection every time, to the given address
			h.Peerstore().ClearAddrs(ai.ID) // (not one identify taught us)
			h.Peerstore().AddAddrs(ai.ID, ai.Addrs, time.Hour)
			t0 := time.Now()
			if err := h.Connect(ctx, ai); err != nil {
				fail("rtt: connect: %v", err)
			}
			s, err := h.NewStream(ctx, ai.ID, protoEcho)
			if err != nil {
				fail("rtt: open: %v", err)
			}
			b := []byte{42}
			if _, err := s.Write(b); err != nil {
				fail("rtt: write: %v", err)
			}
			if _, err := io.ReadFull(s, b); err != nil || b[0] != 42 {
				fail("rtt: read: %v", err)
			}
			out = append(out, msSince(t0))
			s.Close()
		}
		emit("rtt", "ms", out)

	case "handshakes":
		if len(args) < 1 {
			fail("missing argument: seconds")
		}
		secs, err := strconv.ParseFloat(args[0], 64)
		if err != nil || !(secs > 0) {
			fail("bad seconds: %q", args[0])
		}
		par := intArg(args, 1, 1, "parallel")
		h.Network().ClosePeer(ai.ID)
		clients := make([]host.Host, par)
		for i := range clients {
			clients[i] = benchClient()
		}
		var done, failed atomic.Int64
		end := time.Now().Add(time.Duration(secs * float64(time.Second)))
		t0 := time.Now()
		var wg sync.WaitGroup
		for _, c := range clients {
			wg.Add(1)
			go func(c host.Host) {
				defer wg.Done()
				for time.Now().Before(end) {
					dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
					err := c.Connect(dctx, ai)
					cancel()
					if err != nil {
						if failed.Add(1) > 100 {
							return
						}
						if sw, ok := c.Network().(*swarm.Swarm); ok {
							sw.Backoff().Clear(ai.ID)
						}
						continue
					}
					done.Add(1)
					c.Network().ClosePeer(ai.ID)
				}
			}(c)
		}
		wg.Wait()
		ms := msSince(t0)
		if failed.Load() > 100 {
			fail("handshakes: too many failed dials")
		}
		emit("handshakes", "count", done.Load(), "failed", failed.Load(), "parallel", par, "ms", ms,
			"perSec", float64(done.Load())/(ms/1000))

	default:
		return false
	}
	return true
}
