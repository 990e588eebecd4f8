import type { RunningPostgres } from '../../lambda/local/embedded-postgres';

export default async function globalTeardown(): Promise<void> {
  const server = (globalThis as { __embeddedPostgres?: RunningPostgres }).__embeddedPostgres;
  if (server) await server.stop();
}
