/** Operator codes (pdf.js `OPS`) that `imageCoverage` follows. */
export interface CoverageOps {
  save: number;
  restore: number;
  transform: number;
  paintFormXObjectBegin: number;
  paintFormXObjectEnd: number;
  /** Every operator that paints an image into the unit square of the current matrix. */
  imagePainters: ReadonlySet<number>;
}

type Matrix = [number, number, number, number, number, number];

const IDENTITY: Matrix = [1, 0, 0, 1, 0, 0];

function multiply(m: Matrix, n: readonly number[]): Matrix {
  const [a, b, c, d, e, f] = m;
  const [na = 1, nb = 0, nc = 0, nd = 1, ne = 0, nf = 0] = n;
  return [na * a + nb * c, na * b + nb * d, nc * a + nd * c, nc * b + nd * d, ne * a + nf * c + e, ne * b + nf * d + f];
}

/**
 * The share of a page's area (0..1) covered by painted images, from a pdf.js operator list:
 * follows the transformation matrix through save/restore, `cm` and form XObjects, maps each
 * image's unit square to user space, clips it to the page box and adds the areas (capped at 1,
 * so a scan split into strips still counts as covering the page).
 */
export function imageCoverage(
  fnArray: ArrayLike<number>,
  argsArray: ArrayLike<unknown>,
  ops: CoverageOps,
  pageBox: readonly number[],
): number {
  const [x0 = 0, y0 = 0, x1 = 0, y1 = 0] = pageBox;
  const pageLeft = Math.min(x0, x1);
  const pageRight = Math.max(x0, x1);
  const pageBottom = Math.min(y0, y1);
  const pageTop = Math.max(y0, y1);
  const pageArea = (pageRight - pageLeft) * (pageTop - pageBottom);
  if (!(pageArea > 0)) return 0;
  let ctm: Matrix = IDENTITY;
  const stack: Matrix[] = [];
  let covered = 0;
  for (let i = 0; i < fnArray.length; i++) {
    const fn = fnArray[i];
    const args = argsArray[i];
    if (fn === ops.save) {
      stack.push(ctm);
    } else if (fn === ops.restore) {
      ctm = stack.pop() ?? IDENTITY;
    } else if (fn === ops.transform) {
      if (Array.isArray(args)) ctm = multiply(ctm, args as number[]);
    } else if (fn === ops.paintFormXObjectBegin) {
      stack.push(ctm);
      const matrix = Array.isArray(args) ? (args[0] as unknown) : undefined;
      if (Array.isArray(matrix) || ArrayBuffer.isView(matrix))
        ctm = multiply(ctm, Array.from(matrix as ArrayLike<number>));
    } else if (fn === ops.paintFormXObjectEnd) {
      ctm = stack.pop() ?? IDENTITY;
    } else if (fn !== undefined && ops.imagePainters.has(fn)) {
      covered += clippedArea(ctm, pageLeft, pageBottom, pageRight, pageTop);
      if (covered >= pageArea) return 1;
    }
  }
  return covered / pageArea;
}

function clippedArea(m: Matrix, left: number, bottom: number, right: number, top: number): number {
  const xs = [m[4], m[0] + m[4], m[2] + m[4], m[0] + m[2] + m[4]];
  const ys = [m[5], m[1] + m[5], m[3] + m[5], m[1] + m[3] + m[5]];
  const width = Math.min(right, Math.max(...xs)) - Math.max(left, Math.min(...xs));
  const height = Math.min(top, Math.max(...ys)) - Math.max(bottom, Math.min(...ys));
  return width > 0 && height > 0 ? width * height : 0;
}
