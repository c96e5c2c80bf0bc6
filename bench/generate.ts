import type { KubeObject } from "../src/core/manifest.ts";
import { stringify as toYaml } from "yaml";

// Renderers never emit anchors; neither does the generator.
const stringify = (value: unknown): string => toYaml(value, { aliasDuplicateObjects: false });

/** One side of a generated benchmark tree: multi-document YAML. */
export interface GeneratedPair {
  base: string;
  head: string;
  counts: { total: number; modified: number; added: number; removed: number };
}

/** Deterministic pseudo-random numbers (mulberry32), so every run compares the same files. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function resource(index: number, version: number): Record<string, unknown> {
  const app = `app-${Math.floor(index / 3)}`;
  const namespace = `team-${index % 20}`;
  const labels = { "app.kubernetes.io/name": app, "app.kubernetes.io/part-of": "bench" };
  switch (index % 3) {
    case 0:
      return {
        apiVersion: "apps/v1",
        kind: "Deployment",
        metadata: { name: app, namespace, labels },
        spec: {
          replicas: 2 + version,
          selector: { matchLabels: labels },
          template: {
            metadata: { labels },
            spec: {
              containers: [
                {
                  name: "main",
                  image: `ghcr.io/example/${app}:1.${version}.0`,
                  ports: [{ containerPort: 8080 }],
                  resources: { requests: { cpu: "100m", memory: "128Mi" } },
                },
              ],
            },
          },
        },
      };
    case 1:
      return {
        apiVersion: "v1",
        kind: "Service",
        metadata: { name: app, namespace, labels },
        spec: { selector: labels, ports: [{ port: 80, targetPort: 8080 + version }] },
      };
    default:
      return {
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: `${app}-config`, namespace, labels },
        data: { LOG_LEVEL: version ? "debug" : "info", FEATURE_FLAGS: "a,b,c", TIMEOUT: "30s" },
      };
  }
}

/** `total` resources (Deployments, Services, ConfigMaps); head has 5% modified, 1% added, 1% removed. */
export function generatePair(total: number, seed = 42): GeneratedPair {
  const next = random(seed);
  const base: string[] = [];
  const head: string[] = [];
  const counts = { total, modified: 0, added: 0, removed: 0 };
  for (let i = 0; i < total; i++) {
    const roll = next();
    base.push(stringify(resource(i, 0)));
    if (roll < 0.01) {
      counts.removed += 1;
    } else if (roll < 0.06) {
      counts.modified += 1;
      head.push(stringify(resource(i, 1)));
    } else {
      head.push(stringify(resource(i, 0)));
    }
  }
  for (let i = 0; i < Math.round(total / 100); i++) {
    head.push(stringify(resource(total + i, 0)));
    counts.added += 1;
  }
  return { base: base.join("---\n"), head: head.join("---\n"), counts };
}

/** The flux-benchmark shape: per app a Deployment with 0 replicas, a ServiceAccount, a Service and an Ingress. */
export function fluxBenchmarkObjects(namespace: string, apps: number): KubeObject[] {
  const out: KubeObject[] = [{ apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } }];
  for (let i = 0; i < apps; i++) {
    const name = `app-${i}`;
    const labels = { app: name };
    out.push(
      { apiVersion: "v1", kind: "ServiceAccount", metadata: { name, namespace } },
      {
        apiVersion: "v1",
        kind: "Service",
        metadata: { name, namespace },
        spec: { selector: labels, ports: [{ port: 80, targetPort: 8080 }] },
      },
      {
        apiVersion: "apps/v1",
        kind: "Deployment",
        metadata: { name, namespace },
        spec: {
          replicas: 0,
          selector: { matchLabels: labels },
          template: {
            metadata: { labels },
            spec: {
              serviceAccountName: name,
              containers: [{ name: "app", image: "ghcr.io/example/app:1.0.0", ports: [{ containerPort: 8080 }] }],
            },
          },
        },
      },
      {
        apiVersion: "networking.k8s.io/v1",
        kind: "Ingress",
        metadata: { name, namespace },
        spec: {
          rules: [
            {
              host: `${name}.example.com`,
              http: { paths: [{ path: "/", pathType: "Prefix", backend: { service: { name, port: { number: 80 } } } }] },
            },
          ],
        },
      },
    );
  }
  return out;
}
