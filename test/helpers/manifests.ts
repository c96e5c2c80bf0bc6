import { readFile } from "node:fs/promises";
import { parseAllDocuments } from "yaml";

/** The variables that tune the Node runtime rather than Sluice. */
const RUNTIME_VARIABLES = ["NODE_OPTIONS", "MALLOC_ARENA_MAX"];

/**
 * The runtime tuning (`NODE_OPTIONS`, `MALLOC_ARENA_MAX`) that a shipped Deployment manifest
 * (`deploy/app` or `deploy/agent`) gives its container, so tests and benchmarks measure the
 * process as it is deployed.
 */
export async function shippedRuntimeEnv(component: "app" | "agent"): Promise<Record<string, string>> {
  const text = await readFile(new URL(`../../deploy/${component}/deployment.yaml`, import.meta.url), "utf8");
  type Container = { env?: { name: string; value?: string }[] };
  const deployment = parseAllDocuments(text)
    .map((d) => d.toJS() as { kind?: string; spec?: { template?: { spec?: { containers?: Container[] } } } })
    .find((d) => d.kind === "Deployment");
  const env = deployment?.spec?.template?.spec?.containers?.[0]?.env ?? [];
  return Object.fromEntries(
    env.filter((e) => RUNTIME_VARIABLES.includes(e.name) && e.value !== undefined).map((e) => [e.name, e.value ?? ""]),
  );
}
