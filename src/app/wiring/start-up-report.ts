import { evictionVerdict, type EvictionPolicy } from "../../core/probes.ts";
import { probeSandbox, SandboxUnavailableError, type SandboxSetting } from "../../render/process.ts";
import type { Logger } from "../log-context.ts";
import type { AppSettings } from "../settings.ts";

/**
 * Says at start-up how renderers are isolated here, and refuses to start when the sandbox is
 * required and cannot run: every render would fail.
 */
export async function reportSandbox(setting: SandboxSetting, logger: Logger): Promise<void> {
  if (setting === "off") {
    logger.warn({ sandbox: "off" }, "renderers run without the namespace sandbox (SLUICE_RENDER_SANDBOX=off)");
    return;
  }
  const probe = await probeSandbox();
  if (probe.available) {
    logger.info({ sandbox: "namespaces", bwrap: probe.bwrap }, "renderers run in namespaces of their own and see only the checkout");
    return;
  }
  if (setting === "required") throw new SandboxUnavailableError(probe.reason);
  logger.warn(
    { sandbox: "none", reason: probe.reason },
    "renderers cannot run in the namespace sandbox here; they read checkouts that hold no links, and references outside them are refused",
  );
}

/** Says at start-up whether the render processes fit the memory limit, and whether deploys are off. */
export function reportSettings(settings: Pick<AppSettings, "renderBudget" | "deploysOff">, logger: Logger): void {
  const budget = settings.renderBudget;
  if (budget.fits) logger.info({ ...budget }, "render processes sized to the memory limit");
  else logger.warn({ ...budget }, "the render settings overrun the memory limit: a heavy render may get the pod OOM-killed");
  if (settings.deploysOff !== undefined)
    logger.warn({ reason: settings.deploysOff }, "deploys are off: the app previews pull requests and deploys nothing");
}

/**
 * Says once at start whether Redis may evict the app's data; readiness says it on every probe
 * until the policy is fixed. Not awaited by the caller: Redis may not be up yet, and then nothing
 * is said.
 */
export async function reportEvictionPolicy(evictionPolicies: () => Promise<EvictionPolicy[]>, logger: Logger): Promise<void> {
  let policies: EvictionPolicy[];
  try {
    policies = await evictionPolicies();
  } catch {
    return;
  }
  const verdict = evictionVerdict(policies);
  if (verdict.problem !== undefined) logger.error({ problem: verdict.problem }, "Redis may evict the app's data: the app stays unready");
  else if (verdict.note !== undefined) logger.warn({ note: verdict.note }, "could not check Redis's eviction policy");
}
