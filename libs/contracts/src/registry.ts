/**
 * Every event this package knows, by type and version. A consumer that meets a type or version
 * missing here rejects the event (it is a violation, not something to guess at); adding a version
 * means adding an entry, never changing one.
 */
import type { AnyEventDefinition, EventOf } from './define.js';
import { AdapterRegisteredV1, AdapterRetiredV1 } from './events/adapters.js';
import { AttributionEpochClosedV1, AttributionPolicySetV1 } from './events/attribution.js';
import {
  DatanetContributionAddedV1,
  DatanetCreatedV1,
  DatanetSnapshotPublishedV1,
} from './events/datanets.js';
import { InferenceCompletedV1, InferenceEpochClosingV1, InferenceFailedV1 } from './events/inference.js';
import { LedgerPayoutPostedV1 } from './events/ledger.js';

export const EVENTS = Object.freeze({
  'adapters.registered': Object.freeze({ 1: AdapterRegisteredV1 }),
  'adapters.retired': Object.freeze({ 1: AdapterRetiredV1 }),
  'datanets.datanet.created': Object.freeze({ 1: DatanetCreatedV1 }),
  'datanets.contribution.added': Object.freeze({ 1: DatanetContributionAddedV1 }),
  'datanets.snapshot.published': Object.freeze({ 1: DatanetSnapshotPublishedV1 }),
  'inference.completed': Object.freeze({ 1: InferenceCompletedV1 }),
  'inference.failed': Object.freeze({ 1: InferenceFailedV1 }),
  'inference.epoch_closing': Object.freeze({ 1: InferenceEpochClosingV1 }),
  'attribution.epoch.closed': Object.freeze({ 1: AttributionEpochClosedV1 }),
  'attribution.policy.set': Object.freeze({ 1: AttributionPolicySetV1 }),
  'ledger.payout.posted': Object.freeze({ 1: LedgerPayoutPostedV1 }),
});

export type EventRegistry = typeof EVENTS;

/** Every known event type. */
export type EventType = keyof EventRegistry;

/** Every known definition (each type at each version). */
export type KnownEventDefinition = {
  [T in EventType]: EventRegistry[T][keyof EventRegistry[T]];
}[EventType];

/** Every known event: a union discriminated by `type`, then by `version`. */
export type KnownEvent = KnownEventDefinition extends infer D
  ? D extends AnyEventDefinition
    ? EventOf<D>
    : never
  : never;

/** All definitions, in a stable order (by type, then version). */
export function eventDefinitions(): readonly KnownEventDefinition[] {
  const out: KnownEventDefinition[] = [];
  for (const type of Object.keys(EVENTS).sort()) {
    const versions = EVENTS[type as EventType] as Record<number, KnownEventDefinition>;
    for (const version of Object.keys(versions)
      .map(Number)
      .sort((a, b) => a - b))
      out.push(versions[version]!);
  }
  return out;
}

/** The definition of `type` at `version`; `undefined` when either is unknown. */
export function findDefinition(type: string, version: number): KnownEventDefinition | undefined {
  if (!isEventType(type)) return undefined;
  const versions = EVENTS[type] as Record<number, KnownEventDefinition>;
  return Object.hasOwn(versions, version) ? versions[version] : undefined;
}

export function isEventType(type: string): type is EventType {
  return Object.hasOwn(EVENTS, type);
}
