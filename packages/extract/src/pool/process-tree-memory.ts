import { readFileSync } from 'node:fs';

// Why 64: a process tree deeper or wider than this is not one extraction; stop walking rather than spin.
const MAX_PROCESSES = 64;

/**
 * Resident memory of a process and every process below it, in bytes, read from `/proc` (Linux):
 * an extraction process plus the pdftotext, tesseract or ffmpeg it runs. Unlike V8's heap limit
 * this sees everything: pdf.js's decode buffers (ArrayBuffers live outside the heap), native
 * libraries, child tools. `undefined` when `/proc` cannot be read (not Linux, or the process is
 * gone). Synchronous on purpose: a handful of tiny procfs reads, cheaper than a thread-pool hop.
 *
 * A child that is still a fork of its parent (libuv forks, then execs the tool) counts only its
 * private pages: the rest are the parent's, shared copy-on-write and already counted. Its VmRSS
 * repeats them (72–97 MiB per pdftotext start of a 280 MiB extraction process), which made a
 * 20,000-page PDF read ~400 MiB at the moments a sample fell between a fork and its exec.
 */
export function processTreeRssBytes(pid: number): number | undefined {
  const rootRss = readRssBytes(pid);
  if (rootRss === undefined) return undefined;
  let total = rootRss;
  const seen = new Set<number>([pid]);
  const queue = childrenOf(pid).map((child) => ({ pid: child, parent: pid }));
  const commandLines = new Map<number, Buffer | undefined>();
  const commandLine = (id: number) => {
    if (!commandLines.has(id)) commandLines.set(id, readCommandLine(id));
    return commandLines.get(id);
  };
  while (queue.length > 0 && seen.size < MAX_PROCESSES) {
    const next = queue.shift()!;
    if (seen.has(next.pid)) continue;
    seen.add(next.pid);
    const own = commandLine(next.pid);
    const forkOfParent = own !== undefined && own.length > 0 && own.equals(commandLine(next.parent) ?? Buffer.alloc(0));
    total += (forkOfParent ? readPrivateBytes(next.pid) : undefined) ?? readRssBytes(next.pid) ?? 0;
    queue.push(...childrenOf(next.pid).map((child) => ({ pid: child, parent: next.pid })));
  }
  return total;
}

/** Whether `processTreeRssBytes` works on this host. */
export function procfsAvailable(): boolean {
  return readRssBytes(process.pid) !== undefined;
}

function readRssBytes(pid: number): number | undefined {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'latin1');
  } catch {
    return undefined;
  }
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  // A zombie has no VmRSS line: it holds no memory.
  return match ? Number(match[1]) * 1024 : 0;
}

function readCommandLine(pid: number): Buffer | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`);
  } catch {
    return undefined;
  }
}

/** Pages only this process holds (written since a fork, or never shared), from `smaps_rollup` (Linux 4.14+). */
function readPrivateBytes(pid: number): number | undefined {
  let rollup: string;
  try {
    rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'latin1');
  } catch {
    return undefined;
  }
  const clean = /^Private_Clean:\s+(\d+)\s+kB$/m.exec(rollup)?.[1];
  const dirty = /^Private_Dirty:\s+(\d+)\s+kB$/m.exec(rollup)?.[1];
  return clean === undefined || dirty === undefined ? undefined : (Number(clean) + Number(dirty)) * 1024;
}

/**
 * Direct children of a process, from its main thread's `children` file: Node starts child
 * processes from the main thread (libuv's spawn runs there), and so do the tools we run, so one
 * read per process keeps each 50 ms sample to a few small reads.
 */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'latin1')
      .split(' ')
      .filter((id) => id.trim() !== '')
      .map(Number);
  } catch {
    // The process ended between two reads.
    return [];
  }
}
