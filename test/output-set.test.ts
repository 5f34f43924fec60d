import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { ChildProcess, spawn } from "child_process";
import { strict as assert } from "assert";
import * as tf from "@tensorflow/tfjs";
import { main } from "../src/cli/main";
import { writeNpy } from "../src/data/npy";
import { mulberry32 } from "../src/quant/fake-quant-kernel";
import { ROOT } from "./fixtures/models";
import { buildBlockModel } from "./fixtures/small-models";
import { saveModel } from "./fixtures/save-model";
import { randomizeWeights, setupBackend } from "./helpers";

const EPOCH = "1700000000";
const BIN = path.join(ROOT, "bin", "qdebug.js");

/** Every file under `dir`, by relative path. */
function snapshot(dir: string): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  const walk = (d: string, prefix: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(path.join(d, e.name), `${prefix}${e.name}/`);
      else files.set(`${prefix}${e.name}`, fs.readFileSync(path.join(d, e.name)));
    }
  };
  if (fs.existsSync(dir)) walk(dir, "");
  return files;
}

function same(a: Map<string, Buffer>, b: Map<string, Buffer>): boolean {
  return a.size === b.size && [...a].every(([k, v]) => b.get(k)?.equals(v) === true);
}

function restore(dir: string, files: Map<string, Buffer>): void {
  fs.rmSync(dir, { recursive: true, force: true });
  for (const [rel, bytes] of files) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), bytes);
  }
}

async function inProcess(argv: string[]): Promise<number> {
  const saved = process.env.SOURCE_DATE_EPOCH;
  process.env.SOURCE_DATE_EPOCH = EPOCH;
  try {
    return await main(argv, () => undefined);
  } finally {
    if (saved === undefined) delete process.env.SOURCE_DATE_EPOCH;
    else process.env.SOURCE_DATE_EPOCH = saved;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves when `file` exists (polled every millisecond), or with false when the child ends first. */
/** Waits for `file`; false (with the child's exit and stderr in `why`) if the child ends first. */
async function appears(file: string, child: ChildProcess, why: { text: string } = { text: "" }): Promise<boolean> {
  // Polling alone can miss a short write phase when the children keep both cores busy: the kernel's
  // directory events still say whether the folder appeared.
  let seen = false;
  const watcher = fs.watch(path.dirname(file), (_event, name) => {
    if (name === path.basename(file)) seen = true;
  });
  try {
    while (!seen && !fs.existsSync(file)) {
      if (child.exitCode !== null || child.signalCode !== null) {
        await sleep(50); // events queued before the exit
        if (seen) return true;
        why.text = `the child ended first (exit ${child.exitCode}, signal ${child.signalCode}): ${stderrOf.get(child) ?? ""}`;
        return false;
      }
      await sleep(1);
    }
    return true;
  } finally {
    watcher.close();
  }
}

/** What each spawned run printed on stderr, for failure messages. */
const stderrOf = new WeakMap<ChildProcess, string>();

const ended = (child: ChildProcess) => new Promise<number | null>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(child.exitCode) : child.once("exit", (code) => resolve(code))));

describe("output sets: atomic, locked, never mixed", function () {
  this.timeout(600000);
  let dir: string;
  let modelPath: string;
  let npy: string;
  // The old set is 4-bit, the new one 8-bit: every file but the manifest differs.
  const analyzeArgs = (out: string, bits: number) => ["analyze", modelPath, "--data", npy, "--calib", "16", "--batch-size", "16", "--w-bits", String(bits), "--out", out];

  before(async () => {
    await setupBackend();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "qdebug-out-"));
    const model = buildBlockModel();
    randomizeWeights(model, 4);
    modelPath = await saveModel(model, path.join(dir, "block"));
    model.dispose();
    const x = tf.randomUniform([32, 8, 8, 3], 0, 1, "float32", 9);
    npy = path.join(dir, "x.npy");
    writeNpy(npy, x.dataSync() as Float32Array, x.shape);
    x.dispose();
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("a second run into a folder another run is writing is refused; the first completes", async () => {
    const out = path.join(dir, "busy");
    const first = inProcess(analyzeArgs(out, 8));
    const lock = path.join(dir, ".busy.qdebug-lock");
    while (!fs.existsSync(lock)) await sleep(1);
    await assert.rejects(inProcess(analyzeArgs(out, 4)), new RegExp(`--out .*busy is being written by another qdebug run \\(pid ${process.pid}\\)`));
    assert.equal(await first, 0);
    assert.ok(!fs.existsSync(lock), "the lock is released");
    assert.ok(JSON.parse(fs.readFileSync(path.join(out, "results.json"), "utf8")).ranges);
  });

  it("a lock left by a dead run is taken over, and the run's leftovers beside --out are removed", async () => {
    const out = path.join(dir, "stale");
    const dead = spawn(process.execPath, ["-e", ""]);
    await ended(dead);
    fs.writeFileSync(path.join(dir, ".stale.qdebug-lock"), `${dead.pid}\n`);
    fs.mkdirSync(path.join(dir, `.stale.qdebug-staging-${dead.pid}`));
    fs.writeFileSync(path.join(dir, `.stale.qdebug-staging-${dead.pid}`, "results.json"), "");
    assert.equal(await inProcess(analyzeArgs(out, 8)), 0);
    assert.deepEqual(fs.readdirSync(dir).filter((f) => f.startsWith(".stale.")), []);
  });

  it("SIGKILL at 20 moments during analyze's writes over an earlier run leaves the complete old set or the complete new set", async () => {
    const reference = path.join(dir, "reference");
    assert.equal(await inProcess(analyzeArgs(reference, 8)), 0);
    const newSet = snapshot(reference);
    const oldRun = path.join(dir, "old");
    assert.equal(await inProcess(analyzeArgs(oldRun, 4)), 0);
    const oldSet = snapshot(oldRun);
    assert.ok(newSet.size > 5 && !same(oldSet, newSet));

    const env = { ...process.env, SOURCE_DATE_EPOCH: EPOCH, QDEBUG_PROGRESS: "off" };
    const start = (out: string) => {
      const child = spawn(process.execPath, [BIN, ...analyzeArgs(out, 8)], { env, stdio: ["ignore", "ignore", "pipe"] });
      child.stderr!.on("data", (d: Buffer) => stderrOf.set(child, ((stderrOf.get(child) ?? "") + d.toString()).slice(-2000)));
      return child;
    };
    const staging = (out: string, child: ChildProcess) => path.join(path.dirname(out), `.${path.basename(out)}.qdebug-staging-${child.pid}`);

    // One whole run measures the write phase: from the staging folder's appearance to the end of the process.
    const probe = path.join(dir, "probe");
    restore(probe, oldSet);
    const child = start(probe);
    const why = { text: "" };
    assert.ok(await appears(staging(probe, child), child, why), `the staging folder appears (${why.text})`);
    const t0 = Date.now();
    assert.equal(await ended(child), 0);
    const writeMs = Date.now() - t0;
    assert.ok(same(snapshot(probe), newSet), "a complete run leaves exactly the new set (a separate process writes the same bytes)");

    // Two lanes in parallel (one process each), ten kills each, at seeded random moments over the write phase.
    const random = mulberry32(15);
    const delays = Array.from({ length: 20 }, () => Math.floor(random() * writeMs));
    const outcomes: { delay: number; found: "old" | "new" }[] = [];
    await Promise.all(
      [0, 1].map(async (lane) => {
        const out = path.join(dir, `kill-${lane}`);
        for (let i = lane; i < delays.length; i += 2) {
          restore(out, oldSet);
          const victim = start(out);
          const why = { text: "" };
          assert.ok(await appears(staging(out, victim), victim, why), `the staging folder appears (${why.text})`);
          await sleep(delays[i]);
          victim.kill("SIGKILL");
          await ended(victim);
          const found = snapshot(out);
          const state = same(found, oldSet) ? "old" : same(found, newSet) ? "new" : undefined;
          assert.ok(state, `kill ${i} after ${delays[i]} ms left neither set complete: ${[...found.keys()].join(", ") || "(no folder)"}`);
          outcomes.push({ delay: delays[i], found: state });
        }
        // The next run cleans up after the killed ones and completes.
        restore(out, oldSet);
        const last = start(out);
        assert.equal(await ended(last), 0);
        assert.ok(same(snapshot(out), newSet));
        assert.deepEqual(fs.readdirSync(dir).filter((f) => f.startsWith(`.kill-${lane}.`)), [], "no leftovers beside --out");
      }),
    );
    const count = (s: string) => outcomes.filter((o) => o.found === s).length;
    console.log(`      write phase ${writeMs} ms; 20 kills at ${delays.join(", ")} ms: ${count("old")} left the old set, ${count("new")} the new one`);
    assert.equal(outcomes.length, 20);
  });
});
