import { access, constants } from 'node:fs/promises';
import path from 'node:path';
import { GgufFileType, readGgufFileInfo, type GgufFileInfo } from 'node-llama-cpp';
import { GembatchError, errorMessage } from '@gembatch/contracts';

/** `general.architecture` of every multimodal projector (mmproj) GGUF. */
export const PROJECTOR_ARCHITECTURE = 'clip';

/** What a model file must be: a language model (`text`), a multimodal projector (`projector`), or either (`any`). */
type ModelFileRole = 'text' | 'projector' | 'any';

export interface InspectModelFileOptions {
  /** What the file must hold. Defaults to `'text'`. */
  role?: ModelFileRole;
  /** The option the path came from, named in error messages (`modelPath`, `mmprojPath`). Defaults to `'model'`. */
  option?: string;
}

export interface ModelFileInspection {
  /** `general.architecture` (`gemma4`, `llama`, `clip`…). */
  architecture: string;
  /** Quantization label from the GGUF file type (`Q8_0`, `Q4_K_M`, `F16`), `unknown` when it has none. */
  quant: string;
  /** The header's metadata, as node-llama-cpp reads it. */
  info: GgufFileInfo;
}

/**
 * Checks a model file before llama.cpp sees it, with node-llama-cpp's GGUF reader (header only,
 * no tensor data): it must be readable, a GGUF that names its architecture, and of the role asked
 * for. llama.cpp segfaults when handed a projector as the main model, so a `clip` file is refused
 * as `text` and anything else as `projector`. Throws `GB_ERR_MODEL_LOAD` naming the option and the
 * file (never its content). Both engines and `resolveModel` read model files only through this.
 */
export async function inspectModelFile(
  file: string,
  options: InspectModelFileOptions = {},
): Promise<ModelFileInspection> {
  const role = options.role ?? 'text';
  const option = options.option ?? 'model';
  const name = path.basename(file);
  try {
    await access(file, constants.R_OK);
  } catch (error) {
    throw new GembatchError(
      'GB_ERR_MODEL_LOAD',
      `${option} (${name}) cannot be read: model file not found or not readable`,
      { cause: error },
    );
  }
  let info: GgufFileInfo;
  try {
    info = await readGgufFileInfo(file, { readTensorInfo: false, sourceType: 'filesystem', logWarnings: false });
  } catch (error) {
    throw new GembatchError(
      'GB_ERR_MODEL_LOAD',
      `${option} (${name}) is not a readable GGUF file: ${errorMessage(error)}`,
      { cause: error },
    );
  }
  const declared: unknown = info.metadata.general?.architecture;
  // node-llama-cpp's reader reads past the end of a cut file as zeros, so a truncated header shows up here as a missing architecture.
  if (typeof declared !== 'string' || declared === '') {
    throw new GembatchError(
      'GB_ERR_MODEL_LOAD',
      `${option} (${name}) has no general.architecture in its GGUF header (truncated or not a model); llama.cpp cannot load it`,
    );
  }
  const architecture = declared;
  if (role === 'text' && architecture === PROJECTOR_ARCHITECTURE) {
    throw new GembatchError(
      'GB_ERR_MODEL_LOAD',
      `${option} (${name}) is a multimodal projector (mmproj, architecture clip), not a language model`,
    );
  }
  if (role === 'projector' && architecture !== PROJECTOR_ARCHITECTURE) {
    throw new GembatchError(
      'GB_ERR_MODEL_LOAD',
      `${option} (${name}) is a ${architecture} model, not a multimodal projector (architecture clip)`,
    );
  }
  return { architecture, quant: quantOfFileType(info.metadata.general?.file_type), info };
}

/** The quantization label of a GGUF `general.file_type` (`MOSTLY_Q8_0` → `Q8_0`), `unknown` when absent. */
function quantOfFileType(fileType: GgufFileType | number | undefined): string {
  const name = fileType === undefined ? undefined : GgufFileType[fileType];
  return name ? name.replace(/^(MOSTLY|ALL)_/, '') : 'unknown';
}

/** The model name shown in `info.model` and metrics: the file name without `.gguf`. */
export function modelNameFor(modelPath: string): string {
  return path.basename(modelPath).replace(/\.gguf$/i, '');
}
