// memberlist-peer: one hashicorp/memberlist node for the gossip benchmark (bench/gossip.ts).
//
// It runs inside a lab host namespace next to (or instead of) a meshd agent and exposes the same kind of
// view meshd's control API gives, on a unix socket, so the harness can query both the same way:
//
//	GET  /members    [{name, addr, state: alive|suspect|dead|left, incarnation, deaths}]
//	GET  /metrics    {bytesOut, bytesIn, packetsOut, packetsIn, streamsOut, streamsIn, streamBytesOut, streamBytesIn, deathsSeen, numMembers, health}
//	GET  /config     the effective memberlist.Config timings (ms)
//	POST /broadcast  {"key":K,"value":V}  a user broadcast (NetworkDB's way of replicating a table write)
//	GET  /kv?key=K   {"key":K,"value":V|null}
//	POST /meta       {"meta":M}  node meta update (an alive broadcast with a new incarnation)
//	POST /leave      graceful leave
//
// Byte counts: the transport is memberlist's own NetTransport wrapped by countingTransport, which counts
// UDP payload bytes of every datagram sent and received (bytesOut/bytesIn, the same definition meshd's
// GossipMetrics use) and TCP payload bytes of every stream (streamBytes*). Wire bytes including IP/UDP
// headers are measured by the harness from the namespace's eth0 counters, for both peers alike.
//
// Member states: this Debian memberlist (0.2.2) keeps Node.State stale (only nodeState.State is updated)
// and Members() hides dead/left nodes, so the view is read from memberlist's internal node list (state and
// incarnation) by reflection under its own nodeLock; if those fields are missing (another memberlist
// version) it falls back to the event delegate's record (alive/dead, incarnation 0).
//
// Encryption: with -key-file, memberlist encrypts every datagram and stream with that AES-256 key (its
// SecretKey; GCM, version 1: 29 bytes a message), as meshd's lab agents do with theirs, so a wire-bytes
// comparison weighs the same crypto on both sides.
//
// Build offline with native-scripts/build-memberlist-peer.sh (GOPATH mode against /usr/share/gocode).
package main

import (
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/hashicorp/memberlist"
)

// ---------------------------------------------------------------- transport byte counting

type counters struct {
	bytesOut, bytesIn, packetsOut, packetsIn             int64
	streamsOut, streamsIn, streamBytesOut, streamBytesIn int64
}

// countingTransport wraps NetTransport: it forwards everything and counts payload bytes.
// It implements only memberlist.Transport; memberlist adapts it with its own shim, as for any
// third-party transport.
type countingTransport struct {
	inner    *memberlist.NetTransport
	c        *counters
	packetCh chan *memberlist.Packet
	streamCh chan net.Conn
	done     chan struct{}
}

func newCountingTransport(inner *memberlist.NetTransport, c *counters) *countingTransport {
	t := &countingTransport{inner: inner, c: c, packetCh: make(chan *memberlist.Packet), streamCh: make(chan net.Conn), done: make(chan struct{})}
	go func() {
		for {
			select {
			case p := <-inner.PacketCh():
				atomic.AddInt64(&c.packetsIn, 1)
				atomic.AddInt64(&c.bytesIn, int64(len(p.Buf)))
				select {
				case t.packetCh <- p:
				case <-t.done:
					return
				}
			case <-t.done:
				return
			}
		}
	}()
	go func() {
		for {
			select {
			case conn := <-inner.StreamCh():
				atomic.AddInt64(&c.streamsIn, 1)
				select {
				case t.streamCh <- &countingConn{Conn: conn, c: c}:
				case <-t.done:
					return
				}
			case <-t.done:
				return
			}
		}
	}()
	return t
}

func (t *countingTransport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	return t.inner.FinalAdvertiseAddr(ip, port)
}

func (t *countingTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	ts, err := t.inner.WriteTo(b, addr)
	if err == nil {
		atomic.AddInt64(&t.c.packetsOut, 1)
		atomic.AddInt64(&t.c.bytesOut, int64(len(b)))
	}
	return ts, err
}

func (t *countingTransport) PacketCh() <-chan *memberlist.Packet { return t.packetCh }

func (t *countingTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	conn, err := t.inner.DialTimeout(addr, timeout)
	if err != nil {
		return nil, err
	}
	atomic.AddInt64(&t.c.streamsOut, 1)
	return &countingConn{Conn: conn, c: t.c}, nil
}

func (t *countingTransport) StreamCh() <-chan net.Conn { return t.streamCh }

func (t *countingTransport) Shutdown() error {
	close(t.done)
	return t.inner.Shutdown()
}

type countingConn struct {
	net.Conn
	c *counters
}

func (k *countingConn) Read(b []byte) (int, error) {
	n, err := k.Conn.Read(b)
	atomic.AddInt64(&k.c.streamBytesIn, int64(n))
	return n, err
}

func (k *countingConn) Write(b []byte) (int, error) {
	n, err := k.Conn.Write(b)
	atomic.AddInt64(&k.c.streamBytesOut, int64(n))
	return n, err
}

// ---------------------------------------------------------------- delegate: meta, user broadcasts, kv

type kvEntry struct {
	Key     string `json:"key"`
	Value   string `json:"value"`
	Version int64  `json:"version"`
}

type kvBroadcast struct{ e kvEntry }

func (b *kvBroadcast) Invalidates(o memberlist.Broadcast) bool {
	ob, ok := o.(*kvBroadcast)
	return ok && ob.e.Key == b.e.Key
}
func (b *kvBroadcast) Message() []byte {
	buf, _ := json.Marshal(b.e)
	return buf
}
func (b *kvBroadcast) Finished() {}

// peer is the delegate and event delegate; kv is last-writer-wins by version, also carried by push-pull.
type peer struct {
	mu     sync.Mutex
	meta   []byte
	kv     map[string]kvEntry
	queue  *memberlist.TransmitLimitedQueue
	deaths map[string]int // NotifyLeave count per member: every time this node saw it dead or left
	seen   map[string]string
	total  int64
}

func (p *peer) NodeMeta(limit int) []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.meta) > limit {
		return p.meta[:limit]
	}
	return p.meta
}

// merge applies an entry if it is newer; returns whether it changed anything. Caller holds mu.
func (p *peer) merge(e kvEntry) bool {
	cur, ok := p.kv[e.Key]
	if ok && (cur.Version > e.Version || (cur.Version == e.Version && cur.Value >= e.Value)) {
		return false
	}
	p.kv[e.Key] = e
	return true
}

func (p *peer) NotifyMsg(b []byte) {
	var e kvEntry
	if json.Unmarshal(b, &e) != nil || e.Key == "" {
		return
	}
	p.mu.Lock()
	changed := p.merge(e)
	p.mu.Unlock()
	if changed {
		// rebroadcast like NetworkDB does, so an update spreads epidemically beyond the origin's budget
		p.queue.QueueBroadcast(&kvBroadcast{e: e})
	}
}

func (p *peer) GetBroadcasts(overhead, limit int) [][]byte {
	return p.queue.GetBroadcasts(overhead, limit)
}

func (p *peer) LocalState(join bool) []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	all := make([]kvEntry, 0, len(p.kv))
	for _, e := range p.kv {
		all = append(all, e)
	}
	buf, _ := json.Marshal(all)
	return buf
}

func (p *peer) MergeRemoteState(buf []byte, join bool) {
	var all []kvEntry
	if json.Unmarshal(buf, &all) != nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range all {
		p.merge(e)
	}
}

func (p *peer) NotifyJoin(n *memberlist.Node) {
	p.mu.Lock()
	p.seen[n.Name] = "alive"
	p.mu.Unlock()
}
func (p *peer) NotifyUpdate(n *memberlist.Node) {}
func (p *peer) NotifyLeave(n *memberlist.Node) {
	p.mu.Lock()
	p.deaths[n.Name]++
	p.total++
	p.seen[n.Name] = "dead"
	p.mu.Unlock()
}

// ---------------------------------------------------------------- member view

type memberView struct {
	Name        string `json:"name"`
	Addr        string `json:"addr"`
	State       string `json:"state"`
	Incarnation *int64 `json:"incarnation"`
	Deaths      int    `json:"deaths"`
}

var stateNames = []string{"alive", "suspect", "dead", "left"}

// internalView reads memberlist's own node list (m.nodes []*nodeState) under m.nodeLock.
func internalView(m *memberlist.Memberlist) ([]memberView, bool) {
	v := reflect.ValueOf(m).Elem()
	lockF, nodesF := v.FieldByName("nodeLock"), v.FieldByName("nodes")
	if !lockF.IsValid() || !nodesF.IsValid() || lockF.Type() != reflect.TypeOf(sync.RWMutex{}) || nodesF.Kind() != reflect.Slice {
		return nil, false
	}
	lock := (*sync.RWMutex)(unsafe.Pointer(lockF.UnsafeAddr()))
	lock.RLock()
	defer lock.RUnlock()
	out := make([]memberView, 0, nodesF.Len())
	for i := 0; i < nodesF.Len(); i++ {
		ns := nodesF.Index(i).Elem()
		node := ns.FieldByName("Node")
		inc, st := ns.FieldByName("Incarnation"), ns.FieldByName("State")
		if !node.IsValid() || !inc.IsValid() || !st.IsValid() {
			return nil, false
		}
		name := node.FieldByName("Name").String()
		ip := net.IP(node.FieldByName("Addr").Bytes())
		port := node.FieldByName("Port").Uint()
		state := "unknown"
		if s := st.Int(); s >= 0 && int(s) < len(stateNames) {
			state = stateNames[s]
		}
		incv := int64(inc.Uint())
		out = append(out, memberView{Name: name, Addr: net.JoinHostPort(ip.String(), fmt.Sprint(port)), State: state, Incarnation: &incv})
	}
	return out, true
}

func view(m *memberlist.Memberlist, p *peer) []memberView {
	out, ok := internalView(m)
	if !ok {
		alive := map[string]*memberlist.Node{}
		for _, n := range m.Members() {
			alive[n.Name] = n
		}
		p.mu.Lock()
		for name, st := range p.seen {
			mv := memberView{Name: name, State: st}
			if n, ok := alive[name]; ok {
				mv.State, mv.Addr = "alive", n.Address()
			}
			out = append(out, mv)
		}
		p.mu.Unlock()
	}
	p.mu.Lock()
	for i := range out {
		out[i].Deaths = p.deaths[out[i].Name]
	}
	p.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ---------------------------------------------------------------- config presets

// timings carries the knobs meshd's GossipConfig shares with memberlist.Config, in ms.
type timings struct {
	ProbeIntervalMs, ProbeTimeoutMs, IndirectChecks, RetransmitMult, SuspicionMult, SuspicionMaxTimeoutMult int
	GossipIntervalMs, GossipNodes, GossipToTheDeadMs, PushPullIntervalMs, AwarenessMaxMultiplier            int
	TCPTimeoutMs, UDPBufferSize, TCPFallback                                                                int
}

// presetLAN is memberlist.DefaultLANConfig; presetLocal is meshd's `local` preset
// (src/core/gossip/config.ts LOCAL), NOT memberlist.DefaultLocalConfig, so both peers run the same timings.
// (values as of meshd commit 7b0a09a). The harness passes every value explicitly from the compiled config.ts
// (bench/lib/netns-cluster.ts memberlistFlags), so the two cannot drift in a benchmark run.
// Not mapped: meshd's deadNodeReclaimMs/tombstoneReapMs/reconnectIntervalMs (memberlist's DeadNodeReclaimTime
// means something else — when a dead name may rejoin from a new address — and stays at its default 0).
var presetLAN = timings{1000, 500, 3, 4, 4, 6, 200, 3, 30_000, 30_000, 8, 10_000, 1400, 1}
var presetLocal = timings{200, 100, 3, 3, 4, 6, 100, 3, 15_000, 5_000, 8, 1_000, 1400, 1}

func ms(v int) time.Duration { return time.Duration(v) * time.Millisecond }

func (t timings) apply(c *memberlist.Config) {
	c.ProbeInterval = ms(t.ProbeIntervalMs)
	c.ProbeTimeout = ms(t.ProbeTimeoutMs)
	c.IndirectChecks = t.IndirectChecks
	c.RetransmitMult = t.RetransmitMult
	c.SuspicionMult = t.SuspicionMult
	c.SuspicionMaxTimeoutMult = t.SuspicionMaxTimeoutMult
	c.GossipInterval = ms(t.GossipIntervalMs)
	c.GossipNodes = t.GossipNodes
	c.GossipToTheDeadTime = ms(t.GossipToTheDeadMs)
	c.PushPullInterval = ms(t.PushPullIntervalMs)
	c.AwarenessMaxMultiplier = t.AwarenessMaxMultiplier
	c.TCPTimeout = ms(t.TCPTimeoutMs)
	c.UDPBufferSize = t.UDPBufferSize
	c.DisableTcpPings = t.TCPFallback == 0
}

// ---------------------------------------------------------------- main

func main() {
	name := flag.String("name", "", "node name (required)")
	bind := flag.String("bind", "", "IP to bind and advertise (required)")
	port := flag.Int("port", 7947, "UDP+TCP gossip port")
	join := flag.String("join", "", "comma-separated ip:port seeds")
	preset := flag.String("preset", "local", "lan (memberlist DefaultLANConfig) | local (meshd's local preset)")
	sock := flag.String("sock", "", "unix socket path for the HTTP view (required)")
	verbose := flag.Bool("v", false, "memberlist logs to stderr")
	joinTimeout := flag.Duration("join-timeout", 30*time.Second, "keep retrying the join this long")
	keyFile := flag.String("key-file", "", "file holding a base64 AES-256 key: encrypt like meshd (memberlist SecretKey); the key is never an argument")
	t := presetLocal
	// every timing can be overridden; the harness passes all of them from meshd's config.ts
	type knob struct {
		name string
		p    *int
	}
	knobs := []knob{
		{"probe-interval-ms", &t.ProbeIntervalMs}, {"probe-timeout-ms", &t.ProbeTimeoutMs}, {"indirect-checks", &t.IndirectChecks},
		{"retransmit-mult", &t.RetransmitMult}, {"suspicion-mult", &t.SuspicionMult}, {"suspicion-max-timeout-mult", &t.SuspicionMaxTimeoutMult},
		{"gossip-interval-ms", &t.GossipIntervalMs}, {"gossip-nodes", &t.GossipNodes}, {"gossip-to-the-dead-ms", &t.GossipToTheDeadMs},
		{"push-pull-interval-ms", &t.PushPullIntervalMs}, {"awareness-max-multiplier", &t.AwarenessMaxMultiplier},
		{"tcp-timeout-ms", &t.TCPTimeoutMs}, {"udp-buffer-size", &t.UDPBufferSize},
		{"tcp-fallback", &t.TCPFallback},
	}
	overrides := map[string]*int{}
	for _, k := range knobs {
		overrides[k.name] = new(int)
		flag.IntVar(overrides[k.name], k.name, -1, "override (-1 = preset value)")
	}
	flag.Parse()
	if *name == "" || *bind == "" || *sock == "" {
		fmt.Fprintln(os.Stderr, "memberlist-peer: -name, -bind and -sock are required")
		os.Exit(2)
	}
	switch *preset {
	case "local":
		t = presetLocal
	case "lan":
		t = presetLAN
	default:
		fmt.Fprintf(os.Stderr, "memberlist-peer: unknown -preset %q (lan|local)\n", *preset)
		os.Exit(2)
	}
	for _, k := range knobs {
		if v := *overrides[k.name]; v >= 0 {
			*k.p = v
		}
	}

	logOut := io.Discard
	if *verbose {
		logOut = os.Stderr
	}
	logger := log.New(logOut, *name+" ", log.LstdFlags|log.Lmicroseconds)

	conf := memberlist.DefaultLANConfig()
	t.apply(conf)
	conf.Name = *name
	conf.BindAddr, conf.BindPort = *bind, *port
	conf.AdvertiseAddr, conf.AdvertisePort = *bind, *port
	conf.Logger = logger
	conf.LogOutput = nil
	if *keyFile != "" {
		raw, err := os.ReadFile(*keyFile)
		if err == nil {
			conf.SecretKey, err = base64.StdEncoding.DecodeString(strings.TrimSpace(string(raw)))
		}
		if err != nil || len(conf.SecretKey) != 32 {
			fmt.Fprintf(os.Stderr, "memberlist-peer: -key-file %s: want base64 of 32 bytes (%v)\n", *keyFile, err)
			os.Exit(2)
		}
	}

	c := &counters{}
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{*bind}, BindPort: *port, Logger: logger})
	if err != nil {
		fmt.Fprintf(os.Stderr, "memberlist-peer: transport: %v\n", err)
		os.Exit(1)
	}
	conf.Transport = newCountingTransport(nt, c)

	// the queue must exist before Create: memberlist's gossip loop calls GetBroadcasts at once
	var ml atomic.Pointer[memberlist.Memberlist]
	numNodes := func() int {
		if x := ml.Load(); x != nil {
			return x.NumMembers()
		}
		return 1
	}
	p := &peer{kv: map[string]kvEntry{}, deaths: map[string]int{}, seen: map[string]string{},
		queue: &memberlist.TransmitLimitedQueue{NumNodes: numNodes, RetransmitMult: conf.RetransmitMult}}
	conf.Delegate = p
	conf.Events = p
	m, err := memberlist.Create(conf)
	if err != nil {
		fmt.Fprintf(os.Stderr, "memberlist-peer: create: %v\n", err)
		os.Exit(1)
	}
	ml.Store(m)

	if *join != "" {
		seeds := strings.Split(*join, ",")
		deadline := time.Now().Add(*joinTimeout)
		for {
			if _, err := m.Join(seeds); err == nil {
				break
			} else if time.Now().After(deadline) {
				fmt.Fprintf(os.Stderr, "memberlist-peer: join %v: %v\n", seeds, err)
				os.Exit(1)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	_ = os.Remove(*sock)
	ln, err := net.Listen("unix", *sock)
	if err != nil {
		fmt.Fprintf(os.Stderr, "memberlist-peer: listen %s: %v\n", *sock, err)
		os.Exit(1)
	}
	started := time.Now()
	mux := http.NewServeMux()
	writeJSON := func(w http.ResponseWriter, v interface{}) {
		w.Header().Set("content-type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("/members", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, view(m, p)) })
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		deaths := p.total
		p.mu.Unlock()
		writeJSON(w, map[string]int64{
			"bytesOut": atomic.LoadInt64(&c.bytesOut), "bytesIn": atomic.LoadInt64(&c.bytesIn),
			"packetsOut": atomic.LoadInt64(&c.packetsOut), "packetsIn": atomic.LoadInt64(&c.packetsIn),
			"streamsOut": atomic.LoadInt64(&c.streamsOut), "streamsIn": atomic.LoadInt64(&c.streamsIn),
			"streamBytesOut": atomic.LoadInt64(&c.streamBytesOut), "streamBytesIn": atomic.LoadInt64(&c.streamBytesIn),
			"deathsSeen": deaths, "numMembers": int64(m.NumMembers()), "uptimeMs": time.Since(started).Milliseconds(),
			"health": int64(m.GetHealthScore()),
		})
	})
	mux.HandleFunc("/config", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, t) })
	mux.HandleFunc("/broadcast", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, `{"code":"MESHD_BAD_ARGUMENT","message":"POST only"}`, http.StatusMethodNotAllowed)
			return
		}
		var body struct{ Key, Value string }
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Key == "" {
			http.Error(w, `{"code":"MESHD_BAD_ARGUMENT","message":"body must be {\"key\":K,\"value\":V}"}`, http.StatusBadRequest)
			return
		}
		p.mu.Lock()
		e := kvEntry{Key: body.Key, Value: body.Value, Version: p.kv[body.Key].Version + 1}
		p.merge(e)
		p.mu.Unlock()
		p.queue.QueueBroadcast(&kvBroadcast{e: e})
		writeJSON(w, e)
	})
	mux.HandleFunc("/kv", func(w http.ResponseWriter, r *http.Request) {
		key := r.URL.Query().Get("key")
		p.mu.Lock()
		e, ok := p.kv[key]
		p.mu.Unlock()
		if !ok {
			writeJSON(w, map[string]interface{}{"key": key, "value": nil})
			return
		}
		writeJSON(w, e)
	})
	mux.HandleFunc("/meta", func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Meta string }
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, `{"code":"MESHD_BAD_ARGUMENT","message":"body must be {\"meta\":M}"}`, http.StatusBadRequest)
			return
		}
		p.mu.Lock()
		p.meta = []byte(body.Meta)
		p.mu.Unlock()
		if err := m.UpdateNode(conf.TCPTimeout); err != nil {
			http.Error(w, fmt.Sprintf(`{"code":"MESHD_INTERNAL","message":%q}`, err.Error()), http.StatusInternalServerError)
			return
		}
		writeJSON(w, map[string]bool{"ok": true})
	})
	mux.HandleFunc("/leave", func(w http.ResponseWriter, r *http.Request) {
		err := m.Leave(conf.TCPTimeout)
		writeJSON(w, map[string]interface{}{"ok": err == nil})
	})
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	fmt.Printf("memberlist-peer %s ready on %s:%d sock %s\n", *name, *bind, *port, *sock)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	_ = m.Shutdown()
	_ = ln.Close()
	_ = os.Remove(*sock)
}
