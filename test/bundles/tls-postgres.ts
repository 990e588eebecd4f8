import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Client } from 'pg';
import { freePort } from '../../lambda/local/embedded-postgres';

/**
 * A PostgreSQL cluster of the test's own that, like RDS Proxy with
 * requireTLS and RDS with rds.force_ssl, refuses every connection that is not
 * TLS, with a server certificate for `localhost` signed by a CA made here
 * (clients trust it through NODE_EXTRA_CA_CERTS). The machine's own server is
 * never touched. As root, the server runs as the `postgres` user or `nobody`.
 */
export interface TlsPostgres {
  host: 'localhost';
  port: number;
  /** PEM of the CA that signed the server certificate. */
  caFile: string;
  /** A user with a password (scram), owner of the database. */
  user: string;
  password: string;
  database: string;
  /** Connects as the superuser over TLS, trusting the CA. */
  superuser: () => Promise<Client>;
  destroy: () => Promise<void>;
}

function binDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const found = readdirSync(root)
      .sort((a, b) => Number(b) - Number(a))
      .map((v) => join(root, v, 'bin'))
      .find((d) => existsSync(join(d, 'initdb')));
    if (found) return found;
  }
  try {
    const dir = join(dirname(require.resolve(`@embedded-postgres/${process.platform}-${process.arch}/package.json`)), 'native', 'bin');
    return existsSync(join(dir, 'initdb')) ? dir : undefined;
  } catch {
    return undefined;
  }
}

const commandExists = (name: string) => spawnSync('sh', ['-c', `command -v ${name}`]).status === 0;

/** The user a server (or a Lambda stand-in) runs as when the test runs as root; undefined when not root. */
export function unprivilegedUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  for (const name of ['postgres', 'nobody']) {
    const uid = spawnSync('id', ['-u', name], { encoding: 'utf8' });
    const gid = spawnSync('id', ['-g', name], { encoding: 'utf8' });
    if (uid.status === 0 && gid.status === 0) return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  }
  return undefined;
}

/** Why the cluster cannot run here (a missing program), or undefined when it can. */
export function tlsPostgresUnavailable(): string | undefined {
  if (!binDir()) return 'no PostgreSQL server binaries (initdb) in /usr/lib/postgresql/*/bin or @embedded-postgres';
  if (!commandExists('openssl')) return 'no openssl to make the test CA and server certificate';
  if (process.getuid?.() === 0 && !unprivilegedUser()) return 'running as root with neither a "postgres" nor a "nobody" user to run the server as';
  return undefined;
}

function run(command: string, args: string[], options: Parameters<typeof spawnSync>[2] = {}): void {
  const result = spawnSync(command, args, { encoding: 'utf8', ...options });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${result.stderr || result.stdout || result.error}`);
}

/** A CA and a server certificate for localhost and 127.0.0.1, in `dir`. */
function makeCertificates(dir: string): { ca: string; cert: string; key: string } {
  const ca = join(dir, 'ca.pem');
  const caKey = join(dir, 'ca.key');
  const key = join(dir, 'server.key');
  const csr = join(dir, 'server.csr');
  const cert = join(dir, 'server.crt');
  const ext = join(dir, 'server.ext');
  run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', caKey, '-out', ca, '-days', '2', '-subj', '/CN=summary-jobs test CA']);
  run('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', csr, '-subj', '/CN=localhost']);
  writeFileSync(ext, 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n');
  run('openssl', ['x509', '-req', '-in', csr, '-CA', ca, '-CAkey', caKey, '-CAcreateserial', '-out', cert, '-days', '2', '-extfile', ext]);
  return { ca, cert, key };
}

async function waitUntilReady(connect: () => Promise<Client>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const client = await connect();
      await client.end();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

export async function startTlsPostgres(root: string): Promise<TlsPostgres> {
  const bin = binDir()!;
  const owner = unprivilegedUser();
  const asOwner = owner ? { uid: owner.uid, gid: owner.gid } : {};
  const dir = join(root, 'postgres');
  mkdirSync(dir, { mode: 0o755 });
  const { ca, cert, key } = makeCertificates(dir);
  chmodSync(ca, 0o644);
  chmodSync(key, 0o600);
  const superPassword = 'bundles-superuser-pw';
  const pwfile = join(dir, 'pw');
  writeFileSync(pwfile, `${superPassword}\n`);
  const hba = join(dir, 'pg_hba.conf');
  // TLS or nothing, as RDS Proxy with requireTLS: no hostnossl line, no local trust.
  writeFileSync(hba, 'hostssl all all 127.0.0.1/32 scram-sha-256\nhostnossl all all 0.0.0.0/0 reject\n');
  if (owner) for (const f of [dir, key, cert, pwfile, hba]) chownSync(f, owner.uid, owner.gid);

  const data = join(dir, 'data');
  run(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=scram-sha-256', `--pwfile=${pwfile}`, '-E', 'UTF8', '--no-sync', '--locale=C'], { ...asOwner, cwd: dir });
  const port = await freePort();
  const server: ChildProcess = spawn(
    join(bin, 'postgres'),
    [
      '-D', data, '-p', String(port), '-k', dir,
      '-c', 'listen_addresses=127.0.0.1',
      '-c', `hba_file=${hba}`,
      '-c', 'ssl=on', '-c', `ssl_cert_file=${cert}`, '-c', `ssl_key_file=${key}`,
      '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off',
    ],
    { ...asOwner, cwd: dir, stdio: 'ignore' },
  );

  const connect = async (user: string, password: string, database: string) => {
    const client = new Client({ host: 'localhost', port, user, password, database, ssl: { ca: require('node:fs').readFileSync(ca, 'utf8') }, connectionTimeoutMillis: 2000 });
    await client.connect();
    return client;
  };
  const superuser = () => connect('postgres', superPassword, 'postgres');
  await waitUntilReady(superuser, 15_000);

  // As RDS creates them: the master user owns the application database.
  const user = 'summary_jobs_admin';
  const password = `pw-${Math.random().toString(36).slice(2)}-${Date.now().toString(36)}`;
  const database = 'summary_jobs';
  const admin = await superuser();
  try {
    await admin.query(`CREATE ROLE ${user} LOGIN CREATEROLE PASSWORD '${password}'`);
    await admin.query(`CREATE DATABASE ${database} OWNER ${user}`);
  } finally {
    await admin.end();
  }

  return {
    host: 'localhost',
    port,
    caFile: ca,
    user,
    password,
    database,
    superuser,
    destroy: async () => {
      if (server.exitCode === null) {
        const exited = new Promise<void>((resolve) => server.once('exit', () => resolve()));
        server.kill('SIGINT');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
