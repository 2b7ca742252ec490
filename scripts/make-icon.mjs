#!/usr/bin/env node
// Draws media/icon.png (128×128): a headlamp throwing a beam of light across a dark rounded square.
// Pure Node: shapes as inside-tests, 4×4 supersampling for smooth edges, PNG written with node:zlib.
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';

const SIZE = 128;
const SUB = 4; // samples per pixel side

const background = [30, 42, 68];
const beam = [255, 214, 102];
const lamp = [255, 200, 87];
const rim = [236, 240, 245];

/** Colour and coverage (0..1) of the topmost shape at a point in icon coordinates (0..128). */
function shade(x, y) {
  const layers = [];
  if (insideRoundedSquare(x, y, 4, 124, 24)) layers.push([background, 1]);
  if (insideBeam(x, y)) layers.push([beam, 0.35 + 0.45 * (1 - (x - 40) / 84)]);
  const d = Math.hypot(x - 38, y - 64);
  if (d < 22) layers.push([rim, 1]);
  if (d < 16) layers.push([lamp, 1]);
  return layers;
}

function insideRoundedSquare(x, y, lo, hi, r) {
  const cx = Math.min(Math.max(x, lo + r), hi - r);
  const cy = Math.min(Math.max(y, lo + r), hi - r);
  return Math.hypot(x - cx, y - cy) <= r;
}

/** A wedge of light opening to the right from the lamp, cut into three rays. */
function insideBeam(x, y) {
  if (x < 40 || x > 120) return false;
  const t = (x - 40) / 80; // 0 at the lamp, 1 at the far edge
  const half = 14 + t * 36;
  const dy = y - 64;
  if (Math.abs(dy) > half) return false;
  const ray = (dy / half + 1) * 1.5; // 0..3 across the wedge
  return ray - Math.floor(ray) > 0.18 || t < 0.15;
}

function render() {
  const rgba = Buffer.alloc(SIZE * SIZE * 4);
  for (let py = 0; py < SIZE; py++) {
    for (let px = 0; px < SIZE; px++) {
      const acc = [0, 0, 0, 0];
      for (let sy = 0; sy < SUB; sy++) {
        for (let sx = 0; sx < SUB; sx++) {
          let c = [0, 0, 0];
          let a = 0;
          for (const [colour, alpha] of shade(px + (sx + 0.5) / SUB, py + (sy + 0.5) / SUB)) {
            c = c.map((v, i) => v * (1 - alpha) + colour[i] * alpha);
            a = a * (1 - alpha) + alpha;
          }
          for (let i = 0; i < 3; i++) acc[i] += c[i];
          acc[3] += a;
        }
      }
      const n = SUB * SUB;
      const o = (py * SIZE + px) * 4;
      const alpha = acc[3] / n;
      for (let i = 0; i < 3; i++) rgba[o + i] = alpha > 0 ? Math.round(acc[i] / n / alpha) : 0;
      rgba[o + 3] = Math.round(alpha * 255);
    }
  }
  return rgba;
}

// ---- PNG encoding (8-bit RGBA, filter 0 on every row) ----

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes) {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'ascii');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

function encodePng(rgba, width, height) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 6, 0, 0, 0], 8); // bit depth 8, colour type RGBA, deflate, no filter, no interlace
  const rows = Buffer.alloc(height * (width * 4 + 1));
  for (let y = 0; y < height; y++) rgba.copy(rows, y * (width * 4 + 1) + 1, y * width * 4, (y + 1) * width * 4);
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([signature, chunk('IHDR', ihdr), chunk('IDAT', deflateSync(rows, { level: 9 })), chunk('IEND', Buffer.alloc(0))]);
}

const out = join(dirname(fileURLToPath(import.meta.url)), '..', 'media', 'icon.png');
writeFileSync(out, encodePng(render(), SIZE, SIZE));
console.log(`wrote ${out}`);
