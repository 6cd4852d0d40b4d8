/**
 * Liveness and readiness over HTTP. Liveness says the process answers; readiness says it can do
 * its work now: every dependency probe passes (NATS connected, PostgreSQL answering) and the
 * service is not shutting down. Load balancers and the one-command stack poll `/health/ready`.
 */
import { Controller, Get, HttpCode, Inject, Injectable, ServiceUnavailableException } from '@nestjs/common';
import type { BeforeApplicationShutdown } from '@nestjs/common';

export interface ReadinessProbe {
  /** Short name shown in the readiness body, e.g. `nats`, `postgres`. */
  readonly name: string;
  /** Resolves true when the dependency is usable; must settle within a second or two. */
  probe(): Promise<boolean>;
}

export const READINESS_PROBES = Symbol('READINESS_PROBES');

/** Flips to draining when shutdown begins, so readiness fails before connections close. */
@Injectable()
export class Lifecycle implements BeforeApplicationShutdown {
  #draining = false;
  get draining(): boolean {
    return this.#draining;
  }
  beforeApplicationShutdown(): void {
    this.#draining = true;
  }
}

export interface ReadinessReport {
  status: 'ready' | 'unavailable';
  checks: Record<string, 'up' | 'down'>;
}

@Controller('health')
export class HealthController {
  constructor(
    @Inject(READINESS_PROBES) private readonly probes: ReadonlyArray<ReadinessProbe>,
    private readonly lifecycle: Lifecycle,
  ) {}

  @Get('live')
  @HttpCode(200)
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  @Get('ready')
  async ready(): Promise<ReadinessReport> {
    const results = await Promise.all(
      this.probes.map(async (p) => [p.name, await withTimeout(p.probe(), 2000).catch(() => false)] as const),
    );
    const checks: Record<string, 'up' | 'down'> = {};
    for (const [name, up] of results) checks[name] = up ? 'up' : 'down';
    if (this.lifecycle.draining) checks['lifecycle'] = 'down';
    const report: ReadinessReport = {
      status: Object.values(checks).every((c) => c === 'up') ? 'ready' : 'unavailable',
      checks,
    };
    if (report.status !== 'ready') throw new ServiceUnavailableException(report);
    return report;
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`probe timed out after ${ms} ms`)), ms);
    p.then(
      (v) => (clearTimeout(t), resolve(v)),
      (e: unknown) => (clearTimeout(t), reject(e instanceof Error ? e : new Error(String(e)))),
    );
  });
}
