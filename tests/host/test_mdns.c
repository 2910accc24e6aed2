/* test_mdns.c - mDNS discovery between our own hosts WITHOUT multicast: each host's mDNS socket
 * is bound to 127.0.0.1 and sends to the other's port (lp2p__mdns_start_at), so nothing leaves
 * loopback. Multicast on a real LAN segment is tested in the NAT bed (tests/netns/).
 * Also: the DNS parser against well-formed go/rust-style packets and malformed ones. */
#define LIBP2P_IMPLEMENTATION
#include "libp2p.h"
#include "tests/test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

static lp2p_host *new_host(void) {
    lp2p_config cfg;
    lp2p_host *h = NULL;
    memset(&cfg, 0, sizeof cfg);
    cfg.log_level = getenv("LP2P_TEST_LOG") ? LP2P_LOG_DEBUG : LP2P_LOG_ERROR;
    CHECK_EQ(lp2p_host_new(&cfg, &h), LP2P_OK);
    return h;
}

static int free_udp_port(void) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0), port = 0;
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 && getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

static int wait_discovered(lp2p_host *h, const lp2p_peer_id *want, char *addr, size_t cap, int ms) {
    int64_t deadline = lp2p_deadline_in(ms);
    lp2p_event ev;
    while (lp2p_now() < deadline) {
        while (lp2p_host_next_event(h, &ev))
            if (ev.type == LP2P_EVENT_PEER_DISCOVERED && lp2p_peer_id_eq(&ev.peer, want)) {
                if (addr) snprintf(addr, cap, "%s", ev.addr ? ev.addr : "");
                return 1;
            }
        lp2p_sleep(h, lp2p_deadline_in(10));
    }
    return 0;
}

static void test_discovery(void) {
    TEST("mdns: two hosts discover each other (unicast on 127.0.0.1), connect by peer ID");
    lp2p_host *x = new_host(), *y = new_host();
    char addr[700];
    if (!x || !y) return;
    int px = free_udp_port(), py = free_udp_port();
    lp2p_mdns_config c = {200, false, NULL, NULL};
    CHECK_EQ(lp2p__mdns_start_at(x, &c, "127.0.0.1", px, "127.0.0.1", py), LP2P_OK);
    CHECK_EQ(lp2p__mdns_start_at(y, &c, "127.0.0.1", py, "127.0.0.1", px), LP2P_OK);
    lp2p_peer_id xid = lp2p_host_id(x), yid = lp2p_host_id(y);
    CHECK(wait_discovered(x, &yid, addr, sizeof addr, 5000));
    CHECK_STR(addr, lp2p_host_addr(y, 0));
    CHECK(wait_discovered(y, &xid, NULL, 0, 5000));
    char yid_s[LP2P_PEER_ID_STRLEN];
    lp2p_peer_id_str(&yid, yid_s, sizeof yid_s);
    CHECK(lp2p_ping(x, yid_s, lp2p_deadline_in(5000)) >= 0); /* the peerstore has y's address */
    /* restart y with auto_connect: it connects to x by itself */
    lp2p_mdns_stop(y);
    lp2p_host_disconnect(x, &yid);
    c.auto_connect = true;
    CHECK_EQ(lp2p__mdns_start_at(y, &c, "127.0.0.1", py, "127.0.0.1", px), LP2P_OK);
    int64_t t = lp2p_deadline_in(5000);
    while (!lp2p_host_is_connected(y, &xid) && lp2p_now() < t) lp2p_sleep(y, lp2p_deadline_in(20));
    CHECK(lp2p_host_is_connected(y, &xid));
    lp2p_host_free(y), lp2p_host_free(x);
}

static void test_private_service(void) {
    TEST("mdns: another service name (private network) is not answered");
    lp2p_host *x = new_host(), *y = new_host();
    if (!x || !y) return;
    int px = free_udp_port(), py = free_udp_port();
    lp2p_mdns_config cx = {100, false, "_p2p-secret._udp.local", NULL}, cy = {100, false, NULL, NULL};
    CHECK_EQ(lp2p__mdns_start_at(x, &cx, "127.0.0.1", px, "127.0.0.1", py), LP2P_OK);
    CHECK_EQ(lp2p__mdns_start_at(y, &cy, "127.0.0.1", py, "127.0.0.1", px), LP2P_OK);
    lp2p_peer_id xid = lp2p_host_id(x), yid = lp2p_host_id(y);
    CHECK(!wait_discovered(x, &yid, NULL, 0, 800));
    CHECK(!wait_discovered(y, &xid, NULL, 0, 200));
    lp2p_mdns_config bad = {0, false, "not-a-service", NULL};
    CHECK_EQ(lp2p__mdns_start_at(x, &bad, "127.0.0.1", px, "127.0.0.1", py), LP2P_ERR_INVALID);
    lp2p_host_free(y), lp2p_host_free(x);
}

/* ---- parser ---- */
static char seen[8][256];
static int n_seen;
static void on_txt(void *user, const char *txt, size_t len) {
    (void)user;
    if (n_seen < 8) snprintf(seen[n_seen++], sizeof seen[0], "%.*s", (int)len, txt);
}

static size_t put_name(uint8_t *p, const char *name) {
    size_t n = 0;
    while (*name) {
        const char *dot = strchr(name, '.');
        size_t l = dot ? (size_t)(dot - name) : strlen(name);
        p[n++] = (uint8_t)l;
        memcpy(p + n, name, l), n += l;
        name += l + (dot ? 1 : 0);
    }
    p[n++] = 0;
    return n;
}

static void test_parser(void) {
    TEST("mdns parser: go-style response with compression and multi-string TXT; queries; malformed");
    uint8_t p[1024];
    size_t n = 0;
    /* response: 1 answer (PTR), 2 additional (TXT with 2 strings via a compressed name, A) */
    uint8_t hdr[12] = {0, 0, 0x84, 0, 0, 0, 0, 1, 0, 0, 0, 2};
    memcpy(p, hdr, 12), n = 12;
    size_t svc = n;
    n += put_name(p + n, "_P2P._udp.local"); /* names are case-insensitive */
    p[n++] = 0, p[n++] = 12, p[n++] = 0, p[n++] = 1, memset(p + n, 0, 4), n += 4;
    size_t rdl = n;
    n += 2;
    size_t inst = n;
    p[n++] = 5, memcpy(p + n, "abcde", 5), n += 5, p[n++] = 0xc0, p[n++] = (uint8_t)svc; /* abcde.<svc> */
    lp2p__put_be16(p + rdl, (uint16_t)(n - rdl - 2));
    p[n++] = 0xc0, p[n++] = (uint8_t)inst; /* TXT name: pointer to the instance */
    p[n++] = 0, p[n++] = 16, p[n++] = 0x80, p[n++] = 1, memset(p + n, 0, 4), n += 4;
    const char *t1 = "dnsaddr=/ip4/127.0.0.1/tcp/1/p2p/12D3KooWLRmBoERykmejAWErYJyeDkodXxeLo5VcpRQKpRANeEwH", *t2 = "other=1";
    p[n++] = 0, p[n++] = (uint8_t)(2 + strlen(t1) + strlen(t2));
    p[n++] = (uint8_t)strlen(t1), memcpy(p + n, t1, strlen(t1)), n += strlen(t1);
    p[n++] = (uint8_t)strlen(t2), memcpy(p + n, t2, strlen(t2)), n += strlen(t2);
    p[n++] = 0xc0, p[n++] = (uint8_t)inst;
    p[n++] = 0, p[n++] = 1, p[n++] = 0x80, p[n++] = 1, memset(p + n, 0, 4), n += 4;
    p[n++] = 0, p[n++] = 4, p[n++] = 192, p[n++] = 0, p[n++] = 2, p[n++] = 10;
    n_seen = 0;
    CHECK_EQ(lp2p__mdns_parse(p, n, "_p2p._udp.local", on_txt, NULL), 0);
    CHECK_EQ(n_seen, 2);
    CHECK_STR(seen[0], t1);
    CHECK_STR(seen[1], t2);
    /* every truncation is refused or harmless, never a crash */
    for (size_t k = 0; k < n; k++) CHECK(lp2p__mdns_parse(p, k, "_p2p._udp.local", on_txt, NULL) <= 0);
    /* a query for our service */
    uint8_t q[64] = {0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0};
    size_t qn = 12 + put_name(q + 12, "_p2p._udp.local");
    q[qn++] = 0, q[qn++] = 12, q[qn++] = 0, q[qn++] = 1;
    CHECK_EQ(lp2p__mdns_parse(q, qn, "_p2p._udp.local", NULL, NULL), 1);
    CHECK_EQ(lp2p__mdns_parse(q, qn, "_p2p-x._udp.local", NULL, NULL), 0);
    /* pointer loop, forward-pointing loop, oversized counts, bad label type */
    uint8_t loop[] = {0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 12, 0, 1};
    CHECK_EQ(lp2p__mdns_parse(loop, sizeof loop, "_p2p._udp.local", NULL, NULL), LP2P_ERR_PROTOCOL);
    uint8_t many[] = {0, 0, 0x84, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0};
    CHECK_EQ(lp2p__mdns_parse(many, sizeof many, "_p2p._udp.local", NULL, NULL), LP2P_ERR_PROTOCOL);
    uint8_t badlabel[] = {0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x40, 'a', 0, 0, 12, 0, 1};
    CHECK_EQ(lp2p__mdns_parse(badlabel, sizeof badlabel, "_p2p._udp.local", NULL, NULL), LP2P_ERR_PROTOCOL);
    /* a TXT string running past its record */
    uint8_t txt[64] = {0, 0, 0x84, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 16, 0, 1, 0, 0, 0, 0, 0, 2, 5, 'a'};
    CHECK_EQ(lp2p__mdns_parse(txt, 25, "_p2p._udp.local", on_txt, NULL), LP2P_ERR_PROTOCOL);
}

int main(void) {
    test_parser();
    test_discovery();
    test_private_service();
    TEST_END();
}
