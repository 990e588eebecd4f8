import { cpSync, mkdtempSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadMigrations, migrate, MIGRATIONS_DIR } from '../lambda/core/migrate';
import { createTestDatabase, type TestDatabase } from './support/db';

describe('migration runner', () => {
  let db: TestDatabase;
  let dir: string;

  beforeEach(async () => {
    db = await createTestDatabase({ migrate: false });
    dir = mkdtempSync(join(tmpdir(), 'sj-migrations-'));
    cpSync(MIGRATIONS_DIR, dir, { recursive: true });
  });
  afterEach(async () => {
    await db.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('applies every file once, in order, and records its checksum', async () => {
    const all = loadMigrations(dir);
    expect(await migrate(db.pool, all)).toEqual(all.map((m) => m.name));
    expect(await migrate(db.pool, all)).toEqual([]);
    const { rows } = await db.pool.query('SELECT version, name, checksum FROM schema_migrations ORDER BY version');
    expect(rows).toEqual(all.map((m) => ({ version: m.version, name: m.name, checksum: m.checksum })));
  });

  it('lets concurrent runners race without applying anything twice', async () => {
    const all = loadMigrations(dir);
    const results = await Promise.all(Array.from({ length: 6 }, () => migrate(db.pool, all)));
    expect(results.flat().sort()).toEqual(all.map((m) => m.name).sort());
  });

  it('refuses to run when an applied migration was edited', async () => {
    await migrate(db.pool, loadMigrations(dir));
    const file = join(dir, '001_init.sql');
    writeFileSync(file, readFileSync(file, 'utf8') + '\n-- edited\n');
    await expect(migrate(db.pool, loadMigrations(dir))).rejects.toThrow(/001_init\.sql was edited after it was applied/);
  });

  it('refuses to run when the database is newer than the code', async () => {
    await migrate(db.pool, loadMigrations(dir));
    await expect(migrate(db.pool, loadMigrations(dir).slice(0, 1))).rejects.toThrow(/newer than the code/);
  });

  it('rolls a failing migration back whole and records nothing for it', async () => {
    const applied = loadMigrations(dir).length;
    writeFileSync(join(dir, `${String(applied + 1).padStart(3, '0')}_broken.sql`), 'CREATE TABLE half_done (id int);\nSELECT no_such_function();\n');
    await expect(migrate(db.pool, loadMigrations(dir))).rejects.toThrow(/no_such_function/);
    const { rows } = await db.pool.query(`SELECT to_regclass('half_done') AS t, (SELECT max(version) FROM schema_migrations) AS v`);
    expect(rows[0]).toEqual({ t: null, v: applied });
  });

  it('rejects badly named and gapped files', () => {
    writeFileSync(join(dir, `${String(loadMigrations(dir).length + 2).padStart(3, '0')}_gap.sql`), 'SELECT 1;');
    expect(() => loadMigrations(dir)).toThrow(/without gaps/);
    writeFileSync(join(dir, 'readme.sql'), 'SELECT 1;');
    expect(() => loadMigrations(dir)).toThrow(/must look like/);
  });
});
