import type { TestProject } from "vitest/node";
import { startTestEnv, type TestEnv } from "./start.ts";

declare module "vitest" {
  export interface ProvidedContext {
    kubeconfigPath: string;
    redisUrl: string;
    controllers: boolean;
    kustomize: string;
    helm: string;
  }
}

let running: TestEnv | undefined;

/** Starts the real test environment once for the whole run and hands its addresses to the tests. */
export async function setup(project: TestProject): Promise<void> {
  running = await startTestEnv({
    env: process.env,
    log: (line) => {
      process.stderr.write(`${line}\n`);
    },
  });
  project.provide("kubeconfigPath", running.kubeconfigPath);
  project.provide("redisUrl", running.redisUrl);
  project.provide("controllers", running.controllers);
  project.provide("kustomize", running.tools.kustomize);
  project.provide("helm", running.tools.helm);
}

/** Stops everything setup started, whatever the tests did. */
export async function teardown(): Promise<void> {
  await running?.stop();
}
