/*
 * meshd_netns: bind the DNS sockets (127.0.0.11:53, UDP and TCP) inside a task's network namespace
 * from the agent's own thread, instead of starting a helper process per namespace (issue 18 item 1:
 * that Node start was ~90 ms of every task's start here, seconds under qemu).
 *
 * A socket belongs to the network namespace of the thread that created it. So: remember this
 * thread's namespace, setns(2) into the task's, create and bind both sockets, setns back. All of it
 * runs synchronously on Node's loop thread, where no other JS (and no other socket creation) can run
 * in between; libuv's pool threads keep their own namespace (setns is per thread). If going back
 * fails, the loop thread would serve everything from a task's namespace: we abort() rather than
 * continue wrong (it needs CAP_SYS_ADMIN, which the agent had a moment before to enter the task's).
 *
 * JS interface (loop thread only):
 *   bindInNetns(nsPath: string, addr: string (IPv4), port: number) -> [udpFd, tcpFd]
 *     both non-blocking and close-on-exec, the TCP one listening; the caller hands them to dgram
 *     (`bind({ fd })`) and net (`listen({ fd })`), which own them from then on.
 *     Throws an Error whose message names the failing step and errno — also when the namespace cannot
 *     route to `addr` yet (lo never up: see local_route), so that the caller retries instead of keeping
 *     a socket that answers from the wrong address.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <node_api.h>

static napi_value fail(napi_env env, const char *step, int err) {
  char msg[160];
  snprintf(msg, sizeof msg, "%s: %s", step, strerror(err));
  napi_throw_error(env, NULL, msg);
  return NULL;
}

/* Creates and binds (and for TCP, listens) one socket in the current namespace; -errno on failure. */
static int bound_socket(int type, const struct sockaddr_in *sa, const char **step) {
  int fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *step = "socket";
    return -errno;
  }
  int one = 1;
  if (type == SOCK_STREAM && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) {
    int e = errno;
    close(fd);
    *step = "setsockopt(SO_REUSEADDR)";
    return -e;
  }
  if (bind(fd, (const struct sockaddr *)sa, sizeof *sa) != 0) {
    int e = errno;
    close(fd);
    *step = type == SOCK_STREAM ? "bind(tcp)" : "bind(udp)";
    return -e;
  }
  if (type == SOCK_STREAM && listen(fd, 511) != 0) {
    int e = errno;
    close(fd);
    *step = "listen";
    return -e;
  }
  return fd;
}

/*
 * 0 when the namespace can route to `sa` (its local table exists), else -errno. Why: in a namespace whose
 * lo was never up there is no local routing table at all, and then the kernel types EVERY address as
 * broadcast (__inet_dev_addr_type's default): bind(127.0.0.11) succeeds anyway, but with no source
 * address of its own, so once lo comes up every reply leaves from 127.0.0.1 — and connected clients
 * (dig, glibc's resolver) drop it: that namespace's DNS timed out for its whole life. That happened
 * when the agent's `ip link set lo up` ran before `ip netns add` had mounted the new namespace (the file
 * exists first) and failed, and this bind came just after the mount. Once the local table exists the
 * bind itself decides (local address, or EADDRNOTAVAIL: retried), so one probe before it is enough.
 */
static int local_route(const struct sockaddr_in *sa, const char **step) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *step = "socket(probe)";
    return -errno;
  }
  int r = connect(fd, (const struct sockaddr *)sa, sizeof *sa) == 0 ? 0 : -errno;
  close(fd);
  if (r) *step = "no route to the address in the namespace (lo not up yet)";
  return r;
}

napi_value meshd_bind_in_netns(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3) {
    napi_throw_type_error(env, NULL, "bindInNetns(nsPath, addr, port)");
    return NULL;
  }
  char path[256], addr[64];
  size_t len;
  uint32_t port;
  if (napi_get_value_string_utf8(env, argv[0], path, sizeof path, &len) != napi_ok || len == 0 || len >= sizeof path - 1 ||
      napi_get_value_string_utf8(env, argv[1], addr, sizeof addr, &len) != napi_ok || len == 0 ||
      napi_get_value_uint32(env, argv[2], &port) != napi_ok || port == 0 || port > 65535) {
    napi_throw_type_error(env, NULL, "bindInNetns(nsPath: string, addr: IPv4 string, port: 1-65535)");
    return NULL;
  }
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
    napi_throw_type_error(env, NULL, "bindInNetns: addr must be an IPv4 address");
    return NULL;
  }
  int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (self < 0) return fail(env, "open /proc/thread-self/ns/net", errno);
  int target = open(path, O_RDONLY | O_CLOEXEC);
  if (target < 0) {
    int e = errno;
    close(self);
    return fail(env, "open namespace", e);
  }
  if (setns(target, CLONE_NEWNET) != 0) {
    int e = errno;
    close(target);
    close(self);
    return fail(env, "setns into the namespace", e);
  }
  const char *step = NULL;
  int udp = local_route(&sa, &step);
  if (udp == 0) udp = bound_socket(SOCK_DGRAM, &sa, &step);
  int tcp = udp < 0 ? -1 : bound_socket(SOCK_STREAM, &sa, &step);
  int err = udp < 0 ? -udp : tcp < 0 ? -tcp : 0;
  if (setns(self, CLONE_NEWNET) != 0) {
    fprintf(stderr, "meshd: cannot return the loop thread to its own network namespace (%s): aborting\n", strerror(errno));
    abort();
  }
  close(target);
  close(self);
  if (err) {
    if (udp >= 0) close(udp);
    return fail(env, step, err);
  }
  napi_value out, u, t;
  napi_create_array_with_length(env, 2, &out);
  napi_create_int32(env, udp, &u);
  napi_create_int32(env, tcp, &t);
  napi_set_element(env, out, 0, u);
  napi_set_element(env, out, 1, t);
  return out;
}
