/** Median wall time of `fn` over `runs` after `warmup` runs; `fn` must finish its own work (await data). */
export async function medianMs(fn: () => Promise<void>, runs = 7, warmup = 2): Promise<number> {
  for (let i = 0; i < warmup; i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

/**
 * Times two variants alternately (A, B, A, B, ...) so drift in machine load hits
 * both alike, and returns both medians. Ratios, not absolute times, are reported.
 */
export async function compareMs(a: () => Promise<void>, b: () => Promise<void>, runs = 7, warmup = 2): Promise<[number, number]> {
  for (let i = 0; i < warmup; i++) {
    await a();
    await b();
  }
  const ta: number[] = [];
  const tb: number[] = [];
  for (let i = 0; i < runs; i++) {
    for (const [fn, into] of [[a, ta], [b, tb]] as const) {
      const t0 = process.hrtime.bigint();
      await fn();
      into.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  }
  const median = (xs: number[]) => xs.sort((x, y) => x - y)[Math.floor(xs.length / 2)];
  return [median(ta), median(tb)];
}
