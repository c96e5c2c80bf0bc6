import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { Ajv, type ValidateFunction } from "ajv";

/** One operation of GitHub's REST API as its OpenAPI description gives it. */
export interface Operation {
  method: string;
  template: string;
  operationId: string;
  pattern: RegExp;
  params: string[];
  /** How specific the template is: literal characters, to prefer `/pulls/{n}` over `/{path}`. */
  literal: number;
  validateBody?: ValidateFunction;
  bodyRef?: string;
  bodyRequired: boolean;
}

interface Spec {
  paths: Record<string, Record<string, { operationId?: string; requestBody?: { required?: boolean; content?: Record<string, unknown> } }>>;
}

let loaded: { operations: Operation[]; ajv: Ajv } | undefined;

function escapePointer(segment: string): string {
  return segment.replaceAll("~", "~0").replaceAll("/", "~1");
}

/** GitHub's REST API description from @octokit/openapi, with a matcher per operation. */
export function githubOperations(): { operations: Operation[]; ajv: Ajv } {
  if (loaded) return loaded;
  const require = createRequire(import.meta.url);
  const spec = JSON.parse(readFileSync(require.resolve("@octokit/openapi/generated/api.github.com.json"), "utf8")) as Spec;
  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false, validateSchema: false });
  ajv.addSchema(spec, "github");
  const operations: Operation[] = [];
  for (const [template, methods] of Object.entries(spec.paths)) {
    for (const [method, operation] of Object.entries(methods)) {
      if (!operation.operationId) continue;
      const params: string[] = [];
      const source = template.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\{(\w+)\}/g, (_, name: string) => {
        params.push(name);
        // File paths and refs may contain slashes.
        return name === "path" || name === "ref" ? "(.+)" : "([^/]+)";
      });
      const hasJsonBody = operation.requestBody?.content?.["application/json"] !== undefined;
      operations.push({
        method: method.toUpperCase(),
        template,
        operationId: operation.operationId,
        pattern: new RegExp(`^${source}$`),
        params,
        literal: template.replace(/\{\w+\}/g, "").length,
        bodyRequired: operation.requestBody?.required === true,
        ...(hasJsonBody
          ? { bodyRef: `github#/paths/${escapePointer(template)}/${method}/requestBody/content/application~1json/schema` }
          : {}),
      });
    }
  }
  operations.sort((a, b) => b.literal - a.literal);
  loaded = { operations, ajv };
  return loaded;
}

/** The operation a request is, with its path parameters, or undefined when GitHub has no such endpoint. */
export function matchOperation(method: string, path: string): { operation: Operation; params: Record<string, string> } | undefined {
  const { operations } = githubOperations();
  for (const operation of operations) {
    if (operation.method !== method) continue;
    const match = operation.pattern.exec(path);
    if (!match) continue;
    const params = Object.fromEntries(operation.params.map((name, i) => [name, decodeURIComponent(match[i + 1] ?? "")]));
    return { operation, params };
  }
  return undefined;
}

/** Validates a JSON request body against the operation's schema; returns the errors, empty when valid. */
export function bodyErrors(operation: Operation, body: unknown): string[] {
  if (!operation.bodyRef) return body === undefined ? [] : [`${operation.operationId} takes no JSON body`];
  if (body === undefined) return operation.bodyRequired ? [`${operation.operationId} needs a JSON body`] : [];
  const { ajv } = githubOperations();
  operation.validateBody ??= ajv.compile({ $ref: operation.bodyRef });
  if (operation.validateBody(body)) return [];
  return (operation.validateBody.errors ?? []).map((e) => `${e.instancePath || "(body)"} ${e.message ?? "is invalid"}`);
}
