/**
 * The read API and the operator commands over NATS request/reply. Subjects live under
 * `longtail.attribution.` (outside every stream's subjects, so a request is never stored as an
 * event). Payloads are validated here; answers are JSON with amounts as decimal strings.
 *
 *   longtail.attribution.earnings         { account, epoch? }
 *   longtail.attribution.statement        { account, epoch }
 *   longtail.attribution.adapter-revenue  { adapterId, epoch? }
 *   longtail.attribution.datanet-revenue  { datanetId, epoch? }
 *   longtail.attribution.usage            { tenantId | adapterId, from, to }
 *   longtail.attribution.epochs           { limit? }
 *   longtail.attribution.close-epoch      {}   (operator: publish the open epoch's close marker)
 */
import { Inject, Injectable } from '@nestjs/common';

import { OnCommand } from '@longtail/messaging';
import { commandPayload } from '@longtail/service';

import { EpochCloser } from '../epochs/epoch-closer.js';
import { AttributionQueries, QuerySchemas } from '../queries/attribution-queries.js';


@Injectable()
export class AttributionCommands {
  constructor(
    @Inject(AttributionQueries) private readonly queries: AttributionQueries,
    @Inject(EpochCloser) private readonly closer: EpochCloser,
  ) {}

  @OnCommand('longtail.attribution.earnings')
  earnings(payload: unknown) {
    return this.queries.earnings(commandPayload(QuerySchemas.earnings, payload));
  }

  @OnCommand('longtail.attribution.statement')
  statement(payload: unknown) {
    return this.queries.statement(commandPayload(QuerySchemas.statement, payload));
  }

  @OnCommand('longtail.attribution.adapter-revenue')
  adapterRevenue(payload: unknown) {
    return this.queries.adapterRevenue(commandPayload(QuerySchemas.adapterRevenue, payload));
  }

  @OnCommand('longtail.attribution.datanet-revenue')
  datanetRevenue(payload: unknown) {
    return this.queries.datanetRevenue(commandPayload(QuerySchemas.datanetRevenue, payload));
  }

  @OnCommand('longtail.attribution.usage')
  usage(payload: unknown) {
    return this.queries.usage(commandPayload(QuerySchemas.usage, payload));
  }

  @OnCommand('longtail.attribution.epochs')
  async epochs(payload: unknown) {
    const rows = await this.queries.epochs(commandPayload(QuerySchemas.epochs, payload));
    return rows.map((r) => ({
      ...r,
      first_sequence: r.first_sequence.toString(),
      last_sequence: r.last_sequence?.toString() ?? null,
      event_count: r.event_count.toString(),
    }));
  }

  @OnCommand('longtail.attribution.close-epoch')
  closeEpoch() {
    return this.closer.requestClose();
  }
}
