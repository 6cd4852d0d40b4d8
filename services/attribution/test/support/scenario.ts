/**
 * A seeded stream of attribution's input events, as the producers would publish them: split
 * policies (a change mid-stream), Datanets with snapshots (one contributor holding almost all the
 * weight, one with a single contributor, one empty), adapters (some retired while still being
 * called), inferences (completed, failed, on the base model), re-published requests (same
 * requestId, new event id), epoch markers (one repeated), and a malformed event.
 *
 * Every event is a plain JSON value in the contracts' shape; `subject` is where it goes.
 */
import { subjectToken } from '@longtail/contracts';

import { policyForEpoch } from '../../src/epochs/epoch.js';
import type { SplitPolicy } from '../../src/split/split-policy.js';

export interface ScenarioMessage {
  readonly stream: 'ADAPTERS' | 'DATANETS' | 'ATTRIBUTION' | 'INFERENCE';
  readonly subject: string;
  /** The event (or, for the malformed one, any JSON). */
  readonly event: Record<string, unknown>;
}

export interface ScenarioOptions {
  readonly seed: number;
  readonly adapters: number;
  readonly datanets: number;
  readonly contributors: number;
  readonly inferences: number;
  /** Markers: one every `inferences / epochs` inferences. */
  readonly epochs: number;
  /** Share of inferences re-published with a new event id (0..1). */
  readonly duplicateRate?: number;
  /** Include the malformed event and a repeated marker (default true). */
  readonly faults?: boolean;
}

export interface Scenario {
  readonly facts: readonly ScenarioMessage[];
  readonly inference: readonly ScenarioMessage[];
  readonly treasury: string;
}

/** mulberry32: small, fast, seeded. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function address(n: number, salt = 0): string {
  return `0x${(BigInt(n) * 0x9e3779b97f4a7c15n + BigInt(salt) * 0x51ed270b27n).toString(16).padStart(40, '0').slice(-40)}`;
}

/** A UUID v7 from a time and the PRNG (deterministic per seed). */
export function uuidV7(ms: number, rand: () => number): string {
  const hex = (n: number, width: number) => Math.floor(n).toString(16).padStart(width, '0');
  const t = hex(ms, 12);
  const r = () => hex(rand() * 0x10000, 4);
  return `${t.slice(0, 8)}-${t.slice(8, 12)}-7${r().slice(1)}-${(8 + Math.floor(rand() * 4)).toString(16)}${r().slice(1)}-${r()}${r()}${r()}`;
}

const MODEL = 'llama-3-8b';
const BASE_MS = Date.parse('2026-03-01T00:00:00.000Z');

export function generateScenario(o: ScenarioOptions): Scenario {
  const rand = prng(o.seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  let clock = BASE_MS;
  const envelope = (type: string, data: Record<string, unknown>, correlationId: string) => {
    clock += int(1, 1500);
    return {
      id: uuidV7(clock, rand),
      type,
      version: 1,
      occurredAt: new Date(clock).toISOString(),
      correlationId,
      causationId: null,
      data,
    };
  };
  const facts: ScenarioMessage[] = [];
  const treasury = address(999_999, 7);
  const policies: SplitPolicy[] = [
    {
      version: 1,
      effectiveFromEpoch: 0,
      operatorBps: 2000,
      creatorBps: 5000,
      contributorsBps: 2500,
      treasuryBps: 500,
      treasuryAddress: treasury,
    },
    {
      version: 2,
      effectiveFromEpoch: 2,
      operatorBps: 1500,
      creatorBps: 4000,
      contributorsBps: 4000,
      treasuryBps: 500,
      treasuryAddress: treasury,
    },
  ];
  facts.push(policyMessage(policies[0]!));

  // Datanets and snapshots.
  const snapshots: { datanetId: string; snapshotId: string }[] = [];
  for (let d = 0; d < o.datanets; d += 1) {
    const datanetId = `curator${d % 7}/set-${d}`;
    facts.push({
      stream: 'DATANETS',
      subject: `datanets.datanet.created.${subjectToken(datanetId)}`,
      event: envelope(
        'datanets.datanet.created',
        { datanetId, name: `Dataset ${d}`, ownerTenantId: `tenant-${d % 5}` },
        datanetId,
      ),
    });
    const kind = d === 0 ? 'whale' : d === 1 ? 'single' : d === 2 ? 'empty' : 'normal';
    const count = kind === 'empty' ? 0 : kind === 'single' ? 3 : int(2, 30);
    const weights = new Map<string, bigint>();
    for (let c = 0; c < count; c += 1) {
      const contributor = kind === 'single' ? address(1, d) : address(int(0, o.contributors - 1), 3);
      const weight = kind === 'whale' ? (c === 0 ? 10n ** 12n : 1n) : BigInt(int(1, 5000));
      weights.set(contributor, (weights.get(contributor) ?? 0n) + weight);
      facts.push({
        stream: 'DATANETS',
        subject: `datanets.contribution.added.${subjectToken(datanetId)}`,
        event: envelope(
          'datanets.contribution.added',
          {
            datanetId,
            contributionId: `c-${d}-${c}`,
            contributorAddress: contributor,
            contentSha256: (BigInt(d * 100_000 + c) * 0x9e3779b97f4a7c15n)
              .toString(16)
              .padStart(64, '0')
              .slice(-64),
            sizeTokens: int(10, 100_000),
            weight: Number(weight),
          },
          datanetId,
        ),
      });
    }
    const snapshotId = `snap-${d}`;
    snapshots.push({ datanetId, snapshotId });
    facts.push({
      stream: 'DATANETS',
      subject: `datanets.snapshot.published.${subjectToken(datanetId)}`,
      event: envelope(
        'datanets.snapshot.published',
        {
          datanetId,
          snapshotId,
          throughSequence: facts.length,
          contributionCount: count,
          contributors: [...weights]
            .sort(([a], [b]) => (a < b ? -1 : 1))
            .map(([account, weight]) => ({ account, weight: Number(weight) })),
        },
        datanetId,
      ),
    });
  }

  // Adapters.
  const adapterIds: string[] = [];
  const retired: string[] = [];
  for (let a = 0; a < o.adapters; a += 1) {
    const adapterId = `${MODEL}:creator${a % 11}/adapter-${a}`;
    adapterIds.push(adapterId);
    const n = a === 0 ? 1 : int(0, Math.min(3, snapshots.length));
    const chosen = new Set<number>(a === 0 ? [0] : []);
    while (chosen.size < n) chosen.add(int(0, snapshots.length - 1));
    const mix = splitBps([...chosen].length, int);
    facts.push({
      stream: 'ADAPTERS',
      subject: `adapters.registered.${subjectToken(adapterId)}`,
      event: envelope(
        'adapters.registered',
        {
          adapterId,
          baseModel: MODEL,
          ownerTenantId: `tenant-${a % 5}`,
          name: `Adapter ${a}`,
          visibility: 'public',
          pricePer1kTokens: (
            BigInt(int(1, 999)) * 10n ** BigInt(int(12, 17)) +
            BigInt(int(0, 999))
          ).toString(),
          creatorAddress: address(a % 11, 5),
          rank: 8,
          targetModules: ['q_proj', 'v_proj'],
          weightsSha256: 'ab'.repeat(32),
          sizeBytes: 1024,
          weightsObjectKey: `adapters/${a}/adapter_model.safetensors`,
          trainedOn: [...chosen].map((i, k) => ({ ...snapshots[i]!, mixWeightBps: mix[k]! })),
        },
        adapterId,
      ),
    });
    if (a % 9 === 4) retired.push(adapterId);
  }
  for (const adapterId of retired) {
    facts.push({
      stream: 'ADAPTERS',
      subject: `adapters.retired.${subjectToken(adapterId)}`,
      event: envelope('adapters.retired', { adapterId, reason: 'superseded' }, adapterId),
    });
  }

  // Inferences, duplicates and markers. The policy change is published after the first marker.
  const inference: ScenarioMessage[] = [];
  const perEpoch = Math.max(1, Math.floor(o.inferences / Math.max(1, o.epochs)));
  const knownPolicies: SplitPolicy[] = [policies[0]!];
  let epoch = 0;
  let policyVersion = 1;
  const replays: ScenarioMessage[] = [];
  for (let i = 0; i < o.inferences; i += 1) {
    const requestId = `req-${o.seed}-${i}`;
    const base = rand() < 0.05;
    const adapterId = base
      ? null
      : adapterIds[Math.min(adapterIds.length - 1, Math.floor(adapterIds.length * rand() ** 2))]!;
    const failed = rand() < 0.08;
    const promptTokens = int(1, 4000);
    const completionTokens = rand() < 0.03 ? 0 : int(1, 2000);
    const totalMs = int(20, 20_000);
    const queuedMs = int(0, Math.min(totalMs, 50));
    const startedAt = new Date(clock).toISOString();
    const ended = envelope(failed ? 'inference.failed' : 'inference.completed', {}, requestId);
    const common = {
      requestId,
      tenantId: `tenant-${int(0, 4)}`,
      model: MODEL,
      adapterId,
      promptTokens,
      completionTokens,
      timings: {
        queuedMs,
        firstTokenMs: completionTokens === 0 ? null : Math.min(totalMs, queuedMs + int(1, 200)),
        totalMs,
      },
      startedAt,
      endedAt: ended.occurredAt,
    };
    const operator = address(int(0, 2), 11);
    const data = failed
      ? {
          ...common,
          workerId: `worker-${int(0, 5)}`,
          operatorAddress: operator,
          error: { code: 'engine_out_of_memory', message: 'out of memory' },
        }
      : {
          ...common,
          workerId: `worker-${int(0, 5)}`,
          operatorAddress: operator,
          finishReason: rand() < 0.1 ? 'cancelled' : 'stop',
        };
    const message: ScenarioMessage = {
      stream: 'INFERENCE',
      subject: `${ended.type}.${subjectToken(requestId)}`,
      event: { ...ended, data },
    };
    inference.push(message);
    if (rand() < (o.duplicateRate ?? 0.05))
      replays.push({ ...message, event: { ...message.event, id: uuidV7(clock, rand) } });
    // A re-published request arrives a little later.
    if (replays.length > 0 && rand() < 0.3) inference.push(replays.shift()!);

    if ((i + 1) % perEpoch === 0 && epoch < o.epochs) {
      if (epoch === 0) {
        knownPolicies.push(policies[1]!);
        facts.push(policyMessage(policies[1]!));
      }
      const next = policyForEpoch(knownPolicies, epoch + 1, policyVersion);
      const marker: ScenarioMessage = {
        stream: 'INFERENCE',
        subject: `inference.epoch_closing.${epoch}`,
        event: envelope(
          'inference.epoch_closing',
          { epoch, nextPolicyVersion: next },
          `epoch-close-${epoch}`,
        ),
      };
      inference.push(marker);
      if (o.faults !== false && epoch === 1)
        inference.push({ ...marker, event: { ...marker.event, id: uuidV7(clock, rand) } });
      policyVersion = next;
      epoch += 1;
    }
    if (o.faults !== false && i === Math.floor(o.inferences / 3)) {
      inference.push({
        stream: 'INFERENCE',
        subject: 'inference.completed.bad',
        event: { ...ended, id: uuidV7(clock, rand), data: { requestId: 'bad' } },
      });
      // An inference on an adapter that was never registered: refused once the facts are caught up.
      const ghostId = `ghost-${o.seed}`;
      inference.push({
        stream: 'INFERENCE',
        subject: `inference.completed.${ghostId}`,
        event: {
          ...ended,
          id: uuidV7(clock, rand),
          data: { ...data, requestId: ghostId, adapterId: `${MODEL}:ghost/never-registered` },
        },
      });
    }
  }
  inference.push(...replays);
  return { facts, inference, treasury };

  function policyMessage(p: SplitPolicy): ScenarioMessage {
    return {
      stream: 'ATTRIBUTION',
      subject: `attribution.policy.set.${p.version}`,
      event: envelope('attribution.policy.set', { ...p }, `policy-${p.version}`),
    };
  }
}

function splitBps(n: number, int: (lo: number, hi: number) => number): number[] {
  if (n === 0) return [];
  const cuts = new Set<number>();
  while (cuts.size < n - 1) cuts.add(int(1, 9_999));
  const sorted = [0, ...[...cuts].sort((a, b) => a - b), 10_000];
  return sorted.slice(1).map((v, i) => v - sorted[i]!);
}
