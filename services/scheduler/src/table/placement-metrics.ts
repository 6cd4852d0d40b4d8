/**
 * The operator view as OpenTelemetry metrics, read from the active table at each collection:
 * per worker (attribute `worker`) the adapters placed, decayed load and its cap, queue depth;
 * for the scheduler the term, requests seen, hits, loads and evictions sent (monotonic within a
 * term). Defined through `@opentelemetry/api`: `@longtail/telemetry` registers no MeterProvider
 * yet (traces only), so these are no-ops until it does; a standby reports nothing.
 */
import { metrics, type Observable, type ObservableCallback, type ObservableResult } from '@opentelemetry/api';
import type { PlacementView } from '@longtail/contracts';

export function registerPlacementMetrics(view: () => PlacementView | undefined): () => void {
  const meter = metrics.getMeter('@longtail/scheduler');
  const adapters = meter.createObservableGauge('longtail.scheduler.worker.adapters', {
    description: 'Adapters placed on the worker',
  });
  const load = meter.createObservableGauge('longtail.scheduler.worker.load', {
    description: 'Decayed requests routed to the worker (10 s half-life)',
  });
  const loadCap = meter.createObservableGauge('longtail.scheduler.worker.load_cap', {
    description: 'Bounded-load cap on the worker load',
  });
  const queue = meter.createObservableGauge('longtail.scheduler.worker.queue_depth', {
    description: 'Sequences waiting in the worker engine',
  });
  const term = meter.createObservableGauge('longtail.scheduler.term', { description: 'Lease term of the active scheduler' });
  const requests = meter.createObservableCounter('longtail.scheduler.requests', {
    description: 'Adapter requests seen (inference events) in this term',
  });
  const hits = meter.createObservableCounter('longtail.scheduler.hits', {
    description: 'Requests served by a worker of the adapter entry, in this term',
  });
  const loads = meter.createObservableCounter('longtail.scheduler.loads', { description: 'Load commands sent, in this term' });
  const evictions = meter.createObservableCounter('longtail.scheduler.evictions', {
    description: 'Evict commands sent, in this term',
  });
  const scalar = (result: ObservableResult, pick: (v: PlacementView) => number) => {
    const v = view();
    if (v !== undefined) result.observe(pick(v));
  };
  const perWorker = (result: ObservableResult, pick: (w: PlacementView['workers'][number]) => number) => {
    for (const w of view()?.workers ?? []) result.observe(pick(w), { worker: w.workerId });
  };
  const bindings: Array<[Observable, ObservableCallback]> = [
    [adapters, (r) => perWorker(r, (w) => w.adapters)],
    [load, (r) => perWorker(r, (w) => w.load)],
    [loadCap, (r) => perWorker(r, (w) => w.loadCap)],
    [queue, (r) => perWorker(r, (w) => w.queueDepth)],
    [term, (r) => scalar(r, (v) => v.term)],
    [requests, (r) => scalar(r, (v) => v.requests)],
    [hits, (r) => scalar(r, (v) => v.hits)],
    [loads, (r) => scalar(r, (v) => v.loads)],
    [evictions, (r) => scalar(r, (v) => v.evictions)],
  ];
  for (const [instrument, cb] of bindings) instrument.addCallback(cb);
  return () => {
    for (const [instrument, cb] of bindings) instrument.removeCallback(cb);
  };
}
