import { explainOutOfMemory } from "./memory-budget";

/** Progress of a long run, reported after each unit of work (a batch, a layer). */
export interface ProgressEvent {
  /** What is running ("forward", "calibration", "sweep: enable one layer"). */
  task: string;
  done: number;
  /** Known when the dataset or sweep size is known in advance. */
  total?: number;
  unit: string;
  elapsedMs: number;
  /** A short note on the current item (layer name, score so far). */
  detail?: string;
}

export type ProgressFn = (event: ProgressEvent) => void;

/** Where progress goes: process.stderr, or any object with these members (tests use fakes). */
export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/** "tty": one line rewritten in place; "log": plain lines for pipes, files and CI logs; "off": nothing. */
export type ProgressMode = "tty" | "log" | "off";

export interface ProgressOptions {
  stream?: ProgressStream;
  /** The clock, in ms (injected by tests). */
  now?: () => number;
  /** Log mode: one line per running task about this often. Default: QDEBUG_PROGRESS_EVERY seconds, else 10 s. */
  everyMs?: number;
  /** Default: QDEBUG_PROGRESS (off | log | tty), else tty when the stream is a terminal. */
  mode?: ProgressMode;
  /** Colour the bar. Default: in tty mode unless NO_COLOR is set. */
  color?: boolean;
  /** Where the QDEBUG_PROGRESS* and NO_COLOR variables are read (default process.env). */
  env?: Record<string, string | undefined>;
}

const DEFAULT_EVERY_MS = 10_000;
/** A terminal redraw at most this often: faster is flicker and wasted writes. */
const TTY_EVERY_MS = 200;
const BAR_WIDTH = 20;

/** 4.2 s, 3 min 07 s, 1 h 05 min. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, ms) / 1000;
  if (s < 59.95) return `${s.toFixed(1)} s`;
  const whole = Math.round(s);
  const m = Math.floor(whole / 60);
  if (m < 60) return `${m} min ${String(whole % 60).padStart(2, "0")} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min`;
}

/** Time left at the rate so far; undefined when the total is unknown, nothing is done yet, or all is done. */
export function etaMs(e: ProgressEvent): number | undefined {
  if (e.total === undefined || e.done <= 0 || e.done >= e.total) return undefined;
  return (e.elapsedMs * (e.total - e.done)) / e.done;
}

/**
 * Renders progress events and step timings on one stream. In a terminal one line
 * is rewritten in place; anywhere else (pipe, file, CI log) a long task still
 * prints a plain line every `everyMs`, since a log that stays silent for minutes
 * looks hung. Log mode never writes carriage returns or escape sequences.
 */
export class ProgressReporter {
  readonly mode: ProgressMode;
  readonly everyMs: number;
  readonly now: () => number;
  private readonly stream: ProgressStream;
  private readonly color: boolean;
  /** Log mode: per running task, when its last line was printed and how far it was. */
  private readonly tasks = new Map<string, { printedAt: number; done: number }>();
  private drawnAt = -Infinity;
  /** Terminal: a live line is on screen without its newline. */
  private open = false;

  constructor(options: ProgressOptions = {}) {
    const env = options.env ?? process.env;
    this.stream = options.stream ?? process.stderr;
    this.now = options.now ?? Date.now;
    this.mode = options.mode ?? modeFrom(env, this.stream);
    this.color = options.color ?? (this.mode === "tty" && !env.NO_COLOR);
    const every = options.everyMs ?? (env.QDEBUG_PROGRESS_EVERY ? Number(env.QDEBUG_PROGRESS_EVERY) * 1000 : DEFAULT_EVERY_MS);
    this.everyMs = every > 0 ? every : DEFAULT_EVERY_MS;
    if (!(every > 0)) this.line(`QDEBUG_PROGRESS_EVERY=${env.QDEBUG_PROGRESS_EVERY} is not a number of seconds > 0; using ${DEFAULT_EVERY_MS / 1000}`);
  }

  /** The callback to pass as `onProgress`. */
  readonly progress: ProgressFn = (e) => {
    if (this.mode === "off") return;
    const finished = e.total !== undefined && e.done >= e.total;
    const now = this.now();
    if (this.mode === "tty") {
      if (!finished && now - this.drawnAt < TTY_EVERY_MS) return;
      this.drawnAt = now;
      this.stream.write(`\r${this.ttyLine(e)}\x1b[K${finished ? "\n" : ""}`);
      this.open = !finished;
      return;
    }
    let task = this.tasks.get(e.task);
    // Unseen, or counting again from a smaller number: a new run of that task. Its
    // clock starts when the task did, so a first batch slower than everyMs is printed.
    if (!task || e.done < task.done) this.tasks.set(e.task, (task = { printedAt: now - e.elapsedMs, done: e.done }));
    task.done = e.done;
    if (finished) {
      this.tasks.delete(e.task);
      this.stream.write(`${e.task}: ${counts(e)}, done in ${formatDuration(e.elapsedMs)}${e.detail ? ` · ${e.detail}` : ""}\n`);
    } else if (now - task.printedAt >= this.everyMs) {
      task.printedAt = now;
      const eta = etaMs(e);
      const parts = [counts(e), ...(e.total ? [`${percent(e)}%`] : []), `${formatDuration(e.elapsedMs)} elapsed`, ...(eta !== undefined ? [`ETA ${formatDuration(eta)}`] : [])];
      this.stream.write(`${e.task}: ${parts.join(", ")}${e.detail ? ` · ${e.detail}` : ""}\n`);
    }
  };

  /** A whole line (a step's timing); in a terminal it replaces the live line. */
  line(text: string): void {
    if (this.mode === "off") return;
    this.stream.write(`${this.open ? "\r\x1b[K" : ""}${text}\n`);
    this.open = false;
  }

  /** A step starts: a line in logs; in a terminal, the live line until its first progress event. */
  started(name: string): void {
    if (this.mode === "log") this.line(`step ${name}: started`);
    else if (this.mode === "tty") {
      this.stream.write(`\r${truncate(`${name} …`, this.width())}\x1b[K`);
      this.open = true;
    }
  }

  private width(): number {
    // One column short of the edge: writing the last column makes some terminals wrap.
    return Math.max(20, (this.stream.columns ?? 80) - 1);
  }

  private ttyLine(e: ProgressEvent): string {
    const filled = e.total ? Math.min(BAR_WIDTH, Math.round((BAR_WIDTH * e.done) / e.total)) : 0;
    const bar = e.total ? `${"█".repeat(filled)}${"░".repeat(BAR_WIDTH - filled)}` : "";
    const eta = etaMs(e);
    const head = [e.task, bar, counts(e), e.total ? `${percent(e)}%` : "", formatDuration(e.elapsedMs), eta !== undefined ? `ETA ${formatDuration(eta)}` : ""].filter((s) => s).join(" ");
    // Truncate before colouring, so escape codes are not counted as width.
    const line = truncate(e.detail ? `${head} · ${e.detail}` : head, this.width());
    return this.color && bar && line.includes(bar) ? line.replace(bar, `\x1b[36m${bar}\x1b[39m`) : line;
  }
}

export interface StepTiming {
  name: string;
  ms: number;
}

/**
 * Wall time per step of a command, printed to the progress stream (stderr) as each
 * step ends, and a total at the end. Timings are only printed, never written into
 * result files, so those stay the same from run to run.
 */
export class StepTimer {
  readonly reporter: ProgressReporter;
  readonly timings: StepTiming[] = [];
  private readonly startedAt: number;
  /** The command's batch size, named when a step runs out of memory. */
  private readonly batchSize?: number;

  constructor(options: ProgressOptions & { batchSize?: number } = {}) {
    this.reporter = new ProgressReporter(options);
    this.batchSize = options.batchSize;
    this.startedAt = this.reporter.now();
  }

  /** The `onProgress` callback for the work inside the steps. */
  get progress(): ProgressFn {
    return this.reporter.progress;
  }

  /** Runs one step, printing its name as it starts and its wall time as it ends (or fails). */
  async run<T>(name: string, fn: () => T | Promise<T>): Promise<T> {
    const start = this.reporter.now();
    this.reporter.started(name);
    try {
      const result = await fn();
      this.record(name, this.reporter.now() - start);
      return result;
    } catch (err) {
      this.reporter.line(`step ${name}: failed after ${formatDuration(this.reporter.now() - start)}`);
      throw explainOutOfMemory(err, name, this.batchSize);
    }
  }

  /** A step timed elsewhere (e.g. by the debug flow). */
  record(name: string, ms: number): void {
    this.timings.push({ name, ms });
    this.reporter.line(`step ${name}: ${formatDuration(ms)}`);
  }

  /** Prints the total wall time since the timer was made, and returns it with the steps. */
  finish(): { totalMs: number; steps: StepTiming[] } {
    const totalMs = this.reporter.now() - this.startedAt;
    this.reporter.line(`total: ${formatDuration(totalMs)}`);
    return { totalMs, steps: [...this.timings] };
  }
}

/** The progress callback on stderr (a terminal bar, or log lines every 10 s). */
export function terminalProgress(options: ProgressOptions = {}): ProgressFn {
  return new ProgressReporter(options).progress;
}

function modeFrom(env: Record<string, string | undefined>, stream: ProgressStream): ProgressMode {
  const v = (env.QDEBUG_PROGRESS ?? "").toLowerCase();
  if (v === "off" || v === "0" || v === "false" || v === "none") return "off";
  if (v === "log" || v === "tty") return v;
  // A dumb terminal cannot rewrite a line.
  return stream.isTTY && env.TERM !== "dumb" ? "tty" : "log";
}

function counts(e: ProgressEvent): string {
  return `${e.done}${e.total !== undefined ? `/${e.total}` : ""} ${e.unit}`;
}

/** Rounded down, so 100% means done. */
function percent(e: ProgressEvent): number {
  return Math.floor((100 * e.done) / e.total!);
}

function truncate(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, width - 1)}…`;
}
