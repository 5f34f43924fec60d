#!/usr/bin/env node
const { spawnSync } = require("child_process");
const { allocatorRestartEnv } = require("../dist/src/cli/allocator.js");

// Large buffers page-fault afresh under glibc's defaults; its settings are read at start-up, so restart once with them.
const env = allocatorRestartEnv();
if (env) {
  const child = spawnSync(process.execPath, [...process.execArgv, __filename, ...process.argv.slice(2)], { stdio: "inherit", env });
  if (child.error) {
    console.error(`qdebug: ${child.error.message}`);
    process.exit(1);
  }
  if (child.signal) process.kill(process.pid, child.signal);
  process.exit(child.status ?? 1);
}

require("../dist/src/cli/main.js").main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => { console.error(`qdebug: ${err && err.message ? err.message : err}`); if (process.env.QDEBUG_STACK) console.error(err && err.stack); process.exit(1); }
);
