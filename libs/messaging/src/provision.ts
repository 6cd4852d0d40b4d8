/**
 * Start-up provisioning: brings streams, KV buckets and object-store buckets to the declared
 * configuration. Safe to run on every start, from every instance, at the same time: a missing
 * resource is created, an existing one is updated only where a managed field differs, and a
 * creation race (two instances adding the same stream) ends in the same state for both.
 * Storage type cannot change on a live stream; that mismatch is an error, never a silent drop.
 */
import {
  DiscardPolicy,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
  type StreamInfo,
} from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { Objm } from '@nats-io/obj';
import { nanos } from '@nats-io/nats-core';
import type { MessagingConnection } from './connection.js';
import { isStreamNameInUse, isStreamNotFound, messageOf, ProvisioningFailed } from './errors.js';

export type Storage = 'file' | 'memory';

export interface StreamSpec {
  readonly name: string;
  readonly subjects: readonly string[];
  readonly description?: string;
  /** Default `file`: events are the source of truth. */
  readonly storage?: Storage;
  /** 1 on one machine, 3 on a cluster. Default 1. */
  readonly replicas?: number;
  /** Window in which a repeated `Nats-Msg-Id` is dropped (ms). Default 120 000 (server default). */
  readonly duplicateWindowMs?: number;
  /** 0 = keep forever (default). */
  readonly maxAgeMs?: number;
  /** -1 = unlimited (default). */
  readonly maxBytes?: number;
  /** Largest single message (bytes); -1 = server limit (default). */
  readonly maxMsgSize?: number;
  /** Refuse message deletion / stream purge through the API (history is the source of truth). */
  readonly denyDelete?: boolean;
  readonly denyPurge?: boolean;
}

export interface KvSpec {
  readonly bucket: string;
  readonly description?: string;
  /** Values kept per key. Default 1. */
  readonly history?: number;
  /** A value expires this long after it was written (ms); 0 = never (default). */
  readonly ttlMs?: number;
  readonly storage?: Storage;
  readonly replicas?: number;
  readonly maxBytes?: number;
}

export interface ObjectStoreSpec {
  readonly bucket: string;
  readonly description?: string;
  readonly storage?: Storage;
  readonly replicas?: number;
  /** Objects expire after (ms); 0 = never (default). */
  readonly ttlMs?: number;
}

export interface ProvisionSpec {
  readonly streams?: readonly StreamSpec[];
  readonly kv?: readonly KvSpec[];
  readonly objectStores?: readonly ObjectStoreSpec[];
}

export type ProvisionOutcome = 'created' | 'updated' | 'unchanged';

export interface ProvisionReport {
  readonly streams: Readonly<Record<string, ProvisionOutcome>>;
  readonly kv: readonly string[];
  readonly objectStores: readonly string[];
}

const storageType = (s: Storage | undefined): StorageType =>
  s === 'memory' ? StorageType.Memory : StorageType.File;

export async function provision(conn: MessagingConnection, spec: ProvisionSpec): Promise<ProvisionReport> {
  const streams: Record<string, ProvisionOutcome> = {};
  for (const stream of spec.streams ?? []) streams[stream.name] = await provisionStream(conn, stream);

  const kvm = new Kvm(conn.js);
  for (const kv of spec.kv ?? []) await provisionKv(conn, kvm, kv);

  const objm = new Objm(conn.js);
  for (const os of spec.objectStores ?? []) {
    try {
      await objm.create(os.bucket, {
        ...(os.description ? { description: os.description } : {}),
        storage: storageType(os.storage),
        replicas: os.replicas ?? 1,
        ...(os.ttlMs ? { ttl: nanos(os.ttlMs) } : {}),
      });
    } catch (err) {
      throw new ProvisioningFailed(`object store ${os.bucket}`, messageOf(err), { cause: err });
    }
  }
  return {
    streams,
    kv: (spec.kv ?? []).map((k) => k.bucket),
    objectStores: (spec.objectStores ?? []).map((o) => o.bucket),
  };
}

function desiredStreamConfig(spec: StreamSpec): Partial<StreamConfig> & { name: string } {
  return {
    name: spec.name,
    subjects: [...spec.subjects],
    ...(spec.description ? { description: spec.description } : {}),
    storage: storageType(spec.storage),
    num_replicas: spec.replicas ?? 1,
    duplicate_window: nanos(spec.duplicateWindowMs ?? 120_000),
    max_age: nanos(spec.maxAgeMs ?? 0),
    max_bytes: spec.maxBytes ?? -1,
    max_msg_size: spec.maxMsgSize ?? -1,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    deny_delete: spec.denyDelete ?? false,
    deny_purge: spec.denyPurge ?? false,
  };
}

/** The managed fields of `current` that differ from `desired`. */
function streamDrift(current: StreamConfig, desired: Partial<StreamConfig>): string[] {
  const drift: string[] = [];
  for (const [key, want] of Object.entries(desired)) {
    const have = (current as unknown as Record<string, unknown>)[key];
    const same =
      Array.isArray(want) && Array.isArray(have)
        ? want.length === have.length && [...want].sort().every((v, i) => v === [...have].sort()[i])
        : have === want;
    if (!same) drift.push(key);
  }
  return drift;
}

async function provisionStream(conn: MessagingConnection, spec: StreamSpec): Promise<ProvisionOutcome> {
  const jsm = await conn.jsm();
  const desired = desiredStreamConfig(spec);
  for (let attempt = 0; attempt < 3; attempt++) {
    let info: StreamInfo;
    try {
      info = await jsm.streams.info(spec.name);
    } catch (err) {
      if (!isStreamNotFound(err))
        throw new ProvisioningFailed(`stream ${spec.name}`, messageOf(err), { cause: err });
      try {
        await jsm.streams.add(desired);
        return 'created';
      } catch (addErr) {
        // Another instance created it first (with a config that differs in some detail):
        // go round again and update it.
        if (isStreamNameInUse(addErr)) continue;
        throw new ProvisioningFailed(`stream ${spec.name}`, messageOf(addErr), { cause: addErr });
      }
    }
    const drift = streamDrift(info.config, desired);
    if (drift.length === 0) return 'unchanged';
    if (drift.includes('storage')) {
      throw new ProvisioningFailed(
        `stream ${spec.name}`,
        `storage is ${info.config.storage}, wanted ${desired.storage}; storage cannot change on a live stream`,
      );
    }
    try {
      await jsm.streams.update(spec.name, { ...info.config, ...desired });
      return 'updated';
    } catch (err) {
      throw new ProvisioningFailed(
        `stream ${spec.name}`,
        `update of ${drift.join(', ')}: ${messageOf(err)}`,
        {
          cause: err,
        },
      );
    }
  }
  throw new ProvisioningFailed(`stream ${spec.name}`, 'kept changing while being provisioned');
}

async function provisionKv(conn: MessagingConnection, kvm: Kvm, spec: KvSpec): Promise<void> {
  const resource = `kv ${spec.bucket}`;
  try {
    const kv = await kvm.create(spec.bucket, {
      ...(spec.description ? { description: spec.description } : {}),
      history: spec.history ?? 1,
      ttl: spec.ttlMs ?? 0,
      storage: storageType(spec.storage),
      replicas: spec.replicas ?? 1,
      ...(spec.maxBytes !== undefined ? { max_bytes: spec.maxBytes } : {}),
    });
    // `create` opens an existing bucket as it is; bring history and TTL to the spec.
    const status = await kv.status();
    const info = status.streamInfo;
    const wantAge = nanos(spec.ttlMs ?? 0);
    const wantHistory = spec.history ?? 1;
    if (info.config.max_msgs_per_subject !== wantHistory || info.config.max_age !== wantAge) {
      const jsm = await conn.jsm();
      await jsm.streams.update(info.config.name, {
        ...info.config,
        max_msgs_per_subject: wantHistory,
        max_age: wantAge,
        // the server refuses a duplicate window longer than the max age
        ...(wantAge > 0 && info.config.duplicate_window > wantAge ? { duplicate_window: wantAge } : {}),
      });
    }
  } catch (err) {
    throw new ProvisioningFailed(resource, messageOf(err), { cause: err });
  }
}
