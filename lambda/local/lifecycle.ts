import type { EventEmitter } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import type { Alert, AlertSink } from './alerts';

/**
 * How local mode ends. One owner for every way out:
 *   SIGINT, SIGTERM, SIGHUP  stop in order (whatever is still starting finishes
 *                            starting first, so it can be stopped), exit 0;
 *   the same signal again    exit 130 at once (`forceStop` first); a copy that
 *                            arrives within a second is a relay, not a second
 *                            Ctrl-C (npm and tsx's CLI pass the group's SIGINT on);
 *   an uncaught error        a `LocalModeCrashed` alert to every sink, the same
 *                            orderly stop, each bounded in time, exit 1: a process
 *                            in an unknown state is not kept running, and
 *                            whoever runs it restarts it;
 *   a failed start           one line (no stack for an expected failure), stop, exit 1.
 */

export interface LifecycleOptions {
  /** Stops what was started, in order; never throws. */
  stop: () => Promise<void>;
  /** For a forced exit: ask what can be asked without waiting (the embedded server's fast shutdown). */
  forceStop: () => void;
  /** Where a crash is reported, read at the time of the crash. */
  sinks: () => AlertSink[];
  /** Errors whose message says it all: printed without a stack trace. */
  expected: (err: unknown) => boolean;
  exit?: (code: number) => void;
  log?: (line: string) => void;
  /** The emitter of signals and uncaught errors. @default process */
  events?: EventEmitter;
  now?: () => number;
  /** How long a crashed process spends on alerting and on stopping, each. @default 10 s */
  crashBudgetMs?: number;
}

export const LOCAL_MODE_CRASHED = 'LocalModeCrashed';
/** A signal repeated within this time is a relayed copy. */
const RELAYED_COPY_MS = 1000;

export interface Lifecycle {
  /** Hands over the start-up: a signal waits for it before stopping; its failure ends the process. */
  starting: (startup: Promise<void>) => void;
  /** Whether a way out has begun: start-up steps check it before starting more. */
  stopping: () => boolean;
}

export function installLifecycle(opts: LifecycleOptions): Lifecycle {
  const events = opts.events ?? process;
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const now = opts.now ?? Date.now;
  const budget = opts.crashBudgetMs ?? 10_000;
  let startup: Promise<void> = Promise.resolve();
  let reason: string | null = null;
  let since = 0;

  const onSignal = (signal: NodeJS.Signals) => {
    if (reason !== null && now() - since < RELAYED_COPY_MS) return;
    if (reason !== null) {
      log(`${signal} again: exiting at once; jobs still running are retried after their lease lapses`);
      opts.forceStop();
      exit(130);
      return;
    }
    reason = signal;
    since = now();
    log(`${signal}: shutting down (running jobs finish, claimed ones go back to the queue); ${signal} again forces the exit`);
    void startup
      .catch(() => undefined)
      .then(opts.stop)
      .then(() => exit(0));
  };

  const onCrash = (err: unknown) => {
    const text = err instanceof Error ? (err.stack ?? err.message) : String(err);
    if (reason !== null) {
      log(`local mode crashed while stopping: ${text}`);
      exit(1);
      return;
    }
    reason = 'crash';
    since = now();
    log(`local mode crashed: ${text}\nshutting down; jobs it could not finish are retried after their lease lapses. Restart it with \`npm start\`.`);
    const alert: Alert = {
      alarm: LOCAL_MODE_CRASHED,
      state: 'ALARM',
      at: new Date(now()).toISOString(),
      reason: err instanceof Error ? err.message : String(err),
      description:
        'The local-mode process (API, processor and alarm evaluation) hit an unexpected error and exited with status 1; ' +
        'no alarm is evaluated until it runs again. Restart it with `npm start` (jobs it held are retried after their lease); ' +
        'the error and its stack are on its console.',
    };
    const bounded = <T>(p: Promise<T>) => Promise.race([p, delay(budget, undefined, { ref: false })]);
    const deliveries = opts.sinks().map((sink) => Promise.resolve().then(() => sink(alert)).catch(() => undefined));
    void bounded(Promise.all(deliveries))
      .then(() => bounded(opts.stop()))
      .finally(() => exit(1));
  };

  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) events.on(signal, onSignal);
  events.on('uncaughtException', onCrash);
  events.on('unhandledRejection', onCrash);

  return {
    stopping: () => reason !== null,
    starting: (p) => {
      startup = p;
      p.catch(async (err: unknown) => {
        log(`local mode failed to start: ${opts.expected(err) ? (err as Error).message : ((err as Error)?.stack ?? String(err))}`);
        if (reason !== null) return;
        reason = 'failed start';
        await opts.stop();
        exit(1);
      });
    },
  };
}
