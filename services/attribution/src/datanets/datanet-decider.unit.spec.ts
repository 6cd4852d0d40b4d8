import { describe, expect, it } from 'vitest';

import { decideDatanet, type DatanetState } from './datanet-decider.js';

const a = `0x${'a'.repeat(40)}`;
const b = `0x${'b'.repeat(40)}`;
const empty: DatanetState = {
  datanetId: 'acme/legal',
  exists: false,
  contributions: [],
  snapshotIds: new Set(),
  throughSequence: 0,
};
const existing: DatanetState = {
  ...empty,
  exists: true,
  contributions: [
    { contributionId: 'c1', contributor: b, weight: 10n },
    { contributionId: 'c2', contributor: a, weight: 5n },
    { contributionId: 'c3', contributor: b, weight: 7n },
  ],
  snapshotIds: new Set(['s1']),
  throughSequence: 41,
};

describe('Datanet decider', () => {
  it('creates a Datanet once', () => {
    expect(
      decideDatanet({ kind: 'create', datanetId: 'acme/legal', name: 'Legal', ownerTenantId: 't1' }, empty),
    ).toMatchObject({ ok: true, type: 'datanets.datanet.created' });
    expect(
      decideDatanet(
        { kind: 'create', datanetId: 'acme/legal', name: 'Legal', ownerTenantId: 't1' },
        existing,
      ),
    ).toMatchObject({ ok: false, code: 'datanet_exists' });
  });

  it('adds a contribution to an existing Datanet, once per id', () => {
    const add = {
      kind: 'add-contribution' as const,
      datanetId: 'acme/legal',
      contributionId: 'c4',
      contributorAddress: a,
      contentSha256: '0'.repeat(64),
      sizeTokens: 100,
    };
    expect(decideDatanet(add, existing)).toMatchObject({ ok: true, type: 'datanets.contribution.added' });
    expect(decideDatanet({ ...add, contributionId: 'c1' }, existing)).toMatchObject({
      ok: false,
      code: 'contribution_exists',
    });
    expect(decideDatanet(add, empty)).toMatchObject({ ok: false, code: 'datanet_not_found' });
  });

  it('cuts a snapshot with each contributor once, weights summed, sorted by account', () => {
    const decision = decideDatanet(
      { kind: 'cut-snapshot', datanetId: 'acme/legal', snapshotId: 's2' },
      existing,
    );
    expect(decision).toEqual({
      ok: true,
      type: 'datanets.snapshot.published',
      data: {
        datanetId: 'acme/legal',
        snapshotId: 's2',
        throughSequence: 41,
        contributionCount: 3,
        contributors: [
          { account: a, weight: 5 },
          { account: b, weight: 17 },
        ],
      },
    });
    expect(
      decideDatanet({ kind: 'cut-snapshot', datanetId: 'acme/legal', snapshotId: 's1' }, existing),
    ).toMatchObject({ ok: false, code: 'snapshot_exists' });
  });
});
