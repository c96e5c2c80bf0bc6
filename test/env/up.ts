import { mkdir, rm, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { startTestEnv } from "./start.ts";

// `npm run env:up`: start the test environment, write .cache/test-env/env, stay up until interrupted.
// SLUICE_TEST_NODE=1 starts a node too (containerd and a kubelet: pods run; needs root).
const cacheDir = fileURLToPath(new URL("../../.cache/test-env/", import.meta.url));
const envFile = `${cacheDir}env`;

try {
  const withNode = process.env.SLUICE_TEST_NODE === "1";
  const env = await startTestEnv({
    env: process.env,
    node: withNode,
    log: (line) => {
      process.stderr.write(`${line}\n`);
    },
  });
  await mkdir(cacheDir, { recursive: true });
  await writeFile(
    envFile,
    `KUBECONFIG=${env.kubeconfigPath}\nREDIS_URL=${env.redisUrl}\nSLUICE_KUSTOMIZE=${env.tools.kustomize}\nSLUICE_HELM=${env.tools.helm}\n` +
      (env.node ? `SLUICE_TEST_NODE_NAME=${env.node.name}\nSLUICE_TEST_NODE_IMAGE=${env.node.images.node.name}\n` : ""),
  );
  process.stderr.write(`test-env: up. Wrote ${envFile}; use it with: set -a; . ${envFile}; set +a\ntest-env: press Ctrl-C to stop.\n`);
  let stopping = false;
  const shutdown = (): void => {
    if (stopping) return;
    stopping = true;
    process.stderr.write("test-env: stopping\n");
    void env
      .stop()
      .then(() => rm(envFile, { force: true }))
      .then(() => process.exit(0));
  };
  process.on("SIGINT", shutdown);
  process.on("SIGTERM", shutdown);
  setInterval(() => undefined, 1 << 30);
} catch (error) {
  process.stderr.write(`test-env: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
}
