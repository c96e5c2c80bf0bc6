import { SIDES, type Side } from "../core/diff-report.ts";
import { errorMessage } from "../core/errors.ts";
import { decodeRenderEntry, encodeRenderEntry, sideOfEntry } from "./render-entry.ts";
import { compareEnvironment, renderSides, type RenderedSide, type RenderSideOptions } from "./compare.ts";
import type {
  CompareAnswer,
  CompareReply,
  CompareTask,
  RenderedEntries,
  RenderProcessTask,
  RenderReply,
  RenderTask,
} from "./render-pool.ts";
import { openRendererContext } from "./setup.ts";

// A render process: started by RenderPool with no environment but PATH, it runs one task at a
// time and answers over IPC. It holds nothing the app must keep secret.

/** Renders the task's environment at each checkout, sharing one parse cache; one side per checkout, in order. */
async function renderAtCheckouts(
  task: RenderProcessTask,
  checkouts: readonly string[],
  options: RenderSideOptions = {},
): Promise<RenderedSide[]> {
  const contexts = await Promise.all(checkouts.map((root) => openRendererContext(root, task.tools, task.limits)));
  try {
    return await renderSides(contexts, task.env, options);
  } finally {
    await Promise.all(contexts.map((context) => context.dispose()));
  }
}

async function render(task: RenderTask): Promise<RenderReply> {
  const sides = await renderAtCheckouts(task, task.checkouts, { requireInputs: task.requireInputs });
  return { id: task.id, ok: true, sides: sides.map((side) => ({ ...side, resources: [...side.resources.values()] })) };
}

/** Renders `sides` of the task's environment at their checkouts. */
async function renderAt(task: CompareTask, sides: readonly Side[]): Promise<Partial<Record<Side, RenderedSide>>> {
  if (sides.length === 0) return {};
  const rendered = await renderAtCheckouts(
    task,
    sides.map((side) => task.checkouts[side]),
  );
  return Object.fromEntries(sides.map((side, index) => [side, rendered[index]]));
}

/** Compares the task's environment, answering with the comparison as soon as it is made and with the new cache entries last. */
async function compare(task: CompareTask): Promise<CompareReply> {
  // Cached sides decompress on the thread pool while the others render.
  const decoding = Promise.all(
    SIDES.map((side) => (task.cached[side] ? decodeRenderEntry(task.cached[side]) : Promise.resolve(undefined))),
  );
  const rendered = await renderAt(
    task,
    SIDES.filter((side) => task.cached[side] === undefined),
  );
  const decoded = await decoding;
  const sides: Partial<Record<Side, RenderedSide>> = { ...rendered };
  SIDES.forEach((side, index) => {
    const cached = decoded[index];
    if (cached) sides[side] = sideOfEntry(cached);
  });
  // An entry that does not decode is rendered anew.
  Object.assign(
    rendered,
    await renderAt(
      task,
      SIDES.filter((side) => sides[side] === undefined),
    ),
  );
  Object.assign(sides, rendered);
  const { base, head } = sides;
  if (!base || !head) throw new Error("a side was neither cached nor rendered");
  const answer: CompareAnswer = { id: task.id, partial: true, comparison: compareEnvironment(task.env, { base, head }, task.diff) };
  // The entries are made once the comparison is on its way: making them first would hold it back.
  await new Promise<void>((resolve, reject) =>
    process.send?.(answer, (error: Error | null) => {
      if (error) reject(error);
      else resolve();
    }),
  );
  const entries: RenderedEntries = {};
  await Promise.all(
    SIDES.map(async (side) => {
      const fresh = rendered[side];
      if (fresh && !fresh.transient) entries[side] = await encodeRenderEntry(fresh);
    }),
  );
  return { id: task.id, ok: true, entries };
}

process.on("message", (task: RenderProcessTask) => {
  (task.kind === "compare" ? compare(task) : render(task)).then(
    (reply) => process.send?.(reply),
    (error: unknown) => process.send?.({ id: task.id, ok: false, error: errorMessage(error) } satisfies RenderReply),
  );
});
// The parent going away ends the process: nothing would read its answer.
process.on("disconnect", () => process.exit(0));
