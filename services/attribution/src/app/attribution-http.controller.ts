/**
 * The same read API over HTTP on the service's port (for operators and dashboards; the gateway
 * uses NATS). Query strings are validated with the same schemas as the NATS commands.
 */
import { BadRequestException, Controller, Get, Inject, Param, Query } from '@nestjs/common';
import type { z } from 'zod';

import { AttributionQueries, QuerySchemas } from '../queries/attribution-queries.js';

function parse<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success)
    throw new BadRequestException(
      result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '),
    );
  return result.data;
}

@Controller('v1/attribution')
export class AttributionHttpController {
  constructor(@Inject(AttributionQueries) private readonly queries: AttributionQueries) {}

  @Get('accounts/:account/earnings')
  earnings(@Param('account') account: string, @Query('epoch') epoch?: string) {
    return this.queries.earnings(
      parse(QuerySchemas.earnings, { account, ...(epoch !== undefined ? { epoch } : {}) }),
    );
  }

  @Get('accounts/:account/statements/:epoch')
  statement(@Param('account') account: string, @Param('epoch') epoch: string) {
    return this.queries.statement(parse(QuerySchemas.statement, { account, epoch }));
  }

  /** adapterId URL-encoded, e.g. llama-3-8b%3Aacme%2Flegal-ur */
  @Get('adapters/:adapterId/revenue')
  adapterRevenue(@Param('adapterId') adapterId: string, @Query('epoch') epoch?: string) {
    return this.queries.adapterRevenue(
      parse(QuerySchemas.adapterRevenue, { adapterId, ...(epoch !== undefined ? { epoch } : {}) }),
    );
  }

  @Get('datanets/:owner/:name/revenue')
  datanetRevenue(@Param('owner') owner: string, @Param('name') name: string, @Query('epoch') epoch?: string) {
    return this.queries.datanetRevenue(
      parse(QuerySchemas.datanetRevenue, {
        datanetId: `${owner}/${name}`,
        ...(epoch !== undefined ? { epoch } : {}),
      }),
    );
  }

  @Get('usage')
  usage(@Query() query: Record<string, string>) {
    return this.queries.usage(parse(QuerySchemas.usage, query));
  }
}
