/**
 * Adapter registration. Until weight upload lands (multipart, validated against the base model,
 * stored by SHA-256), an admin registers an adapter whose weights are already in the object
 * store by posting its `adapters.registered` data; the gateway validates it against the
 * contract and publishes the event. Readers (scheduler catalog, attribution) are projections.
 */
import { Body, Controller, HttpCode, Post, UseGuards } from '@nestjs/common';
import { AdapterRegisteredV1, createEvent, isContractViolation } from '@longtail/contracts';
import { EventPublisher } from '@longtail/messaging';
import { randomUUID } from 'node:crypto';
import { AdminKeyGuard } from '../http/admin-key.guard.js';
import { invalidRequest } from '../http/openai-errors.js';

@Controller('v1/adapters')
export class AdaptersController {
  constructor(private readonly publisher: EventPublisher) {}

  @Post()
  @HttpCode(201)
  @UseGuards(AdminKeyGuard)
  async register(@Body() body: unknown): Promise<{ adapterId: string; eventId: string; sequence: string; duplicate: boolean }> {
    if (typeof body !== 'object' || body === null) throw invalidRequest('Expected a JSON object body.');
    let event;
    try {
      event = createEvent(AdapterRegisteredV1, body as never, { correlationId: randomUUID(), causationId: null });
    } catch (err) {
      if (isContractViolation(err)) {
        const first = err.issues[0];
        throw invalidRequest(err.message, first ? first.path.replace(/^data\.?/, '') || null : null, 'invalid_adapter');
      }
      throw err;
    }
    const result = await this.publisher.publish(event);
    return { adapterId: event.data.adapterId, eventId: event.id, sequence: String(result.seq), duplicate: result.duplicate };
  }
}
