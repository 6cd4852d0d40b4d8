/**
 * The immutable facts that pricing and splitting read: adapter terms (from `adapters.registered`),
 * Datanet snapshots (from `datanets.snapshot.published`) and split policies (from
 * `attribution.policy.set`). Each fact, once published, never changes, which is what lets the
 * INFERENCE stream be attributed deterministically although these facts arrive on other streams:
 * an inference that names a fact not seen yet waits for it (it cannot be wrong, only early).
 *
 * `FactBook` is the in-memory index of those facts; a service fills it from its fact tables and
 * from the fact streams, tests fill it from events.
 */
import { snapshotKey, snapshotWeights, type SnapshotWeights } from '../split/provenance.js';
import { assertSplitPolicy, type SplitPolicy } from '../split/split-policy.js';

export interface TrainingRef {
  readonly datanetId: string;
  readonly snapshotId: string;
  readonly mixWeightBps: number;
}

/** What an adapter's registration fixes for attribution. */
export interface AdapterTerms {
  readonly adapterId: string;
  readonly creator: string;
  readonly pricePer1kTokens: bigint;
  readonly trainedOn: readonly TrainingRef[];
}

/** A fact an input needs and the state has not seen yet. */
export type MissingFactRef =
  | { readonly kind: 'adapter'; readonly adapterId: string }
  | { readonly kind: 'snapshot'; readonly datanetId: string; readonly snapshotId: string }
  | { readonly kind: 'policy'; readonly version: number };

export function describeMissing(ref: MissingFactRef): string {
  switch (ref.kind) {
    case 'adapter':
      return `adapter ${ref.adapterId}`;
    case 'snapshot':
      return `snapshot ${ref.datanetId}@${ref.snapshotId}`;
    case 'policy':
      return `policy v${ref.version}`;
  }
}

/** Read side of the facts (what the inference core needs). */
export interface Facts {
  adapter(adapterId: string): AdapterTerms | undefined;
  snapshot(datanetId: string, snapshotId: string): SnapshotWeights | undefined;
  policy(version: number): SplitPolicy | undefined;
}

export class FactBook implements Facts {
  readonly #adapters = new Map<string, AdapterTerms>();
  readonly #retired = new Set<string>();
  readonly #snapshots = new Map<string, SnapshotWeights>();
  readonly #policies = new Map<number, SplitPolicy>();

  adapter(adapterId: string): AdapterTerms | undefined {
    return this.#adapters.get(adapterId);
  }

  snapshot(datanetId: string, snapshotId: string): SnapshotWeights | undefined {
    return this.#snapshots.get(snapshotKey(datanetId, snapshotId));
  }

  policy(version: number): SplitPolicy | undefined {
    return this.#policies.get(version);
  }

  isRetired(adapterId: string): boolean {
    return this.#retired.has(adapterId);
  }

  /** Highest known policy version; 0 when none. */
  latestPolicyVersion(): number {
    let latest = 0;
    for (const version of this.#policies.keys()) latest = Math.max(latest, version);
    return latest;
  }

  policies(): SplitPolicy[] {
    return [...this.#policies.values()].sort((a, b) => a.version - b.version);
  }

  /** First registration wins; a repeated registration of the same id changes nothing. */
  addAdapter(terms: AdapterTerms): void {
    if (!this.#adapters.has(terms.adapterId)) this.#adapters.set(terms.adapterId, terms);
  }

  retireAdapter(adapterId: string): void {
    this.#retired.add(adapterId);
  }

  addSnapshot(
    datanetId: string,
    snapshotId: string,
    contributors: Iterable<{ account: string; weight: bigint }>,
  ): void {
    const key = snapshotKey(datanetId, snapshotId);
    if (!this.#snapshots.has(key))
      this.#snapshots.set(key, snapshotWeights(datanetId, snapshotId, contributors));
  }

  addPolicy(policy: SplitPolicy): void {
    assertSplitPolicy(policy);
    if (!this.#policies.has(policy.version)) this.#policies.set(policy.version, policy);
  }
}
