/**
 * Errors in OpenAI's shape (`{"error":{"message","type","param","code"}}`) with the matching
 * status codes, so every OpenAI client shows them properly. Unknown exceptions become a 500
 * whose message hides internals; the cause is logged for operators.
 */
import { ArgumentsHost, Catch, HttpException, HttpStatus, type ExceptionFilter } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import type { Logger } from '@longtail/telemetry';

export interface OpenAiError {
  message: string;
  type: 'invalid_request_error' | 'authentication_error' | 'permission_error' | 'not_found_error' | 'rate_limit_error' | 'server_error';
  param: string | null;
  code: string | null;
}

export class ApiError extends HttpException {
  constructor(status: number, readonly body: OpenAiError) {
    super({ error: body }, status);
  }
}

export const invalidRequest = (message: string, param: string | null = null, code: string | null = null): ApiError =>
  new ApiError(HttpStatus.BAD_REQUEST, { message, type: 'invalid_request_error', param, code });

export const unauthorized = (message: string): ApiError =>
  new ApiError(HttpStatus.UNAUTHORIZED, { message, type: 'invalid_request_error', param: null, code: 'invalid_api_key' });

export const rateLimited = (message: string, code: 'rate_limit_exceeded' | 'concurrency_limit_exceeded' = 'rate_limit_exceeded'): ApiError =>
  new ApiError(HttpStatus.TOO_MANY_REQUESTS, { message, type: 'rate_limit_error', param: null, code });

export const forbidden = (message: string): ApiError =>
  new ApiError(HttpStatus.FORBIDDEN, { message, type: 'permission_error', param: null, code: 'insufficient_scope' });

const typeForStatus = (status: number): OpenAiError['type'] =>
  status === 401 ? 'authentication_error'
  : status === 403 ? 'permission_error'
  : status === 404 ? 'not_found_error'
  : status === 429 ? 'rate_limit_error'
  : status >= 500 ? 'server_error'
  : 'invalid_request_error';

@Catch()
export class OpenAiErrorFilter implements ExceptionFilter {
  constructor(private readonly logger: Logger) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const reply = host.switchToHttp().getResponse<FastifyReply>();
    if (exception instanceof ApiError) {
      void reply.status(exception.getStatus()).send({ error: exception.body });
      return;
    }
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      const response = exception.getResponse();
      // Bodies that are not messages (e.g. the readiness report) go out as they are.
      if (typeof response === 'object' && !('message' in response)) {
        void reply.status(status).send(response);
        return;
      }
      const message = typeof response === 'string' ? response : ((response as { message?: unknown }).message ?? exception.message);
      void reply.status(status).send({
        error: { message: Array.isArray(message) ? message.join('; ') : String(message), type: typeForStatus(status), param: null, code: null },
      });
      return;
    }
    this.logger.error({ err: exception }, 'unhandled error');
    void reply.status(500).send({ error: { message: 'internal error', type: 'server_error', param: null, code: null } });
  }
}
