/**
 * Datanet commands over NATS request/reply (the gateway proxies its HTTP API to them):
 *
 *   longtail.datanets.create            { datanetId, name, ownerTenantId, description? }
 *   longtail.datanets.add-contribution  { datanetId, contributionId, contributorAddress, contentSha256, sizeTokens, weight?, contentBase64? }
 *   longtail.datanets.cut-snapshot      { datanetId, snapshotId }
 *
 * Content, when given, goes to the `datanet-content` object store under
 * `<datanetId>/<contentSha256>` after its SHA-256 is checked; the event carries the key and hash.
 * The state a command is decided on is the facts projection's; publishing expects the last
 * sequence of the subject it read, so two racing snapshot cuts cannot both pass.
 */
import { createHash } from 'node:crypto';

import { Inject, Injectable } from '@nestjs/common';
import type { Kysely } from 'kysely';
import { z } from 'zod';

import {
  createEvent,
  DatanetContributionAddedV1,
  DatanetCreatedV1,
  DatanetIdSchema,
  DatanetSnapshotPublishedV1,
  EvmAddressSchema,
  OBJECT_BUCKETS,
  OpaqueIdSchema,
  Sha256HexSchema,
  subjectToken,
} from '@longtail/contracts';
import type { DatabaseHandle } from '@longtail/database';
import {
  CommandError,
  EventPublisher,
  MESSAGING_CONNECTION,
  OnCommand,
  STREAM_SUBJECT_MUST_NOT_EXIST,
  WrongExpectedSequence,
  type MessagingConnection,
} from '@longtail/messaging';
import { commandPayload } from '@longtail/service';
import { Objm } from '@nats-io/obj';

import { decideDatanet, type DatanetCommand, type DatanetState } from '../datanets/datanet-decider.js';
import { FACT_PROJECTIONS } from '../projections/facts-projection.js';
import type { AttributionTables } from '../projections/schema.js';
import { ATTRIBUTION_DB } from './tokens.js';

const Create = z.strictObject({
  datanetId: DatanetIdSchema,
  name: z.string().min(1).max(200),
  ownerTenantId: OpaqueIdSchema,
  description: z.string().max(2000).optional(),
});
const AddContribution = z.strictObject({
  datanetId: DatanetIdSchema,
  contributionId: OpaqueIdSchema,
  contributorAddress: EvmAddressSchema,
  contentSha256: Sha256HexSchema,
  sizeTokens: z.int().nonnegative(),
  weight: z.int().nonnegative().optional(),
  contentBase64: z.base64().optional(),
});
const CutSnapshot = z.strictObject({ datanetId: DatanetIdSchema, snapshotId: OpaqueIdSchema });


@Injectable()
export class DatanetCommands {
  readonly #db: Kysely<AttributionTables>;

  constructor(
    @Inject(ATTRIBUTION_DB) handle: DatabaseHandle<AttributionTables>,
    @Inject(EventPublisher) private readonly publisher: EventPublisher,
    @Inject(MESSAGING_CONNECTION) private readonly conn: MessagingConnection,
  ) {
    this.#db = handle.db;
  }

  @OnCommand('longtail.datanets.create')
  async create(payload: unknown) {
    const command = commandPayload(Create, payload);
    const decision = decideDatanet({ kind: 'create', ...command }, await this.#state(command.datanetId));
    if (!decision.ok) throw new CommandError(decision.code, decision.message);
    const event = createEvent(DatanetCreatedV1, decision.data as never, {
      correlationId: `datanet-${command.datanetId}`,
      causationId: null,
    });
    await this.#publish(event, { expectedLastSubjectSequence: STREAM_SUBJECT_MUST_NOT_EXIST });
    return { datanetId: command.datanetId, eventId: event.id };
  }

  @OnCommand('longtail.datanets.add-contribution')
  async addContribution(payload: unknown) {
    const { contentBase64, ...command } = commandPayload(AddContribution, payload);
    let objectKey: string | undefined;
    if (contentBase64 !== undefined) {
      const content = Buffer.from(contentBase64, 'base64');
      if (createHash('sha256').update(content).digest('hex') !== command.contentSha256) {
        throw new CommandError('content_hash_mismatch', 'contentSha256 is not the SHA-256 of the content');
      }
      objectKey = `${command.datanetId}/${command.contentSha256}`;
      const store = await new Objm(this.conn.nc).create(OBJECT_BUCKETS.datanetContent.bucket);
      await store.putBlob({ name: objectKey }, content);
    }
    const full: DatanetCommand = {
      kind: 'add-contribution',
      ...command,
      ...(objectKey ? { objectKey } : {}),
    };
    const decision = decideDatanet(full, await this.#state(command.datanetId));
    if (!decision.ok) throw new CommandError(decision.code, decision.message);
    const event = createEvent(DatanetContributionAddedV1, decision.data as never, {
      correlationId: `datanet-${command.datanetId}`,
      causationId: null,
    });
    await this.#publish(event);
    return {
      datanetId: command.datanetId,
      contributionId: command.contributionId,
      eventId: event.id,
      ...(objectKey ? { objectKey } : {}),
    };
  }

  @OnCommand('longtail.datanets.cut-snapshot')
  async cutSnapshot(payload: unknown) {
    const command = commandPayload(CutSnapshot, payload);
    const state = await this.#state(command.datanetId);
    const decision = decideDatanet({ kind: 'cut-snapshot', ...command }, state);
    if (!decision.ok) throw new CommandError(decision.code, decision.message);
    const event = createEvent(DatanetSnapshotPublishedV1, decision.data as never, {
      correlationId: `datanet-${command.datanetId}`,
      causationId: null,
    });
    const last = await this.#db
      .selectFrom('snapshots')
      .select('seq')
      .where('datanet_id', '=', command.datanetId)
      .orderBy('seq', 'desc')
      .executeTakeFirst();
    await this.#publish(event, {
      subject: `datanets.snapshot.published.${subjectToken(command.datanetId)}`,
      expectedLastSubjectSequence: last ? last.seq : STREAM_SUBJECT_MUST_NOT_EXIST,
    });
    return {
      datanetId: command.datanetId,
      snapshotId: command.snapshotId,
      contributors: (decision.data['contributors'] as unknown[]).length,
      eventId: event.id,
    };
  }

  async #publish(
    event: Parameters<EventPublisher['publish']>[0],
    options: Parameters<EventPublisher['publish']>[1] = {},
  ): Promise<void> {
    try {
      await this.publisher.publish(event, options);
    } catch (error) {
      if (error instanceof WrongExpectedSequence)
        throw new CommandError('conflict', 'the Datanet changed meanwhile; retry');
      throw error;
    }
  }

  async #state(datanetId: string): Promise<DatanetState> {
    const datanet = await this.#db
      .selectFrom('datanets')
      .select('datanet_id')
      .where('datanet_id', '=', datanetId)
      .executeTakeFirst();
    const contributions = await this.#db
      .selectFrom('datanet_contributions')
      .select(['contribution_id', 'contributor', 'weight', 'size_tokens'])
      .where('datanet_id', '=', datanetId)
      .orderBy('seq')
      .execute();
    const snapshots = await this.#db
      .selectFrom('snapshots')
      .select('snapshot_id')
      .where('datanet_id', '=', datanetId)
      .execute();
    const checkpoint = await this.#db
      .selectFrom('projection_checkpoints')
      .select('last_sequence')
      .where('projection', '=', FACT_PROJECTIONS.datanets.projection)
      .executeTakeFirst();
    return {
      datanetId,
      exists: datanet !== undefined,
      contributions: contributions.map((c) => ({
        contributionId: c.contribution_id,
        contributor: c.contributor,
        weight: BigInt(c.weight),
      })),
      snapshotIds: new Set(snapshots.map((s) => s.snapshot_id)),
      throughSequence: Number(checkpoint?.last_sequence ?? 0n),
    };
  }
}
