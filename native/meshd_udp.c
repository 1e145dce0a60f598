/*
 * meshd_udp: batched UDP receive/send for the embedded DNS server (issue 18 item 5).
 *
 * Why: Node's dgram path costs one JS call, one rinfo object and one Buffer per datagram in, and one
 * send request per datagram out; at saturation that, not the DNS work, is most of our CPU per query.
 * Here one uv_poll watcher on the node loop (no threads) reads up to BATCH datagrams with recvmmsg(2),
 * calls JS ONCE per batch with one Buffer holding them all, and JS hands back the batch's answers in one
 * call that goes out with sendmmsg(2).
 *
 * The socket stays Node's: JS passes the fd of a bound dgram socket (stopped from reading), we poll a
 * dup(2) of it and close only the dup. Ownership and close of the original stay with dgram, so sockets
 * passed over IPC (sandbox 127.0.0.11 sockets, DNS workers) work unchanged.
 *
 * JS interface (all synchronous, loop thread only):
 *   open(fd, meta: Buffer, onBatch(data: Buffer, count: number)) -> handle
 *       meta: >= BATCH * META_BYTES bytes, written before each onBatch: per datagram
 *       [u32 offset, u32 length, u32 socklen, u32 flags(bit0: truncated), 28 bytes sockaddr] (host order).
 *       data: a fresh Buffer per batch (JS may keep subarrays of it: async forwards do).
 *   sendBatch(handle, replies: Buffer[], indices: Uint16Array, n) -> how many of the n were NOT sent
 *       replies[i] goes to the source of datagram indices[i] of the batch being handled.
 *   sendTo(handle, buf, sockaddr: Buffer) -> 1 or -errno (an answer that came after its batch).
 *   ntop(sockaddr: Buffer) -> [address string, port]
 *   close(handle)      stops polling, closes the dup (idempotent).
 *   fd(handle) -> the dup's descriptor (diagnostics: who holds a socket, as `ss -p` shows); before close() only.
 *   bindInNetns(nsPath, addr, port) -> [udpFd, tcpFd]   (native/meshd_netns.c)
 *   constants: BATCH, META_BYTES, SLOT_BYTES.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <node_api.h>
#include <uv.h>

#define BATCH 64
/* Largest UDP payload: a datagram is never cut (dgram reads up to 64 KiB too). The scratch is
 * BATCH * SLOT_BYTES of virtual memory, allocated once per process; only touched pages cost RSS. */
#define SLOT_BYTES 65536
#define META_BYTES 44
/* recvmmsg rounds per wakeup: bounded so other loop work (timers, TCP, IPC) is not starved. */
#define MAX_ROUNDS 8

typedef struct {
  uv_poll_t poll;
  int fd;
  int closed;
  napi_env env;
  napi_ref on_batch;
  napi_ref meta_ref;
  uint8_t *meta;
  size_t meta_len;
  napi_async_context ctx;
  /* Sources of the batch being handled (valid during onBatch and its sendBatch). */
  struct sockaddr_storage addrs[BATCH];
  socklen_t addr_lens[BATCH];
} sock_t;

/* Per-process receive scratch (single-threaded use: the node loop). */
static uint8_t *g_scratch;
static struct mmsghdr g_msgs[BATCH];
static struct iovec g_iov[BATCH];

#define CHECK(env, call)                                     \
  do {                                                       \
    if ((call) != napi_ok) {                                 \
      napi_throw_error((env), "MESHD_NATIVE_UDP", #call);     \
      return NULL;                                           \
    }                                                        \
  } while (0)

static void on_closed(uv_handle_t *h) {
  sock_t *s = (sock_t *)h->data;
  free(s);
}

static void stop_sock(sock_t *s) {
  if (s->closed) return;
  s->closed = 1;
  uv_poll_stop(&s->poll);
  close(s->fd);
  napi_env env = s->env;
  if (s->on_batch) napi_delete_reference(env, s->on_batch);
  if (s->meta_ref) napi_delete_reference(env, s->meta_ref);
  if (s->ctx) napi_async_destroy(env, s->ctx);
  s->on_batch = NULL;
  s->meta_ref = NULL;
  s->ctx = NULL;
  uv_close((uv_handle_t *)&s->poll, on_closed);
}

static void put_u32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

static void on_readable(uv_poll_t *p, int status, int events) {
  sock_t *s = (sock_t *)p->data;
  (void)events;
  if (s->closed || status < 0) return;
  napi_env env = s->env;
  for (int round = 0; round < MAX_ROUNDS && !s->closed; round++) {
    for (int i = 0; i < BATCH; i++) {
      g_iov[i].iov_base = g_scratch + (size_t)i * SLOT_BYTES;
      g_iov[i].iov_len = SLOT_BYTES;
      memset(&g_msgs[i].msg_hdr, 0, sizeof(struct msghdr));
      g_msgs[i].msg_hdr.msg_iov = &g_iov[i];
      g_msgs[i].msg_hdr.msg_iovlen = 1;
      g_msgs[i].msg_hdr.msg_name = &s->addrs[i];
      g_msgs[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_storage);
    }
    int n = recvmmsg(s->fd, g_msgs, BATCH, MSG_DONTWAIT, NULL);
    if (n <= 0) return; /* EAGAIN: drained; other errors (none expected on UDP) wait for the next wakeup */
    size_t total = 0;
    for (int i = 0; i < n; i++) total += g_msgs[i].msg_len;
    napi_handle_scope scope;
    if (napi_open_handle_scope(env, &scope) != napi_ok) return;
    void *data;
    napi_value buf, cb, recv, argv[2], result;
    if (napi_create_buffer(env, total ? total : 1, &data, &buf) != napi_ok) {
      napi_close_handle_scope(env, scope);
      return;
    }
    size_t off = 0;
    for (int i = 0; i < n; i++) {
      uint32_t len = g_msgs[i].msg_len;
      memcpy((uint8_t *)data + off, g_iov[i].iov_base, len);
      uint8_t *m = s->meta + (size_t)i * META_BYTES;
      socklen_t sl = g_msgs[i].msg_hdr.msg_namelen;
      if (sl > 28) sl = 28;
      s->addr_lens[i] = sl;
      put_u32(m, (uint32_t)off);
      put_u32(m + 4, len);
      put_u32(m + 8, (uint32_t)sl);
      put_u32(m + 12, (g_msgs[i].msg_hdr.msg_flags & MSG_TRUNC) ? 1u : 0u);
      memset(m + 16, 0, 28);
      memcpy(m + 16, &s->addrs[i], sl);
      off += len;
    }
    napi_get_reference_value(env, s->on_batch, &cb);
    napi_get_global(env, &recv); /* napi_make_callback wants an object receiver */
    argv[0] = buf;
    napi_create_uint32(env, (uint32_t)n, &argv[1]);
    napi_status st = napi_make_callback(env, s->ctx, recv, cb, 2, argv, &result);
    if (st != napi_ok) {
      /* JS threw (a bug: the handler never throws for any input): report it like any uncaught error. */
      bool pending = false;
      napi_is_exception_pending(env, &pending);
      if (pending) {
        napi_value exc;
        napi_get_and_clear_last_exception(env, &exc);
        napi_fatal_exception(env, exc);
      }
    }
    napi_close_handle_scope(env, scope);
    if (n < BATCH) return;
  }
}

static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], ext;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) {
    napi_throw_type_error(env, "MESHD_NATIVE_UDP", "open(fd, meta, onBatch)");
    return NULL;
  }
  int32_t fd;
  CHECK(env, napi_get_value_int32(env, argv[0], &fd));
  void *meta;
  size_t meta_len;
  CHECK(env, napi_get_buffer_info(env, argv[1], &meta, &meta_len));
  if (meta_len < (size_t)BATCH * META_BYTES) {
    napi_throw_range_error(env, "MESHD_NATIVE_UDP", "meta buffer too small");
    return NULL;
  }
  if (!g_scratch) {
    g_scratch = malloc((size_t)BATCH * SLOT_BYTES);
    if (!g_scratch) {
      napi_throw_error(env, "MESHD_NATIVE_UDP", "cannot allocate the receive scratch");
      return NULL;
    }
  }
  int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (dfd < 0) {
    napi_throw_error(env, "MESHD_NATIVE_UDP", strerror(errno));
    return NULL;
  }
  sock_t *s = calloc(1, sizeof(sock_t));
  if (!s) {
    close(dfd);
    napi_throw_error(env, "MESHD_NATIVE_UDP", "out of memory");
    return NULL;
  }
  s->fd = dfd;
  s->env = env;
  s->meta = meta;
  s->meta_len = meta_len;
  uv_loop_t *loop;
  napi_value name;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || uv_poll_init(loop, &s->poll, dfd) != 0) {
    close(dfd);
    free(s);
    napi_throw_error(env, "MESHD_NATIVE_UDP", "uv_poll_init failed");
    return NULL;
  }
  s->poll.data = s;
  napi_create_reference(env, argv[2], 1, &s->on_batch);
  napi_create_reference(env, argv[1], 1, &s->meta_ref);
  napi_create_string_utf8(env, "meshd:udp", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, NULL, name, &s->ctx);
  if (uv_poll_start(&s->poll, UV_READABLE, on_readable) != 0) {
    stop_sock(s);
    napi_throw_error(env, "MESHD_NATIVE_UDP", "uv_poll_start failed");
    return NULL;
  }
  /* The handle is a plain external: JS must call close() (DnsServer does on every path). */
  CHECK(env, napi_create_external(env, s, NULL, NULL, &ext));
  return ext;
}

static sock_t *get_sock(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok || !p) {
    napi_throw_type_error(env, "MESHD_NATIVE_UDP", "not a socket handle");
    return NULL;
  }
  return (sock_t *)p;
}

static napi_value js_send_batch(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], out;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  sock_t *s = get_sock(env, argv[0]);
  if (!s) return NULL;
  uint32_t n;
  CHECK(env, napi_get_value_uint32(env, argv[3], &n));
  if (n > BATCH) n = BATCH;
  napi_typedarray_type tt;
  size_t ilen;
  void *idata;
  CHECK(env, napi_get_typedarray_info(env, argv[2], &tt, &ilen, &idata, NULL, NULL));
  if (tt != napi_uint16_array || ilen < n) {
    napi_throw_type_error(env, "MESHD_NATIVE_UDP", "indices must be a Uint16Array of n entries");
    return NULL;
  }
  uint16_t *idx = idata;
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  memset(msgs, 0, sizeof(struct mmsghdr) * n);
  for (uint32_t i = 0; i < n; i++) {
    napi_value b;
    void *d;
    size_t len;
    CHECK(env, napi_get_element(env, argv[1], i, &b));
    CHECK(env, napi_get_buffer_info(env, b, &d, &len));
    if (idx[i] >= BATCH) {
      napi_throw_range_error(env, "MESHD_NATIVE_UDP", "datagram index out of range");
      return NULL;
    }
    iov[i].iov_base = d;
    iov[i].iov_len = len;
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    msgs[i].msg_hdr.msg_name = &s->addrs[idx[i]];
    msgs[i].msg_hdr.msg_namelen = s->addr_lens[idx[i]];
  }
  int32_t failed = 0;
  uint32_t done = 0;
  if (s->closed) failed = (int32_t)n;
  while (!s->closed && done < n) {
    int r = sendmmsg(s->fd, msgs + done, n - done, MSG_DONTWAIT);
    if (r >= 0) {
      done += (uint32_t)r;
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      /* Send buffer full (1 MiB+): the rest of this batch is lost; counted by the caller. */
      failed += (int32_t)(n - done);
      break;
    }
    /* One bad datagram (its address refused, say) must not cost the rest of the batch. */
    failed++;
    done++;
  }
  CHECK(env, napi_create_int32(env, failed, &out));
  return out;
}

static napi_value js_send_to(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], out;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  sock_t *s = get_sock(env, argv[0]);
  if (!s) return NULL;
  void *d, *a;
  size_t len, alen;
  CHECK(env, napi_get_buffer_info(env, argv[1], &d, &len));
  CHECK(env, napi_get_buffer_info(env, argv[2], &a, &alen));
  int32_t r;
  if (s->closed) r = -EBADF;
  else if (alen < sizeof(sa_family_t) || alen > sizeof(struct sockaddr_storage)) r = -EINVAL;
  else {
    ssize_t w = sendto(s->fd, d, len, MSG_DONTWAIT, (struct sockaddr *)a, (socklen_t)alen);
    r = w < 0 ? -errno : 1;
  }
  CHECK(env, napi_create_int32(env, r, &out));
  return out;
}

static napi_value js_ntop(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out, str, port;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  void *a;
  size_t alen;
  CHECK(env, napi_get_buffer_info(env, argv[0], &a, &alen));
  char text[INET6_ADDRSTRLEN] = "";
  uint16_t p = 0;
  struct sockaddr *sa = a;
  if (alen >= sizeof(struct sockaddr_in) && sa->sa_family == AF_INET) {
    struct sockaddr_in *in = a;
    inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
    p = ntohs(in->sin_port);
  } else if (alen >= sizeof(struct sockaddr_in6) && sa->sa_family == AF_INET6) {
    struct sockaddr_in6 *in6 = a;
    inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
    p = ntohs(in6->sin6_port);
  }
  CHECK(env, napi_create_array_with_length(env, 2, &out));
  CHECK(env, napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &str));
  CHECK(env, napi_create_uint32(env, p, &port));
  napi_set_element(env, out, 0, str);
  napi_set_element(env, out, 1, port);
  return out;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  sock_t *s = get_sock(env, argv[0]);
  if (!s) return NULL;
  stop_sock(s);
  return NULL;
}

static napi_value js_fd(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  sock_t *s = get_sock(env, argv[0]);
  if (!s) return NULL;
  CHECK(env, napi_create_int32(env, s->closed ? -1 : s->fd, &out));
  return out;
}

/* native/meshd_netns.c: the DNS sockets bound inside a task's namespace from this thread. */
napi_value meshd_bind_in_netns(napi_env env, napi_callback_info info);

static napi_value init(napi_env env, napi_value exports) {
  napi_value v;
  napi_property_descriptor props[] = {
      {"open", NULL, js_open, NULL, NULL, NULL, napi_default, NULL},
      {"sendBatch", NULL, js_send_batch, NULL, NULL, NULL, napi_default, NULL},
      {"sendTo", NULL, js_send_to, NULL, NULL, NULL, napi_default, NULL},
      {"ntop", NULL, js_ntop, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL},
      {"fd", NULL, js_fd, NULL, NULL, NULL, napi_default, NULL},
      {"bindInNetns", NULL, meshd_bind_in_netns, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  napi_create_uint32(env, BATCH, &v);
  napi_set_named_property(env, exports, "BATCH", v);
  napi_create_uint32(env, META_BYTES, &v);
  napi_set_named_property(env, exports, "META_BYTES", v);
  napi_create_uint32(env, SLOT_BYTES, &v);
  napi_set_named_property(env, exports, "SLOT_BYTES", v);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
