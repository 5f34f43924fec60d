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

/** One-line progress for terminals: rewrites the line, at most every `everyMs`. */
export function terminalProgress(stream: NodeJS.WriteStream = process.stderr, everyMs = 200): ProgressFn {
  let last = 0;
  return (e) => {
    const now = Date.now();
    const finished = e.total !== undefined && e.done >= e.total;
    if (!finished && now - last < everyMs) return;
    last = now;
    const of = e.total !== undefined ? `/${e.total}` : "";
    const pct = e.total ? ` ${Math.round((100 * e.done) / e.total)}%` : "";
    const line = `${e.task}: ${e.done}${of} ${e.unit}${pct} (${(e.elapsedMs / 1000).toFixed(1)} s)${e.detail ? ` ${e.detail}` : ""}`;
    if (stream.isTTY) stream.write(`\r${line}\x1b[K${finished ? "\n" : ""}`);
    else if (finished) stream.write(`${line}\n`);
  };
}
