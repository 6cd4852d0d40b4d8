/**
 * The operator's view of adapter placement, proxied to the active scheduler
 * (`SCHEDULER_PLACEMENT_VIEW_SUBJECT`): its term, each worker's adapters, load against the
 * bounded-load cap, queue and pool, the replicated adapters, and the hit rate since it became
 * active. Admin scope. A 503 means no scheduler is active (a takeover takes a few seconds).
 */
import { Controller, Get, UseGuards } from '@nestjs/common';
import { SCHEDULER_PLACEMENT_VIEW_SUBJECT, type PlacementView } from '@longtail/contracts';
import { AdminKeyGuard } from '../http/admin-key.guard.js';
import { ServiceReads } from './service-reads.js';

@Controller('v1/admin')
@UseGuards(AdminKeyGuard)
export class PlacementReadsController {
  constructor(private readonly reads: ServiceReads) {}

  @Get('placement')
  placement(): Promise<PlacementView> {
    return this.reads.ask<PlacementView>(SCHEDULER_PLACEMENT_VIEW_SUBJECT, {});
  }
}
