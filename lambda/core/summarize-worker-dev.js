'use strict';
/*
 * The summarize worker where no JavaScript build of it sits beside the pool
 * (`npm start` through tsx, jest through swc): a worker thread starts with a
 * plain Node module loader, so TypeScript support is registered first.
 * Lambda bundles and `npm run build` output carry summarize-worker.js instead.
 */
require('tsx/cjs/api').register();
require('./summarize-worker.ts');
