import { strict as assert } from "assert";
import * as tf from "@tensorflow/tfjs";
import { setupBackend } from "./helpers";
import { engineMemory } from "../src/memory-budget";
import { etaMs, formatDuration, ProgressEvent, ProgressOptions, ProgressReporter, StepTimer } from "../src/progress";

/** A stream that keeps what is written; a terminal when `columns` is given. */
function fakeStream(columns?: number) {
  return {
    text: "",
    isTTY: columns !== undefined,
    columns,
    write(s: string) {
      this.text += s;
      return true;
    },
  };
}

/** A clock the test moves by hand. */
function fakeClock() {
  const clock = { t: 0, now: () => clock.t };
  return clock;
}

/** A reporter over a fake stream and clock, isolated from the runner's environment. */
function setup(columns?: number, options: ProgressOptions = {}) {
  const stream = fakeStream(columns);
  const clock = fakeClock();
  const reporter = new ProgressReporter({ stream, now: clock.now, env: {}, ...options });
  return { stream, clock, reporter };
}

const ev = (done: number, total: number | undefined, elapsedMs: number, extra: Partial<ProgressEvent> = {}): ProgressEvent => ({ task: "calibration", done, total, unit: "examples", elapsedMs, ...extra });

describe("progress", () => {
  describe("log mode (pipe, file, CI)", () => {
    it("prints one line about every 10 s with done/total, percent, elapsed and ETA, and one when the task finishes", () => {
      const { stream, clock, reporter } = setup();
      assert.equal(reporter.mode, "log");
      // A batch of 6 examples every 2 s, 90 in all: 30 s.
      for (let k = 1; k <= 15; k++) {
        clock.t = 2000 * k;
        reporter.progress(ev(6 * k, 90, 2000 * k));
      }
      assert.equal(
        stream.text,
        "calibration: 30/90 examples, 33%, 10.0 s elapsed, ETA 20.0 s\n" +
          "calibration: 60/90 examples, 66%, 20.0 s elapsed, ETA 10.0 s\n" +
          "calibration: 90/90 examples, done in 30.0 s\n",
      );
      assert.ok(!/[\r\x1b]/.test(stream.text), "no carriage return or escape sequence in a log");
    });

    it("takes the interval from QDEBUG_PROGRESS_EVERY (seconds) or the everyMs option", () => {
      for (const options of [{ env: { QDEBUG_PROGRESS_EVERY: "5" } }, { everyMs: 5000 }]) {
        const { stream, clock, reporter } = setup(undefined, options);
        assert.equal(reporter.everyMs, 5000);
        for (let s = 1; s <= 16; s++) {
          clock.t = 1000 * s;
          reporter.progress(ev(s, 100, 1000 * s));
        }
        assert.deepEqual(stream.text.trimEnd().split("\n").map((l) => l.split(",")[0]), ["calibration: 5/100 examples", "calibration: 10/100 examples", "calibration: 15/100 examples"]);
      }
    });

    it("falls back to 10 s and says so when QDEBUG_PROGRESS_EVERY is not a positive number", () => {
      const { stream, reporter } = setup(undefined, { env: { QDEBUG_PROGRESS_EVERY: "soon" } });
      assert.equal(reporter.everyMs, 10_000);
      assert.equal(stream.text, "QDEBUG_PROGRESS_EVERY=soon is not a number of seconds > 0; using 10\n");
    });

    it("computes the ETA from the rate so far, and omits it and the percent when the total is unknown", () => {
      assert.equal(etaMs(ev(25, 100, 40_000)), 120_000);
      assert.equal(etaMs(ev(0, 100, 40_000)), undefined);
      assert.equal(etaMs(ev(100, 100, 40_000)), undefined);
      assert.equal(etaMs(ev(25, undefined, 40_000)), undefined);
      const { stream, clock, reporter } = setup();
      clock.t = 40_000;
      reporter.progress(ev(25, 100, 40_000, { detail: "block_3_add" }));
      reporter.progress(ev(64, undefined, 40_000, { task: "forward" }));
      assert.equal(stream.text, "calibration: 25/100 examples, 25%, 40.0 s elapsed, ETA 2 min 00 s · block_3_add\nforward: 64 examples, 40.0 s elapsed\n");
    });

    it("keeps one cadence per task, and starts again when a task runs again", () => {
      const { stream, clock, reporter } = setup();
      clock.t = 11_000;
      reporter.progress(ev(10, 40, 11_000)); // first batch slower than the interval: printed at once
      reporter.progress(ev(1, 3, 11_000, { task: "sweep", unit: "layers" }));
      clock.t = 15_000;
      reporter.progress(ev(20, 40, 15_000)); // 4 s since its last line: silent
      clock.t = 16_000;
      reporter.progress(ev(40, 40, 16_000));
      reporter.progress(ev(5, 40, 1_000)); // the same task again, from the start: silent until 10 s
      clock.t = 25_000;
      reporter.progress(ev(40, 40, 10_000));
      assert.equal(
        stream.text,
        "calibration: 10/40 examples, 25%, 11.0 s elapsed, ETA 33.0 s\n" +
          "sweep: 1/3 layers, 33%, 11.0 s elapsed, ETA 22.0 s\n" +
          "calibration: 40/40 examples, done in 16.0 s\n" +
          "calibration: 40/40 examples, done in 10.0 s\n",
      );
    });

    it("is the mode in a terminal when QDEBUG_PROGRESS=log, and for TERM=dumb", () => {
      assert.equal(setup(80, { env: { QDEBUG_PROGRESS: "log" } }).reporter.mode, "log");
      assert.equal(setup(80, { env: { TERM: "dumb" } }).reporter.mode, "log");
      assert.equal(setup(80).reporter.mode, "tty");
      assert.equal(setup(undefined, { env: { QDEBUG_PROGRESS: "tty" } }).reporter.mode, "tty");
    });
  });

  describe("terminal mode", () => {
    it("rewrites one line with a bar, done/total, percent, elapsed and ETA, at most every 200 ms, and ends it when done", () => {
      const { stream, clock, reporter } = setup(100);
      clock.t = 1000;
      reporter.progress(ev(25, 100, 1000));
      clock.t = 1100;
      reporter.progress(ev(30, 100, 1100)); // 100 ms later: not redrawn
      clock.t = 2000;
      reporter.progress(ev(100, 100, 2000));
      const bar = (n: number) => `\x1b[36m${"█".repeat(n)}${"░".repeat(20 - n)}\x1b[39m`;
      assert.equal(stream.text, `\rcalibration ${bar(5)} 25/100 examples 25% 1.0 s ETA 3.0 s\x1b[K` + `\rcalibration ${bar(20)} 100/100 examples 100% 2.0 s\x1b[K\n`);
    });

    it("truncates the detail (then the rest) to the terminal width", () => {
      const drawn = (columns: number) => {
        const { stream, clock, reporter } = setup(columns, { color: false });
        clock.t = 1000;
        reporter.progress(ev(50, 100, 4000, { detail: "block_16_project_BN: 0.9812" }));
        assert.ok(stream.text.startsWith("\r") && stream.text.endsWith("\x1b[K"));
        return stream.text.slice(1, -3);
      };
      const head = "calibration ██████████░░░░░░░░░░ 50/100 examples 50% 4.0 s ETA 4.0 s";
      assert.equal(drawn(200), `${head} · block_16_project_BN: 0.9812`);
      assert.equal(drawn(80), `${head} · block_1…`);
      assert.equal(drawn(80).length, 79);
      assert.equal(drawn(60), `${head.slice(0, 58)}…`);
    });

    it("uses no colour when NO_COLOR is set", () => {
      const { stream, clock, reporter } = setup(200, { env: { NO_COLOR: "1" } });
      clock.t = 1000;
      reporter.progress(ev(50, 100, 1000));
      assert.equal(stream.text, "\rcalibration ██████████░░░░░░░░░░ 50/100 examples 50% 1.0 s ETA 1.0 s\x1b[K");
    });
  });

  it("QDEBUG_PROGRESS=off prints nothing: no progress, no step timings", async () => {
    for (const columns of [undefined, 80]) {
      const stream = fakeStream(columns);
      const steps = new StepTimer({ stream, env: { QDEBUG_PROGRESS: "off" } });
      await steps.run("calibration", () => steps.progress(ev(10, 10, 20_000)));
      steps.finish();
      assert.equal(stream.text, "");
      assert.equal(steps.timings.length, 1, "still timed");
    }
  });

  describe("step timings", () => {
    it("a step that runs out of memory names the step, the batch size and the knobs that bound memory", async () => {
      await setupBackend();
      const steps = new StepTimer({ stream: fakeStream(), env: {}, batchSize: 32 });
      const saved = process.env.QDEBUG_MEMORY;
      process.env.QDEBUG_MEMORY = "1.5GB";
      try {
        // A real failure: tfjs cannot allocate 4.4 GB for one tensor.
        await assert.rejects(
          () => steps.run("enable-one sweep", () => tf.tidy(() => tf.zeros([1100, 1000, 1000]).sum())),
          (err: Error) => {
            assert.match(err.message, /^out of memory in step "enable-one sweep" at batch size 32 \(.*Invalid typed array length.*\): lower the batch size \(--batch-size 16\), or the engine's memory budget \(QDEBUG_MEMORY, now 1\.50 GB\)$/);
            return true;
          },
        );
        // Other errors pass through unchanged.
        await assert.rejects(() => steps.run("split", () => { throw new Error("no data"); }), /^Error: no data$/);
      } finally {
        if (saved === undefined) delete process.env.QDEBUG_MEMORY;
        else process.env.QDEBUG_MEMORY = saved;
      }
    });

    it("the engine works within the budget less what the process held when it first asked, at least a quarter of it", () => {
      const saved = process.env.QDEBUG_MEMORY;
      try {
        process.env.QDEBUG_MEMORY = "64GB";
        const held = 64 * 2 ** 30 - engineMemory();
        // The runtimes and test fixtures are loaded by now: the held memory is this process's, not 0.
        assert.ok(held > 50 * 2 ** 20 && held <= process.memoryUsage().rss * 2, `held ${held}`);
        process.env.QDEBUG_MEMORY = String(Math.round(held + 2 ** 30));
        assert.equal(Math.round(engineMemory()), 2 ** 30, "the rest of the budget");
        process.env.QDEBUG_MEMORY = "40MB";
        assert.equal(engineMemory(), 10 * 2 ** 20, "below what is held: a quarter of the budget");
      } finally {
        if (saved === undefined) delete process.env.QDEBUG_MEMORY;
        else process.env.QDEBUG_MEMORY = saved;
      }
    });

    it("prints each step's start and wall time, then the total, and returns them", async () => {
      const stream = fakeStream();
      const clock = fakeClock();
      clock.t = 1000;
      const steps = new StepTimer({ stream, now: clock.now, env: {} });
      const value = await steps.run("calibration", async () => {
        clock.t += 12_500;
        steps.progress(ev(200, 200, 12_400));
        return 42;
      });
      assert.equal(value, 42);
      clock.t += 500; // between steps: in the total, not in a step
      await steps.run("FP32 sanity check", () => {
        clock.t += 75_000;
      });
      steps.record("AdaRound", 3_723_000);
      await assert.rejects(
        steps.run("per-layer error", () => {
          clock.t += 2000;
          throw new Error("out of memory");
        }),
        /out of memory/,
      );
      const { totalMs, steps: timings } = steps.finish();
      assert.deepEqual(timings, [
        { name: "calibration", ms: 12_500 },
        { name: "FP32 sanity check", ms: 75_000 },
        { name: "AdaRound", ms: 3_723_000 },
      ]);
      assert.equal(totalMs, 90_000);
      assert.equal(
        stream.text,
        "step calibration: started\n" +
          "calibration: 200/200 examples, done in 12.4 s\n" +
          "step calibration: 12.5 s\n" +
          "step FP32 sanity check: started\n" +
          "step FP32 sanity check: 1 min 15 s\n" +
          "step AdaRound: 1 h 02 min\n" +
          "step per-layer error: started\n" +
          "step per-layer error: failed after 2.0 s\n" +
          "total: 1 min 30 s\n",
      );
    });

    it("in a terminal, a step line replaces the live progress line", async () => {
      const stream = fakeStream(80);
      const clock = fakeClock();
      const steps = new StepTimer({ stream, now: clock.now, env: { NO_COLOR: "1" } });
      await steps.run("per-layer error", () => {
        clock.t = 3000;
        steps.progress(ev(5, undefined, 3000, { task: "per-layer error" }));
      });
      assert.equal(stream.text, "\rper-layer error …\x1b[K" + "\rper-layer error 5 examples 3.0 s\x1b[K" + "\r\x1b[Kstep per-layer error: 3.0 s\n");
    });
  });

  it("formats durations in s, min and h", () => {
    assert.deepEqual([0, 4_240, 59_940, 59_960, 187_000, 3_600_000, 3_723_000].map(formatDuration), ["0.0 s", "4.2 s", "59.9 s", "1 min 00 s", "3 min 07 s", "1 h 00 min", "1 h 02 min"]);
  });
});
