/**
 * Read APIs that other services own, served through the gateway: the gateway validates the
 * path, asks the owning service over NATS request/reply and maps its answer to HTTP. No
 * service's tables are read here; the owner answers from its own projections.
 */
import { Injectable } from '@nestjs/common';
import { CommandClient, CommandFailed, NoResponders, RequestTimeout } from '@longtail/messaging';
import { ApiError } from '../http/openai-errors.js';

@Injectable()
export class ServiceReads {
  constructor(private readonly commands: CommandClient) {}

  /** The owner's answer, or an OpenAI-shaped error: 400 invalid, 404 unknown, 503/504 owner away. */
  async ask<T>(subject: string, payload: Record<string, unknown>): Promise<T> {
    try {
      return await this.commands.request<T>(subject, payload, { timeoutMs: 5000 });
    } catch (err) {
      if (err instanceof CommandFailed) {
        if (err.code === 'not_found')
          throw new ApiError(404, { message: err.detail, type: 'not_found_error', param: null, code: err.code });
        if (err.code === 'invalid_request')
          throw new ApiError(400, { message: err.detail, type: 'invalid_request_error', param: null, code: err.code });
      }
      if (err instanceof NoResponders || err instanceof RequestTimeout) {
        const owner = subject.split('.')[1] ?? subject;
        throw new ApiError(err instanceof NoResponders ? 503 : 504, {
          message: `the ${owner} service is not answering; try again shortly`,
          type: 'server_error',
          param: null,
          code: 'service_unavailable',
        });
      }
      throw err;
    }
  }
}
