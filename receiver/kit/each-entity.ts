// Per-entity collection with bounded concurrency: one entity that fails (gone mid-read, permission)
// does not fail the others; its error is returned for self-telemetry instead.
import type { Entity } from '../pods/entity.ts';

export interface EntityFailure {
  readonly entity: Entity;
  readonly error: Error;
}

export interface EachEntityResult<T> {
  readonly results: T[];
  readonly failures: EntityFailure[];
}

export async function eachEntity<T>(
  entities: readonly Entity[],
  concurrency: number,
  fn: (entity: Entity) => Promise<T> | T,
): Promise<EachEntityResult<T>> {
  const results: T[] = [];
  const failures: EntityFailure[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < entities.length) {
      const entity = entities[next++]!;
      try {
        results.push(await fn(entity));
      } catch (err) {
        failures.push({ entity, error: err instanceof Error ? err : new Error(String(err)) });
      }
    }
  };
  const n = Math.max(1, Math.min(concurrency, entities.length));
  await Promise.all(Array.from({ length: n }, worker));
  return { results, failures };
}
