/**
 * `netctl keys ...`: the gossip keyring of one node. Keys are read from a file or stdin —
 * never from argv, where `ps` and shell history would show them.
 */
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { Command } from 'commander';
import { MeshError } from '../core/errors.js';
import { clientFor, type GlobalOpts } from './context.js';
import { formatted, table } from './format.js';

function readSecret(file: string | undefined): string {
  const src = file ?? '-';
  let text: string;
  try {
    text = readFileSync(src === '-' ? 0 : src, 'utf8');
  } catch (e) {
    throw new MeshError('MESHD_BAD_ARGUMENT', `cannot read key from ${src === '-' ? 'stdin' : src}: ${(e as Error).message}`);
  }
  const key = text.trim().split('\n')[0]?.trim() ?? '';
  if (!key) throw new MeshError('MESHD_BAD_ARGUMENT', `no key in ${src === '-' ? 'stdin' : src}`);
  return key;
}

export function keysCommand(globals: () => GlobalOpts): Command {
  const keys = new Command('keys').description('gossip encryption keys of one node (AES-256-GCM keyring)');
  keys
    .command('ls')
    .description('list key fingerprints; the primary encrypts, all decrypt')
    .option('--format <fmt>', 'table|json|TEMPLATE (e.g. \'{{.name}}\')')
    .action(async (o: { format?: string }) => {
      const r = await clientFor(globals()).call<{ encrypted: boolean; keys: Array<{ fingerprint: string; primary: boolean }> }>('GET', '/v1/gossip/keys');
      if (formatted(r, o.format)) return;
      if (!r.encrypted) return void process.stdout.write('gossip is not encrypted on this node\n');
      process.stdout.write(table(['FINGERPRINT', 'PRIMARY'], r.keys.map((k) => [k.fingerprint, k.primary ? '*' : ''])));
    });
  keys
    .command('generate')
    .description('print a new random key (base64) to stdout')
    .action(() => void process.stdout.write(randomBytes(32).toString('base64') + '\n'));
  for (const op of ['install', 'use', 'remove'] as const) {
    keys
      .command(op)
      .description(op === 'install' ? 'accept a key for decryption' : op === 'use' ? 'make an installed key the primary' : 'remove a non-primary key')
      .option('--key-file <file>', 'file holding the base64 key (default: read stdin)')
      .action(async (o: { keyFile?: string }) => {
        const r = await clientFor(globals()).call<{ keys: Array<{ fingerprint: string; primary: boolean }> }>('POST', '/v1/gossip/keys', { op, key: readSecret(o.keyFile) });
        process.stdout.write(table(['FINGERPRINT', 'PRIMARY'], r.keys.map((k) => [k.fingerprint, k.primary ? '*' : ''])));
      });
  }
  return keys;
}
