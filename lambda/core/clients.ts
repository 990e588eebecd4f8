import { createHash, randomBytes } from 'node:crypto';
import type { Db } from './db';
import { uuidv7 } from './ids';

/**
 * API clients (tenants). A key is shown once, at creation; the database keeps
 * only its SHA-256. Keys are 256 random bits, so a plain (unsalted) hash is
 * enough: there is nothing to brute-force, and the hash can be looked up by index.
 */

export interface ApiClient {
  id: string;
  name: string;
  keyPrefix: string;
  weight: number;
  createdAt: Date;
  revokedAt: Date | null;
}

interface ClientRow {
  id: string;
  name: string;
  key_prefix: string;
  weight: number;
  created_at: Date;
  revoked_at: Date | null;
}

const toClient = (r: ClientRow): ApiClient => ({
  id: r.id,
  name: r.name,
  keyPrefix: r.key_prefix,
  weight: r.weight,
  createdAt: r.created_at,
  revokedAt: r.revoked_at,
});

export const hashApiKey = (key: string) => createHash('sha256').update(key, 'utf8').digest('hex');

export function newApiKey(): string {
  return `sj_${randomBytes(32).toString('base64url')}`;
}

export class ClientExistsError extends Error {
  override name = 'ClientExistsError';
}

/** Creates a client; returns the key, which is never retrievable again. `apiKey` fixes the key (local development). */
export async function createClient(
  db: Db,
  name: string,
  opts: { apiKey?: string; weight?: number } = {},
): Promise<{ client: ApiClient; apiKey: string }> {
  const apiKey = opts.apiKey ?? newApiKey();
  try {
    const { rows } = await db.query<ClientRow>(
      `INSERT INTO clients (id, name, api_key_hash, key_prefix, weight) VALUES ($1, $2, $3, $4, $5)
       RETURNING id, name, key_prefix, weight, created_at, revoked_at`,
      [uuidv7(), name, hashApiKey(apiKey), apiKey.slice(0, 7), opts.weight ?? 1],
    );
    return { client: toClient(rows[0]!), apiKey };
  } catch (err) {
    if ((err as { code?: string }).code === '23505') throw new ClientExistsError(`a client named "${name}" (or with that key) exists already`);
    throw err;
  }
}

export async function listClients(db: Db): Promise<ApiClient[]> {
  const { rows } = await db.query<ClientRow>(
    `SELECT id, name, key_prefix, weight, created_at, revoked_at FROM clients ORDER BY name`,
  );
  return rows.map(toClient);
}

export async function findClientByName(db: Db, name: string): Promise<ApiClient | null> {
  const { rows } = await db.query<ClientRow>(
    `SELECT id, name, key_prefix, weight, created_at, revoked_at FROM clients WHERE name = $1`,
    [name],
  );
  return rows[0] ? toClient(rows[0]) : null;
}

/** Revokes a client's key; returns false when no such client exists. */
export async function revokeClient(db: Db, name: string): Promise<boolean> {
  const { rowCount } = await db.query(`UPDATE clients SET revoked_at = coalesce(revoked_at, now()) WHERE name = $1`, [name]);
  return rowCount === 1;
}

/** The client a key belongs to (revoked ones included: the caller tells them apart), or null. */
export async function findClientByKey(db: Db, apiKey: string): Promise<ApiClient | null> {
  const { rows } = await db.query<ClientRow>(
    `SELECT id, name, key_prefix, weight, created_at, revoked_at FROM clients WHERE api_key_hash = $1`,
    [hashApiKey(apiKey)],
  );
  return rows[0] ? toClient(rows[0]) : null;
}
