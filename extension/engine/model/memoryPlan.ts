/**
 * The engine's side of the memory plan: the arithmetic (planMemory, fitWindow, checkPlan, the budget) is pure and lives
 * in common/memoryPlan.ts, shared with the model picker; this file adds what reads the machine — `availableMemory`,
 * from free memory and cgroup limits — and re-exports the rest for the engine's importers.
 */
import { readFileSync } from 'node:fs';
import { freemem, totalmem } from 'node:os';
import { availableMemoryFrom, type AvailableMemory } from '../../common/memoryPlan.js';

export {
  availableMemoryFrom,
  checkPlan,
  DEFAULT_BUDGET_SHARE,
  describePlan,
  fitWindow,
  formatMB,
  memoryBudget,
  planMemory,
  type AvailableMemory,
  type MemoryPlan,
  type PlanDims,
  type PlanInput,
  type PlannedTensor,
} from '../../common/memoryPlan.js';

/** Reads /proc-free memory (os.freemem: MemAvailable on Linux) and cgroup v2 or v1 limits when there are any. */
export function availableMemory(read: (path: string) => string | undefined = readText): AvailableMemory {
  return availableMemoryFrom(freemem(), totalmem(), read);
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}
