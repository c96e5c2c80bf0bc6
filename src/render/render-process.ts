import { errorMessage } from "../core/errors.ts";
import { renderSides } from "./compare.ts";
import type { RenderReply, RenderTask } from "./render-pool.ts";
import { openRendererContext } from "./setup.ts";

// A render process: started by RenderPool with no environment but PATH, it renders one task at a
// time and answers over IPC. It holds nothing the app must keep secret.

async function handle(task: RenderTask): Promise<RenderReply> {
  const contexts = await Promise.all(task.checkouts.map((root) => openRendererContext(root, task.tools, task.limits)));
  try {
    const sides = await renderSides(contexts, task.env, { requireInputs: task.requireInputs });
    return { id: task.id, ok: true, sides: sides.map((side) => ({ ...side, resources: [...side.resources.values()] })) };
  } finally {
    await Promise.all(contexts.map((context) => context.dispose()));
  }
}

process.on("message", (task: RenderTask) => {
  handle(task).then(
    (reply) => process.send?.(reply),
    (error: unknown) => process.send?.({ id: task.id, ok: false, error: errorMessage(error) } satisfies RenderReply),
  );
});
// The parent going away ends the process: nothing would read its answer.
process.on("disconnect", () => process.exit(0));
