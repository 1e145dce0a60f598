/**
 * Golden renders of fixtures.ts base() and base() → changed() (kube-proxy style: the exact text
 * sent to the kernel tools). Reviewed by hand and loaded into a real namespace by the
 * integration test; regenerate only deliberately.
 */
export const NFT_FULL = `table ip meshd-lb
delete table ip meshd-lb
table ip meshd-lb {
	map vips {
		type ipv4_addr . inet_proto . inet_service : verdict
		elements = { 10.9.0.10 . tcp . 80 : goto vip-10.9.0.10-tcp-80,
			     10.9.0.11 . tcp . 53 : goto vip-10.9.0.11-tcp-53,
			     10.9.0.11 . udp . 53 : goto vip-10.9.0.11-udp-53 }
	}
	map empty-vips {
		type ipv4_addr . inet_proto . inet_service : verdict
		elements = { 10.9.0.12 . tcp . 443 : goto reject-empty }
	}
	map ingress {
		type inet_proto . inet_service : verdict
		elements = { tcp . 8080 : goto ing-tcp-8080,
			     tcp . 8081 : goto ing-tcp-8081 }
	}
	map empty-ingress {
		type inet_proto . inet_service : verdict
	}
	map vip-targets-tcp {
		typeof ip daddr . tcp dport . meta mark : ip daddr . tcp dport
		elements = { 10.9.0.10 . 80 . 0 : 10.0.1.2 . 8080,
			     10.9.0.10 . 80 . 1 : 10.0.1.4 . 8080,
			     10.9.0.11 . 53 . 0 : 10.0.1.20 . 53 }
	}
	map ingress-targets-tcp {
		typeof tcp dport . meta mark : ip daddr . tcp dport
		elements = { 8080 . 16384 : 10.0.1.2 . 8080,
			     8080 . 16385 : 10.0.1.4 . 8080,
			     8081 . 0 : 10.0.1.2 . 8080 }
	}
	map vip-targets-udp {
		typeof ip daddr . udp dport . meta mark : ip daddr . udp dport
		elements = { 10.9.0.11 . 53 . 0 : 10.0.1.20 . 53 }
	}
	map ingress-targets-udp {
		typeof udp dport . meta mark : ip daddr . udp dport
	}
	chain vip-dnat-tcp {
		meta l4proto tcp dnat to ip daddr . tcp dport . meta mark map @vip-targets-tcp
	}
	chain ingress-dnat-tcp {
		meta l4proto tcp dnat to tcp dport . meta mark map @ingress-targets-tcp
	}
	chain vip-dnat-udp {
		meta l4proto udp dnat to ip daddr . udp dport . meta mark map @vip-targets-udp
	}
	chain ingress-dnat-udp {
		meta l4proto udp dnat to udp dport . meta mark map @ingress-targets-udp
	}
	chain reject-empty {
		meta l4proto tcp reject with tcp reset
		reject
	}
	chain empty-check {
		ip daddr . meta l4proto . th dport vmap @empty-vips
		fib daddr type local meta l4proto . th dport vmap @empty-ingress
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
		ip daddr . meta l4proto . th dport vmap @vips
		fib daddr type local meta l4proto . th dport vmap @ingress
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
	chain ing-tcp-8080 {
		meta mark set numgen random mod 2 offset 16384 goto ingress-dnat-tcp comment "svc-web tcp/8080 cluster"
	}
	chain ing-tcp-8081 {
		meta mark set numgen random mod 1 goto ingress-dnat-tcp comment "svc-web tcp/8081 local"
	}
	chain vip-10.9.0.10-tcp-80 {
		meta mark set numgen random mod 2 goto vip-dnat-tcp comment "web tcp/80"
	}
	chain vip-10.9.0.11-tcp-53 {
		meta mark set numgen random mod 1 goto vip-dnat-tcp comment "dns tcp/53"
	}
	chain vip-10.9.0.11-udp-53 {
		meta mark set numgen random mod 1 goto vip-dnat-udp comment "dns udp/53"
	}
}
`;

export const NFT_INCREMENTAL = `add chain ip meshd-lb vip-10.9.0.13-tcp-5000
add rule ip meshd-lb vip-10.9.0.13-tcp-5000 meta mark set numgen random mod 1 goto vip-dnat-tcp comment "new tcp/5000"
flush chain ip meshd-lb vip-10.9.0.10-tcp-80
add rule ip meshd-lb vip-10.9.0.10-tcp-80 meta mark set numgen random mod 3 goto vip-dnat-tcp comment "web tcp/80"
add chain ip meshd-lb vip-10.9.0.12-tcp-443
add rule ip meshd-lb vip-10.9.0.12-tcp-443 meta mark set numgen random mod 1 goto vip-dnat-tcp comment "api tcp/443"
delete element ip meshd-lb vips { 10.9.0.11 . tcp . 53 }
delete element ip meshd-lb vip-targets-tcp { 10.9.0.11 . 53 . 0 }
delete element ip meshd-lb vips { 10.9.0.11 . udp . 53 }
delete element ip meshd-lb vip-targets-udp { 10.9.0.11 . 53 . 0 }
delete element ip meshd-lb empty-vips { 10.9.0.12 . tcp . 443 }
delete element ip meshd-lb ingress { tcp . 8081 }
delete element ip meshd-lb ingress-targets-tcp { 8081 . 0 }
add element ip meshd-lb vip-targets-tcp { 10.9.0.13 . 5000 . 0 : 10.0.1.50 . 5000 }
add element ip meshd-lb vips { 10.9.0.13 . tcp . 5000 : goto vip-10.9.0.13-tcp-5000 }
add element ip meshd-lb vip-targets-tcp { 10.9.0.10 . 80 . 2 : 10.0.1.5 . 8080 }
add element ip meshd-lb empty-vips { 10.9.0.11 . tcp . 53 : goto reject-empty }
add element ip meshd-lb empty-vips { 10.9.0.11 . udp . 53 : goto reject-empty }
add element ip meshd-lb vips { 10.9.0.12 . tcp . 443 : goto vip-10.9.0.12-tcp-443 }
add element ip meshd-lb vip-targets-tcp { 10.9.0.12 . 443 . 0 : 10.0.1.40 . 8443 }
flush chain ip meshd-lb vip-10.9.0.11-tcp-53
delete chain ip meshd-lb vip-10.9.0.11-tcp-53
flush chain ip meshd-lb vip-10.9.0.11-udp-53
delete chain ip meshd-lb vip-10.9.0.11-udp-53
flush chain ip meshd-lb ing-tcp-8081
delete chain ip meshd-lb ing-tcp-8081
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
delete element ip meshd-ipvs ingress-marks { tcp . 8081 }
`;

export const IPVS_INCREMENTAL_ADDRS = `address replace 10.9.0.13/32 dev lo
`;

