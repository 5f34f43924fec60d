import * as fs from "fs";
import * as path from "path";

/**
 * A command's output set, written so that `--out` always holds one complete set:
 *
 * - the files go into a staging folder beside `--out` (`.<name>.qdebug-staging-<pid>`),
 *   then `qdebug-set.json` (command and file list) is written last, then the folder
 *   is renamed into place. An older set of the same command is renamed aside first
 *   and removed after (rename cannot replace a non-empty folder; the gap between
 *   the two renames is the only moment `--out` is absent, and the next run puts the
 *   old set back if it was killed there);
 * - a command only replaces an empty folder or its own earlier set with exactly the
 *   files that set lists: another command's set, or files qdebug did not write,
 *   are refused, never deleted or mixed into;
 * - one run at a time: `.<name>.qdebug-lock` beside `--out` holds the writer's pid;
 *   a lock whose pid is gone is stale and taken over, with the dead run's leftovers.
 */

export const SET_MANIFEST = "qdebug-set.json";
export const WRITING_COMMANDS = ["quantize", "analyze", "debug"];

interface SetManifest {
  command: string;
  files: string[];
}

/** Every `--out` problem that can be found before any work, as an error naming the flag. Returns the absolute path. */
export function checkOut(out: string, command: string): string {
  if (out === "" || out.includes("\0")) throw new Error(`--out needs a folder path, got ${JSON.stringify(out)}`);
  const dir = path.resolve(out);
  if (path.dirname(dir) === dir) throw new Error(`--out ${out} is the root folder; give a folder of its own`);
  let existing = dir;
  while (!exists(existing)) existing = path.dirname(existing);
  // Virtual file systems: writing there is meaningless (and Node's recursive mkdir spins forever in /proc).
  for (const p of [dir, fs.realpathSync(existing)]) {
    const virtual = ["/proc", "/sys"].find((v) => p === v || p.startsWith(`${v}/`));
    if (virtual) throw new Error(`--out ${out} is under ${virtual}, a virtual file system; give a folder on disk`);
  }
  if (existing !== dir) {
    if (!fs.statSync(existing).isDirectory()) throw new Error(`--out ${out}: ${existing} is a file, so no folder can be made there`);
    writable(existing, out);
    return dir;
  }
  const stat = fs.lstatSync(dir);
  if (stat.isSymbolicLink()) throw new Error(`--out ${out} is a symbolic link; give the folder itself`);
  if (!stat.isDirectory()) throw new Error(`--out ${out} is an existing file, not a folder`);
  writable(path.dirname(dir), out);
  writable(dir, out);
  const entries = fs.readdirSync(dir);
  if (entries.length === 0) return dir;
  const set = readSet(dir);
  if (!set) throw new Error(`--out ${out} is a folder holding other files (${sample(entries)}); qdebug writes into a new or empty folder, or over its own earlier output`);
  if (set.command !== command) throw new Error(`--out ${out} holds the output of qdebug ${set.command}; ${command} keeps its files apart: give another folder`);
  const stray = listFiles(dir).filter((f) => f !== SET_MANIFEST && !set.files.includes(f));
  if (stray.length) throw new Error(`--out ${out} holds files qdebug ${command} did not write (${sample(stray)}); move them away or give another folder`);
  return dir;
}

/** One run's output set: open (checks, lock), write into `dir`, `commit()`, and always `close()`. */
export class OutputSet {
  private staging: string | undefined;
  private committed = false;

  private constructor(
    /** The final folder, absolute. */
    readonly out: string,
    private readonly given: string,
    private readonly command: string,
  ) {}

  /** Checks `--out`, takes its lock and tidies what a killed run left beside it. Creates no output folder yet. */
  static open(out: string, command: string): OutputSet {
    const dir = checkOut(out, command);
    fs.mkdirSync(path.dirname(dir), { recursive: true });
    const set = new OutputSet(dir, out, command);
    set.lock();
    try {
      set.recover();
      checkOut(out, command); // again, now that no one else writes here
    } catch (err) {
      set.unlock();
      throw err;
    }
    return set;
  }

  /** The staging folder to write into, made on first use (so its appearance marks the start of the writes). */
  get dir(): string {
    if (this.committed) throw new Error(`output set ${this.out} is already committed`);
    if (!this.staging) {
      this.staging = this.beside(`staging-${process.pid}`);
      fs.mkdirSync(this.staging);
    }
    return this.staging;
  }

  /** Writes the manifest last, then moves the complete set into place. Returns the files, relative to the folder. */
  commit(): string[] {
    const staging = this.dir;
    const files = listFiles(staging).sort();
    const manifest: SetManifest = { command: this.command, files };
    fs.writeFileSync(path.join(staging, SET_MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
    checkOut(this.given, this.command); // nothing foreign appeared in --out during the run
    if (!exists(this.out) || fs.readdirSync(this.out).length === 0) {
      fs.renameSync(staging, this.out); // replaces an empty folder atomically
    } else {
      const old = this.beside(`old-${process.pid}`);
      fs.renameSync(this.out, old);
      fs.renameSync(staging, this.out);
      fs.rmSync(old, { recursive: true, force: true });
    }
    this.committed = true;
    return files;
  }

  /** Removes an uncommitted staging folder and releases the lock; safe to call more than once. */
  close(): void {
    if (this.staging && !this.committed) fs.rmSync(this.staging, { recursive: true, force: true });
    this.staging = undefined;
    this.unlock();
  }

  private beside(what: string): string {
    return path.join(path.dirname(this.out), `.${path.basename(this.out)}.qdebug-${what}`);
  }

  private get lockFile(): string {
    return this.beside("lock");
  }

  private lock(): void {
    for (let attempt = 0; attempt < 3; attempt++) {
      // Written whole under a private name, then linked: the lock never exists without its pid.
      const mine = this.beside(`lock-${process.pid}`);
      fs.writeFileSync(mine, `${process.pid}\n`);
      try {
        fs.linkSync(mine, this.lockFile);
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw new Error(`--out ${this.given}: cannot create the lock ${this.lockFile}: ${(err as Error).message}`);
      } finally {
        fs.rmSync(mine, { force: true });
      }
      const pid = readPid(this.lockFile);
      if (pid !== undefined && alive(pid)) {
        throw new Error(`--out ${this.given} is being written by another qdebug run (pid ${pid}); wait for it to end or give another folder (lock: ${this.lockFile})`);
      }
      // Stale: its writer died. Moved aside under a private name so that only one run can take it over.
      const stale = this.beside(`stale-lock-${process.pid}`);
      try {
        fs.renameSync(this.lockFile, stale);
      } catch {
        continue; // another run took it over first
      }
      const moved = readPid(stale);
      if (moved !== pid && moved !== undefined && alive(moved)) {
        // A live run locked it between our read and our move: give it back.
        try {
          fs.linkSync(stale, this.lockFile);
        } finally {
          fs.rmSync(stale, { force: true });
        }
        throw new Error(`--out ${this.given} is being written by another qdebug run (pid ${moved})`);
      }
      fs.rmSync(stale, { force: true });
    }
    throw new Error(`--out ${this.given}: could not take the lock ${this.lockFile}; other runs keep contending for it`);
  }

  private unlock(): void {
    if (readPid(this.lockFile) === process.pid) fs.rmSync(this.lockFile, { force: true });
  }

  /** Under the lock, anything beside --out with our prefix was left by a dead run: put an old set back if --out is gone, drop the rest. */
  private recover(): void {
    const parent = path.dirname(this.out);
    const prefix = `.${path.basename(this.out)}.qdebug-`;
    for (const name of fs.readdirSync(parent)) {
      if (!name.startsWith(prefix)) continue;
      const match = /^(staging|old|lock|stale-lock)-(\d+)$/.exec(name.slice(prefix.length));
      const pid = Number(match?.[2]);
      if (!match || (pid !== process.pid && alive(pid))) continue; // a live run's private lock file, mid-attempt
      const file = path.join(parent, name);
      if (match[1] === "old" && !exists(this.out)) fs.renameSync(file, this.out);
      else fs.rmSync(file, { recursive: true, force: true });
    }
  }
}

function readSet(dir: string): SetManifest | undefined {
  try {
    const set = JSON.parse(fs.readFileSync(path.join(dir, SET_MANIFEST), "utf8")) as SetManifest;
    return typeof set.command === "string" && Array.isArray(set.files) ? set : undefined;
  } catch {
    return undefined;
  }
}

/** Files under `dir`, relative, "/"-separated; an empty folder is listed as "name/" so it is never dropped unseen. */
function listFiles(dir: string, prefix = ""): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const rel = `${prefix}${e.name}`;
    if (!e.isDirectory()) return [rel];
    const inside = listFiles(path.join(dir, e.name), `${rel}/`);
    return inside.length ? inside : [`${rel}/`];
  });
}

function exists(p: string): boolean {
  try {
    fs.lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

function writable(dir: string, out: string): void {
  try {
    fs.accessSync(dir, fs.constants.W_OK | fs.constants.X_OK);
  } catch {
    throw new Error(`--out ${out}: cannot write in ${dir} (permission denied)`);
  }
}

function readPid(file: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(file, "utf8").trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

const sample = (names: readonly string[]) => (names.length > 3 ? `${names.slice(0, 3).join(", ")}, …` : names.join(", "));
