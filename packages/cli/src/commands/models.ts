import { existsSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { envBytes, envInt } from '@gembatch/config';
import { GembatchError, toGembatchError, errorMessage } from '@gembatch/contracts';
import {
  DEFAULT_CONTEXT_PER_SEQUENCE,
  GEMMA4_12B_CATALOG,
  assessQuantizations,
  defaultMaxSequences,
  downloadLocked,
  findCatalogEntry,
  modelLockPath,
  parseHfUri,
  pinStateOf,
  probeHardware,
  readModelLock,
  resolveHfQuant,
  resolveModel,
  selectQuantization,
  type CatalogEntry,
  type DownloadProgress,
  type GpuOption,
  type HardwareInfo,
  type QuantizationChoice,
} from '@gembatch/inference';

const OPTIONS = {
  'models-dir': { type: 'string' },
  vram: { type: 'string' },
  sequences: { type: 'string' },
  context: { type: 'string' },
  gpu: { type: 'string' },
  endpoint: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

const USAGE = `usage: gembatch models list [--json] [--vram 24GB] [--sequences N] [--context N] [--models-dir DIR] [--gpu auto|cuda|metal|vulkan|cpu]
       gembatch models pull [QUANT | mmproj | hf:<owner>/<repo>/<file.gguf>] [--models-dir DIR] [--endpoint URL]
Environment: GEMBATCH_MODELS_DIR (else GEMBATCH_DATA_DIR/models), GEMBATCH_MODEL_LOCK (else <models dir>/models.lock.json), GEMBATCH_VRAM_BYTES, GEMBATCH_GPU, GEMBATCH_SEQUENCES,
GEMBATCH_CONTEXT_PER_SEQUENCE, HF_ENDPOINT, HF_TOKEN.
`;

interface CommandSettings {
  modelsDir: string;
  lockFile: string;
  vramOverride: number | undefined;
  /** Unset: the default for the node's memory kind. */
  sequences: number | undefined;
  contextPerSequence: number;
  gpu: GpuOption;
  endpoint: string | undefined;
  json: boolean;
  positionals: string[];
  help: boolean;
}

function parse(
  value: string | undefined,
  schema: { safeParse(v: string): { success: boolean; data?: unknown } },
  name: string,
): unknown {
  if (value === undefined || value === '') return undefined;
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new GembatchError('GB_ERR_CONFIG', `${name}: invalid value ${JSON.stringify(value)}`);
  return parsed.data;
}

function settingsFrom(argv: string[], env: NodeJS.ProcessEnv): CommandSettings {
  let values;
  let positionals;
  try {
    ({ values, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true }));
  } catch (error) {
    throw new GembatchError('GB_ERR_CONFIG', errorMessage(error));
  }
  const gpu = values.gpu ?? env.GEMBATCH_GPU ?? 'auto';
  if (!['auto', 'cuda', 'metal', 'vulkan', 'cpu'].includes(gpu))
    throw new GembatchError(
      'GB_ERR_CONFIG',
      `--gpu: expected auto, cuda, metal, vulkan or cpu, got ${JSON.stringify(gpu)}`,
    );
  const modelsDir =
    values['models-dir'] ?? env.GEMBATCH_MODELS_DIR ?? path.join(env.GEMBATCH_DATA_DIR ?? '.gembatch', 'models');
  return {
    modelsDir,
    lockFile: modelLockPath(modelsDir, env.GEMBATCH_MODEL_LOCK),
    vramOverride: parse(values.vram ?? env.GEMBATCH_VRAM_BYTES, envBytes, '--vram / GEMBATCH_VRAM_BYTES') as
      | number
      | undefined,
    sequences: parse(values.sequences ?? env.GEMBATCH_SEQUENCES, envInt(1, 256), '--sequences / GEMBATCH_SEQUENCES') as
      | number
      | undefined,
    contextPerSequence:
      (parse(
        values.context ?? env.GEMBATCH_CONTEXT_PER_SEQUENCE,
        envInt(256, 262_144),
        '--context / GEMBATCH_CONTEXT_PER_SEQUENCE',
      ) as number | undefined) ?? DEFAULT_CONTEXT_PER_SEQUENCE,
    gpu: gpu === 'cpu' ? false : (gpu as GpuOption),
    endpoint: values.endpoint,
    json: values.json ?? false,
    positionals,
    help: values.help ?? false,
  };
}

/**
 * Runs one `gembatch models` subcommand: parses its settings, answers `--help`, and reports a
 * failure as one line (after `failurePrefix`) with exit code 1. Resolves to the exit code.
 */
async function runModelsCommand(
  argv: string[],
  out: NodeJS.WritableStream,
  env: NodeJS.ProcessEnv,
  failurePrefix: string,
  command: (settings: CommandSettings) => Promise<number>,
): Promise<number> {
  try {
    const settings = settingsFrom(argv, env);
    if (settings.help) {
      out.write(USAGE);
      return 0;
    }
    return await command(settings);
  } catch (error) {
    out.write(`${failurePrefix}: ${toGembatchError(error).message}\n`);
    return 1;
  }
}

/** This machine's hardware, with the memory given by `--vram` / `GEMBATCH_VRAM_BYTES` when set. */
function probeFor(settings: CommandSettings): Promise<HardwareInfo> {
  return probeHardware({
    gpu: settings.gpu,
    ...(settings.vramOverride ? { vramOverrideBytes: settings.vramOverride } : {}),
  });
}

const gib = (bytes: number) => `${(bytes / 1024 ** 3).toFixed(1)} GiB`;

function describeHardware(hw: HardwareInfo): string {
  const device = hw.accelerator === 'cpu' ? 'CPU only' : `${hw.accelerator} ${hw.gpuNames.join(', ') || 'GPU'}`;
  const memory = `${gib(hw.memoryBytes)} ${hw.memoryKind === 'ram' ? 'RAM available' : hw.memoryKind === 'unified' ? 'unified memory' : 'VRAM free'}${hw.memoryOverridden ? ' (GEMBATCH_VRAM_BYTES)' : ''}`;
  return `${device}, ${memory}, ${gib(hw.ramTotalBytes)} RAM, ${hw.cpuCores} cores`;
}

function pad(cells: string[], widths: number[]): string {
  return cells
    .map((cell, i) => cell.padEnd(widths[i] ?? 0))
    .join('  ')
    .trimEnd();
}

/**
 * `gembatch models list`: the Gemma 4 12B catalog with what fits this machine (or the memory given
 * by `--vram` / `GEMBATCH_VRAM_BYTES`), which entry the node would choose and which are downloaded.
 * Resolves to the exit code.
 */
export async function runModelsList(
  argv: string[],
  out: NodeJS.WritableStream,
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  return runModelsCommand(argv, out, env, 'gembatch models list', (settings) => listModels(settings, out));
}

async function listModels(settings: CommandSettings, out: NodeJS.WritableStream): Promise<number> {
  const hardware = await probeFor(settings);
  const input = {
    memoryBytes: hardware.memoryBytes,
    memoryKind: hardware.memoryKind,
    ...(hardware.memoryKind === 'vram' ? { ramBytes: hardware.ramTotalBytes } : {}),
    sequences: settings.sequences ?? defaultMaxSequences(hardware.memoryKind),
    contextPerSequence: settings.contextPerSequence,
    withProjector: false,
    catalog: GEMMA4_12B_CATALOG,
  };
  let choice: QuantizationChoice | undefined;
  let problem: string | undefined;
  const lock = await readModelLock(settings.lockFile);
  try {
    choice = selectQuantization(input);
  } catch (error) {
    problem = toGembatchError(error).message;
  }
  const rows = assessQuantizations(input).map((row) => ({
    quant: row.entry.quant,
    bytes: row.entry.bytes,
    qualityRank: row.entry.qualityRank,
    fit: row.fit,
    sequences: row.sequences,
    contextPerSequence: row.contextPerSequence,
    downloaded: existsSync(path.join(settings.modelsDir, row.entry.file)),
    pin: pinStateOf(row.entry, row.entry.file, lock),
    chosen: choice?.quant === row.entry.quant,
    source: row.entry.source,
    note: row.entry.note,
  }));
  if (settings.json) {
    out.write(
      `${JSON.stringify({ model: GEMMA4_12B_CATALOG.displayName, hardware, choice: choice ? { quant: choice.quant, sequences: choice.sequences, contextPerSequence: choice.contextPerSequence, offload: choice.offload, gpuLayers: choice.gpuLayers, reason: choice.reason } : null, problem: problem ?? null, rows })}\n`,
    );
    return 0;
  }
  out.write(`${GEMMA4_12B_CATALOG.displayName} on this node: ${describeHardware(hardware)}\n\n`);
  const header = [' QUANT', 'SIZE', 'QUALITY', 'FITS', 'SEQUENCES × CONTEXT', 'ON DISK', 'PIN', 'NOTE'];
  const lines = rows.map((r) => [
    `${r.chosen ? '*' : ' '}${r.quant}`,
    gib(r.bytes),
    String(r.qualityRank),
    r.fit,
    r.fit === 'no' ? '-' : `${r.sequences} × ${r.contextPerSequence}`,
    r.downloaded ? 'yes' : 'no',
    r.pin,
    r.note,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)));
  out.write(`${pad(header, widths)}\n`);
  for (const line of lines) out.write(`${pad(line, widths)}\n`);
  out.write(`\n${choice ? `* chosen: ${choice.reason}` : `nothing fits: ${problem}`}\n`);
  out.write(
    `Force another with GEMBATCH_QUANT=<quant> or a file with GEMBATCH_MODEL=<path | hf:owner/repo/file.gguf>; download with \`gembatch models pull [quant]\`.\n`,
  );
  return 0;
}

/** Progress lines: a live line on a terminal, a line per 10% otherwise. */
function progressPrinter(out: NodeJS.WritableStream, name: string): (p: DownloadProgress) => void {
  const tty = Boolean((out as { isTTY?: boolean }).isTTY);
  let lastTenth = -1;
  return ({ downloadedBytes, totalBytes }) => {
    const percent = totalBytes > 0 ? Math.floor((downloadedBytes / totalBytes) * 100) : 0;
    const text = `${name}: ${gib(downloadedBytes)}${totalBytes > 0 ? ` of ${gib(totalBytes)} (${percent}%)` : ''}`;
    if (tty) out.write(`\r${text}`);
    else if (Math.floor(percent / 10) > lastTenth) {
      lastTenth = Math.floor(percent / 10);
      out.write(`${text}\n`);
    }
  };
}

/**
 * `gembatch models pull [quant | mmproj | hf:URI]`: downloads the given catalog quantization,
 * the projector, a Hugging Face file, or (no argument) the quantization this machine would choose,
 * with progress, resume (run it again after an interruption) and sha256 verification.
 */
export async function runModelsPull(
  argv: string[],
  out: NodeJS.WritableStream,
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  return runModelsCommand(argv, out, env, '\ngembatch models pull', (settings) => pullModels(settings, out, env));
}

async function pullModels(
  settings: CommandSettings,
  out: NodeJS.WritableStream,
  env: NodeJS.ProcessEnv,
): Promise<number> {
  const endpoint = settings.endpoint ?? env.HF_ENDPOINT;
  const access = { ...(endpoint ? { endpoint } : {}), ...(env.HF_TOKEN ? { token: env.HF_TOKEN } : {}) };
  const [target] = settings.positionals;
  let source: string;
  let entry: Omit<CatalogEntry, 'qualityRank'> | undefined;
  if (target === undefined) {
    const hardware = await probeFor(settings);
    const resolved = await resolveModel({
      ...access,
      modelsDir: settings.modelsDir,
      lockFile: settings.lockFile,
      hardware,
      ...(settings.sequences !== undefined ? { sequences: settings.sequences } : {}),
      contextPerSequence: settings.contextPerSequence,
      onProgress: progressPrinter(out, 'model'),
    });
    out.write(`\n${resolved.path} (${resolved.quant}) ready${resolved.choice ? `: ${resolved.choice.reason}` : ''}\n`);
    return 0;
  } else if (target.toLowerCase() === 'mmproj') {
    entry = GEMMA4_12B_CATALOG.projector;
    source = entry.source;
  } else if (target.startsWith('hf:')) {
    source = target;
  } else {
    entry = findCatalogEntry(GEMMA4_12B_CATALOG, target);
    if (!entry)
      throw new GembatchError(
        'GB_ERR_CONFIG',
        `unknown quantization ${JSON.stringify(target)}; the catalog has ${GEMMA4_12B_CATALOG.entries.map((e) => e.quant).join(', ')} and mmproj`,
      );
    source = entry.source;
  }
  const parsed = parseHfUri(source);
  const listed = 'file' in parsed ? parsed : await resolveHfQuant(parsed.repo, parsed.quant, parsed.revision, access);
  const destination = path.join(settings.modelsDir, entry?.file ?? path.basename(listed.file));
  const pin = {
    ...(entry?.sha256 ? { sha256: entry.sha256 } : {}),
    ...(entry?.revision ? { revision: entry.revision } : {}),
  };
  const done = await downloadLocked({
    ...access,
    file: listed,
    destination,
    lockPath: settings.lockFile,
    pin,
    onProgress: progressPrinter(out, path.basename(destination)),
  });
  out.write(
    `\n${done.path}: ${done.cached ? 'already downloaded and verified' : `${gib(done.bytes)} downloaded${done.resumed ? ' (resumed)' : ''}`}, sha256 ${done.sha256}${done.commit ? ` at commit ${done.commit}` : ''}; locked in ${settings.lockFile}\n`,
  );
  return 0;
}
