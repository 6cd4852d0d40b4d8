/** One connection attempt, used to poll a starting server. */
import pg from 'pg';

export async function acceptsConnections(url: string, timeoutMs = 2_000): Promise<true> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } finally {
    await client.end().catch(() => undefined);
  }
}
