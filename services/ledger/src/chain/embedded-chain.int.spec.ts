import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { distributorCallAbi } from './artifacts.js';
import { publicClientFor } from './clients.js';
import { startEmbeddedChain } from './embedded-chain.js';

describe('startEmbeddedChain', () => {
  it('given a data dir, then contracts are deployed once, kept across restarts, and redeployed if the state is lost', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'ledger-embedded-'));
    const first = await startEmbeddedChain({ dataDir });
    const { distributor } = first;
    await first.stop();

    const second = await startEmbeddedChain({ dataDir });
    try {
      expect(second.distributor).toBe(distributor);
      const nextEpoch = await publicClientFor(second).readContract({ address: second.distributor, abi: distributorCallAbi, functionName: 'nextEpoch' });
      expect(nextEpoch).toBe(0n);
    } finally {
      await second.stop();
    }

    rmSync(join(dataDir, 'anvil-state.json'));
    const third = await startEmbeddedChain({ dataDir });
    try {
      const code = await publicClientFor(third).getCode({ address: third.distributor });
      expect(code && code.length > 2).toBe(true);
    } finally {
      await third.stop();
    }
  });
});
