import { mkdir, symlink } from "node:fs/promises";
import { dirname, join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { PREVIEW_QUEUE } from "../../src/app/queue/queues.ts";
import { RENDER_CACHE_PREFIX } from "../../src/app/state/redis-keys.ts";
import { PREVIEW_MARKER } from "../../src/core/preview-comment.ts";
import { startHarness, type AppHarness } from "../helpers/app-harness.ts";
import { checkout, removeCheckouts } from "../helpers/checkouts.ts";
import { pullRequestPayload } from "../helpers/payloads.ts";

// A monorepo of 30 environments: 10 plain, 10 kustomize overlays over two shared bases (three of
// them with a shared component), 7 helm charts with values of their own, three of which take a
// template from a shared directory through a symbolic link, and one chart shared by 3 environments
// with a values file each (listed in its .helmignore). A pull request renders only the
// environments that read a file it changes, at both commits, and the comment counts the rest.

const OWNER = "sluice-test";
const REPO = "monorepo";
const REPO_ID = 6262;
const INSTALLATION = 778;
const target = { owner: OWNER, repo: REPO, repoId: REPO_ID, installation: INSTALLATION };
const ids = (prefix: string, count = 10) => Array.from({ length: count }, (_, i) => `${prefix}-${String(i).padStart(2, "0")}`);
const PLAIN = ids("p");
const OVERLAYS = ids("k");
const CHARTS = ids("h", 7);
/** Environments of the one chart in helm/web, each with its values file. */
const SHARED_CHART = ["web-staging", "web-qa", "web-production"];
const ALL = [...PLAIN, ...OVERLAYS, ...CHARTS, ...SHARED_CHART];
/** Overlays over the web base; the others are over the api base. */
const WEB = OVERLAYS.slice(0, 5);
const API = OVERLAYS.slice(5);
/** Overlays with the shared component. */
const LABELLED = OVERLAYS.slice(0, 3);
/** Charts whose templates/shared.yaml is a link into shared/helm. */
const LINKED = CHARTS.slice(0, 3);

const deployment = (name: string, replicas: number) =>
  `apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: ${name}\nspec:\n  replicas: ${replicas}\n  selector:\n    matchLabels:\n      app: ${name}\n  template:\n    metadata:\n      labels:\n        app: ${name}\n    spec:\n      containers:\n        - name: ${name}\n          image: ${name}:1.0.0\n`;

function config(): string {
  const lines = ["version: 1", "environments:"];
  for (const name of PLAIN) lines.push(`  - name: ${name}`, `    path: plain/${name}`, `    namespace: ${name}`);
  for (const name of OVERLAYS) lines.push(`  - name: ${name}`, `    path: kustomize/overlays/${name}`, `    namespace: ${name}`);
  for (const name of CHARTS)
    lines.push(`  - name: ${name}`, `    path: helm/${name}`, `    namespace: ${name}`, "    helm:", "      values: [values-env.yaml]");
  for (const name of SHARED_CHART)
    lines.push(`  - name: ${name}`, "    path: helm/web", `    namespace: ${name}`, "    helm:", `      values: [values-${name}.yaml]`);
  return `${lines.join("\n")}\n`;
}

/** The monorepo's files (links apart). */
function files(): Record<string, string> {
  const out: Record<string, string> = {
    ".github/sluice.yml": config(),
    "README.md": "# monorepo\n",
    "other-app/deployment.yaml": deployment("other", 1),
    "kustomize/bases/web/kustomization.yaml": "resources:\n  - deployment.yaml\n",
    "kustomize/bases/web/deployment.yaml": deployment("web", 1),
    "kustomize/bases/api/kustomization.yaml":
      "resources:\n  - deployment.yaml\nconfigMapGenerator:\n  - name: api-settings\n    files:\n      - api.properties\n",
    "kustomize/bases/api/deployment.yaml": deployment("api", 1),
    "kustomize/bases/api/api.properties": "timeout=30\n",
    "kustomize/components/labels/kustomization.yaml":
      "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nlabels:\n  - pairs:\n      team: core\n",
    "shared/helm/shared.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shared\ndata:\n  mode: standard\n",
  };
  for (const name of PLAIN)
    out[`plain/${name}/configmap.yaml`] = `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\ndata:\n  level: info\n`;
  for (const name of OVERLAYS) {
    const base = WEB.includes(name) ? "web" : "api";
    out[`kustomize/overlays/${name}/kustomization.yaml`] = [
      "resources:",
      `  - ../../bases/${base}`,
      ...(LABELLED.includes(name) ? ["components:", "  - ../../components/labels"] : []),
      "patches:",
      "  - path: replicas.yaml",
      "",
    ].join("\n");
    out[`kustomize/overlays/${name}/replicas.yaml`] =
      `apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: ${base}\nspec:\n  replicas: 2\n`;
  }
  for (const name of CHARTS) {
    out[`helm/${name}/Chart.yaml`] = `apiVersion: v2\nname: ${name}\nversion: 0.1.0\n`;
    out[`helm/${name}/values.yaml`] = "replicas: 1\n";
    out[`helm/${name}/values-env.yaml`] = "replicas: 2\n";
    out[`helm/${name}/templates/deployment.yaml`] = deployment("{{ .Release.Name }}", 1).replace(
      "replicas: 1",
      "replicas: {{ .Values.replicas }}",
    );
  }
  out["helm/web/Chart.yaml"] = "apiVersion: v2\nname: web\nversion: 0.1.0\n";
  out["helm/web/values.yaml"] = "replicas: 1\n";
  // helm loads every file of a chart it does not ignore; listed here, each environment's values file is read by that environment alone.
  out["helm/web/.helmignore"] = "values-*.yaml\n";
  out["helm/web/templates/deployment.yaml"] = out["helm/h-00/templates/deployment.yaml"] ?? "";
  for (const name of SHARED_CHART) out[`helm/web/values-${name}.yaml`] = "replicas: 2\n";
  return out;
}

let h: AppHarness;
let nextSha = 1;
let nextPullRequest = 1;

/** Registers a commit of the monorepo with `changes` applied; returns its SHA. */
async function commit(changes: Record<string, string | null> = {}): Promise<string> {
  const dir = await checkout(undefined, { ...files(), ...changes });
  for (const name of LINKED) {
    const link = join(dir, `helm/${name}/templates/shared.yaml`);
    await mkdir(dirname(link), { recursive: true });
    await symlink("../../../shared/helm/shared.yaml", link);
  }
  const sha = (0x5000 + nextSha++).toString(16).padStart(40, "c");
  await h.github.addCommit(OWNER, REPO, sha, dir);
  return sha;
}

/** A metric's value summed over its labels (those given must match). */
async function metric(name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${h.url}/metrics`)).text();
  let total = 0;
  for (const line of text.split("\n")) {
    const match = /^(\w+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (match?.[1] !== name) continue;
    const set = match[2] ?? "";
    if (Object.entries(labels).every(([key, value]) => set.includes(`${key}="${value}"`))) total += Number(match[3]);
  }
  return total;
}

/** What one pull request's preview rendered: per environment and per side. */
interface Previewed {
  /** Environments the table shows as rendered (not skipped as unaffected). */
  rendered: string[];
  /** Environment renders the render pool ran (each compares both sides). */
  renders: number;
  /** Sides rendered and stored in the emptied render cache: one per side not skipped. */
  sides: number;
  comment: string;
  conclusion: string | null | undefined;
}

/** Opens a pull request from a base of the monorepo to a head with `changes`, and waits for its preview job to end. */
async function preview(changes: Record<string, string | null>): Promise<Previewed> {
  // A render cached by an earlier pull request would not be rendered again: start empty.
  const cached = await h.redis.keys(`${RENDER_CACHE_PREFIX}:*`);
  if (cached.length > 0) await h.redis.del(...cached);
  const [base, head] = [await commit(), await commit(changes)];
  const number = nextPullRequest++;
  const [rendersBefore, jobsBefore] = [await metric("sluice_render_duration_seconds_count"), await jobsDone()];
  const { status } = await h.deliver("pull_request", pullRequestPayload(target, "opened", number, base, head));
  expect(status).toBe(200);
  // The job ends once the renders made are stored.
  await expect.poll(jobsDone, { timeout: 120_000, interval: 100 }).toBe(jobsBefore + 1);
  const run = [...h.github.checkRuns.values()].find((r) => r.head_sha === head && r.name === "sluice/preview");
  const comment = h.github.comments.find((c) => c.issue === number && c.body.includes(PREVIEW_MARKER))?.body ?? "";
  const rendered = ALL.filter((name) => {
    const row = new RegExp(`^\\| \`${name}\` \\|.*\\|$`, "m").exec(comment)?.[0];
    if (row === undefined) throw new Error(`the comment has no row for ${name}:\n${comment}`);
    return !row.includes("inputs unchanged");
  });
  return {
    rendered,
    renders: (await metric("sluice_render_duration_seconds_count")) - rendersBefore,
    sides: await h.redis.zcard(`${RENDER_CACHE_PREFIX}:index`),
    comment,
    conclusion: run?.conclusion,
  };
}

function jobsDone(): Promise<number> {
  return metric("sluice_jobs_total", { queue: PREVIEW_QUEUE });
}

beforeAll(async () => {
  h = await startHarness({ redisUrl: inject("redisUrl"), kustomize: inject("kustomize"), helm: inject("helm"), database: 26 });
  h.github.addRepo(OWNER, REPO, REPO_ID);
});
afterAll(async () => {
  await h.stop();
  await removeCheckouts();
});
afterEach(() => {
  expect(h.github.violations).toEqual([]);
});

describe("a pull request in a monorepo renders only the environments it affects", () => {
  it("renders the three environments whose files a pull request changes, at both commits, and counts the 27 others", async () => {
    const result = await preview({
      "plain/p-01/configmap.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: p-01\ndata:\n  level: debug\n",
      "kustomize/overlays/k-07/replicas.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\nspec:\n  replicas: 4\n",
      "helm/h-03/values-env.yaml": "replicas: 3\n",
    });
    expect(result.conclusion).toBe("success");
    expect(result.rendered).toEqual(["p-01", "k-07", "h-03"]);
    expect(result.renders).toBe(3);
    expect(result.sides).toBe(6);
    expect(result.comment).toContain("27 environments unaffected by this change, not rendered.");
    expect(result.comment).toContain("| `h-03` | 0 | 1 | 0 | 0 | changes |");
    expect(result.comment).toContain("-  replicas: 2\n+  replicas: 4");
  });

  it("renders every overlay over a shared base that changes, and no other", async () => {
    const result = await preview({ "kustomize/bases/web/deployment.yaml": deployment("web", 1).replace("web:1.0.0", "web:1.1.0") });
    expect(result.rendered).toEqual(WEB);
    expect([result.renders, result.sides]).toEqual([5, 10]);
    expect(result.comment).toContain("25 environments unaffected by this change, not rendered.");
  });

  it("renders the overlays that use a shared component when it changes", async () => {
    const result = await preview({
      "kustomize/components/labels/kustomization.yaml":
        "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nlabels:\n  - pairs:\n      team: platform\n",
    });
    expect(result.rendered).toEqual(LABELLED);
    expect([result.renders, result.sides]).toEqual([3, 6]);
    expect(result.comment).toContain("27 environments unaffected by this change, not rendered.");
  });

  it("renders the overlays over a base whose configMapGenerator file changes", async () => {
    const result = await preview({ "kustomize/bases/api/api.properties": "timeout=60\n" });
    expect(result.rendered).toEqual(API);
    expect([result.renders, result.sides]).toEqual([5, 10]);
  });

  it("renders the charts that take a shared template through a symbolic link when the template changes", async () => {
    const result = await preview({
      "shared/helm/shared.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shared\ndata:\n  mode: strict\n",
    });
    expect(result.rendered).toEqual(LINKED);
    expect([result.renders, result.sides]).toEqual([3, 6]);
    expect(result.comment).toContain("-  mode: standard\n+  mode: strict");
  });

  it("renders only the chart whose Chart.yaml changes", async () => {
    const result = await preview({ "helm/h-06/Chart.yaml": "apiVersion: v2\nname: h-06\nversion: 0.2.0\n" });
    expect(result.rendered).toEqual(["h-06"]);
    expect([result.renders, result.sides]).toEqual([1, 2]);
    expect(result.comment).toContain("29 environments unaffected by this change, not rendered.");
  });

  it("renders only the environment of a shared chart whose values file changes", async () => {
    const result = await preview({ "helm/web/values-web-qa.yaml": "replicas: 3\n" });
    expect(result.rendered).toEqual(["web-qa"]);
    expect([result.renders, result.sides]).toEqual([1, 2]);
    expect(result.comment).toContain("| `web-qa` | 0 | 1 | 0 | 0 | changes |");
    expect(result.comment).toContain("29 environments unaffected by this change, not rendered.");
  });

  it("renders every environment of a shared chart when its templates change", async () => {
    const template = deployment("{{ .Release.Name }}", 1).replace("replicas: 1", "replicas: {{ .Values.replicas }}");
    const result = await preview({ "helm/web/templates/deployment.yaml": template.replace(":1.0.0", ":1.1.0") });
    expect(result.rendered).toEqual(SHARED_CHART);
    expect([result.renders, result.sides]).toEqual([3, 6]);
  });

  it("renders nothing for files no environment reads", async () => {
    const result = await preview({ "README.md": "# monorepo\n\nUpdated.\n", "other-app/deployment.yaml": deployment("other", 3) });
    expect(result.rendered).toEqual([]);
    expect([result.renders, result.sides]).toEqual([0, 0]);
    expect(result.conclusion).toBe("neutral");
    expect(result.comment).toContain("30 environments unaffected by this change, not rendered.");
  });

  it("renders nothing for a change to the configuration, which a preview reads from the base at both commits", async () => {
    // A pull request never changes how it is itself reviewed: both commits render with the base's
    // entries, so an entry changed at the head alone affects no render.
    const result = await preview({ ".github/sluice.yml": config().replace("namespace: p-04", "namespace: elsewhere") });
    expect(result.rendered).toEqual([]);
    expect([result.renders, result.sides]).toEqual([0, 0]);
    expect(result.comment).toContain("30 environments unaffected by this change, not rendered.");
  });
});
