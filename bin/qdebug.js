#!/usr/bin/env node
require("../dist/src/cli/main.js").main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => { console.error(`qdebug: ${err && err.message ? err.message : err}`); process.exit(1); }
);
