// Per-entity work with bounded concurrency (p-queue): one entity that fails (gone mid-read, permission)
// does not fail the others; its error is returned for the probe's status instead.
import PQueue from 'p-queue';
import type { Entity } from '../pods/entity.ts';
import { asError, type EntityFailure } from './status.ts';

export type { EntityFailure } from './status.ts';

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
  const queue = new PQueue({ concurrency: Math.max(1, concurrency) });
  for (const entity of entities) {
    void queue.add(async () => {
      try {
        results.push(await fn(entity));
      } catch (err) {
        failures.push({ entity, error: asError(err) });
      }
    });
  }
  await queue.onIdle();
  return { results, failures };
}
