'use strict';
/*
 * A stand-in for the Node.js Lambda runtime, run as its own process from the
 * function's task root: it loads the handler named by _HANDLER the way the
 * runtime does (module file by name in LAMBDA_TASK_ROOT, .js / .mjs / .cjs,
 * CommonJS through require and ES modules through import), once, as the init
 * phase, then answers invocations sent over IPC with a Lambda context. Plain
 * JavaScript on purpose: nothing of the test's own loaders (swc, tsx) may help
 * the bundle run.
 */
const { existsSync } = require('node:fs');
const { join } = require('node:path');
const { pathToFileURL } = require('node:url');

const taskRoot = process.env.LAMBDA_TASK_ROOT;
const handlerString = process.env._HANDLER;

async function loadHandler() {
  const dot = handlerString.lastIndexOf('.');
  const moduleName = handlerString.slice(0, dot);
  const exportName = handlerString.slice(dot + 1);
  const file = ['.js', '.mjs', '.cjs'].map((ext) => join(taskRoot, moduleName + ext)).find((f) => existsSync(f));
  if (!file) throw Object.assign(new Error(`Cannot find module '${moduleName}'`), { name: 'Runtime.ImportModuleError' });
  const mod = file.endsWith('.mjs') ? await import(pathToFileURL(file).href) : require(file);
  const handler = mod[exportName];
  if (typeof handler !== 'function') throw Object.assign(new Error(`${handlerString} is undefined or not exported`), { name: 'Runtime.HandlerNotFound' });
  return handler;
}

function contextFor(message) {
  const deadline = Date.now() + message.timeoutMs;
  const name = process.env.AWS_LAMBDA_FUNCTION_NAME;
  return {
    functionName: name,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${process.env.AWS_REGION}:123456789012:function:${name}`,
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    awsRequestId: message.requestId,
    logGroupName: `/aws/lambda/${name}`,
    logStreamName: '2026/01/01/[$LATEST]0123456789abcdef',
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  };
}

const failure = (err) => ({ errorType: (err && err.name) || 'Error', errorMessage: String((err && err.message) || err) });

(async () => {
  const started = Date.now();
  let handler;
  try {
    handler = await loadHandler();
  } catch (err) {
    process.send({ type: 'init-error', ...failure(err) });
    return;
  }
  process.send({ type: 'ready', initMs: Date.now() - started });
  process.on('message', async (message) => {
    if (message.type !== 'invoke') return;
    process.env._X_AMZN_TRACE_ID = `Root=1-${Math.floor(Date.now() / 1000).toString(16)}-${message.requestId.replace(/-/g, '').slice(0, 24)};Sampled=0`;
    try {
      const result = await handler(message.event, contextFor(message));
      process.send({ type: 'result', id: message.id, result: result === undefined ? null : result });
    } catch (err) {
      process.send({ type: 'error', id: message.id, ...failure(err) });
    }
  });
})();
