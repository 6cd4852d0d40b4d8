import { FactBook } from '/work/main/services/attribution/src/facts/facts.js';
import { attributeInference } from '/work/main/services/attribution/src/inference/attribute.js';
import { GENESIS_EPOCH } from '/work/main/services/attribution/src/epochs/epoch.js';
import { toAttributionInput } from '/work/main/services/attribution/src/model/attribution-input.js';
const facts = new FactBook();
const addr = (k: number, n: number) => `0x${k.toString(16).padStart(2, '0')}${n.toString(16).padStart(38, '0')}`;
facts.addPolicy({ version: 1, effectiveFromEpoch: 0, operatorBps: 2000, creatorBps: 5000, contributorsBps: 2500, treasuryBps: 500, treasuryAddress: addr(0xee, 1) });
for (let d = 0; d < 1000; d++) facts.addSnapshot(`c/set-${d}`, 's1', Array.from({ length: 100 }, (_, c) => ({ account: addr(0xc0, d * 100 + c), weight: BigInt(c + 1) })));
for (let a = 0; a < 10000; a++) facts.addAdapter({ adapterId: `m:c/a-${a}`, creator: addr(0xcc, a % 2000), pricePer1kTokens: 123000000000000000n, trainedOn: [{ datanetId: `c/set-${a % 1000}`, snapshotId: 's1', mixWeightBps: 6000 }, { datanetId: `c/set-${(a + 7) % 1000}`, snapshotId: 's1', mixWeightBps: 4000 }] });
const events = Array.from({ length: 20000 }, (_, i) => ({ id: 'x', type: 'inference.completed', version: 1, occurredAt: '2026-01-01T00:00:00.000Z', correlationId: 'c', causationId: null, data: { requestId: `r${i}`, tenantId: 't', model: 'm', adapterId: `m:c/a-${i % 10000}`, promptTokens: 100, completionTokens: 200, timings: { queuedMs: 1, firstTokenMs: 2, totalMs: 300 }, startedAt: '2026-01-01T00:00:00.000Z', endedAt: '2026-01-01T00:00:00.000Z', workerId: 'w', operatorAddress: addr(0x0a, i % 8), finishReason: 'stop' } }));
for (let round = 0; round < 3; round++) {
  const t = performance.now();
  let fee = 0n;
  for (let i = 0; i < events.length; i++) {
    const input = toAttributionInput(events[i] as never, i + 1);
    if (input.kind !== 'inference') continue;
    const r = attributeInference(facts, GENESIS_EPOCH, input.inference);
    if (r.kind === 'attributed') fee += r.fee;
  }
  console.log(((performance.now() - t) / events.length * 1000).toFixed(2), 'us/event');
}
