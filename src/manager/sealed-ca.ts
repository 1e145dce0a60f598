/**
 * The root CA record (KEYS.ca) at rest: the certificate in clear (it is public) and the CA key
 * sealed with the cluster data key (`keySealed`, AAD = `cluster/ca`). Older clusters stored
 * `keyPem` in plain text; `openClusterSecrets` migrates such a store once, at manager start:
 * it makes the data key (when this manager has none), re-seals the CA key and the gossip
 * keyring in one transaction (compare-and-put on both records, so two managers racing through
 * the migration cannot both win), and says so through `onMigrated`. A sealed store without a
 * data key file is refused loudly (data-key.ts).
 */
import { MeshError } from '../core/errors.js';
import { isSealed, type Sealer, type SealedValue } from '../adapters/pki/seal.js';
import type { Store, TxnOp } from '../adapters/store/store.js';
import { createDataKey, hasDataKey, loadDataKey } from './data-key.js';
import { parseGossipKeysRecord } from './gossip-keys.js';
import { sealKeyring } from './cluster-keyring.js';
import { KEYS } from './model.js';

/** The CA record as stored now. */
export interface SealedCaRecord {
  certPem: string;
  keySealed: SealedValue;
}

export function sealCaRecord(sealer: Sealer, certPem: string, keyPem: string): SealedCaRecord {
  return { certPem, keySealed: sealer.seal(KEYS.ca, Buffer.from(keyPem, 'utf8')) };
}

/** What Manager.open needs: the CA's PEMs and the sealer. */
export interface OpenedCa {
  certPem: string;
  keyPem: string;
  sealer: Sealer;
}

/**
 * Reads the CA record with this manager's data key, migrating an unsealed store (see the file
 * comment). `onMigrated` is told which records were re-sealed (never their contents).
 */
export async function openClusterSecrets(store: Store, dataDir: string, onMigrated?: (what: string[]) => void): Promise<OpenedCa> {
  const kv = await store.get<Record<string, unknown>>(KEYS.ca);
  const v = kv?.value;
  if (!kv || !v || typeof v.certPem !== 'string') throw new MeshError('MESHD_STORE_CORRUPT', 'the store holds no cluster CA although this node is a manager');
  if (isSealed(v.keySealed)) {
    const sealer = loadDataKey(dataDir);
    return { certPem: v.certPem, keyPem: sealer.open(KEYS.ca, v.keySealed).toString('utf8'), sealer };
  }
  if (typeof v.keyPem !== 'string') throw new MeshError('MESHD_STORE_CORRUPT', 'the cluster CA record holds neither a sealed nor a plain key');
  // An unsealed store (made before sealing): seal it now, with this manager's key or a new one.
  const sealer = hasDataKey(dataDir) ? loadDataKey(dataDir) : createDataKey(dataDir);
  const ops: TxnOp[] = [{ op: 'put', key: KEYS.ca, value: sealCaRecord(sealer, v.certPem, v.keyPem), ifRevision: kv.revision }];
  const what = ['cluster/ca'];
  const ring = await store.get(KEYS.gossipKeys);
  if (ring && !isSealed(ring.value)) {
    const rec = parseGossipKeysRecord(ring.value);
    if (rec) {
      ops.push({ op: 'put', key: KEYS.gossipKeys, value: sealKeyring(sealer, rec), ifRevision: ring.revision });
      what.push('cluster/gossip-keys');
    }
  }
  await store.txn(ops);
  onMigrated?.(what);
  return { certPem: v.certPem, keyPem: v.keyPem, sealer };
}
