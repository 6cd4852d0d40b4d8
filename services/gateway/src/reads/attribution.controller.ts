/**
 * Earnings, statements, revenue, usage and epochs, proxied to attribution
 * (`longtail.attribution.<query>`). Query parameters pass through as the query's fields; the
 * owner validates them and names what is wrong. Until tenants and scoped API keys land, these
 * reads need the operator's admin key (usage and statements are per tenant and per account).
 */
import { Controller, Get, Param, Query, UseGuards } from '@nestjs/common';
import { AdminKeyGuard } from '../http/admin-key.guard.js';
import { ApiError } from '../http/openai-errors.js';
import { ServiceReads } from './service-reads.js';

const QUERIES = new Set(['earnings', 'statement', 'adapter-revenue', 'datanet-revenue', 'usage', 'epochs']);

@Controller('v1/attribution')
@UseGuards(AdminKeyGuard)
export class AttributionReadsController {
  constructor(private readonly reads: ServiceReads) {}

  @Get(':query')
  query(@Param('query') query: string, @Query() params: Record<string, string>): Promise<unknown> {
    if (!QUERIES.has(query))
      throw new ApiError(404, { message: `unknown attribution query "${query}"; one of ${[...QUERIES].join(', ')}`, type: 'not_found_error', param: null, code: null });
    const payload: Record<string, unknown> = { ...params };
    // Epochs and limits are integers on the wire; everything else is a string.
    for (const key of ['epoch', 'limit']) if (typeof params[key] === 'string' && /^[0-9]{1,15}$/.test(params[key])) payload[key] = Number(params[key]);
    return this.reads.ask(`longtail.attribution.${query}`, payload);
  }
}
