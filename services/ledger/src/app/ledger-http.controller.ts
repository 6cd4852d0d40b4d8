/**
 * The same read API over HTTP on the ledger's port, for operators, dashboards and the claim CLI
 * (`--proof-from http://host:port/v1/ledger/accounts/0x…`).
 *
 *   GET /v1/ledger/accounts/:account   cumulative, claimed, claimable, proof (claim input)
 *   GET /v1/ledger/epochs              payout status of every epoch
 *   GET /v1/ledger/epochs/:epoch       payout status of one epoch
 */
import { BadRequestException, Controller, Get, Inject, NotFoundException, Param } from '@nestjs/common';

import { LedgerQueries } from '../queries/ledger-queries.js';
import { LedgerQuerySchemas } from './ledger-commands.js';

@Controller('v1/ledger')
export class LedgerHttpController {
  constructor(@Inject(LedgerQueries) private readonly queries: LedgerQueries) {}

  @Get('accounts/:account')
  account(@Param('account') account: string) {
    const parsed = LedgerQuerySchemas.account.safeParse({ account });
    if (!parsed.success) throw new BadRequestException('account: must be an EVM address');
    return this.queries.accountPayout(parsed.data.account);
  }

  @Get('epochs')
  epochs() {
    return this.queries.epochStatuses();
  }

  @Get('epochs/:epoch')
  async epoch(@Param('epoch') epoch: string) {
    const parsed = LedgerQuerySchemas.epoch.safeParse({ epoch });
    if (!parsed.success) throw new BadRequestException('epoch: must be a non-negative integer');
    const status = await this.queries.epochStatus(parsed.data.epoch);
    if (!status) throw new NotFoundException(`no payout for epoch ${parsed.data.epoch}`);
    return status;
  }
}
