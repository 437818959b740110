// The parameter form: filled from the model description, read as SessionParams, updated from the
// server's replies, and reporting each user edit as a partial change.

import type { ModelInfo, SessionParams } from './protocol.js';

const USER_EDIT_GRACE_MS = 600;
/** A new prompt means a new text encoding on the server: wait for a pause in typing. */
const PROMPT_DEBOUNCE_MS = 350;

export class ParamsForm {
  private readonly style = byId<HTMLSelectElement>('style');
  private readonly prompt = byId<HTMLTextAreaElement>('prompt');
  private readonly promptField = byId<HTMLElement>('prompt-field');
  private readonly strength = byId<HTMLInputElement>('strength');
  private readonly strengthValue = byId<HTMLOutputElement>('strength-value');
  private readonly steps = byId<HTMLSelectElement>('steps');
  private readonly seed = byId<HTMLInputElement>('seed');
  private readonly reseed = byId<HTMLButtonElement>('reseed');
  private readonly consistency = byId<HTMLInputElement>('consistency');
  private readonly consistencyValue = byId<HTMLOutputElement>('consistency-value');
  private readonly similarityFilter = byId<HTMLInputElement>('similarity-filter');
  private conditioning: ModelInfo['conditioning'] = 'styles';
  private lastEdit = new Map<Element, number>();

  constructor(private readonly onChange: (change: Partial<SessionParams>, delayMs?: number) => void) {
    this.style.addEventListener('change', () => this.edited(this.style, { style: this.style.value }));
    this.prompt.addEventListener('input', () => this.edited(this.prompt, { prompt: this.prompt.value }, PROMPT_DEBOUNCE_MS));
    this.strength.addEventListener('input', () => this.edited(this.strength, { strength: Number(this.strength.value) }));
    this.steps.addEventListener('change', () => this.edited(this.steps, { steps: Number(this.steps.value) }));
    this.seed.addEventListener('change', () => this.edited(this.seed, { seed: this.seedValue() }));
    this.consistency.addEventListener('input', () => this.edited(this.consistency, { consistency: Number(this.consistency.value) }));
    this.similarityFilter.addEventListener('change', () =>
      this.edited(this.similarityFilter, { similarityFilter: this.similarityFilter.checked }),
    );
    this.reseed.addEventListener('click', () => {
      this.seed.value = String(Math.floor(Math.random() * 2 ** 31));
      this.edited(this.seed, { seed: this.seedValue() });
    });
    this.showValues();
  }

  setModel(model: ModelInfo): void {
    this.style.replaceChildren(...model.styles.map((s) => new Option(s.label, s.id)));
    this.steps.replaceChildren(...model.steps.map((n) => new Option(`${n} step${n === 1 ? '' : 's'}`, String(n))));
    this.conditioning = model.conditioning;
    this.promptField.hidden = model.conditioning !== 'text';
    this.style.closest('label')!.hidden = model.styles.length === 0;
    this.apply(model.defaults, { force: true });
  }

  /** What the form shows. Style and prompt only where the model uses them; the similarity filter only once touched. */
  get values(): Partial<SessionParams> {
    const values: Partial<SessionParams> = {
      strength: Number(this.strength.value),
      steps: Number(this.steps.value),
      seed: this.seedValue(),
    };
    if (this.lastEdit.has(this.consistency)) values.consistency = Number(this.consistency.value);
    if (this.style.options.length > 0) values.style = this.style.value;
    if (this.conditioning === 'text') values.prompt = this.prompt.value;
    if (this.lastEdit.has(this.similarityFilter)) values.similarityFilter = this.similarityFilter.checked;
    return values;
  }

  /** Shows parameters the server reports, leaving alone a control the user is editing right now. */
  apply(params: Partial<SessionParams>, options: { force?: boolean } = {}): void {
    const set = (el: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement, value: unknown): void => {
      if (value === undefined || value === null) return;
      const recentlyEdited = performance.now() - (this.lastEdit.get(el) ?? -Infinity) < USER_EDIT_GRACE_MS;
      if (!options.force && (recentlyEdited || (el === document.activeElement && el === this.prompt))) return;
      if (el instanceof HTMLSelectElement && ![...el.options].some((o) => o.value === String(value))) return;
      el.value = String(value);
    };
    set(this.style, params.style);
    set(this.prompt, params.prompt);
    set(this.strength, params.strength);
    set(this.steps, params.steps);
    set(this.seed, params.seed);
    set(this.consistency, params.consistency);
    if (typeof params.similarityFilter === 'boolean') this.similarityFilter.checked = params.similarityFilter;
    this.showValues();
  }

  private edited(el: Element, change: Partial<SessionParams>, delayMs?: number): void {
    this.lastEdit.set(el, performance.now());
    this.showValues();
    this.onChange(change, delayMs);
  }

  private seedValue(): number {
    const n = Math.floor(Number(this.seed.value));
    return Number.isFinite(n) && n >= 0 ? n : 0;
  }

  private showValues(): void {
    this.strengthValue.value = Number(this.strength.value).toFixed(2);
    this.consistencyValue.value = Number(this.consistency.value).toFixed(2);
  }
}

export function byId<T extends HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing #${id} in the page`);
  return el as T;
}
