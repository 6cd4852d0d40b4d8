/**
 * Datanet commands as a pure decider: `decide(command, state) → event data | refusal`. The state is
 * what the facts projection knows about one Datanet; the shell (DatanetCommands) loads it,
 * publishes the event with an expected last subject sequence, and retries on a conflict.
 *
 * A snapshot freezes the contributors and their summed weights (a contribution's weight, or its
 * size in tokens when it has none) at the moment it is cut; adapters trained on it pay exactly
 * those contributors, forever.
 */
import type { DatanetSnapshotPublishedV1Data } from '@longtail/contracts';

export interface DatanetContribution {
  readonly contributionId: string;
  readonly contributor: string;
  readonly weight: bigint;
}

export interface DatanetState {
  readonly datanetId: string;
  readonly exists: boolean;
  /** In stream order. */
  readonly contributions: readonly DatanetContribution[];
  readonly snapshotIds: ReadonlySet<string>;
  /** Last DATANETS sequence the state includes. */
  readonly throughSequence: number;
}

export type DatanetCommand =
  | {
      readonly kind: 'create';
      readonly datanetId: string;
      readonly name: string;
      readonly ownerTenantId: string;
      readonly description?: string;
    }
  | {
      readonly kind: 'add-contribution';
      readonly datanetId: string;
      readonly contributionId: string;
      readonly contributorAddress: string;
      readonly contentSha256: string;
      readonly sizeTokens: number;
      readonly weight?: number;
      readonly objectKey?: string;
    }
  | { readonly kind: 'cut-snapshot'; readonly datanetId: string; readonly snapshotId: string };

export type DatanetDecision =
  | {
      readonly ok: true;
      readonly type:
        'datanets.datanet.created' | 'datanets.contribution.added' | 'datanets.snapshot.published';
      readonly data: Record<string, unknown>;
    }
  | {
      readonly ok: false;
      readonly code:
        'datanet_exists' | 'datanet_not_found' | 'contribution_exists' | 'snapshot_exists' | 'snapshot_empty';
      readonly message: string;
    };

/** The weight snapshots use for each contribution: its own, or its size in tokens. */
export function contributionWeight(weight: number | undefined, sizeTokens: number): bigint {
  return BigInt(weight ?? sizeTokens);
}

export function decideDatanet(command: DatanetCommand, state: DatanetState): DatanetDecision {
  switch (command.kind) {
    case 'create':
      if (state.exists)
        return { ok: false, code: 'datanet_exists', message: `Datanet ${command.datanetId} already exists` };
      return {
        ok: true,
        type: 'datanets.datanet.created',
        data: {
          datanetId: command.datanetId,
          name: command.name,
          ownerTenantId: command.ownerTenantId,
          ...(command.description !== undefined ? { description: command.description } : {}),
        },
      };
    case 'add-contribution': {
      if (!state.exists)
        return { ok: false, code: 'datanet_not_found', message: `no Datanet ${command.datanetId}` };
      if (state.contributions.some((c) => c.contributionId === command.contributionId)) {
        return {
          ok: false,
          code: 'contribution_exists',
          message: `contribution ${command.contributionId} already in ${command.datanetId}`,
        };
      }
      const { kind: _kind, ...data } = command;
      return { ok: true, type: 'datanets.contribution.added', data };
    }
    case 'cut-snapshot': {
      if (!state.exists)
        return { ok: false, code: 'datanet_not_found', message: `no Datanet ${command.datanetId}` };
      if (state.snapshotIds.has(command.snapshotId)) {
        return {
          ok: false,
          code: 'snapshot_exists',
          message: `snapshot ${command.snapshotId} of ${command.datanetId} already exists`,
        };
      }
      const weights = new Map<string, bigint>();
      for (const c of state.contributions)
        weights.set(c.contributor, (weights.get(c.contributor) ?? 0n) + c.weight);
      const contributors = [...weights]
        .filter(([, w]) => w > 0n)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([account, weight]) => {
          if (weight > BigInt(Number.MAX_SAFE_INTEGER))
            throw new RangeError(`weight of ${account} exceeds 2^53-1`);
          return { account, weight: Number(weight) };
        });
      const data: DatanetSnapshotPublishedV1Data = {
        datanetId: command.datanetId,
        snapshotId: command.snapshotId,
        throughSequence: state.throughSequence,
        contributionCount: state.contributions.length,
        contributors,
      };
      return {
        ok: true,
        type: 'datanets.snapshot.published',
        data: data as unknown as Record<string, unknown>,
      };
    }
  }
}
