/**
 * The ledger's read API over NATS request/reply (what the gateway proxies). Subjects sit under
 * `longtail.ledger.`, outside every stream, so a request is never stored as an event. Answers are
 * JSON, amounts as decimal strings of base units.
 *
 *   longtail.ledger.account   { account }  → AccountPayout: cumulative, claimed, claimable, proof
 *   longtail.ledger.epoch     { epoch }    → EpochPayoutStatus (error code `not_found` if unknown)
 *   longtail.ledger.epochs    {}           → EpochPayoutStatus[]
 */
import { Inject, Injectable } from '@nestjs/common';
import { z } from 'zod';
import { CommandError, OnCommand } from '@longtail/messaging';
import { commandPayload } from '@longtail/service';

import { LedgerQueries } from '../queries/ledger-queries.js';

export const LedgerQuerySchemas = {
  account: z.object({ account: z.string().regex(/^0x[0-9a-fA-F]{40}$/, 'must be an EVM address') }),
  epoch: z.object({ epoch: z.coerce.number().int().nonnegative() }),
};


@Injectable()
export class LedgerCommands {
  constructor(@Inject(LedgerQueries) private readonly queries: LedgerQueries) {}

  @OnCommand('longtail.ledger.account')
  account(payload: unknown) {
    return this.queries.accountPayout(commandPayload(LedgerQuerySchemas.account, payload).account);
  }

  @OnCommand('longtail.ledger.epoch')
  async epoch(payload: unknown) {
    const { epoch } = commandPayload(LedgerQuerySchemas.epoch, payload);
    const status = await this.queries.epochStatus(epoch);
    if (!status) throw new CommandError('not_found', `no payout for epoch ${epoch}`);
    return status;
  }

  @OnCommand('longtail.ledger.epochs')
  epochs() {
    return this.queries.epochStatuses();
  }
}
