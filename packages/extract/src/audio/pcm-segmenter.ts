/** One finished segment of 16-bit mono PCM and where it sits in the stream. */
export interface PcmSegment {
  pcm: Buffer;
  startSample: number;
  endSample: number;
}

/** Options of `PcmSegmenter`. */
export interface PcmSegmenterOptions {
  /** Longest segment, in samples. */
  maxSamples: number;
  /** How far before the limit a cut may move to land in a pause, in samples. Defaults to 0 (cut exactly at the limit). */
  searchSamples?: number;
  /** Length of the window whose energy decides the quietest cut point, in samples. Defaults to 320 (20 ms at 16 kHz). */
  windowSamples?: number;
}

// Why 320: 20 ms at 16 kHz, shorter than a syllable, long enough to average out single samples.
const DEFAULT_WINDOW_SAMPLES = 320;
// Why 0.25: a pause is at least 6 dB quieter than speech; smaller dips inside a sound are no reason to cut early.
const PAUSE_ENERGY_RATIO = 0.25;
const BYTES_PER_SAMPLE = 2;

/**
 * Cuts a stream of signed 16-bit little-endian mono PCM into segments of at most `maxSamples`,
 * moving each cut back (within `searchSamples`) into the quietest window when it is a real pause,
 * so words are not split.
 * Holds at most one segment plus one chunk in memory.
 */
export class PcmSegmenter {
  readonly #maxBytes: number;
  readonly #searchBytes: number;
  readonly #windowBytes: number;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #emittedSamples = 0;
  #oddByte: Buffer | undefined;

  constructor(options: PcmSegmenterOptions) {
    if (!Number.isInteger(options.maxSamples) || options.maxSamples <= 0)
      throw new RangeError('maxSamples must be a positive integer');
    this.#maxBytes = options.maxSamples * BYTES_PER_SAMPLE;
    this.#searchBytes = Math.min(options.searchSamples ?? 0, options.maxSamples - 1) * BYTES_PER_SAMPLE;
    this.#windowBytes = (options.windowSamples ?? DEFAULT_WINDOW_SAMPLES) * BYTES_PER_SAMPLE;
  }

  /** Samples pushed so far (whole samples only). */
  get totalSamples(): number {
    return this.#emittedSamples + this.#pendingBytes / BYTES_PER_SAMPLE;
  }

  /** Adds decoded PCM; returns the segments it completed (usually none or one). */
  push(chunk: Buffer): PcmSegment[] {
    let data = chunk;
    if (this.#oddByte) {
      data = Buffer.concat([this.#oddByte, chunk]);
      this.#oddByte = undefined;
    }
    if (data.length % BYTES_PER_SAMPLE !== 0) {
      this.#oddByte = data.subarray(data.length - 1);
      data = data.subarray(0, data.length - 1);
    }
    if (data.length > 0) {
      this.#pending.push(data);
      this.#pendingBytes += data.length;
    }
    const segments: PcmSegment[] = [];
    while (this.#pendingBytes > this.#maxBytes) segments.push(this.#cut(this.#chooseCut()));
    return segments;
  }

  /** Ends the stream; returns the last, possibly shorter, segment (none when nothing is left). */
  finish(): PcmSegment[] {
    const segments: PcmSegment[] = [];
    while (this.#pendingBytes > this.#maxBytes) segments.push(this.#cut(this.#chooseCut()));
    if (this.#pendingBytes > 0) segments.push(this.#cut(this.#pendingBytes));
    return segments;
  }

  #chooseCut(): number {
    if (this.#searchBytes < this.#windowBytes) return this.#maxBytes;
    const joined = Buffer.concat(this.#pending);
    this.#pending = [joined];
    const energyBefore = (end: number) => {
      let energy = 0;
      for (let offset = end - this.#windowBytes; offset < end; offset += BYTES_PER_SAMPLE) {
        const sample = joined.readInt16LE(offset);
        energy += sample * sample;
      }
      return energy;
    };
    const atLimit = energyBefore(this.#maxBytes);
    let bestEnd = this.#maxBytes;
    let bestEnergy = atLimit;
    // Windows end on sample boundaries between (limit − search) and the limit; the latest of equally quiet windows wins.
    for (
      let end = this.#maxBytes - this.#windowBytes;
      end - this.#windowBytes >= this.#maxBytes - this.#searchBytes;
      end -= this.#windowBytes
    ) {
      const energy = energyBefore(end);
      if (energy < bestEnergy) {
        bestEnergy = energy;
        bestEnd = end;
      }
    }
    // Only a real pause moves the cut; steady sound (music, a tone) is cut at the limit.
    return bestEnergy < atLimit * PAUSE_ENERGY_RATIO ? bestEnd : this.#maxBytes;
  }

  #cut(bytes: number): PcmSegment {
    const joined = this.#pending.length === 1 ? (this.#pending[0] as Buffer) : Buffer.concat(this.#pending);
    const pcm = Buffer.from(joined.subarray(0, bytes));
    const rest = joined.subarray(bytes);
    this.#pending = rest.length > 0 ? [rest] : [];
    this.#pendingBytes = rest.length;
    const startSample = this.#emittedSamples;
    this.#emittedSamples += bytes / BYTES_PER_SAMPLE;
    return { pcm, startSample, endSample: this.#emittedSamples };
  }
}
