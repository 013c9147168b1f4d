// bench/braze_api.js: the npm braze-api client (node-fetch underneath, Node's
// global keep-alive agent) calling its segments list against the same nginx,
// sequentially, like bench/request.lua.
//
//   node bench/braze_api.js BASE_URL N [WARMUP]   ->   RATE <requests/s> segments=<n>
'use strict';
const { Braze } = require('braze-api');

async function main() {
  const [base, nArg, warmArg] = process.argv.slice(2);
  const n = Number(nArg || 1000);
  const warmup = warmArg !== undefined ? Number(warmArg) : Math.floor(n / 10) + 1;
  if (!base || !(n > 0)) throw new Error('usage: braze_api.js BASE_URL N [WARMUP]');
  const braze = new Braze(base, 'bench-key');
  let page;
  for (let i = 0; i < warmup; i++) page = await braze.segments.list({});
  if (!page || !Array.isArray(page.segments) || page.segments.length !== 100) {
    throw new Error('expected a 100-segment page');
  }
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) page = await braze.segments.list({});
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(`RATE ${(n / seconds).toFixed(1)} segments=${page.segments.length}`);
}

main().catch((err) => {
  console.error(`braze_api.js: ${err && err.stack ? err.stack : err}`);
  process.exit(1);
});
