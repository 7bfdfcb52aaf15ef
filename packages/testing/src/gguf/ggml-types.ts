/** ggml tensor types the writers emit, with their GGUF enum values (`ggml.h`). */
export const GGML_TYPE = { f32: 0, f16: 1, q8_0: 8 } as const;
export type GgmlTypeName = keyof typeof GGML_TYPE;

/** Q8_0 packs 32 values per block: an f16 scale then 32 int8s (`block_q8_0` in ggml-common.h). */
export const Q8_0_BLOCK_VALUES = 32;
export const Q8_0_BLOCK_BYTES = 2 + Q8_0_BLOCK_VALUES;

/** `general.file_type` (llama_ftype) for a model whose matrices are all of one type. */
export const LLAMA_FILE_TYPE: Record<GgmlTypeName, number> = { f32: 0, f16: 1, q8_0: 7 };

/** Bytes a tensor of `elements` values takes in `type`. */
export function tensorBytes(type: GgmlTypeName, elements: number): number {
  switch (type) {
    case 'f32':
      return elements * 4;
    case 'f16':
      return elements * 2;
    case 'q8_0':
      return (elements / Q8_0_BLOCK_VALUES) * Q8_0_BLOCK_BYTES;
  }
}

/** SentencePiece/llama.cpp token types (`llama_token_type`). */
export const TOKEN_TYPE = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const;
