import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { spawnSync } from "child_process";
import { strict as assert } from "assert";
import { main } from "../src/cli/main";
import { EXAMPLE_MODEL, ROOT } from "./fixtures/models";
import { setupBackend } from "./helpers";

const EPOCH = "1700000000"; // 2023-11-14

function files(dir: string, prefix = ""): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) for (const [k, v] of files(path.join(dir, e.name), `${prefix}${e.name}/`)) out.set(k, v);
    else out.set(`${prefix}${e.name}`, fs.readFileSync(path.join(dir, e.name)));
  }
  return out;
}

/** Two runs (one in this process, one in a fresh one) with SOURCE_DATE_EPOCH set write the same bytes. */
describe("reruns match: analyze and debug with SOURCE_DATE_EPOCH are byte-identical", function () {
  this.timeout(600000);
  let dir: string;
  before(async () => {
    await setupBackend();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "qdebug-rerun-"));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const commands: Record<string, string[]> = {
    analyze: ["analyze", EXAMPLE_MODEL, "--data", "mnist:0:200", "--calib", "200", "--eval", "64"],
    // AdaRound runs here: its per-layer timings must stay out of the files.
    debug: ["debug", EXAMPLE_MODEL, "--data", "mnist:0:200", "--w-bits", "4", "--target", "0.01", "--no-per-channel"],
  };
  for (const [name, argv] of Object.entries(commands)) {
    it(name, async () => {
      const first = path.join(dir, `${name}-1`);
      const second = path.join(dir, `${name}-2`);
      process.env.SOURCE_DATE_EPOCH = EPOCH;
      try {
        await main([...argv, "--out", first], () => undefined);
      } finally {
        delete process.env.SOURCE_DATE_EPOCH;
      }
      const child = spawnSync(process.execPath, [path.join(ROOT, "bin", "qdebug.js"), ...argv, "--out", second], { env: { ...process.env, SOURCE_DATE_EPOCH: EPOCH, QDEBUG_PROGRESS: "off" }, encoding: "utf8" });
      assert.equal(child.status, 0, child.stderr);
      const a = files(first);
      const b = files(second);
      assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
      for (const [file, bytes] of a) assert.ok(bytes.equals(b.get(file)!), `${file} differs between the two runs`);
      assert.match(a.get("report.html")!.toString(), /· 2023-11-14</);
      const json = a.get(name === "debug" ? "record.json" : "results.json")!.toString();
      assert.doesNotMatch(json, /"(seconds|elapsedMs)"/, "no timings in the files");
    });
  }
});
