import { EventEmitter } from 'node:events';
import type { Alert } from '../lambda/local/alerts';
import { installLifecycle, LOCAL_MODE_CRASHED } from '../lambda/local/lifecycle';

/**
 * Every way out of local mode, with the process's events replaced by an
 * emitter and its exit by a recorder (local-mode.test.ts drives the real
 * signals end to end).
 */

class Expected extends Error {}

function harness(opts: { stop?: () => Promise<void>; crashBudgetMs?: number } = {}) {
  let now = 1_000_000;
  const events = new EventEmitter();
  const exits: number[] = [];
  const lines: string[] = [];
  const alerts: Alert[] = [];
  const steps: string[] = [];
  let exited: (code: number) => void = () => undefined;
  const exit = new Promise<number>((r) => (exited = r));
  const lifecycle = installLifecycle({
    stop: opts.stop ?? (async () => void steps.push('stop')),
    forceStop: () => void steps.push('forceStop'),
    sinks: () => [(a) => void alerts.push(a)],
    expected: (err) => err instanceof Expected,
    exit: (code) => {
      exits.push(code);
      exited(code);
    },
    log: (l) => void lines.push(l),
    events,
    now: () => now,
    crashBudgetMs: opts.crashBudgetMs,
  });
  return { lifecycle, events, exits, exit, lines, alerts, steps, advance: (ms: number) => (now += ms) };
}

it('stops in order on SIGINT once start-up has finished, and exits 0', async () => {
  const h = harness();
  let finishStartup: () => void = () => undefined;
  h.lifecycle.starting(new Promise<void>((r) => (finishStartup = r)));
  h.events.emit('SIGINT', 'SIGINT');
  expect(h.lifecycle.stopping()).toBe(true);
  await new Promise((r) => setTimeout(r, 20));
  // Nothing is stopped while it is still starting.
  expect(h.steps).toEqual([]);
  finishStartup();
  expect(await h.exit).toBe(0);
  expect(h.steps).toEqual(['stop']);
});

it('ignores a relayed copy of the signal, and forces the exit on a real second one', async () => {
  const h = harness({ stop: () => new Promise<void>(() => undefined) });
  h.lifecycle.starting(Promise.resolve());
  h.events.emit('SIGINT', 'SIGINT');
  h.advance(30);
  h.events.emit('SIGINT', 'SIGINT');
  expect(h.exits).toEqual([]);
  h.advance(2000);
  h.events.emit('SIGTERM', 'SIGTERM');
  expect(h.exits).toEqual([130]);
  expect(h.steps).toEqual(['forceStop']);
});

it('on an uncaught error: alerts every sink, stops in order, exits 1', async () => {
  const h = harness();
  h.lifecycle.starting(Promise.resolve());
  h.events.emit('uncaughtException', new Error('something nobody expected'));
  expect(await h.exit).toBe(1);
  expect(h.alerts).toEqual([expect.objectContaining({ alarm: LOCAL_MODE_CRASHED, state: 'ALARM', reason: 'something nobody expected' })]);
  expect(h.steps).toEqual(['stop']);
  expect(h.lines[0]).toMatch(/^local mode crashed: Error: something nobody expected\n\s+at /);
});

it('exits 1 after a crash even when stopping hangs', async () => {
  const h = harness({ stop: () => new Promise<void>(() => undefined), crashBudgetMs: 50 });
  h.lifecycle.starting(Promise.resolve());
  h.events.emit('unhandledRejection', new Error('lost'));
  expect(await h.exit).toBe(1);
});

it('reports a failed start in one line when the failure is an expected one, and exits 1', async () => {
  const h = harness();
  h.lifecycle.starting(Promise.reject(new Expected('port 3000 on 127.0.0.1 is in use')));
  expect(await h.exit).toBe(1);
  expect(h.lines).toEqual(['local mode failed to start: port 3000 on 127.0.0.1 is in use']);
  expect(h.steps).toEqual(['stop']);
});
