// peer-go: go-libp2p reference peer for the libp2p.h interop tests.
//
// The command-line contract is shared with tests/interop/rust and
// tests/interop/js; see tests/interop/README.md.
package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
)

const (
	protoEcho   = protocol.ID("/echo/1.0.0")
	protoReset  = protocol.ID("/test/reset/1.0.0")
	protoSource = protocol.ID("/test/source/1.0.0")
	protoPerf   = protocol.ID("/perf/1.0.0")
)

// ---------------------------------------------------------------- output

var outMu sync.Mutex

// emit writes one JSON object per line to stdout ("event" first).
func emit(ev string, kv ...any) {
	var b strings.Builder
	b.WriteString(`{"event":`)
	s, _ := json.Marshal(ev)
	b.Write(s)
	for i := 0; i+1 < len(kv); i += 2 {
		k, _ := json.Marshal(kv[i])
		v, err := json.Marshal(kv[i+1])
		if err != nil {
			v = []byte(`null`)
		}
		b.WriteByte(',')
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteString("}\n")
	outMu.Lock()
	os.Stdout.WriteString(b.String())
	outMu.Unlock()
}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "peer-go: "+format+"\n", a...)
}

func fail(format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	emit("error", "message", msg)
	logf("error: %s", msg)
	os.Exit(1)
}

// ---------------------------------------------------------------- args

type options struct {
	seed      string
	listen    string
	timeout   float64
	stdinExit bool
	pos       []string
}

func usage() {
	fmt.Fprintln(os.Stderr, `usage: peer-go listen [flags]
       peer-go dial <multiaddr/p2p/ID> <action> [args] [flags]
       peer-go pubsub [key=value ...] [flags]   (commands on stdin, see README)
       peer-go transport-interop   (test-plans ping test, configured by environment)
       peer-go dht <server|client> <protocol-prefix> [flags]   (commands on stdin)
actions: identify | ping <n> | echo <bytes> [streams] | reset-mid | close-mid |
         perf <upload> <download> | hold <seconds>
flags: --seed <64 hex> --listen <multiaddr> --timeout <seconds> --stdin-exit`)
	os.Exit(2)
}

func parseArgs(args []string) options {
	o := options{listen: "/ip4/127.0.0.1/tcp/0", timeout: 60}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "--") {
			o.pos = append(o.pos, a)
			continue
		}
		name, val, hasVal := strings.Cut(a[2:], "=")
		needVal := func() string {
			if hasVal {
				return val
			}
			if i+1 >= len(args) {
				fmt.Fprintf(os.Stderr, "missing value for --%s\n", name)
				usage()
			}
			i++
			return args[i]
		}
		switch name {
		case "seed":
			o.seed = needVal()
		case "listen":
			o.listen = needVal()
		case "timeout":
			t, err := strconv.ParseFloat(needVal(), 64)
			if err != nil || t <= 0 {
				fmt.Fprintln(os.Stderr, "bad --timeout")
				usage()
			}
			o.timeout = t
		case "stdin-exit":
			o.stdinExit = true
		case "help":
			usage()
		default:
			fmt.Fprintf(os.Stderr, "unknown flag --%s\n", name)
			usage()
		}
	}
	return o
}

func intArg(pos []string, i int, def int64, what string) int64 {
	if i >= len(pos) {
		if def < 0 {
			fail("missing argument: %s", what)
		}
		return def
	}
	v, err := strconv.ParseInt(pos[i], 10, 64)
	if err != nil || v < 0 {
		fail("bad %s: %q", what, pos[i])
	}
	return v
}

// ---------------------------------------------------------------- host

func identity(seedHex string) crypto.PrivKey {
	var seed []byte
	if seedHex == "" {
		seed = make([]byte, 32)
		if _, err := rand.Read(seed); err != nil {
			fail("random: %v", err)
		}
	} else {
		var err error
		seed, err = hex.DecodeString(seedHex)
		if err != nil || len(seed) != 32 {
			fail("--seed must be 64 hex characters")
		}
	}
	sk, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(seed))
	if err != nil {
		fail("key: %v", err)
	}
	return sk
}

func newHost(o options, mode string) host.Host {
	// Stock go-yamux resets inbound streams beyond 256 not yet accepted
	// (AcceptBacklog). A spec-following opener never has more than 256
	// unacknowledged streams, but js opens bursts of 1000, so a listener
	// raises it. The same setting also caps our own unacknowledged outbound
	// streams, so a dialer keeps the stock 256.
	mux := yamux.DefaultTransport
	if mode == "listen" {
		cfg := *yamux.DefaultTransport
		cfg.AcceptBacklog = 4096
		mux = &cfg
	}
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(rcmgr.InfiniteLimits))
	if err != nil {
		fail("resource manager: %v", err)
	}
	h, err := libp2p.New(
		libp2p.Identity(identity(o.seed)),
		libp2p.ListenAddrStrings(o.listen),
		libp2p.NoTransports,
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, mux),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionManager(&connmgr.NullConnMgr{}),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
		libp2p.Ping(true),
		libp2p.UserAgent(userAgent()),
	)
	if err != nil {
		fail("host: %v", err)
	}
	h.SetStreamHandler(protoEcho, handleEcho)
	h.SetStreamHandler(protoReset, handleReset)
	h.SetStreamHandler(protoSource, handleSource)
	h.SetStreamHandler(protoPerf, handlePerf)
	return h
}

// userAgent is "go-libp2p/<module version>". go-libp2p's own default is
// "<main module path>@<main module version>", which for this program is the
// meaningless "libp2p.h/interop/peer-go@" (or a VCS stamp of the checkout).
func userAgent() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/libp2p/go-libp2p" {
				return "go-libp2p/" + d.Version
			}
		}
	}
	return "go-libp2p"
}

func addrStrings(as []ma.Multiaddr) []string {
	out := make([]string, 0, len(as))
	for _, a := range as {
		out = append(out, a.String())
	}
	return out
}

func protoStrings(ps []protocol.ID) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, string(p))
	}
	return out
}

func emitIdentify(e event.EvtPeerIdentificationCompleted) {
	obs := ""
	if e.ObservedAddr != nil {
		obs = e.ObservedAddr.String()
	}
	emit("identify",
		"peerId", e.Peer.String(),
		"agentVersion", e.AgentVersion,
		"protocolVersion", e.ProtocolVersion,
		"protocols", protoStrings(e.Protocols),
		"listenAddrs", addrStrings(e.ListenAddrs),
		"observedAddr", obs)
}

// ---------------------------------------------------------------- handlers

func handleEcho(s network.Stream) {
	buf := make([]byte, 64*1024)
	for {
		n, err := s.Read(buf)
		if n > 0 {
			if _, werr := s.Write(buf[:n]); werr != nil {
				s.Reset()
				return
			}
		}
		if err == io.EOF {
			s.Close()
			return
		}
		if err != nil {
			s.Reset()
			return
		}
	}
}

func handleReset(s network.Stream) {
	buf := make([]byte, 1024)
	_, _ = io.ReadFull(s, buf) // 1024 bytes, EOF or error: reset in any case
	s.Reset()
}

func handleSource(s network.Stream) {
	var hdr [8]byte
	if _, err := io.ReadFull(s, hdr[:]); err != nil {
		s.Reset()
		return
	}
	n := binary.BigEndian.Uint64(hdr[:])
	if err := writePattern(s, n); err != nil {
		s.Reset()
		return
	}
	s.CloseWrite()
	// Wait (bounded) for the remote to finish, then release the stream.
	s.SetReadDeadline(time.Now().Add(30 * time.Second))
	io.Copy(io.Discard, s)
	s.Close()
}

func writePattern(w io.Writer, n uint64) error {
	const chunk = 251 * 256 // a multiple of 251 keeps the pattern aligned
	buf := make([]byte, chunk)
	for i := range buf {
		buf[i] = byte(i % 251)
	}
	for n > 0 {
		m := uint64(chunk)
		if n < m {
			m = n
		}
		if _, err := w.Write(buf[:m]); err != nil {
			return err
		}
		n -= m
	}
	return nil
}

func handlePerf(s network.Stream) {
	var hdr [8]byte
	if _, err := io.ReadFull(s, hdr[:]); err != nil {
		s.Reset()
		return
	}
	n := binary.BigEndian.Uint64(hdr[:])
	if _, err := io.Copy(io.Discard, s); err != nil {
		s.Reset()
		return
	}
	if err := writeZeros(s, n); err != nil {
		s.Reset()
		return
	}
	s.Close()
}

func writeZeros(w io.Writer, n uint64) error {
	buf := make([]byte, 64*1024)
	for n > 0 {
		m := uint64(len(buf))
		if n < m {
			m = n
		}
		if _, err := w.Write(buf[:m]); err != nil {
			return err
		}
		n -= m
	}
	return nil
}

// ---------------------------------------------------------------- dial actions

func echoOnce(ctx context.Context, h host.Host, p peer.ID, size int, idx int) error {
	s, err := h.NewStream(ctx, p, protoEcho)
	if err != nil {
		return fmt.Errorf("stream %d: open: %w", idx, err)
	}
	data := make([]byte, size)
	for i := range data {
		data[i] = byte((i*7 + idx) % 256)
	}
	werr := make(chan error, 1)
	go func() {
		if _, err := s.Write(data); err != nil {
			werr <- err
			return
		}
		werr <- s.CloseWrite()
	}()
	got, rerr := io.ReadAll(s)
	if err := <-werr; err != nil {
		s.Reset()
		return fmt.Errorf("stream %d: write: %w", idx, err)
	}
	if rerr != nil {
		s.Reset()
		return fmt.Errorf("stream %d: read: %w (after %d bytes)", idx, rerr, len(got))
	}
	s.Close()
	if len(got) != size {
		return fmt.Errorf("stream %d: got %d bytes, want %d", idx, len(got), size)
	}
	for i := range got {
		if got[i] != data[i] {
			return fmt.Errorf("stream %d: byte %d differs", idx, i)
		}
	}
	return nil
}

func runDial(ctx context.Context, h host.Host, o options) {
	if len(o.pos) < 3 {
		usage()
	}
	target, err := ma.NewMultiaddr(o.pos[1])
	if err != nil {
		fail("bad multiaddr: %v", err)
	}
	ai, err := peer.AddrInfoFromP2pAddr(target)
	if err != nil {
		fail("multiaddr needs /p2p/<id>: %v", err)
	}
	action := o.pos[2]
	args := o.pos[3:]

	idSub, err := h.EventBus().Subscribe(new(event.EvtPeerIdentificationCompleted))
	if err != nil {
		fail("subscribe: %v", err)
	}
	identified := make(chan event.EvtPeerIdentificationCompleted, 16)
	go func() {
		for e := range idSub.Out() {
			ev := e.(event.EvtPeerIdentificationCompleted)
			if ev.Peer == ai.ID {
				select {
				case identified <- ev:
				default:
				}
			} else {
				emitIdentify(ev)
			}
		}
	}()

	start := time.Now()
	connectedAt := make(chan time.Duration, 1)
	h.Network().Notify(&network.NotifyBundle{
		ConnectedF: func(_ network.Network, c network.Conn) {
			if c.RemotePeer() == ai.ID {
				select {
				case connectedAt <- time.Since(start):
				default:
				}
			}
		},
	})

	h.Peerstore().AddAddrs(ai.ID, ai.Addrs, time.Hour)
	if _, err := h.Network().DialPeer(ctx, ai.ID); err != nil {
		fail("dial: %v", err)
	}
	var connMs float64
	select {
	case d := <-connectedAt:
		connMs = float64(d.Microseconds()) / 1000
	default:
		connMs = float64(time.Since(start).Microseconds()) / 1000
	}
	emit("connected", "peerId", ai.ID.String(), "ms", connMs)

	switch action {
	case "identify":
		select {
		case ev := <-identified:
			emitIdentify(ev)
		case <-ctx.Done():
			fail("identify did not complete")
		}
		emit("self", "peerId", h.ID().String())

	case "ping":
		n := intArg(args, 0, 1, "ping count")
		pctx, cancel := context.WithCancel(ctx)
		res := ping.Ping(pctx, h, ai.ID)
		for i := int64(0); i < n; i++ {
			r, ok := <-res
			if !ok {
				cancel()
				fail("ping: result channel closed")
			}
			if r.Error != nil {
				cancel()
				fail("ping: %v", r.Error)
			}
			emit("ping", "rttMs", float64(r.RTT.Microseconds())/1000)
		}
		cancel()

	case "echo":
		size := intArg(args, 0, -1, "echo bytes")
		streams := intArg(args, 1, 1, "echo streams")
		if streams < 1 {
			streams = 1
		}
		t0 := time.Now()
		errs := make(chan error, streams)
		for i := int64(0); i < streams; i++ {
			go func(idx int) { errs <- echoOnce(ctx, h, ai.ID, int(size), idx) }(int(i))
		}
		var firstErr error
		for i := int64(0); i < streams; i++ {
			if err := <-errs; err != nil && firstErr == nil {
				firstErr = err
			}
		}
		if firstErr != nil {
			fail("echo: %v", firstErr)
		}
		emit("echo", "ok", true, "streams", streams, "bytes", size,
			"ms", float64(time.Since(t0).Microseconds())/1000)

	case "reset-mid", "close-mid":
		s, err := h.NewStream(ctx, ai.ID, protoEcho)
		if err != nil {
			fail("%s: open: %v", action, err)
		}
		data := make([]byte, 100000)
		for i := range data {
			data[i] = byte(i * 7 % 256)
		}
		if action == "reset-mid" {
			werr := make(chan error, 1)
			go func() { _, err := s.Write(data); werr <- err }()
			one := make([]byte, 1)
			if _, err := io.ReadFull(s, one); err != nil {
				fail("reset-mid: read: %v", err)
			}
			s.Reset()
			<-werr // the writer returns once the stream is reset
		} else {
			if _, err := s.Write(data); err != nil {
				fail("close-mid: write: %v", err)
			}
			if err := s.Close(); err != nil {
				fail("close-mid: close: %v", err)
			}
		}
		if err := echoOnce(ctx, h, ai.ID, 10, 0); err != nil {
			fail("%s: follow-up echo: %v", action, err)
		}
		emit(action, "ok", true)

	case "perf":
		up := intArg(args, 0, -1, "upload bytes")
		down := intArg(args, 1, -1, "download bytes")
		t0 := time.Now()
		s, err := h.NewStream(ctx, ai.ID, protoPerf)
		if err != nil {
			fail("perf: open: %v", err)
		}
		var hdr [8]byte
		binary.BigEndian.PutUint64(hdr[:], uint64(down))
		if _, err := s.Write(hdr[:]); err != nil {
			fail("perf: write: %v", err)
		}
		if err := writeZeros(s, uint64(up)); err != nil {
			fail("perf: upload: %v", err)
		}
		if err := s.CloseWrite(); err != nil {
			fail("perf: close write: %v", err)
		}
		got, err := io.Copy(io.Discard, s)
		if err != nil {
			fail("perf: download: %v (after %d bytes)", err, got)
		}
		s.Close()
		if got != down {
			fail("perf: downloaded %d bytes, want %d", got, down)
		}
		emit("perf", "uploadBytes", up, "downloadBytes", got,
			"ms", float64(time.Since(t0).Microseconds())/1000)

	case "hold":
		secs, err := strconv.ParseFloat(firstOr(args, "-"), 64)
		if err != nil || secs < 0 {
			fail("hold: bad seconds")
		}
		select {
		case <-time.After(time.Duration(secs * float64(time.Second))):
		case <-ctx.Done():
		}
		if h.Network().Connectedness(ai.ID) != network.Connected {
			fail("hold: connection to %s was lost", ai.ID)
		}
		emit("hold", "ok", true, "seconds", secs)

	default:
		if !runBenchAction(ctx, h, *ai, action, args) { // bench.go
			fail("unknown action %q", action)
		}
	}
}

func firstOr(a []string, def string) string {
	if len(a) > 0 {
		return a[0]
	}
	return def
}

// ---------------------------------------------------------------- main

func main() {
	if len(os.Args) == 2 && os.Args[1] == "transport-interop" {
		runTransportInterop() // environment-driven; see transport_interop.go
		return
	}
	if len(os.Args) < 2 {
		usage()
	}
	if os.Args[1] == "nat" { // relay / DCUtR roles: nat.go
		natMain(os.Args[2:])
		return
	}
	o := parseArgs(os.Args[1:])
	if len(o.pos) < 1 {
		usage()
	}
	mode := o.pos[0]
	if mode != "listen" && mode != "dial" && mode != "pubsub" && mode != "dht" {
		usage()
	}

	time.AfterFunc(time.Duration(o.timeout*float64(time.Second)), func() {
		logf("timeout after %gs", o.timeout)
		os.Exit(3)
	})
	if o.stdinExit {
		go func() {
			io.Copy(io.Discard, os.Stdin)
			logf("stdin closed, exiting")
			os.Exit(0)
		}()
	}

	if mode == "pubsub" { // pubsub.go
		runPubsub(o)
	}
	if mode == "dht" {
		runDHT(o) // dht.go
	}
	h := newHost(o, mode)
	h.Network().Notify(&network.NotifyBundle{
		ConnectedF: func(_ network.Network, c network.Conn) {
			if mode == "listen" {
				emit("connected", "peerId", c.RemotePeer().String())
			}
		},
		DisconnectedF: func(_ network.Network, c network.Conn) {
			emit("disconnected", "peerId", c.RemotePeer().String())
		},
	})

	if mode == "listen" {
		sub, err := h.EventBus().Subscribe(new(event.EvtPeerIdentificationCompleted))
		if err != nil {
			fail("subscribe: %v", err)
		}
		go func() {
			for e := range sub.Out() {
				emitIdentify(e.(event.EvtPeerIdentificationCompleted))
			}
		}()
		p2p, _ := ma.NewMultiaddr("/p2p/" + h.ID().String())
		var addrs []string
		for _, a := range h.Network().ListenAddresses() {
			addrs = append(addrs, a.Encapsulate(p2p).String())
		}
		emit("ready", "peerId", h.ID().String(), "listenAddrs", addrs)
		select {}
	}

	ctx, cancel := context.WithTimeout(context.Background(),
		time.Duration(o.timeout*float64(time.Second)))
	defer cancel()
	runDial(ctx, h, o)
	// Best-effort graceful shutdown, bounded so we never hang here.
	done := make(chan struct{})
	go func() { h.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
	}
	os.Exit(0)
}
