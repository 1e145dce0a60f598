/** Seals fuzz payloads with the lab's gossip key, as a member would (cluster name "meshd"). */
import { Keyring } from '../../../src/adapters/gossip/keyring.js';

export function loadSealer(keyFileText: Buffer): (plain: Uint8Array) => Uint8Array {
  const key = new Uint8Array(Buffer.from(keyFileText.toString('utf8').trim().split('\n')[0]!, 'base64'));
  const kr = new Keyring('meshd', key);
  return (plain) => kr.encrypt(plain);
}
