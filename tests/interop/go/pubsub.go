// pubsub mode of peer-go: a go-libp2p-pubsub node (gossipsub or floodsub)
// driven by commands on stdin; see "pubsub mode" in tests/interop/README.md.
package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
)

// meshTracer follows GRAFT/PRUNE so that "peers" can report go's mesh
// (go-libp2p-pubsub has no public accessor for it).
type meshTracer struct {
	mu   sync.Mutex
	mesh map[string]map[peer.ID]bool
}

func (t *meshTracer) set(p peer.ID, topic string, in bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.mesh[topic]
	if m == nil {
		m = map[peer.ID]bool{}
		t.mesh[topic] = m
	}
	if in {
		m[p] = true
	} else {
		delete(m, p)
	}
}

func (t *meshTracer) list(topic string) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := []string{}
	for p := range t.mesh[topic] {
		out = append(out, p.String())
	}
	return out
}

func (t *meshTracer) AddPeer(p peer.ID, proto protocol.ID) {}
func (t *meshTracer) RemovePeer(p peer.ID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, m := range t.mesh {
		delete(m, p)
	}
}
func (t *meshTracer) OnNewOutboundStream(p peer.ID, proto protocol.ID)     {}
func (t *meshTracer) OnClosedOutboundStream(p peer.ID)                     {}
func (t *meshTracer) Join(topic string)                                    {}
func (t *meshTracer) Leave(topic string)                                   {}
func (t *meshTracer) Graft(p peer.ID, topic string)                        { t.set(p, topic, true) }
func (t *meshTracer) Prune(p peer.ID, topic string)                        { t.set(p, topic, false) }
func (t *meshTracer) ValidateMessage(msg *pubsub.Message)                  {}
func (t *meshTracer) DeliverMessage(msg *pubsub.Message)                   {}
func (t *meshTracer) RejectMessage(msg *pubsub.Message, reason string)     {}
func (t *meshTracer) DuplicateMessage(msg *pubsub.Message)                 {}
func (t *meshTracer) ThrottlePeer(p peer.ID)                               {}
func (t *meshTracer) RecvRPC(rpc *pubsub.RPC)                              {}
func (t *meshTracer) SendRPC(rpc *pubsub.RPC, p peer.ID)                   {}
func (t *meshTracer) SendRPCCompleted(*pubsub.RPC, peer.ID, time.Duration) {}
func (t *meshTracer) DropRPC(rpc *pubsub.RPC, p peer.ID)                   {}
func (t *meshTracer) UndeliverableMessage(msg *pubsub.Message)             {}

// pubsubKV parses the key=value arguments after "pubsub".
func pubsubKV(args []string) map[string]string {
	kv := map[string]string{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			fail("pubsub: argument %q is not key=value", a)
		}
		kv[k] = v
	}
	return kv
}

func kvInt(kv map[string]string, k string, def int) int {
	if s, ok := kv[k]; ok {
		v, err := strconv.Atoi(s)
		if err != nil {
			fail("pubsub: bad %s=%q", k, s)
		}
		return v
	}
	return def
}

func runPubsub(o options) {
	ctx := context.Background()
	h := newHost(o, "listen")
	kv := pubsubKV(o.pos[1:])
	tracer := &meshTracer{mesh: map[string]map[peer.ID]bool{}}
	opts := []pubsub.Option{pubsub.WithRawTracer(tracer)}
	switch kv["msgid"] {
	case "", "go", "native":
	case "sha256":
		opts = append(opts, pubsub.WithMessageIdFn(func(m *pb.Message) string {
			sum := sha256.Sum256(m.Data)
			return string(sum[:])
		}))
	default:
		fail("pubsub: msgid must be go, native or sha256")
	}
	if kv["sign"] == "none" {
		opts = append(opts, pubsub.WithNoAuthor(), pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign))
	}
	params := pubsub.DefaultGossipSubParams()
	params.D = kvInt(kv, "d", params.D)
	params.Dlo = kvInt(kv, "dlo", params.Dlo)
	params.Dhi = kvInt(kv, "dhi", params.Dhi)
	params.Dlazy = kvInt(kv, "dlazy", params.Dlazy)
	params.Dout = kvInt(kv, "dout", params.Dout)
	params.Dscore = kvInt(kv, "dscore", params.Dscore)
	params.IDontWantMessageThreshold = kvInt(kv, "idontwant", params.IDontWantMessageThreshold)
	gsOpts := []pubsub.Option{pubsub.WithGossipSubParams(params)}
	if v, ok := kv["flood"]; ok {
		gsOpts = append(gsOpts, pubsub.WithFloodPublish(v == "true"))
	}
	if kv["px"] == "true" {
		gsOpts = append(gsOpts, pubsub.WithPeerExchange(true))
	}
	var ps *pubsub.PubSub
	var err error
	if kv["router"] == "floodsub" {
		ps, err = pubsub.NewFloodSub(ctx, h, opts...)
	} else {
		ps, err = pubsub.NewGossipSub(ctx, h, append(opts, gsOpts...)...)
	}
	if err != nil {
		fail("pubsub: %v", err)
	}
	p2p, _ := ma.NewMultiaddr("/p2p/" + h.ID().String())
	var addrs []string
	for _, a := range h.Network().ListenAddresses() {
		addrs = append(addrs, a.Encapsulate(p2p).String())
	}
	emit("ready", "peerId", h.ID().String(), "listenAddrs", addrs)
	pubsubCommands(ctx, h, ps, tracer)
	os.Exit(0)
}

func pubsubCommands(ctx context.Context, h host.Host, ps *pubsub.PubSub, tracer *meshTracer) {
	topics := map[string]*pubsub.Topic{}
	subs := map[string]*pubsub.Subscription{}
	join := func(name string) *pubsub.Topic {
		if t := topics[name]; t != nil {
			return t
		}
		t, err := ps.Join(name)
		if err != nil {
			fail("join %s: %v", name, err)
		}
		topics[name] = t
		return t
	}
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 1<<22)
	for sc.Scan() {
		f := strings.SplitN(strings.TrimSpace(sc.Text()), " ", 3)
		switch f[0] {
		case "connect":
			ai, err := peer.AddrInfoFromString(f[1])
			if err == nil {
				cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
				err = h.Connect(cctx, *ai)
				cancel()
			}
			if err != nil {
				emit("connect", "ok", false, "message", err.Error())
			} else {
				emit("connect", "ok", true, "peerId", ai.ID.String())
			}
		case "sub":
			sub, err := join(f[1]).Subscribe(pubsub.WithBufferSize(4096))
			if err != nil {
				fail("subscribe %s: %v", f[1], err)
			}
			subs[f[1]] = sub
			go pubsubReceive(ctx, h, sub)
			emit("subscribed", "topic", f[1])
		case "unsub":
			if s := subs[f[1]]; s != nil {
				s.Cancel()
				delete(subs, f[1])
			}
			emit("unsubscribed", "topic", f[1])
		case "pub", "pubsize":
			data := []byte("")
			if len(f) > 2 {
				data = []byte(f[2])
			}
			if f[0] == "pubsize" { // pubsize <topic> <n>: n bytes, "big-<time>-" then 'x'
				n, _ := strconv.Atoi(f[2])
				data = []byte(strconv.FormatInt(time.Now().UnixNano(), 10) + "-")
				for len(data) < n {
					data = append(data, 'x')
				}
			}
			if err := join(f[1]).Publish(ctx, data); err != nil {
				emit("publish-error", "topic", f[1], "message", err.Error())
			} else {
				emit("published", "topic", f[1], "size", len(data))
			}
		case "peers":
			var ids []string
			for _, p := range ps.ListPeers(f[1]) {
				ids = append(ids, p.String())
			}
			if ids == nil {
				ids = []string{}
			}
			emit("peers", "topic", f[1], "peers", ids, "mesh", tracer.list(f[1]))
		case "exit":
			return
		case "":
		default:
			emit("error", "message", "unknown command "+f[0])
		}
	}
}

func pubsubReceive(ctx context.Context, h host.Host, sub *pubsub.Subscription) {
	for {
		m, err := sub.Next(ctx)
		if err != nil {
			return
		}
		from := ""
		if len(m.From) > 0 {
			if id, err := peer.IDFromBytes(m.From); err == nil {
				from = id.String()
			}
		}
		data := string(m.Data)
		if len(data) > 256 {
			data = data[:256]
		}
		emit("message", "topic", m.GetTopic(), "from", from, "data", data, "size", len(m.Data),
			"id", hex.EncodeToString([]byte(m.ID)), "receivedFrom", m.ReceivedFrom.String(),
			"local", m.ReceivedFrom == h.ID())
	}
}
