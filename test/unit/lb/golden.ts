/**
 * Golden renders of fixtures.ts base() and base() → changed() (kube-proxy style: the exact text
 * sent to the kernel tools). Reviewed by hand and loaded into a real namespace by the
 * integration test; regenerate only deliberately.
 */
export const NFT_FULL = `table ip meshd-lb
delete table ip meshd-lb
table ip meshd-lb {
	map vips {
		type ipv4_addr . inet_proto . inet_service : mark
		size 256
		elements = { 10.9.0.10 . tcp . 80 comment "web tcp/80" : 0x00010002,
			     10.9.0.11 . tcp . 53 comment "dns tcp/53" : 0x00020001,
			     10.9.0.11 . udp . 53 comment "dns udp/53" : 0x00018001 }
	}
	set empty-vips {
		type ipv4_addr . inet_proto . inet_service
		size 256
		elements = { 10.9.0.12 . tcp . 443 comment "api tcp/443" }
	}
	map ingress {
		type inet_proto . inet_service : mark
		size 256
		elements = { tcp . 8080 comment "svc-web tcp/8080 cluster" : 0x00016002,
			     tcp . 8081 comment "svc-web tcp/8081 local" : 0x00022001 }
	}
	set empty-ingress {
		type inet_proto . inet_service
		size 256
	}
	map vips-rr {
		type ipv4_addr . inet_proto . inet_service : mark
		size 256
	}
	map vips-sh {
		type ipv4_addr . inet_proto . inet_service : mark
		size 256
	}
	map ingress-rr {
		type inet_proto . inet_service : mark
		size 256
	}
	map ingress-sh {
		type inet_proto . inet_service : mark
		size 256
	}
	map pick {
		type mark : verdict
		elements = { 0x00000001 : goto pick-vip-tcp-1,
			     0x00000002 : goto pick-vip-tcp-2,
			     0x00002001 : goto pick-ing-tcp-1,
			     0x00006002 : goto pick-ing-tcp-2-masq,
			     0x00008001 : goto pick-vip-udp-1 }
	}
	map pick-rr {
		type mark : verdict
	}
	map pick-sh {
		type mark : verdict
	}
	map slots {
		typeof numgen random mod 2 : verdict
		elements = { 0 : jump slot-0,
			     1 : jump slot-1 }
	}
	map vip-targets-tcp {
		type mark : ipv4_addr
		size 256
		elements = { 0x00010000 : 10.0.1.2,
			     0x00010001 : 10.0.1.4,
			     0x00020000 : 10.0.1.20 }
	}
	map vip-ports-tcp {
		type mark : inet_service
		size 256
		elements = { 0x00010000 : 8080,
			     0x00020000 : 53 }
	}
	map ingress-targets-tcp {
		type mark : ipv4_addr . inet_service
		size 256
		elements = { 0x00016000 : 10.0.1.2 . 8080,
			     0x00016001 : 10.0.1.4 . 8080,
			     0x00022000 : 10.0.1.2 . 8080 }
	}
	map vip-targets-udp {
		type mark : ipv4_addr
		size 256
		elements = { 0x00018000 : 10.0.1.20 }
	}
	map vip-ports-udp {
		type mark : inet_service
		size 256
		elements = { 0x00018000 : 53 }
	}
	map ingress-targets-udp {
		type mark : ipv4_addr . inet_service
		size 256
	}
	chain vip-dnat-tcp {
		meta l4proto tcp dnat ip to meta mark map @vip-targets-tcp : meta mark & 0xffffe000 map @vip-ports-tcp
	}
	chain ingress-dnat-tcp {
		meta l4proto tcp dnat ip to meta mark map @ingress-targets-tcp
	}
	chain vip-dnat-udp {
		meta l4proto udp dnat ip to meta mark map @vip-targets-udp : meta mark & 0xffffe000 map @vip-ports-udp
	}
	chain ingress-dnat-udp {
		meta l4proto udp dnat ip to meta mark map @ingress-targets-udp
	}
	chain reject-empty {
		meta l4proto tcp reject with tcp reset
		reject
	}
	chain empty-check {
		ip daddr . meta l4proto . th dport @empty-vips goto reject-empty
		fib daddr type local meta l4proto . th dport @empty-ingress goto reject-empty
	}
	chain filter-pre {
		type filter hook prerouting priority -110; policy accept;
		ct state new jump empty-check
	}
	chain filter-out {
		type filter hook output priority -110; policy accept;
		ct state new jump empty-check
	}
	chain dispatch {
		meta mark set ip daddr . meta l4proto . th dport map @vips meta mark & 0x0000ffff vmap @pick
		fib daddr type local meta mark set meta l4proto . th dport map @ingress meta mark & 0x0000ffff vmap @pick
		meta mark set ip daddr . meta l4proto . th dport map @vips-rr meta mark & 0x0000ffff vmap @pick-rr
		fib daddr type local meta mark set meta l4proto . th dport map @ingress-rr meta mark & 0x0000ffff vmap @pick-rr
		meta mark set ip daddr . meta l4proto . th dport map @vips-sh meta mark & 0x0000ffff vmap @pick-sh
		fib daddr type local meta mark set meta l4proto . th dport map @ingress-sh meta mark & 0x0000ffff vmap @pick-sh
	}
	chain nat-pre {
		type nat hook prerouting priority -100; policy accept;
		jump dispatch
	}
	chain nat-out {
		type nat hook output priority -100; policy accept;
		jump dispatch
	}
	chain nat-post {
		type nat hook postrouting priority 100; policy accept;
		meta mark & 0x4000 == 0x4000 masquerade
	}
	chain slot-0 {
		meta mark set meta mark & 0xffffe000 | 0
	}
	chain slot-1 {
		meta mark set meta mark & 0xffffe000 | 1
	}
	chain pick-vip-tcp-1 {
		numgen random mod 1 vmap @slots
		goto vip-dnat-tcp
	}
	chain pick-vip-tcp-2 {
		numgen random mod 2 vmap @slots
		goto vip-dnat-tcp
	}
	chain pick-ing-tcp-1 {
		numgen random mod 1 vmap @slots
		goto ingress-dnat-tcp
	}
	chain pick-ing-tcp-2-masq {
		numgen random mod 2 vmap @slots
		goto ingress-dnat-tcp
	}
	chain pick-vip-udp-1 {
		numgen random mod 1 vmap @slots
		goto vip-dnat-udp
	}
}
table ip6 meshd-lb6
delete table ip6 meshd-lb6
`;

export const NFT_INCREMENTAL = `add chain ip meshd-lb slot-2
add rule ip meshd-lb slot-2 meta mark set meta mark & 0xffffe000 | 2
add element ip meshd-lb slots { 2 : jump slot-2 }
add chain ip meshd-lb pick-vip-tcp-3
add rule ip meshd-lb pick-vip-tcp-3 numgen random mod 3 vmap @slots
add rule ip meshd-lb pick-vip-tcp-3 goto vip-dnat-tcp
add element ip meshd-lb pick { 0x00000003 : goto pick-vip-tcp-3 }
delete element ip meshd-lb vips { 10.9.0.10 . tcp . 80 }
delete element ip meshd-lb vip-ports-tcp { 0x00020000 }
delete element ip meshd-lb vips { 10.9.0.11 . tcp . 53 }
delete element ip meshd-lb vip-targets-tcp { 0x00020000 }
delete element ip meshd-lb vip-ports-udp { 0x00018000 }
delete element ip meshd-lb vips { 10.9.0.11 . udp . 53 }
delete element ip meshd-lb vip-targets-udp { 0x00018000 }
delete element ip meshd-lb empty-vips { 10.9.0.12 . tcp . 443 }
delete element ip meshd-lb ingress { tcp . 8081 }
delete element ip meshd-lb ingress-targets-tcp { 0x00022000 }
add element ip meshd-lb vips { 10.9.0.13 . tcp . 5000 comment "new tcp/5000" : 0x00040001 }
add element ip meshd-lb vip-targets-tcp { 0x00040000 : 10.0.1.50 }
add element ip meshd-lb vip-ports-tcp { 0x00040000 : 5000 }
add element ip meshd-lb vips { 10.9.0.10 . tcp . 80 comment "web tcp/80" : 0x00010003 }
add element ip meshd-lb vip-targets-tcp { 0x00010002 : 10.0.1.5 }
add element ip meshd-lb empty-vips { 10.9.0.11 . tcp . 53 comment "dns tcp/53" }
add element ip meshd-lb empty-vips { 10.9.0.11 . udp . 53 comment "dns udp/53" }
add element ip meshd-lb vip-ports-tcp { 0x00030000 : 8443 }
add element ip meshd-lb vips { 10.9.0.12 . tcp . 443 comment "api tcp/443" : 0x00030001 }
add element ip meshd-lb vip-targets-tcp { 0x00030000 : 10.0.1.40 }
delete element ip meshd-lb pick { 0x00000002 }
flush chain ip meshd-lb pick-vip-tcp-2
delete chain ip meshd-lb pick-vip-tcp-2
delete element ip meshd-lb pick { 0x00002001 }
flush chain ip meshd-lb pick-ing-tcp-1
delete chain ip meshd-lb pick-ing-tcp-1
delete element ip meshd-lb pick { 0x00008001 }
flush chain ip meshd-lb pick-vip-udp-1
delete chain ip meshd-lb pick-vip-udp-1
`;

export const IPVS_FULL = `-A -f 256 -s rr
-a -f 256 -r 10.0.1.2:8080 -m -w 1
-a -f 256 -r 10.0.1.4:8080 -m -w 1
-A -f 257 -s rr
-a -f 257 -r 10.0.1.2:8080 -m -w 1
-A -f 258 -s rr
-a -f 258 -r 10.0.1.2:8080 -m -w 1
-a -f 258 -r 10.0.1.4:8080 -m -w 1
-a -f 258 -r 10.0.1.3:8080 -m -w 0
-A -f 259 -s rr
-a -f 259 -r 10.0.1.20:53 -m -w 1
-A -f 260 -s rr
-a -f 260 -r 10.0.1.20:53 -m -w 1
-A -f 261 -s rr
`;

/**
 * A full resync of base() against a drifted kernel (IPVS_DRIFTED_SAVE, marks as IPVS_FULL): only the
 * difference — stale services deleted, the missing one added, reals added/re-weighted/deleted.
 */
export const IPVS_DRIFTED_SAVE = `-A -f 256 -s rr
-a -f 256 -r 10.0.1.2:8080 -m -w 1
-a -f 256 -r 10.0.1.4:8080 -m -w 1
-A -f 257 -s rr
-a -f 257 -r 10.0.1.2:8080 -m -w 1
-A -f 258 -s wlc
-a -f 258 -r 10.0.1.2:8080 -m -w 1
-a -f 258 -r 10.0.1.3:8080 -m -w 1
-a -f 258 -r 10.0.1.9:8080 -m -w 1
-A -f 259 -s rr
-a -f 259 -r 10.0.1.20:53 -g -w 1
-A -f 260 -s rr
-a -f 260 -r 10.0.1.20:53 -m -w 1
-A -f 300 -s rr
-a -f 300 -r 10.0.1.7:80 -m -w 1
-A -t 1.2.3.4:80 -s rr
`;

export const IPVS_RESYNC = `-D -f 300
-D -t 1.2.3.4:80
-E -f 258 -s rr
-a -f 258 -r 10.0.1.4:8080 -m -w 1
-e -f 258 -r 10.0.1.3:8080 -m -w 0
-d -f 258 -r 10.0.1.9:8080
-e -f 259 -r 10.0.1.20:53 -m -w 1
-A -f 261 -s rr
`;

export const IPVS_FULL_NFT = `table ip meshd-ipvs
delete table ip meshd-ipvs
table ip meshd-ipvs {
	map vip-marks {
		type ipv4_addr . inet_proto . inet_service : mark
		elements = { 10.9.0.10 . tcp . 80 : 258, 10.9.0.11 . tcp . 53 : 259, 10.9.0.11 . udp . 53 : 260, 10.9.0.12 . tcp . 443 : 261 }
	}
	map ingress-marks {
		type inet_proto . inet_service : mark
		elements = { tcp . 8080 : 256, tcp . 8081 : 257 }
	}
	set snat-marks {
		type mark
		elements = { 256 }
	}
	set vip-snat-marks {
		type mark
		elements = { 258, 259, 260, 261 }
	}
	chain mangle-pre {
		type filter hook prerouting priority -150; policy accept;
		fib daddr type local meta mark set meta l4proto . th dport map @ingress-marks
		meta mark set ip daddr . meta l4proto . th dport map @vip-marks
	}
	chain mangle-out {
		type route hook output priority -150; policy accept;
		fib daddr type local meta mark set meta l4proto . th dport map @ingress-marks
		meta mark set ip daddr . meta l4proto . th dport map @vip-marks
	}
	chain nat-post {
		type nat hook postrouting priority 100; policy accept;
		meta mark @snat-marks masquerade
		meta mark @vip-snat-marks fib saddr type local masquerade
	}
}
table ip6 meshd-ipvs6
delete table ip6 meshd-ipvs6
`;

export const IPVS_FULL_ADDRS = `address replace 10.9.0.10/32 dev lo
address replace 10.9.0.11/32 dev lo
address replace 10.9.0.12/32 dev lo
`;

export const IPVS_INCREMENTAL = `-D -f 257
-A -f 262 -s rr
-a -f 262 -r 10.0.1.50:5000 -m -w 1
-a -f 258 -r 10.0.1.5:8080 -m -w 1
-d -f 258 -r 10.0.1.3:8080
-d -f 259 -r 10.0.1.20:53
-d -f 260 -r 10.0.1.20:53
-a -f 261 -r 10.0.1.40:8443 -m -w 1
`;

export const IPVS_INCREMENTAL_NFT = `add element ip meshd-ipvs vip-marks { 10.9.0.13 . tcp . 5000 : 262 }
add element ip meshd-ipvs vip-snat-marks { 262 }
delete element ip meshd-ipvs ingress-marks { tcp . 8081 }
`;

export const IPVS_INCREMENTAL_ADDRS = `address replace 10.9.0.13/32 dev lo
`;


/** hostMode(): a node's own namespace with one host-mode publish (DNAT only, local tasks). */
export const NFT_HOST_FULL = `table ip meshd-lb
delete table ip meshd-lb
table ip meshd-lb {
	map vips {
		type ipv4_addr . inet_proto . inet_service : mark
		size 256
	}
	set empty-vips {
		type ipv4_addr . inet_proto . inet_service
		size 256
	}
	map ingress {
		type inet_proto . inet_service : mark
		size 256
		elements = { tcp . 8080 comment "svc-h tcp/8080 host" : 0x00012002 }
	}
	set empty-ingress {
		type inet_proto . inet_service
		size 256
	}
	map vips-rr {
		type ipv4_addr . inet_proto . inet_service : mark
		size 256
	}
	map vips-sh {
		type ipv4_addr . inet_proto . inet_service : mark
		size 256
	}
	map ingress-rr {
		type inet_proto . inet_service : mark
		size 256
	}
	map ingress-sh {
		type inet_proto . inet_service : mark
		size 256
	}
	map pick {
		type mark : verdict
		elements = { 0x00002002 : goto pick-ing-tcp-2 }
	}
	map pick-rr {
		type mark : verdict
	}
	map pick-sh {
		type mark : verdict
	}
	map slots {
		typeof numgen random mod 2 : verdict
		elements = { 0 : jump slot-0,
			     1 : jump slot-1 }
	}
	map vip-targets-tcp {
		type mark : ipv4_addr
		size 256
	}
	map vip-ports-tcp {
		type mark : inet_service
		size 256
	}
	map ingress-targets-tcp {
		type mark : ipv4_addr . inet_service
		size 256
		elements = { 0x00012000 : 10.0.1.60 . 80,
			     0x00012001 : 10.0.1.61 . 80 }
	}
	map vip-targets-udp {
		type mark : ipv4_addr
		size 256
	}
	map vip-ports-udp {
		type mark : inet_service
		size 256
	}
	map ingress-targets-udp {
		type mark : ipv4_addr . inet_service
		size 256
	}
	chain vip-dnat-tcp {
		meta l4proto tcp dnat ip to meta mark map @vip-targets-tcp : meta mark & 0xffffe000 map @vip-ports-tcp
	}
	chain ingress-dnat-tcp {
		meta l4proto tcp dnat ip to meta mark map @ingress-targets-tcp
	}
	chain vip-dnat-udp {
		meta l4proto udp dnat ip to meta mark map @vip-targets-udp : meta mark & 0xffffe000 map @vip-ports-udp
	}
	chain ingress-dnat-udp {
		meta l4proto udp dnat ip to meta mark map @ingress-targets-udp
	}
	chain reject-empty {
		meta l4proto tcp reject with tcp reset
		reject
	}
	chain empty-check {
		ip daddr . meta l4proto . th dport @empty-vips goto reject-empty
		fib daddr type local meta l4proto . th dport @empty-ingress goto reject-empty
	}
	chain filter-pre {
		type filter hook prerouting priority -110; policy accept;
		ct state new jump empty-check
	}
	chain filter-out {
		type filter hook output priority -110; policy accept;
		ct state new jump empty-check
	}
	chain dispatch {
		meta mark set ip daddr . meta l4proto . th dport map @vips meta mark & 0x0000ffff vmap @pick
		fib daddr type local meta mark set meta l4proto . th dport map @ingress meta mark & 0x0000ffff vmap @pick
		meta mark set ip daddr . meta l4proto . th dport map @vips-rr meta mark & 0x0000ffff vmap @pick-rr
		fib daddr type local meta mark set meta l4proto . th dport map @ingress-rr meta mark & 0x0000ffff vmap @pick-rr
		meta mark set ip daddr . meta l4proto . th dport map @vips-sh meta mark & 0x0000ffff vmap @pick-sh
		fib daddr type local meta mark set meta l4proto . th dport map @ingress-sh meta mark & 0x0000ffff vmap @pick-sh
	}
	chain nat-pre {
		type nat hook prerouting priority -100; policy accept;
		jump dispatch
	}
	chain nat-out {
		type nat hook output priority -100; policy accept;
		jump dispatch
	}
	chain nat-post {
		type nat hook postrouting priority 100; policy accept;
		meta mark & 0x4000 == 0x4000 masquerade
	}
	chain slot-0 {
		meta mark set meta mark & 0xffffe000 | 0
	}
	chain slot-1 {
		meta mark set meta mark & 0xffffe000 | 1
	}
	chain pick-ing-tcp-2 {
		numgen random mod 2 vmap @slots
		goto ingress-dnat-tcp
	}
}
table ip6 meshd-lb6
delete table ip6 meshd-lb6
`;

export const IPVS_HOST_FULL = `-A -f 256 -s rr
-a -f 256 -r 10.0.1.60:80 -m -w 1
-a -f 256 -r 10.0.1.61:80 -m -w 1
-a -f 256 -r 10.0.1.62:80 -m -w 0
`;

export const IPVS_HOST_FULL_NFT = `table ip meshd-ipvs
delete table ip meshd-ipvs
table ip meshd-ipvs {
	map vip-marks {
		type ipv4_addr . inet_proto . inet_service : mark
	}
	map ingress-marks {
		type inet_proto . inet_service : mark
		elements = { tcp . 8080 : 256 }
	}
	set snat-marks {
		type mark
	}
	set vip-snat-marks {
		type mark
	}
	chain mangle-pre {
		type filter hook prerouting priority -150; policy accept;
		fib daddr type local meta mark set meta l4proto . th dport map @ingress-marks
		meta mark set ip daddr . meta l4proto . th dport map @vip-marks
	}
	chain mangle-out {
		type route hook output priority -150; policy accept;
		fib daddr type local meta mark set meta l4proto . th dport map @ingress-marks
		meta mark set ip daddr . meta l4proto . th dport map @vip-marks
	}
	chain nat-post {
		type nat hook postrouting priority 100; policy accept;
		meta mark @snat-marks masquerade
		meta mark @vip-snat-marks fib saddr type local masquerade
	}
}
table ip6 meshd-ipvs6
delete table ip6 meshd-ipvs6
`;

/** balanced(): per-algorithm sets and pick maps, a weighted (canary) VIP, locality `node`. */
export const NFT_BALANCED_FULL = `table ip meshd-lb
delete table ip meshd-lb
table ip meshd-lb {
	map vips {
		type ipv4_addr . inet_proto . inet_service : mark
		size 256
		elements = { 10.9.0.21 . tcp . 80 comment "canary tcp/80" : 0x00020014 }
	}
	set empty-vips {
		type ipv4_addr . inet_proto . inet_service
		size 256
	}
	map ingress {
		type inet_proto . inet_service : mark
		size 256
		elements = { tcp . 9001 comment "svc-loc tcp/9001 cluster" : 0x00026001 }
	}
	set empty-ingress {
		type inet_proto . inet_service
		size 256
	}
	map vips-rr {
		type ipv4_addr . inet_proto . inet_service : mark
		size 256
		elements = { 10.9.0.20 . tcp . 80 comment "rr tcp/80" : 0x00010002 }
	}
	map vips-sh {
		type ipv4_addr . inet_proto . inet_service : mark
		size 256
	}
	map ingress-rr {
		type inet_proto . inet_service : mark
		size 256
	}
	map ingress-sh {
		type inet_proto . inet_service : mark
		size 256
		elements = { tcp . 9000 comment "svc-sh tcp/9000 cluster" : 0x00016003 }
	}
	map pick {
		type mark : verdict
		elements = { 0x00000014 : goto pick-vip-tcp-20,
			     0x00006001 : goto pick-ing-tcp-1-masq }
	}
	map pick-rr {
		type mark : verdict
		elements = { 0x00000002 : goto pick-rr-vip-tcp-2 }
	}
	map pick-sh {
		type mark : verdict
		elements = { 0x00006003 : goto pick-sh-ing-tcp-3-masq }
	}
	map slots {
		typeof numgen random mod 2 : verdict
		elements = { 0 : jump slot-0,
			     1 : jump slot-1,
			     2 : jump slot-2,
			     3 : jump slot-3,
			     4 : jump slot-4,
			     5 : jump slot-5,
			     6 : jump slot-6,
			     7 : jump slot-7,
			     8 : jump slot-8,
			     9 : jump slot-9,
			     10 : jump slot-10,
			     11 : jump slot-11,
			     12 : jump slot-12,
			     13 : jump slot-13,
			     14 : jump slot-14,
			     15 : jump slot-15,
			     16 : jump slot-16,
			     17 : jump slot-17,
			     18 : jump slot-18,
			     19 : jump slot-19 }
	}
	map vip-targets-tcp {
		type mark : ipv4_addr
		size 256
		elements = { 0x00010000 : 10.0.2.1,
			     0x00010001 : 10.0.2.2,
			     0x00020000 : 10.0.2.11,
			     0x00020001 : 10.0.2.11,
			     0x00020002 : 10.0.2.11,
			     0x00020003 : 10.0.2.11,
			     0x00020004 : 10.0.2.11,
			     0x00020005 : 10.0.2.11,
			     0x00020006 : 10.0.2.11,
			     0x00020007 : 10.0.2.11,
			     0x00020008 : 10.0.2.11,
			     0x00020009 : 10.0.2.12,
			     0x0002000a : 10.0.2.12,
			     0x0002000b : 10.0.2.12,
			     0x0002000c : 10.0.2.12,
			     0x0002000d : 10.0.2.12,
			     0x0002000e : 10.0.2.12,
			     0x0002000f : 10.0.2.12,
			     0x00020010 : 10.0.2.12,
			     0x00020011 : 10.0.2.12,
			     0x00020012 : 10.0.2.13,
			     0x00020013 : 10.0.2.13 }
	}
	map vip-ports-tcp {
		type mark : inet_service
		size 256
		elements = { 0x00010000 : 80,
			     0x00020000 : 80 }
	}
	map ingress-targets-tcp {
		type mark : ipv4_addr . inet_service
		size 256
		elements = { 0x00016000 : 10.0.2.21 . 80,
			     0x00016001 : 10.0.2.22 . 80,
			     0x00016002 : 10.0.2.23 . 80,
			     0x00026000 : 10.0.2.31 . 80 }
	}
	map vip-targets-udp {
		type mark : ipv4_addr
		size 256
	}
	map vip-ports-udp {
		type mark : inet_service
		size 256
	}
	map ingress-targets-udp {
		type mark : ipv4_addr . inet_service
		size 256
	}
	chain vip-dnat-tcp {
		meta l4proto tcp dnat ip to meta mark map @vip-targets-tcp : meta mark & 0xffffe000 map @vip-ports-tcp
	}
	chain ingress-dnat-tcp {
		meta l4proto tcp dnat ip to meta mark map @ingress-targets-tcp
	}
	chain vip-dnat-udp {
		meta l4proto udp dnat ip to meta mark map @vip-targets-udp : meta mark & 0xffffe000 map @vip-ports-udp
	}
	chain ingress-dnat-udp {
		meta l4proto udp dnat ip to meta mark map @ingress-targets-udp
	}
	chain reject-empty {
		meta l4proto tcp reject with tcp reset
		reject
	}
	chain empty-check {
		ip daddr . meta l4proto . th dport @empty-vips goto reject-empty
		fib daddr type local meta l4proto . th dport @empty-ingress goto reject-empty
	}
	chain filter-pre {
		type filter hook prerouting priority -110; policy accept;
		ct state new jump empty-check
	}
	chain filter-out {
		type filter hook output priority -110; policy accept;
		ct state new jump empty-check
	}
	chain dispatch {
		meta mark set ip daddr . meta l4proto . th dport map @vips meta mark & 0x0000ffff vmap @pick
		fib daddr type local meta mark set meta l4proto . th dport map @ingress meta mark & 0x0000ffff vmap @pick
		meta mark set ip daddr . meta l4proto . th dport map @vips-rr meta mark & 0x0000ffff vmap @pick-rr
		fib daddr type local meta mark set meta l4proto . th dport map @ingress-rr meta mark & 0x0000ffff vmap @pick-rr
		meta mark set ip daddr . meta l4proto . th dport map @vips-sh meta mark & 0x0000ffff vmap @pick-sh
		fib daddr type local meta mark set meta l4proto . th dport map @ingress-sh meta mark & 0x0000ffff vmap @pick-sh
	}
	chain nat-pre {
		type nat hook prerouting priority -100; policy accept;
		jump dispatch
	}
	chain nat-out {
		type nat hook output priority -100; policy accept;
		jump dispatch
	}
	chain nat-post {
		type nat hook postrouting priority 100; policy accept;
		meta mark & 0x4000 == 0x4000 masquerade
	}
	chain slot-0 {
		meta mark set meta mark & 0xffffe000 | 0
	}
	chain slot-1 {
		meta mark set meta mark & 0xffffe000 | 1
	}
	chain slot-2 {
		meta mark set meta mark & 0xffffe000 | 2
	}
	chain slot-3 {
		meta mark set meta mark & 0xffffe000 | 3
	}
	chain slot-4 {
		meta mark set meta mark & 0xffffe000 | 4
	}
	chain slot-5 {
		meta mark set meta mark & 0xffffe000 | 5
	}
	chain slot-6 {
		meta mark set meta mark & 0xffffe000 | 6
	}
	chain slot-7 {
		meta mark set meta mark & 0xffffe000 | 7
	}
	chain slot-8 {
		meta mark set meta mark & 0xffffe000 | 8
	}
	chain slot-9 {
		meta mark set meta mark & 0xffffe000 | 9
	}
	chain slot-10 {
		meta mark set meta mark & 0xffffe000 | 10
	}
	chain slot-11 {
		meta mark set meta mark & 0xffffe000 | 11
	}
	chain slot-12 {
		meta mark set meta mark & 0xffffe000 | 12
	}
	chain slot-13 {
		meta mark set meta mark & 0xffffe000 | 13
	}
	chain slot-14 {
		meta mark set meta mark & 0xffffe000 | 14
	}
	chain slot-15 {
		meta mark set meta mark & 0xffffe000 | 15
	}
	chain slot-16 {
		meta mark set meta mark & 0xffffe000 | 16
	}
	chain slot-17 {
		meta mark set meta mark & 0xffffe000 | 17
	}
	chain slot-18 {
		meta mark set meta mark & 0xffffe000 | 18
	}
	chain slot-19 {
		meta mark set meta mark & 0xffffe000 | 19
	}
	chain pick-vip-tcp-20 {
		numgen random mod 20 vmap @slots
		goto vip-dnat-tcp
	}
	chain pick-ing-tcp-1-masq {
		numgen random mod 1 vmap @slots
		goto ingress-dnat-tcp
	}
	chain pick-rr-vip-tcp-2 {
		numgen inc mod 2 vmap @slots
		goto vip-dnat-tcp
	}
	chain pick-sh-ing-tcp-3-masq {
		jhash ip saddr mod 3 seed 0x6d657368 vmap @slots
		goto ingress-dnat-tcp
	}
}
table ip6 meshd-lb6
delete table ip6 meshd-lb6
`;

/**
 * IPv6 VIPs (test/unit/ipam/ipv6-vip.test.ts: `web` with VIP 10.9.0.10 / fd00:9::10, tcp 80 → 8080,
 * over t1 fd00:9::2, t2 fd00:9::3 and the IPv4-only t3): the `ip6 meshd-lb6` table planNftFull appends
 * after the unchanged `ip meshd-lb` table (t3 has no IPv6 address, so 2 slots).
 */
export const NFT6_FULL_TAIL = `table ip6 meshd-lb6
delete table ip6 meshd-lb6
table ip6 meshd-lb6 {
	set empty {
		type ipv6_addr . inet_proto . inet_service
	}
	map vips {
		type ipv6_addr . inet_proto . inet_service : verdict
		elements = { fd00:9::10 . tcp . 80 comment "web tcp/80 ipv6" : goto fe-0 }
	}
	chain fe-0 {
		meta l4proto tcp dnat ip6 to numgen random mod 2 map { 0 : fd00:9::2 . 8080, 1 : fd00:9::3 . 8080 }
	}
	chain empty-check {
		ip6 daddr . meta l4proto . th dport @empty meta l4proto tcp reject with tcp reset
		ip6 daddr . meta l4proto . th dport @empty reject
	}
	chain filter-pre {
		type filter hook prerouting priority -110; policy accept;
		ct state new jump empty-check
	}
	chain filter-out {
		type filter hook output priority -110; policy accept;
		ct state new jump empty-check
	}
	chain nat-pre {
		type nat hook prerouting priority -100; policy accept;
		ip6 daddr . meta l4proto . th dport vmap @vips
	}
	chain nat-out {
		type nat hook output priority -100; policy accept;
		ip6 daddr . meta l4proto . th dport vmap @vips
	}
}
`;

/**
 * The same `web` through IPVS: the `ip6 meshd-ipvs6` table that masquerades a task's own connection
 * to its own IPv6 VIP (the twin of IPv4's vip-snat-marks), appended after the IPv4 mark table.
 */
export const IPVS6_NAT = `table ip6 meshd-ipvs6
delete table ip6 meshd-ipvs6
table ip6 meshd-ipvs6 {
	set vips {
		type ipv6_addr
		elements = { fd00:9::10 }
	}
	chain nat-post {
		type nat hook postrouting priority 100; policy accept;
		ct original ip6 daddr @vips oifname != "lo" fib saddr type local masquerade
	}
}
`;

/**
 * IPv6 published ports (test/unit/lb/ingress6.test.ts: `web` published tcp 8080 → 80, policy cluster,
 * over two backends with IPv6 ingress addresses and one without; `loc` udp 8081 → 53, policy local,
 * with no local IPv6 backend, so refused at once): the `ip6 meshd-lb6` part of planNftFull's script.
 */
export const NFT6_INGRESS_FULL = `table ip6 meshd-lb6
delete table ip6 meshd-lb6
table ip6 meshd-lb6 {
	set empty {
		type ipv6_addr . inet_proto . inet_service
	}
	map vips {
		type ipv6_addr . inet_proto . inet_service : verdict
	}
	set empty-ingress {
		type inet_proto . inet_service
		elements = { udp . 8081 comment "loc udp/8081 local ipv6" }
	}
	map ingress {
		type inet_proto . inet_service : verdict
		elements = { tcp . 8080 comment "web tcp/8080 cluster ipv6" : goto fe-0 }
	}
	chain fe-0 {
		meta mark set meta mark | 0x4000 meta l4proto tcp dnat ip6 to numgen random mod 2 map { 0 : fd6d:6573:6864:ff00::aff:3 . 80, 1 : fd6d:6573:6864:ff00::aff:4 . 80 }
	}
	chain empty-check {
		ip6 daddr . meta l4proto . th dport @empty meta l4proto tcp reject with tcp reset
		ip6 daddr . meta l4proto . th dport @empty reject
		fib daddr type local meta l4proto . th dport @empty-ingress meta l4proto tcp reject with tcp reset
		fib daddr type local meta l4proto . th dport @empty-ingress reject
	}
	chain filter-pre {
		type filter hook prerouting priority -110; policy accept;
		ct state new jump empty-check
	}
	chain filter-out {
		type filter hook output priority -110; policy accept;
		ct state new jump empty-check
	}
	chain nat-pre {
		type nat hook prerouting priority -100; policy accept;
		ip6 daddr . meta l4proto . th dport vmap @vips
		fib daddr type local meta l4proto . th dport vmap @ingress
	}
	chain nat-out {
		type nat hook output priority -100; policy accept;
		ip6 daddr . meta l4proto . th dport vmap @vips
		fib daddr type local meta l4proto . th dport vmap @ingress
	}
	chain nat-post {
		type nat hook postrouting priority 100; policy accept;
		meta mark & 0x4000 == 0x4000 masquerade
	}
}
`;
