// dht.go: the "dht" mode of peer-go, a go-libp2p-kad-dht node driven by commands
// on stdin (see tests/interop/README.md, "DHT mode").
//
//	peer-go dht <server|client> <protocol-prefix> [flags]
//
// It never contacts the public network: no default bootstrap peers, only the
// peers named by "bootstrap" commands.
package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
)

// permissiveValidator accepts every record of its namespace; Select keeps the first.
type permissiveValidator struct{}

func (permissiveValidator) Validate(string, []byte) error        { return nil }
func (permissiveValidator) Select(string, [][]byte) (int, error) { return 0, nil }

func runDHT(o options) {
	if len(o.pos) < 3 {
		fail("usage: peer-go dht <server|client> <protocol-prefix>")
	}
	mode := dht.ModeServer
	if o.pos[1] == "client" {
		mode = dht.ModeClient
	}
	prefix := protocol.ID(o.pos[2])
	h := newHost(o, "listen")
	opts := []dht.Option{
		dht.Mode(mode),
		dht.ProtocolPrefix(prefix),
		dht.BootstrapPeersFunc(func() []peer.AddrInfo { return nil }), // never the public bootstrappers
	}
	if prefix != "/ipfs" { // Amino allows only the /pk and /ipns validators
		opts = append(opts, dht.NamespacedValidator("t", permissiveValidator{}))
	}
	d, err := dht.New(h, opts...)
	if err != nil {
		fail("dht: %v", err)
	}
	p2p, _ := ma.NewMultiaddr("/p2p/" + h.ID().String())
	var addrs []string
	for _, a := range h.Network().ListenAddresses() {
		addrs = append(addrs, a.Encapsulate(p2p).String())
	}
	emit("ready", "peerId", h.ID().String(), "listenAddrs", addrs)
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) == 0 {
			continue
		}
		dhtCommand(h, d, f)
	}
	os.Exit(0)
}

func dhtFail(cmd string, err error) {
	emit(cmd, "ok", false, "error", err.Error())
}

func dhtCommand(h host.Host, d *dht.IpfsDHT, f []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd, args := f[0], f[1:]
	switch cmd {
	case "bootstrap":
		for _, a := range args {
			ai, err := peer.AddrInfoFromString(a)
			if err == nil {
				err = h.Connect(ctx, *ai)
			}
			if err != nil {
				dhtFail(cmd, err)
				return
			}
		}
		time.Sleep(200 * time.Millisecond) // identify, then the table takes them in
		if err := <-d.ForceRefresh(); err != nil {
			logf("refresh: %v", err)
		}
		emit(cmd, "ok", true, "rt", d.RoutingTable().Size())
	case "put":
		if len(args) < 2 {
			dhtFail(cmd, errUsage)
			return
		}
		if err := d.PutValue(ctx, dhtKey(args[0]), []byte(args[1])); err != nil {
			dhtFail(cmd, err)
			return
		}
		emit(cmd, "ok", true)
	case "get":
		if len(args) < 1 {
			dhtFail(cmd, errUsage)
			return
		}
		v, err := d.GetValue(ctx, dhtKey(args[0]))
		if err != nil {
			dhtFail(cmd, err)
			return
		}
		emit(cmd, "ok", true, "value", string(v), "hex", hex.EncodeToString(v))
	case "provide":
		c, err := parseCid(args)
		if err == nil {
			err = d.Provide(ctx, c, true)
		}
		if err != nil {
			dhtFail(cmd, err)
			return
		}
		emit(cmd, "ok", true)
	case "findprovs":
		c, err := parseCid(args)
		if err != nil {
			dhtFail(cmd, err)
			return
		}
		n := 1
		if len(args) > 1 {
			n, _ = strconv.Atoi(args[1])
		}
		var ids []string
		for ai := range d.FindProvidersAsync(ctx, c, n) {
			ids = append(ids, ai.ID.String())
		}
		emit(cmd, "ok", len(ids) > 0, "providers", ids)
	case "findpeer":
		if len(args) < 1 {
			dhtFail(cmd, errUsage)
			return
		}
		id, err := peer.Decode(args[0])
		if err != nil {
			dhtFail(cmd, err)
			return
		}
		ai, err := d.FindPeer(ctx, id)
		if err != nil {
			dhtFail(cmd, err)
			return
		}
		emit(cmd, "ok", true, "addrs", addrStrings(ai.Addrs))
	case "closest":
		if len(args) < 1 {
			dhtFail(cmd, errUsage)
			return
		}
		ps, err := d.GetClosestPeers(ctx, dhtKey(args[0]))
		if err != nil {
			dhtFail(cmd, err)
			return
		}
		emit(cmd, "ok", true, "peers", peerStrings(ps))
	case "rt":
		emit(cmd, "ok", true, "peers", peerStrings(d.RoutingTable().ListPeers()))
	default:
		dhtFail(cmd, errUsage)
	}
}

type usageError struct{}

func (usageError) Error() string { return "bad command" }

var errUsage = usageError{}

// dhtKey: "hex:<hex>" gives binary keys (e.g. /pk/<peer ID bytes>), anything else is taken as is.
func dhtKey(s string) string {
	if strings.HasPrefix(s, "hex:") {
		if b, err := hex.DecodeString(s[4:]); err == nil {
			return string(b)
		}
	}
	return s
}

func parseCid(args []string) (cid.Cid, error) {
	if len(args) < 1 {
		return cid.Undef, errUsage
	}
	return cid.Decode(args[0])
}

func peerStrings(ps []peer.ID) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.String())
	}
	return out
}
