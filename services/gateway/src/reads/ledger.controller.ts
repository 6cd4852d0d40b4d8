/**
 * Payouts, proxied to the ledger (`longtail.ledger.*`): what an account has earned in total,
 * claimed and may claim, with the Merkle proof to claim it; and the status of each epoch's root.
 * Public: the same figures are readable on chain once posted.
 */
import { Controller, Get, Param } from '@nestjs/common';
import { invalidRequest } from '../http/openai-errors.js';
import { ServiceReads } from './service-reads.js';

@Controller('v1/ledger')
export class LedgerReadsController {
  constructor(private readonly reads: ServiceReads) {}

  @Get('accounts/:account')
  account(@Param('account') account: string): Promise<unknown> {
    if (!/^0x[0-9a-fA-F]{40}$/.test(account)) throw invalidRequest('account must be an EVM address (0x + 40 hex digits)', 'account');
    return this.reads.ask('longtail.ledger.account', { account });
  }

  @Get('epochs')
  epochs(): Promise<unknown> {
    return this.reads.ask('longtail.ledger.epochs', {});
  }

  @Get('epochs/:epoch')
  epoch(@Param('epoch') epoch: string): Promise<unknown> {
    if (!/^[0-9]{1,18}$/.test(epoch)) throw invalidRequest('epoch must be a non-negative integer', 'epoch');
    return this.reads.ask('longtail.ledger.epoch', { epoch: Number(epoch) });
  }
}
