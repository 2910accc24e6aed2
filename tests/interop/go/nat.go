// nat.go: "peer-go nat ..." - circuit relay v2 and DCUtR roles for the libp2p.h NAT tests
// (contract: tests/interop/README.md, section "NAT traversal"). Kept apart from main.go so that
// only one dispatch line there knows about it.
//
// go-libp2p starts its hole-punch service only once the host has a *public* address
// (manet.IsPublicAddr), which loopback and the documentation ranges of the NAT test bed never
// are. So this peer builds the service itself with an address function that returns what the
// remote peers observed (identify) and our listen addresses, without that filter. Everything
// else (DCUtR messages, roles, retries, simultaneous connect) is stock go-libp2p v0.51.0.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	"github.com/libp2p/go-libp2p/p2p/protocol/identify"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
)

type natOptions struct {
	seed, listen, relayAddr string
	timeout                 float64
	stdinExit, noHolePunch  bool
	pos                     []string
}

func natUsage() {
	fmt.Fprintln(os.Stderr, `usage: peer-go nat relay [flags]
       peer-go nat listen --relay <relay multiaddr/p2p/ID> [flags]
       peer-go nat dial <relay>/p2p-circuit/p2p/<ID> <action> [args] [flags]
       peer-go nat mdns [flags]   (mDNS discovery: print discovered peers, ping each once)
actions: ping <n> | echo <bytes> | direct <bytes> | hold <seconds>
flags: --seed <64 hex> --listen <multiaddr> --timeout <seconds> --stdin-exit --no-holepunch`)
	os.Exit(2)
}

func parseNatArgs(args []string) natOptions {
	o := natOptions{listen: "/ip4/127.0.0.1/tcp/0", timeout: 60}
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
				natUsage()
			}
			i++
			return args[i]
		}
		switch name {
		case "seed":
			o.seed = needVal()
		case "listen":
			o.listen = needVal()
		case "relay":
			o.relayAddr = needVal()
		case "timeout":
			t, err := strconv.ParseFloat(needVal(), 64)
			if err != nil || t <= 0 {
				natUsage()
			}
			o.timeout = t
		case "stdin-exit":
			o.stdinExit = true
		case "no-holepunch":
			o.noHolePunch = true
		default:
			fmt.Fprintf(os.Stderr, "unknown flag --%s\n", name)
			natUsage()
		}
	}
	return o
}

func isCircuit(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}

// observedAddrs collects what peers told us (identify) they see us as.
type observedAddrs struct {
	mu    sync.Mutex
	addrs []ma.Multiaddr
}

func (o *observedAddrs) add(a ma.Multiaddr) {
	if a == nil || isCircuit(a) {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, x := range o.addrs {
		if x.Equal(a) {
			return
		}
	}
	o.addrs = append(o.addrs, a)
}

func (o *observedAddrs) list(h host.Host) []ma.Multiaddr {
	o.mu.Lock()
	out := append([]ma.Multiaddr(nil), o.addrs...)
	o.mu.Unlock()
	for _, a := range h.Addrs() {
		if !isCircuit(a) {
			out = append(out, a)
		}
	}
	return out
}

func newNatHost(o natOptions) (host.Host, *observedAddrs) {
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
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionManager(&connmgr.NullConnMgr{}),
		libp2p.EnableRelay(), // the circuit transport: dial /p2p-circuit, accept STOP
		libp2p.DisableMetrics(),
		libp2p.Ping(true),
		libp2p.UserAgent(userAgent()),
	)
	if err != nil {
		fail("host: %v", err)
	}
	h.SetStreamHandler(protoEcho, handleEcho)
	obs := &observedAddrs{}
	sub, err := h.EventBus().Subscribe(new(event.EvtPeerIdentificationCompleted))
	if err != nil {
		fail("subscribe: %v", err)
	}
	go func() {
		for e := range sub.Out() {
			ev := e.(event.EvtPeerIdentificationCompleted)
			obs.add(ev.ObservedAddr)
			emitIdentify(ev)
		}
	}()
	if !o.noHolePunch {
		bh, ok := h.(interface{ IDService() identify.IDService }) // libp2p.New wraps the BasicHost
		if !ok {
			fail("host has no identify service")
		}
		if _, err := holepunch.NewService(h, bh.IDService(), func() []ma.Multiaddr { return obs.list(h) }); err != nil {
			fail("holepunch: %v", err)
		}
	}
	// connection events: relayed or direct, and "direct" once a peer we had a relayed
	// connection with is reached directly (DCUtR)
	var mu sync.Mutex
	relayed := map[peer.ID]time.Time{}
	h.Network().Notify(&network.NotifyBundle{
		ConnectedF: func(_ network.Network, c network.Conn) {
			p, r := c.RemotePeer(), isCircuit(c.RemoteMultiaddr())
			emit("connected", "peerId", p.String(), "relayed", r, "addr", c.RemoteMultiaddr().String())
			mu.Lock()
			t0, had := relayed[p]
			if r && !had {
				relayed[p] = time.Now()
			}
			mu.Unlock()
			if !r && had {
				emit("direct", "peerId", p.String(), "addr", c.RemoteMultiaddr().String(),
					"ms", float64(time.Since(t0).Microseconds())/1000)
			}
		},
		DisconnectedF: func(_ network.Network, c network.Conn) {
			emit("disconnected", "peerId", c.RemotePeer().String(), "relayed", isCircuit(c.RemoteMultiaddr()))
		},
	})
	return h, obs
}

func emitReady(h host.Host) {
	p2p, _ := ma.NewMultiaddr("/p2p/" + h.ID().String())
	var addrs []string
	for _, a := range h.Network().ListenAddresses() {
		addrs = append(addrs, a.Encapsulate(p2p).String())
	}
	emit("ready", "peerId", h.ID().String(), "listenAddrs", addrs)
}

func directConn(h host.Host, p peer.ID) network.Conn {
	for _, c := range h.Network().ConnsToPeer(p) {
		if !isCircuit(c.RemoteMultiaddr()) {
			return c
		}
	}
	return nil
}

func natListen(ctx context.Context, h host.Host, o natOptions) {
	if o.relayAddr == "" {
		natUsage()
	}
	ra, err := ma.NewMultiaddr(o.relayAddr)
	if err != nil {
		fail("bad --relay: %v", err)
	}
	ai, err := peer.AddrInfoFromP2pAddr(ra)
	if err != nil {
		fail("--relay needs /p2p/<id>: %v", err)
	}
	if err := h.Connect(ctx, *ai); err != nil {
		fail("connect relay: %v", err)
	}
	rsvp, err := client.Reserve(ctx, h, *ai)
	if err != nil {
		fail("reserve: %v", err)
	}
	circuit := o.relayAddr + "/p2p-circuit/p2p/" + h.ID().String()
	emit("reserved", "relay", ai.ID.String(), "addrs", []string{circuit},
		"expire", rsvp.Expiration.Unix())
	emitReady(h)
	go func() { // refresh at half the remaining time
		for {
			wait := time.Until(rsvp.Expiration) / 2
			if wait < time.Second {
				wait = time.Second
			}
			time.Sleep(wait)
			r, err := client.Reserve(context.Background(), h, *ai)
			if err != nil {
				logf("refresh: %v", err)
				continue
			}
			rsvp = r
		}
	}()
	select {}
}

func natDial(ctx context.Context, h host.Host, o natOptions) {
	if len(o.pos) < 3 {
		natUsage()
	}
	target, err := ma.NewMultiaddr(o.pos[1])
	if err != nil {
		fail("bad multiaddr: %v", err)
	}
	ai, err := peer.AddrInfoFromP2pAddr(target)
	if err != nil {
		fail("multiaddr needs /p2p/<id>: %v", err)
	}
	action, args := o.pos[2], o.pos[3:]
	t0 := time.Now()
	if err := h.Connect(ctx, *ai); err != nil {
		fail("dial: %v", err)
	}
	emit("dialed", "peerId", ai.ID.String(), "ms", float64(time.Since(t0).Microseconds())/1000)
	limitedCtx := network.WithAllowLimitedConn(ctx, "nat-test")
	switch action {
	case "ping":
		n := intArg(args, 0, 1, "ping count")
		res := ping.Ping(limitedCtx, h, ai.ID)
		for i := int64(0); i < n; i++ {
			r := <-res
			if r.Error != nil {
				fail("ping: %v", r.Error)
			}
			emit("ping", "rttMs", float64(r.RTT.Microseconds())/1000)
		}
	case "echo":
		size := intArg(args, 0, -1, "echo bytes")
		t := time.Now()
		if err := echoOnce(limitedCtx, h, ai.ID, int(size), 0); err != nil {
			fail("echo: %v", err)
		}
		emit("echo", "ok", true, "streams", 1, "bytes", size, "ms", float64(time.Since(t).Microseconds())/1000)
	case "direct":
		size := intArg(args, 0, -1, "echo bytes")
		for directConn(h, ai.ID) == nil {
			select {
			case <-ctx.Done():
				fail("no direct connection to %s", ai.ID)
			case <-time.After(20 * time.Millisecond):
			}
		}
		c := directConn(h, ai.ID)
		emit("direct-ready", "peerId", ai.ID.String(), "addr", c.RemoteMultiaddr().String(),
			"ms", float64(time.Since(t0).Microseconds())/1000)
		t := time.Now()
		if err := echoOnce(ctx, h, ai.ID, int(size), 0); err != nil { // not limited: uses the direct connection
			fail("echo: %v", err)
		}
		emit("echo", "ok", true, "streams", 1, "bytes", size, "ms", float64(time.Since(t).Microseconds())/1000)
	case "hold":
		secs, err := strconv.ParseFloat(firstOr(args, ""), 64)
		if err != nil || secs < 0 {
			fail("hold: bad seconds")
		}
		time.Sleep(time.Duration(secs * float64(time.Second)))
		emit("hold", "ok", len(h.Network().ConnsToPeer(ai.ID)) > 0, "seconds", secs)
	default:
		fail("unknown action %q", action)
	}
}

type mdnsNotifee struct{ h host.Host }

func (n mdnsNotifee) HandlePeerFound(pi peer.AddrInfo) {
	if pi.ID == n.h.ID() {
		return
	}
	emit("discovered", "peerId", pi.ID.String(), "addrs", addrStrings(pi.Addrs))
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := n.h.Connect(ctx, pi); err != nil {
			emit("ping-failed", "peerId", pi.ID.String(), "message", err.Error())
			return
		}
		r := <-ping.Ping(ctx, n.h, pi.ID)
		if r.Error != nil {
			emit("ping-failed", "peerId", pi.ID.String(), "message", r.Error.Error())
			return
		}
		emit("ping", "peerId", pi.ID.String(), "rttMs", float64(r.RTT.Microseconds())/1000)
	}()
}

func natMain(args []string) {
	o := parseNatArgs(args)
	if len(o.pos) < 1 {
		natUsage()
	}
	time.AfterFunc(time.Duration(o.timeout*float64(time.Second)), func() {
		logf("timeout after %gs", o.timeout)
		os.Exit(3)
	})
	if o.stdinExit {
		go func() {
			io.Copy(io.Discard, os.Stdin)
			os.Exit(0)
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(o.timeout*float64(time.Second)))
	defer cancel()
	switch o.pos[0] {
	case "relay":
		h, _ := newNatHost(o)
		if _, err := relay.New(h); err != nil {
			fail("relay: %v", err)
		}
		emitReady(h)
		select {}
	case "listen":
		h, _ := newNatHost(o)
		natListen(ctx, h, o)
	case "mdns":
		h, _ := newNatHost(o)
		svc := mdns.NewMdnsService(h, mdns.ServiceName, mdnsNotifee{h})
		if err := svc.Start(); err != nil {
			fail("mdns: %v", err)
		}
		emitReady(h)
		select {}
	case "dial":
		h, _ := newNatHost(o)
		natDial(ctx, h, o)
		done := make(chan struct{})
		go func() { h.Close(); close(done) }()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
		}
		os.Exit(0)
	default:
		natUsage()
	}
}
