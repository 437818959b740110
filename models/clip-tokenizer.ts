// CLIP tokenization for text-conditioned models, from the model folder's own tokenizer files, through
// @huggingface/tokenizers. Exports of SD-Turbo and SD 1.x ship the "slow" CLIPTokenizer files
// (vocab.json + merges.txt + tokenizer_config.json) and often no tokenizer.json, so the fast-tokenizer
// description is built here the way transformers' CLIPConverter builds it: NFC, whitespace collapsed,
// lower-cased; CLIP's word split, byte-level alphabet; BPE with "</w>" ending each word.
// Sequences are then framed as CLIP expects: BOS, tokens, EOS, padded to model_max_length (77) with the
// pad token the folder's own config names, truncated keeping EOS. Families differ, and so do SDXL's two
// tokenizers: <|endoftext|> 49407 for SD 1.x and SDXL's tokenizer/, "!" 0 for SD 2.x / SD-Turbo and
// SDXL's tokenizer_2/.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';

export class TokenizerLoadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TokenizerLoadError';
  }
}

/** CLIP's pre-tokenizer split (words, single digits, runs of other symbols, the two specials). */
const CLIP_SPLIT = "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+";

interface TokenizerConfig {
  model_max_length?: number;
  pad_token?: string | { content: string };
  bos_token?: string | { content: string };
  eos_token?: string | { content: string };
  unk_token?: string | { content: string };
}

const tokenText = (t: string | { content: string } | undefined, fallback: string): string =>
  t === undefined ? fallback : typeof t === 'string' ? t : t.content;

export class ClipTokenizer {
  private constructor(
    private readonly tokenizer: Tokenizer,
    readonly maxLength: number,
    readonly bosId: number,
    readonly eosId: number,
    readonly padId: number,
  ) {}

  /** Load from a folder with tokenizer.json, or vocab.json + merges.txt (+ tokenizer_config.json). */
  static load(dir: string): ClipTokenizer {
    const read = (name: string): unknown => JSON.parse(readFileSync(join(dir, name), 'utf8'));
    const config: TokenizerConfig = existsSync(join(dir, 'tokenizer_config.json'))
      ? (read('tokenizer_config.json') as TokenizerConfig)
      : {};
    const special = existsSync(join(dir, 'special_tokens_map.json')) ? (read('special_tokens_map.json') as TokenizerConfig) : {};
    const bos = tokenText(config.bos_token ?? special.bos_token, '<|startoftext|>');
    const eos = tokenText(config.eos_token ?? special.eos_token, '<|endoftext|>');
    const pad = tokenText(config.pad_token ?? special.pad_token, eos);
    let json: object;
    if (existsSync(join(dir, 'tokenizer.json'))) json = read('tokenizer.json') as object;
    else if (existsSync(join(dir, 'vocab.json')) && existsSync(join(dir, 'merges.txt'))) {
      const vocab = read('vocab.json') as Record<string, number>;
      const merges = readFileSync(join(dir, 'merges.txt'), 'utf8')
        .split('\n')
        .filter((line, i) => line.trim() !== '' && !(i === 0 && line.startsWith('#version')));
      json = clipTokenizerJson(vocab, merges, bos, eos, tokenText(config.unk_token ?? special.unk_token, eos));
    } else throw new TokenizerLoadError(`${dir}: no tokenizer.json, and not both vocab.json and merges.txt`);
    const tokenizer = new Tokenizer(json, { ...config, bos_token: bos, eos_token: eos, pad_token: pad });
    const id = (token: string): number => {
      const v = tokenizer.token_to_id(token);
      if (v === undefined) throw new TokenizerLoadError(`${dir}: the vocabulary has no "${token}"`);
      return v;
    };
    return new ClipTokenizer(
      tokenizer,
      config.model_max_length && config.model_max_length < 1e6 ? config.model_max_length : 77,
      id(bos),
      id(eos),
      id(pad),
    );
  }

  /** The prompt's tokens as strings (no specials), e.g. ["a</w>", "photo</w>"]. */
  tokenize(prompt: string): string[] {
    return this.tokenizer.tokenize(prompt);
  }

  /** BOS, the prompt's tokens, EOS, then padding: exactly maxLength ids; a long prompt is cut before EOS. */
  encode(prompt: string): Int32Array {
    const tokens = this.tokenizer.encode(prompt, { add_special_tokens: false }).ids;
    const ids = new Int32Array(this.maxLength).fill(this.padId);
    ids[0] = this.bosId;
    const n = Math.min(tokens.length, this.maxLength - 2);
    for (let i = 0; i < n; i++) ids[1 + i] = tokens[i]!;
    ids[1 + n] = this.eosId;
    return ids;
  }
}

/** The fast-tokenizer description of a CLIP BPE vocabulary (as transformers' CLIPConverter writes it). */
function clipTokenizerJson(vocab: Record<string, number>, merges: string[], bos: string, eos: string, unk: string): object {
  const special = (content: string) => ({
    id: vocab[content],
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: true,
    special: true,
  });
  return {
    version: '1.0',
    added_tokens: [bos, eos].filter((t) => vocab[t] !== undefined).map(special),
    normalizer: {
      type: 'Sequence',
      normalizers: [{ type: 'NFC' }, { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' }, { type: 'Lowercase' }],
    },
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: CLIP_SPLIT }, behavior: 'Removed', invert: true },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: unk,
      continuing_subword_prefix: '',
      end_of_word_suffix: '</w>',
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges,
    },
  };
}
