/**
 * The PROXY protocol listener (src/adapters/proxy-listener.ts) on 127.0.0.0/8 sockets: the header
 * comes first and names the real client, payload and half-close travel both ways, a large
 * transfer to a slow reader stays bounded (backpressure), and every bound counts what it did:
 * maxConnections (rejected), idle timeout, upstream refused (client reset at once).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createConnection, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { newProxyStats, ProxyListener, type ProxyStats } from '../../../src/adapters/proxy-listener.js';
import { decodeProxyHeader, type ProxyVersion } from '../../../src/core/proxy-protocol.js';
import { MeshError } from '../../../src/core/errors.js';

const closers: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

/** An upstream that parses the header, then echoes with the header's source prefixed once. */
async function upstream(onConn?: (s: Socket, header: unknown) => void): Promise<{ port: number; headers: unknown[]; server: Server }> {
  const headers: unknown[] = [];
  const socks = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (s) => {
    socks.add(s);
    s.on('close', () => socks.delete(s));
    let buf = Buffer.alloc(0);
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const h = decodeProxyHeader(buf);
      if (h.status === 'incomplete') return;
      s.off('data', onData);
      headers.push(h);
      const rest = buf.subarray(h.length);
      if (onConn) return onConn(s, h);
      s.write(`from ${h.connection?.source.address}:${h.connection?.source.port}\n`);
      if (rest.length) s.write(rest);
      s.pipe(s);
    };
    s.on('data', onData);
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => new Promise((r) => {
    for (const s of socks) s.destroy();
    server.close(() => r());
  }));
  return { port: (server.address() as AddressInfo).port, headers, server };
}

async function proxy(upPort: number, version: ProxyVersion, o: Partial<{ maxConnections: number; idleTimeoutMs: number; stats: ProxyStats }> = {}): Promise<{ l: ProxyListener; port: number; stats: ProxyStats }> {
  // A free port on 127.0.0.2 (the listener binds a fixed host:port, as on a node's underlay).
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.2', r));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
  const stats = o.stats ?? newProxyStats();
  const l = new ProxyListener({ host: '127.0.0.2', port, upstream: { host: '127.0.0.1', port: upPort }, version, maxConnections: o.maxConnections ?? 100, idleTimeoutMs: o.idleTimeoutMs ?? 5000, stats });
  await l.listen();
  closers.push(() => l.close());
  return { l, port, stats };
}

/** Connects from 127.0.0.3, sends `data`, half-closes, collects everything until the server closes. */
function exchange(port: number, data: Buffer | string): Promise<{ out: Buffer; localPort: number; error?: string }> {
  return new Promise((resolve) => {
    const c = createConnection({ host: '127.0.0.2', port, localAddress: '127.0.0.3', allowHalfOpen: true });
    const chunks: Buffer[] = [];
    let localPort = 0;
    c.on('connect', () => {
      localPort = c.localPort!;
      c.end(data);
    });
    c.on('data', (d: Buffer) => chunks.push(d));
    c.on('error', (e: NodeJS.ErrnoException) => resolve({ out: Buffer.concat(chunks), localPort, error: e.code ?? e.message }));
    c.on('close', () => resolve({ out: Buffer.concat(chunks), localPort }));
  });
}

const waitUntil = async (what: string, f: () => boolean, ms = 3000): Promise<void> => {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

test('v1 and v2: the header names the client and the address it reached; payload and FIN pass both ways', async () => {
  for (const v of ['v1', 'v2'] as const) {
    const up = await upstream();
    const { port, stats } = await proxy(up.port, v);
    const r = await exchange(port, 'hello\n');
    assert.equal(r.error, undefined);
    assert.equal(r.out.toString(), `from 127.0.0.3:${r.localPort}\nhello\n`);
    assert.deepEqual(up.headers, [{ status: 'ok', version: v, length: v === 'v1' ? `PROXY TCP4 127.0.0.3 127.0.0.2 ${r.localPort} ${port}\r\n`.length : 28, connection: { source: { address: '127.0.0.3', port: r.localPort }, destination: { address: '127.0.0.2', port } } }]);
    await waitUntil('the pair to be accounted', () => stats.active === 0 && stats.bytesIn > 0);
    assert.deepEqual({ ...stats, errors: undefined }, { accepted: 1, active: 0, rejected: 0, errors: undefined, bytesIn: 6, bytesOut: r.out.length });
    assert.deepEqual(Object.values(stats.errors), [0, 0, 0, 0, 0]);
  }
});

test('backpressure: 32 MiB echoed through a slow reader, proxy buffers stay bounded', async () => {
  const up = await upstream();
  const { port, l } = await proxy(up.port, 'v2');
  const total = 32 * 1024 * 1024;
  const c = createConnection({ host: '127.0.0.2', port, allowHalfOpen: true });
  let got = 0;
  let maxQueued = 0;
  // Read slowly at first: pause for 300 ms after connecting so both directions fill up.
  c.pause();
  const chunk = Buffer.alloc(64 * 1024, 7);
  let sent = 0;
  const pump = () => {
    while (sent < total) {
      sent += chunk.length;
      if (!c.write(chunk)) return void c.once('drain', pump);
    }
    c.end();
  };
  let localPort = 0;
  c.on('connect', () => {
    localPort = c.localPort!;
    pump();
  });
  const timer = setInterval(() => {
    // What the proxy holds in userspace: the writable buffers of its two sockets.
    for (const s of (l as unknown as { open: Set<Socket> }).open) maxQueued = Math.max(maxQueued, s.writableLength);
  }, 5);
  setTimeout(() => c.resume(), 300);
  await new Promise<void>((resolve, reject) => {
    c.on('data', (d: Buffer) => (got += d.length));
    c.on('error', reject);
    c.on('close', () => resolve());
  });
  clearInterval(timer);
  assert.equal(got, total + `from 127.0.0.1:${localPort}\n`.length);
  assert.ok(maxQueued < 4 * 1024 * 1024, `proxy queued at most ${maxQueued} bytes per socket (pipe backpressure)`);
});

test('maxConnections: one more is reset at accept and counted; a freed slot serves again', async () => {
  const held: Socket[] = [];
  // The upstream answers nothing and closes when the client does (its FIN comes through the proxy).
  const up = await upstream((s) => {
    held.push(s);
    s.on('end', () => s.end());
  });
  const { port, stats } = await proxy(up.port, 'v1', { maxConnections: 2 });
  const open = [createConnection({ host: '127.0.0.2', port }), createConnection({ host: '127.0.0.2', port })];
  for (const s of open) s.on('error', () => undefined);
  await waitUntil('2 connections upstream', () => up.headers.length === 2);
  const r = await exchange(port, 'x');
  assert.equal(r.error, 'ECONNRESET');
  assert.equal(stats.rejected, 1);
  open[0]!.destroy();
  await waitUntil('a freed slot', () => stats.active === 1);
  const again = createConnection({ host: '127.0.0.2', port });
  again.on('error', () => undefined);
  await waitUntil('a third connection upstream', () => up.headers.length === 3);
  assert.equal(stats.rejected, 1);
  for (const s of [...open, again, ...held]) s.destroy();
});

test('idle timeout resets both sides and is counted; a refused upstream resets the client at once', async () => {
  const up = await upstream((s) => s.on('data', () => undefined));
  const { port, stats } = await proxy(up.port, 'v2', { idleTimeoutMs: 1000 });
  const c = createConnection({ host: '127.0.0.2', port });
  const t0 = Date.now();
  const err = await new Promise<string>((resolve) => {
    c.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    c.on('close', () => resolve('closed'));
  });
  assert.equal(err, 'ECONNRESET');
  assert.ok(Date.now() - t0 >= 900, `reset after the idle timeout (${Date.now() - t0} ms)`);
  assert.equal(stats.errors.idle, 1);

  // Nothing listens upstream: like the kernel path's reject, the client is reset at once.
  const gone = await upstream();
  await new Promise<void>((r) => gone.server.close(() => r()));
  const p2 = await proxy(gone.port, 'v1');
  const t1 = Date.now();
  const r = await exchange(p2.port, 'x');
  assert.equal(r.error, 'ECONNRESET');
  assert.ok(Date.now() - t1 < 1000, `refused fast (${Date.now() - t1} ms)`);
  assert.equal(p2.stats.errors.connect, 1);
  assert.equal(p2.stats.active, 0);
});

test('a port in use is a MESHD_EXEC_FAILED naming the address; close() frees it', async () => {
  const up = await upstream();
  const { l, port } = await proxy(up.port, 'v1');
  const dup = new ProxyListener({ host: '127.0.0.2', port, upstream: { host: '127.0.0.1', port: up.port }, version: 'v1', maxConnections: 1, idleTimeoutMs: 1000, stats: newProxyStats() });
  await assert.rejects(dup.listen(), (e: unknown) => e instanceof MeshError && e.code === 'MESHD_EXEC_FAILED' && e.message.includes(`127.0.0.2:${port}`) && /EADDRINUSE/.test(e.message));
  await l.close();
  await dup.listen();
  await dup.close();
});
