/**
 * Service configuration from environment variables, validated once at start-up. A missing or
 * bad setting is a `ConfigError` whose message is one line naming the variable, so an operator
 * sees `config: NATS_URL: expected a nats:// URL` instead of a stack trace.
 */
import { z } from 'zod';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    message: string,
    readonly variable: string,
  ) {
    super(message);
  }
}

const natsUrl = z
  .string()
  .refine((v) => v.split(',').every((u) => /^(nats|tls|ws|wss):\/\/[^\s]+$/.test(u.trim())), {
    message: 'expected one or more nats:// URLs separated by commas',
  });

const postgresUrl = z.string().refine((v) => /^postgres(ql)?:\/\/[^\s]+$/.test(v), {
  message: 'expected a postgres:// connection URL',
});

const port = z.coerce.number().int().min(0).max(65535);

/** Settings every service reads. Services extend this with their own. */
export const baseConfigSchema = z.object({
  NATS_URL: natsUrl.default('nats://127.0.0.1:4222'),
  PORT: port,
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Seconds a graceful shutdown may take before the process gives up waiting. */
  SHUTDOWN_TIMEOUT_S: z.coerce.number().positive().default(20),
});

/** Added by services that own tables. */
export const databaseConfigSchema = z.object({ DATABASE_URL: postgresUrl });

export type BaseConfig = z.infer<typeof baseConfigSchema>;

/**
 * Parses `env` with `schema`. Only the schema's own keys are read; unknown variables are
 * ignored. Throws ConfigError naming the first bad variable.
 */
export function loadConfig<S extends z.ZodObject>(
  schema: S,
  env: Readonly<Record<string, string | undefined>> = process.env,
): z.infer<S> {
  const input: Record<string, string> = {};
  for (const key of Object.keys(schema.shape)) {
    const value = env[key];
    if (value !== undefined && value !== '') input[key] = value;
  }
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const variable = String(issue.path[0] ?? '?');
  const detail = issue.code === 'invalid_type' && input[variable] === undefined ? 'is required' : issue.message;
  throw new ConfigError(`config: ${variable}: ${detail}`, variable);
}
