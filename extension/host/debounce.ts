/** A trailing-edge debouncer: `trigger` (re)starts the delay; the action runs once the triggers stop. Pure. */
export class Debouncer {
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private delayMs: number,
    private readonly action: () => void,
  ) {}

  /** Runs the action `delayMs` after the last trigger. */
  trigger(): void {
    this.cancel();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.action();
    }, this.delayMs);
  }

  /** Runs a pending action now. */
  flush(): void {
    if (!this.timer) return;
    this.cancel();
    this.action();
  }

  get pending(): boolean {
    return this.timer !== undefined;
  }

  setDelay(ms: number): void {
    this.delayMs = ms;
  }

  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  dispose(): void {
    this.cancel();
  }
}
