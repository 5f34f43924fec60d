#!/usr/bin/env node
require("../dist/src/cli/main.js").main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => { console.error(`qdebug: ${err && err.message ? err.message : err}`); if (process.env.QDEBUG_STACK) console.error(err && err.stack); process.exit(1); }
);
