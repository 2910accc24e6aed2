// `peer-go transport-interop`: the libp2p/test-plans transport-interop test
// application (ping test), tcp + noise + yamux only, driven by environment
// variables and a Redis server. Both conventions of the runners are read:
//
//   - legacy (libp2p/test-plans transport-interop/README.md): lowercase
//     is_dialer, redis_addr (default redis:6379), ip (default 0.0.0.0),
//     transport, security, muxer, test_timeout_seconds (or
//     test_timeout_secs; default 180). Redis key "listenerAddr". The dialer
//     prints one JSON line {"handshakePlusOneRTTMillis":X,"pingRTTMilllis":Y}
//     (three l's: the runners expect that spelling).
//   - modern (libp2p/test-plans docs/write-a-transport-test-app.md), chosen
//     when IS_DIALER is set: IS_DIALER, REDIS_ADDR, TEST_KEY (both required),
//     TRANSPORT, SECURE_CHANNEL, MUXER, LISTENER_IP (default 0.0.0.0),
//     TEST_TIMEOUT_SECS (DEBUG is accepted and ignored). Redis key
//     "<TEST_KEY>_listener_multiaddr". The dialer prints YAML: a comment
//     line, then latency: / handshake_plus_one_rtt / ping_rtt / unit: ms.
//
// The listener RPUSHes its first non-loopback address (a loopback one when it
// has no other, e.g. ip=127.0.0.1) with /p2p/<id>, logs "connection from
// <peer id>" for every inbound connection, and serves until it is killed,
// exiting 1 if the timeout passes first. The dialer (which does not listen)
// logs "dialing <addr> from <own peer id>", BLPOPs the address, connects,
// pings once and reports the time from the start of the connect to the end of
// the ping, and that ping's RTT. Logs go to stderr; stdout carries only the
// result. Exit 0 on success, 1 on any failure. The Redis client is the small
// RESP2 one at the end of this file (no extra module).
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

type tiSettings struct {
	modern, dialer             bool
	redisAddr, ip, key         string
	transport, security, muxer string
	timeout                    time.Duration
}

func tiFail(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "peer-go transport-interop: error: "+format+"\n", a...)
	os.Exit(1)
}

func tiLog(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "peer-go transport-interop: "+format+"\n", a...)
}

func tiEnv(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func tiReadSettings() tiSettings {
	var s tiSettings
	var timeout string
	_, s.modern = os.LookupEnv("IS_DIALER")
	if s.modern {
		s.dialer = os.Getenv("IS_DIALER") == "true"
		s.redisAddr = os.Getenv("REDIS_ADDR")
		s.ip = tiEnv("LISTENER_IP", "0.0.0.0")
		s.transport = os.Getenv("TRANSPORT")
		s.security = os.Getenv("SECURE_CHANNEL")
		s.muxer = os.Getenv("MUXER")
		timeout = os.Getenv("TEST_TIMEOUT_SECS")
		testKey := os.Getenv("TEST_KEY")
		if s.redisAddr == "" {
			tiFail("REDIS_ADDR is not set")
		}
		if testKey == "" {
			tiFail("TEST_KEY is not set (the modern convention needs it for the Redis key)")
		}
		s.key = testKey + "_listener_multiaddr"
	} else {
		if _, ok := os.LookupEnv("is_dialer"); !ok {
			tiFail("set IS_DIALER (with REDIS_ADDR, TEST_KEY, TRANSPORT, SECURE_CHANNEL, MUXER) " +
				"or is_dialer (with redis_addr, ip, transport, security, muxer)")
		}
		s.dialer = os.Getenv("is_dialer") == "true"
		s.redisAddr = tiEnv("redis_addr", "redis:6379")
		s.ip = tiEnv("ip", "0.0.0.0")
		s.transport = os.Getenv("transport")
		s.security = os.Getenv("security")
		s.muxer = os.Getenv("muxer")
		timeout = tiEnv("test_timeout_seconds", os.Getenv("test_timeout_secs"))
		s.key = "listenerAddr"
	}
	s.redisAddr = strings.TrimPrefix(s.redisAddr, "redis://")
	s.timeout = 3 * time.Minute
	if secs, err := strconv.Atoi(timeout); err == nil && secs > 0 {
		s.timeout = time.Duration(secs) * time.Second
	}
	// This peer is built with tcp/noise/yamux only (what libp2p.h speaks).
	if s.transport != "tcp" {
		tiFail("unsupported transport '%s' (peer-go transport-interop speaks: tcp)", s.transport)
	}
	if s.security != "noise" {
		tiFail("unsupported security '%s' (peer-go transport-interop speaks: noise)", s.security)
	}
	if s.muxer != "yamux" {
		tiFail("unsupported muxer '%s' (peer-go transport-interop speaks: yamux)", s.muxer)
	}
	return s
}

// tiRedis connects and waits (until ctx ends) for Redis to answer PING: in
// the runners Redis may come up after the test application.
func tiRedis(ctx context.Context, s *tiSettings) *respConn {
	for {
		c, err := respDial(ctx, s.redisAddr)
		if err == nil {
			if _, err = c.do(ctx, 5*time.Second, "PING"); err == nil {
				return c
			}
			c.Close()
		}
		if ctx.Err() != nil {
			tiFail("cannot reach redis at %s: %v", s.redisAddr, err)
		}
		tiLog("redis %s: %v (retrying)", s.redisAddr, err)
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func tiHost(s *tiSettings, listen bool) host.Host {
	family := "ip4"
	if strings.Contains(s.ip, ":") {
		family = "ip6"
	}
	addrs := libp2p.NoListenAddrs
	if listen {
		addrs = libp2p.ListenAddrStrings(fmt.Sprintf("/%s/%s/tcp/0", family, s.ip))
	}
	// Stock go-libp2p apart from the fixed tcp/noise/yamux stack.
	h, err := libp2p.New(
		addrs,
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.UserAgent(userAgent()),
	)
	if err != nil {
		tiFail("host: %v", err)
	}
	return h
}

// tiAdvertised is the address the dialer is told: the first non-loopback one
// (as go-libp2p's program picks it), else the first one (a listener bound to
// 127.0.0.1 has only loopback addresses).
func tiAdvertised(h host.Host) ma.Multiaddr {
	addrs := h.Addrs()
	if len(addrs) == 0 {
		tiFail("the host reports no listen address")
	}
	chosen := addrs[0]
	for _, a := range addrs {
		if !manet.IsIPLoopback(a) {
			chosen = a
			break
		}
	}
	p2p, err := ma.NewMultiaddr("/p2p/" + h.ID().String())
	if err != nil {
		tiFail("multiaddr: %v", err)
	}
	return chosen.Encapsulate(p2p)
}

func tiListen(ctx context.Context, s *tiSettings, rc *respConn) {
	h := tiHost(s, true)
	h.Network().Notify(&network.NotifyBundle{
		ConnectedF: func(_ network.Network, c network.Conn) {
			tiLog("connection from %s (%s)", c.RemotePeer(), c.RemoteMultiaddr())
		},
	})
	addr := tiAdvertised(h).String()
	tiLog("listening on %v, advertising %s", h.Addrs(), addr)
	if s.modern {
		// A leftover value of another type under the key would make RPUSH
		// fail with WRONGTYPE (js-libp2p's listener deletes it first too).
		if _, err := rc.do(ctx, 5*time.Second, "DEL", s.key); err != nil {
			tiFail("DEL %s: %v", s.key, err)
		}
	}
	if _, err := rc.do(ctx, 5*time.Second, "RPUSH", s.key, addr); err != nil {
		tiFail("RPUSH %s: %v", s.key, err)
	}
	rc.Close()
	// Serve (identify, ping) until the runner kills us.
	<-ctx.Done()
	tiFail("timeout (%v) reached without being stopped", s.timeout)
}

func tiDial(ctx context.Context, s *tiSettings, rc *respConn) {
	// BLPOP's own timeout is whole seconds; the socket deadline allows slack.
	secs := strconv.Itoa(int((s.timeout + time.Second - 1) / time.Second))
	reply, err := rc.do(ctx, s.timeout+5*time.Second, "BLPOP", s.key, secs)
	val, _ := reply.([]any)
	if err != nil || len(val) != 2 {
		if err == nil {
			err = errors.New("BLPOP timed out")
		}
		tiFail("no listener address under '%s' within %v: %v", s.key, s.timeout, err)
	}
	rc.Close()
	addr, ok := val[1].(string)
	if !ok {
		tiFail("BLPOP %s: unexpected reply %v", s.key, val)
	}
	target, err := ma.NewMultiaddr(addr)
	if err != nil {
		tiFail("bad listener multiaddr %q: %v", addr, err)
	}
	ai, err := peer.AddrInfoFromP2pAddr(target)
	if err != nil {
		tiFail("listener multiaddr %q needs /p2p/<id>: %v", addr, err)
	}
	h := tiHost(s, false)
	tiLog("dialing %s from %s", target, h.ID())

	start := time.Now()
	if err := h.Connect(ctx, *ai); err != nil {
		tiFail("connecting to %s: %v", target, err)
	}
	pctx, cancel := context.WithCancel(ctx)
	res := <-ping.Ping(pctx, h, ai.ID)
	cancel()
	if res.Error != nil {
		tiFail("ping %s: %v", ai.ID, res.Error)
	}
	total := time.Since(start)
	ms := func(d time.Duration) string {
		return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 3, 64)
	}
	tiLog("connected and pinged: %s ms, ping %s ms", ms(total), ms(res.RTT))
	if s.modern {
		fmt.Printf("# Measurements from dialer\nlatency:\n  handshake_plus_one_rtt: %s\n  ping_rtt: %s\n  unit: ms\n",
			ms(total), ms(res.RTT))
	} else {
		fmt.Printf("{\"handshakePlusOneRTTMillis\":%s,\"pingRTTMilllis\":%s}\n", ms(total), ms(res.RTT))
	}
	done := make(chan struct{})
	go func() { h.Close(); close(done) }()
	select { // best-effort graceful close, bounded
	case <-done:
	case <-time.After(2 * time.Second):
	}
	os.Exit(0)
}

func runTransportInterop() {
	s := tiReadSettings()
	role := "listener"
	if s.dialer {
		role = "dialer"
	}
	conv := "legacy"
	if s.modern {
		conv = "modern"
	}
	tiLog("%s, %s convention, %s/%s/%s, redis %s, key %s, timeout %v",
		role, conv, s.transport, s.security, s.muxer, s.redisAddr, s.key, s.timeout)
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	rc := tiRedis(ctx, &s)
	if s.dialer {
		tiDial(ctx, &s, rc)
	} else {
		tiListen(ctx, &s, rc)
	}
}

// ---------------------------------------------------------------- RESP

// respConn is the little of a Redis client the test needs: one connection,
// commands as arrays of bulk strings, replies decoded to string (simple and
// bulk), int64, nil, []any or an error for "-ERR ...". Replies are bounded
// (bulk <= 1 MiB, arrays <= 64 elements, nesting <= 4). RESP2:
// https://redis.io/docs/latest/develop/reference/protocol-spec/
type respConn struct {
	c net.Conn
	r *bufio.Reader
}

func respDial(ctx context.Context, addr string) (*respConn, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return &respConn{c: c, r: bufio.NewReader(c)}, nil
}

func (rc *respConn) Close() { rc.c.Close() }

// do sends one command and reads its reply, within wait (and ctx).
func (rc *respConn) do(ctx context.Context, wait time.Duration, args ...string) (any, error) {
	deadline := time.Now().Add(wait)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	rc.c.SetDeadline(deadline)
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := rc.c.Write([]byte(b.String())); err != nil {
		return nil, err
	}
	v, err := rc.reply(0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", args[0], err)
	}
	if e, ok := v.(error); ok {
		return nil, fmt.Errorf("%s: %w", args[0], e)
	}
	return v, nil
}

func (rc *respConn) line() (string, error) {
	l, err := rc.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	if len(l) < 3 || l[len(l)-2] != '\r' {
		return "", errors.New("malformed reply line")
	}
	return l[:len(l)-2], nil
}

func (rc *respConn) reply(depth int) (any, error) {
	if depth > 4 {
		return nil, errors.New("reply nested too deeply")
	}
	l, err := rc.line()
	if err != nil {
		return nil, err
	}
	body := l[1:]
	switch l[0] {
	case '+':
		return body, nil
	case '-':
		return errors.New(body), nil
	case ':':
		return strconv.ParseInt(body, 10, 64)
	case '$', '*':
		n, err := strconv.Atoi(body)
		if err != nil || n < -1 || n > 1<<20 || (l[0] == '*' && n > 64) {
			return nil, fmt.Errorf("bad length in %q", l)
		}
		if n == -1 {
			return nil, nil // nil bulk / nil array (BLPOP timed out)
		}
		if l[0] == '$' {
			buf := make([]byte, n+2)
			if _, err := io.ReadFull(rc.r, buf); err != nil {
				return nil, err
			}
			return string(buf[:n]), nil
		}
		arr := make([]any, n)
		for i := range arr {
			if arr[i], err = rc.reply(depth + 1); err != nil {
				return nil, err
			}
		}
		return arr, nil
	}
	return nil, fmt.Errorf("unknown reply type in %q", l)
}
