import { modelNameFor } from '../model-file.ts';

/** Quantization names as they appear in GGUF file names (`gemma-4-12b-it-Q4_K_M.gguf`). */
const FILE_NAME_QUANT = /(?:^|[-_.])((?:T?I?Q\d(?:_[A-Z0-9]+)*)|BF16|F16|F32|MXFP4(?:_[A-Z0-9]+)*)(?=[-_.]|$)/i;

/** llama.cpp's `llama_model_desc` ftype part: `all F32`, `Q4_K - Medium`, `IQ2_XXS - 2.0625 bpw`. */
const DESCRIPTION_QUANT = /\b(?:all )?(BF16|F16|F32|MXFP4\S*|T?I?Q\d_[A-Z0-9_]+)(?: - (Small|Medium|Large))?/;

const SIZE_SUFFIX: Record<string, string> = { Small: 'S', Medium: 'M', Large: 'L' };

/**
 * The quantization label of a model (`Q4_K_M`, `Q8_0`, `F16`…): from the file name when it
 * carries one, else from llama.cpp's model description, else `unknown`.
 */
export function quantLabelFor(modelPath: string, modelDescription: string): string {
  const fileName = modelNameFor(modelPath);
  const fromName = FILE_NAME_QUANT.exec(fileName)?.[1];
  if (fromName) return fromName.toUpperCase();
  const fromDescription = DESCRIPTION_QUANT.exec(modelDescription);
  if (fromDescription?.[1]) {
    const size = fromDescription[2] ? SIZE_SUFFIX[fromDescription[2]] : undefined;
    return size ? `${fromDescription[1]}_${size}` : fromDescription[1];
  }
  return 'unknown';
}
