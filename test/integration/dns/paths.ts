/**
 * The UDP paths every DNS socket test runs against (issue 18 item 5): dgram (`js`) and the native batched
 * path (`native`, native-udp.ts). `native` needs the addon built by native-scripts/setup.sh: a missing
 * addon fails these tests (MESHD_BAD_CONFIG from DnsServer) instead of silently testing dgram twice.
 */
export const UDP_PATHS = ['js', 'native'] as const;
export type TestUdpPath = (typeof UDP_PATHS)[number];
