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
		elements = { 10.9.0.10 . tcp . 80 comment "web tcp/80" : 0x00000002,
			     10.9.0.11 . tcp . 53 comment "dns tcp/53" : 0x00000001,
			     10.9.0.11 . udp . 53 comment "dns udp/53" : 0x00010001 }
	}
	set empty-vips {
		type ipv4_addr . inet_proto . inet_service
		elements = { 10.9.0.12 . tcp . 443 comment "api tcp/443" }
	}
	map ingress {
		type inet_proto . inet_service : mark
		elements = { tcp . 8080 comment "svc-web tcp/8080 cluster" : 0x00024002,
			     tcp . 8081 comment "svc-web tcp/8081 local" : 0x00020001 }
	}
	set empty-ingress {
		type inet_proto . inet_service
	}
	map pick {
		type mark : verdict
		elements = { 0x00000001 : goto pick-vip-tcp-1,
			     0x00000002 : goto pick-vip-tcp-2,
			     0x00010001 : goto pick-vip-udp-1,
			     0x00020001 : goto pick-ing-tcp-1,
			     0x00024002 : goto pick-ing-tcp-2-masq }
	}
	map vip-targets-tcp {
		typeof ip daddr . tcp dport . meta mark : ip daddr
		elements = { 10.9.0.10 . 80 . 0 : 10.0.1.2,
			     10.9.0.10 . 80 . 1 : 10.0.1.4,
			     10.9.0.11 . 53 . 0 : 10.0.1.20 }
	}
	map vip-ports-tcp {
		typeof ip daddr . tcp dport : tcp dport
		elements = { 10.9.0.10 . 80 : 8080,
			     10.9.0.11 . 53 : 53 }
	}
	map ingress-targets-tcp {
		typeof tcp dport . meta mark : ip daddr . tcp dport
		elements = { 8080 . 16384 : 10.0.1.2 . 8080,
			     8080 . 16385 : 10.0.1.4 . 8080,
			     8081 . 0 : 10.0.1.2 . 8080 }
	}
	map vip-targets-udp {
		typeof ip daddr . udp dport . meta mark : ip daddr
		elements = { 10.9.0.11 . 53 . 0 : 10.0.1.20 }
	}
	map vip-ports-udp {
		typeof ip daddr . udp dport : udp dport
		elements = { 10.9.0.11 . 53 : 53 }
	}
	map ingress-targets-udp {
		typeof udp dport . meta mark : ip daddr . udp dport
	}
	chain vip-dnat-tcp {
		meta l4proto tcp dnat ip to ip daddr . tcp dport . meta mark map @vip-targets-tcp : ip daddr . tcp dport map @vip-ports-tcp
	}
	chain ingress-dnat-tcp {
		meta l4proto tcp dnat to tcp dport . meta mark map @ingress-targets-tcp
	}
	chain vip-dnat-udp {
		meta l4proto udp dnat ip to ip daddr . udp dport . meta mark map @vip-targets-udp : ip daddr . udp dport map @vip-ports-udp
	}
	chain ingress-dnat-udp {
		meta l4proto udp dnat to udp dport . meta mark map @ingress-targets-udp
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
		meta mark set ip daddr . meta l4proto . th dport map @vips meta mark vmap @pick
		fib daddr type local meta mark set meta l4proto . th dport map @ingress meta mark vmap @pick
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
	chain pick-vip-tcp-1 {
		meta mark set numgen random mod 1 goto vip-dnat-tcp
	}
	chain pick-vip-tcp-2 {
		meta mark set numgen random mod 2 goto vip-dnat-tcp
	}
	chain pick-vip-udp-1 {
		meta mark set numgen random mod 1 goto vip-dnat-udp
	}
	chain pick-ing-tcp-1 {
		meta mark set numgen random mod 1 goto ingress-dnat-tcp
	}
	chain pick-ing-tcp-2-masq {
		meta mark set numgen random mod 2 offset 16384 goto ingress-dnat-tcp
	}
}
`;

export const NFT_INCREMENTAL = `add chain ip meshd-lb pick-vip-tcp-3
add rule ip meshd-lb pick-vip-tcp-3 meta mark set numgen random mod 3 goto vip-dnat-tcp
add element ip meshd-lb pick { 0x00000003 : goto pick-vip-tcp-3 }
delete element ip meshd-lb vips { 10.9.0.10 . tcp . 80 }
delete element ip meshd-lb vip-ports-tcp { 10.9.0.11 . 53 }
delete element ip meshd-lb vips { 10.9.0.11 . tcp . 53 }
delete element ip meshd-lb vip-targets-tcp { 10.9.0.11 . 53 . 0 }
delete element ip meshd-lb vip-ports-udp { 10.9.0.11 . 53 }
delete element ip meshd-lb vips { 10.9.0.11 . udp . 53 }
delete element ip meshd-lb vip-targets-udp { 10.9.0.11 . 53 . 0 }
delete element ip meshd-lb empty-vips { 10.9.0.12 . tcp . 443 }
delete element ip meshd-lb ingress { tcp . 8081 }
delete element ip meshd-lb ingress-targets-tcp { 8081 . 0 }
add element ip meshd-lb vips { 10.9.0.13 . tcp . 5000 comment "new tcp/5000" : 0x00000001 }
add element ip meshd-lb vip-targets-tcp { 10.9.0.13 . 5000 . 0 : 10.0.1.50 }
add element ip meshd-lb vip-ports-tcp { 10.9.0.13 . 5000 : 5000 }
add element ip meshd-lb vips { 10.9.0.10 . tcp . 80 comment "web tcp/80" : 0x00000003 }
add element ip meshd-lb vip-targets-tcp { 10.9.0.10 . 80 . 2 : 10.0.1.5 }
add element ip meshd-lb empty-vips { 10.9.0.11 . tcp . 53 comment "dns tcp/53" }
add element ip meshd-lb empty-vips { 10.9.0.11 . udp . 53 comment "dns udp/53" }
add element ip meshd-lb vip-ports-tcp { 10.9.0.12 . 443 : 8443 }
add element ip meshd-lb vips { 10.9.0.12 . tcp . 443 comment "api tcp/443" : 0x00000001 }
add element ip meshd-lb vip-targets-tcp { 10.9.0.12 . 443 . 0 : 10.0.1.40 }
delete element ip meshd-lb pick { 0x00000002 }
flush chain ip meshd-lb pick-vip-tcp-2
delete chain ip meshd-lb pick-vip-tcp-2
delete element ip meshd-lb pick { 0x00010001 }
flush chain ip meshd-lb pick-vip-udp-1
delete chain ip meshd-lb pick-vip-udp-1
delete element ip meshd-lb pick { 0x00020001 }
flush chain ip meshd-lb pick-ing-tcp-1
delete chain ip meshd-lb pick-ing-tcp-1
`;

export const IPVS_FULL = `-C
-A -f 256 -s rr
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
		meta mark set ip daddr . meta l4proto . th dport map @vip-marks
		fib daddr type local meta mark set meta l4proto . th dport map @ingress-marks
	}
	chain mangle-out {
		type route hook output priority -150; policy accept;
		meta mark set ip daddr . meta l4proto . th dport map @vip-marks
		fib daddr type local meta mark set meta l4proto . th dport map @ingress-marks
	}
	chain nat-post {
		type nat hook postrouting priority 100; policy accept;
		meta mark @snat-marks masquerade
		meta mark @vip-snat-marks fib saddr type local masquerade
	}
}
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
	}
	set empty-vips {
		type ipv4_addr . inet_proto . inet_service
	}
	map ingress {
		type inet_proto . inet_service : mark
		elements = { tcp . 8080 comment "svc-h tcp/8080 host" : 0x00020002 }
	}
	set empty-ingress {
		type inet_proto . inet_service
	}
	map pick {
		type mark : verdict
		elements = { 0x00020002 : goto pick-ing-tcp-2 }
	}
	map vip-targets-tcp {
		typeof ip daddr . tcp dport . meta mark : ip daddr
	}
	map vip-ports-tcp {
		typeof ip daddr . tcp dport : tcp dport
	}
	map ingress-targets-tcp {
		typeof tcp dport . meta mark : ip daddr . tcp dport
		elements = { 8080 . 0 : 10.0.1.60 . 80,
			     8080 . 1 : 10.0.1.61 . 80 }
	}
	map vip-targets-udp {
		typeof ip daddr . udp dport . meta mark : ip daddr
	}
	map vip-ports-udp {
		typeof ip daddr . udp dport : udp dport
	}
	map ingress-targets-udp {
		typeof udp dport . meta mark : ip daddr . udp dport
	}
	chain vip-dnat-tcp {
		meta l4proto tcp dnat ip to ip daddr . tcp dport . meta mark map @vip-targets-tcp : ip daddr . tcp dport map @vip-ports-tcp
	}
	chain ingress-dnat-tcp {
		meta l4proto tcp dnat to tcp dport . meta mark map @ingress-targets-tcp
	}
	chain vip-dnat-udp {
		meta l4proto udp dnat ip to ip daddr . udp dport . meta mark map @vip-targets-udp : ip daddr . udp dport map @vip-ports-udp
	}
	chain ingress-dnat-udp {
		meta l4proto udp dnat to udp dport . meta mark map @ingress-targets-udp
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
		meta mark set ip daddr . meta l4proto . th dport map @vips meta mark vmap @pick
		fib daddr type local meta mark set meta l4proto . th dport map @ingress meta mark vmap @pick
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
	chain pick-ing-tcp-2 {
		meta mark set numgen random mod 2 goto ingress-dnat-tcp
	}
}
`;

export const IPVS_HOST_FULL = `-C
-A -f 256 -s rr
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
		meta mark set ip daddr . meta l4proto . th dport map @vip-marks
		fib daddr type local meta mark set meta l4proto . th dport map @ingress-marks
	}
	chain mangle-out {
		type route hook output priority -150; policy accept;
		meta mark set ip daddr . meta l4proto . th dport map @vip-marks
		fib daddr type local meta mark set meta l4proto . th dport map @ingress-marks
	}
	chain nat-post {
		type nat hook postrouting priority 100; policy accept;
		meta mark @snat-marks masquerade
		meta mark @vip-snat-marks fib saddr type local masquerade
	}
}
`;
