/** Deterministic pseudo-randomness: every draw is a pure function of the seed and a name, so a restart draws the same. */

/** FNV-1a over the text, then a murmur-style finaliser: a well-mixed 32-bit value. */
const hash32 = (text: string): number => {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/** A number in [0, 1) named by `parts`. */
export const draw = (seed: number, ...parts: ReadonlyArray<string | number>): number => hash32(`${seed}|${parts.join("|")}`) / 4294967296

/** An integer in [min, max]. */
export const drawInt = (seed: number, min: number, max: number, ...parts: ReadonlyArray<string | number>): number =>
  min + Math.floor(draw(seed, ...parts) * (max - min + 1))

/** A stable IPv4 in a documentation range, named by `parts`. */
export const drawIp = (prefix: "203.0.113" | "198.51.100" | "192.0.2", ...parts: ReadonlyArray<string | number>): string =>
  `${prefix}.${1 + (hash32(parts.join("|")) % 254)}`

export const drawHex = (length: number, ...parts: ReadonlyArray<string | number>): string => {
  let out = ""
  let counter = 0
  while (out.length < length)
    out += hash32(`${parts.join("|")}#${counter++}`)
      .toString(16)
      .padStart(8, "0")
  return out.slice(0, length)
}
