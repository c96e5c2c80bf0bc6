import { execFile } from "node:child_process";
import { mkdir, readFile, symlink, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, inject, it } from "vitest";
import { CheckoutCache } from "../../src/app/checkouts/checkout-cache.ts";
import { extractTarball } from "../../src/app/checkouts/unpack-tarball.ts";
import { objectsDigest } from "../../src/core/agent-protocol.ts";
import { parseConfig, type Environment } from "../../src/core/config.ts";
import { diffResources } from "../../src/core/diff.ts";
import { errorList, escapeInline, renderMarkdown } from "../../src/core/markdown.ts";
import { parseManifests } from "../../src/core/manifest.ts";
import { maskSecretPair } from "../../src/core/mask.ts";
import { MAX_ANNOTATIONS, previewAnnotations } from "../../src/core/preview-comment.ts";
import type { DiffReport } from "../../src/core/diff-report.ts";
import { buildResourceSet } from "../../src/core/resource-set.ts";
import { readCheckoutFile } from "../../src/render/files.ts";
import { environmentInputs } from "../../src/render/inputs.ts";
import { canSandbox, runBounded } from "../../src/render/process.ts";
import { renderEnvironment } from "../../src/render/render-environment.ts";
import { RenderPool } from "../../src/render/render-pool.ts";
import { openRendererContext } from "../../src/render/setup.ts";
import { checkout, removeCheckouts, tempDir } from "../helpers/checkouts.ts";
import { tarball, type Entry } from "../helpers/tarballs.ts";

const run = promisify(execFile);
afterAll(removeCheckouts);

/** Says what a test tried as an attacker and what came of it. */
function tried(attempt: string, outcome: string): void {
  process.stdout.write(`  [attacker] tried: ${attempt}\n  [attacker] result: ${outcome}\n`);
}

function env(fields: Partial<Environment> = {}): Environment {
  const base = parseConfig("version: 1\nenvironments:\n  - name: test\n").environments[0];
  if (!base) throw new Error("no environment");
  return { ...base, ...fields };
}

const limits = { maxBytes: 1024 * 1024, maxFiles: 100 };
const tools = () => ({ kustomize: inject("kustomize"), helm: inject("helm") });

describe("finding 1: a pull request cannot read outside its checkout", () => {
  it("refuses the chained-symlink trick that a lexical check lets through", async () => {
    const depth = "a/b/c";
    const archive = await tarball([
      { name: "o-r-1/chart/Chart.yaml", body: "apiVersion: v2\nname: leak\nversion: 1.0.0\n" },
      {
        name: "o-r-1/chart/templates/cm.yaml",
        body: 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: leak }\ndata:\n  passwd: {{ .Files.Get "leak" | quote }}\n',
      },
      // Lexically inside (a/b/c/s/../../.. is a/b/c/.. is a/b), really the checkout root.
      { name: `o-r-1/${depth}/s`, type: "symlink", linkname: "../../.." },
      // Lexically chart/../a/b/c/s/../../../../etc/passwd stays inside; really it is /etc/passwd of the parent's parent.
      { name: "o-r-1/chart/leak", type: "symlink", linkname: `../${depth}/s/../../../../etc/passwd` },
    ]);
    const root = await tempDir();
    await expect(extractTarball(archive, root, limits)).rejects.toThrow('tarball symlink "o-r-1/chart/leak" resolves outside the checkout');
    tried(
      "a chained symlink chart/leak -> ../a/b/c/s/../../../../etc/passwd for helm's .Files.Get",
      "the archive is refused, naming the entry; nothing is rendered",
    );
  });

  it("never writes an entry through a symbolic link of the same archive", async () => {
    const root = await tempDir();
    const archive = await tarball([
      { name: "o-r-1/a/b/s", type: "symlink", linkname: "../.." },
      { name: "o-r-1/a/t", type: "symlink", linkname: "b/s/.." },
      { name: "o-r-1/a/t/pwned", body: "x" },
    ]);
    await expect(extractTarball(archive, root, limits)).rejects.toThrow(
      'tarball entry "o-r-1/a/t/pwned" is refused: "a/t/pwned" lies under the symbolic link "a/t"',
    );
    await expect(readFile(join(root, "..", "pwned"))).rejects.toThrow();
  });

  it("gives render processes no environment but PATH, so the app's secrets are not there to read", async () => {
    const pool = new RenderPool({ size: 1, heapMb: 128, tools: tools(), limits: { timeoutMs: 30_000, maxOutputBytes: 1024 * 1024 } });
    const root = await checkout(undefined, { "m/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: a }\n" });
    process.env.SLUICE_TEST_CANARY_SECRET = "canary-value-that-must-not-leak";
    try {
      const [side] = await pool.render(env({ path: "m" }), [root]);
      expect(side?.problems).toEqual([]);
      const [pid] = pool.pids();
      const environ = await readFile(`/proc/${String(pid)}/environ`, "utf8");
      expect(environ).not.toContain("canary-value-that-must-not-leak");
      // Node's own IPC channel variables are the only addition to PATH and LANG.
      expect(
        environ
          .split("\0")
          .filter(Boolean)
          .map((line) => line.split("=")[0])
          .sort(),
      ).toEqual(["LANG", "MALLOC_ARENA_MAX", "NODE_CHANNEL_FD", "NODE_CHANNEL_SERIALIZATION_MODE", "PATH"]);
    } finally {
      delete process.env.SLUICE_TEST_CANARY_SECRET;
      await pool.close();
    }
  });

  it("runs renderers in their own PID namespace, where no other process (and its environment) is visible", async () => {
    if (!(await canSandbox())) {
      tried("reading /proc/<app pid>/environ from a renderer", "skipped: this machine cannot create namespaces");
      return;
    }
    // Shell built-ins only: the sandbox holds the shell and its libraries, not ls or cat.
    const result = await runBounded("sh", ["-c", `set -- /proc/[0-9]*; echo $#; read -r x < /proc/${process.pid}/environ`], {
      cwd: await tempDir(),
      env: { PATH: process.env.PATH ?? "" },
      timeoutMs: 10_000,
      maxOutputBytes: 65_536,
      sandbox: "required",
    });
    expect(result.outcome).toBe("exit");
    if (result.outcome !== "exit") return;
    expect(Number(result.stdout.trim().split("\n")[0])).toBeLessThanOrEqual(3);
    expect(result.stderr).toMatch(/No such file|nonexistent directory|cannot open/);
    tried(`cat /proc/${process.pid}/environ from a sandboxed renderer`, "no such process in its namespace");
  });
});

describe("finding 7: a change made only through a symlink changes the inputs digest", () => {
  it("hashes links by their target", async () => {
    const make = async (target: string) => {
      const root = await checkout(undefined, { "m/a.yaml": "a: 1\n", "m/b.yaml": "b: 1\n", ".keep": "" });
      await symlink(target, join(root, "m/current.yaml"));
      return environmentInputs(root, env({ path: "m" }));
    };
    const [one, two] = await Promise.all([make("a.yaml"), make("b.yaml")]);
    expect(one.files).toContain("m/current.yaml");
    expect(one.digest).not.toBe(two.digest);
  });
});

describe("finding 8: every read is capped and of regular files only", () => {
  it("refuses a link to /dev/zero and oversized files before reading them", async () => {
    const root = await checkout(undefined, { "big.yaml": "x".repeat(4096) });
    await symlink("/dev/zero", join(root, "zero.yaml"));
    await mkdir(join(root, "k"));
    await symlink("/dev/zero", join(root, "k/kustomization.yaml"));
    await expect(readCheckoutFile(root, "zero.yaml", 1024)).rejects.toThrow("zero.yaml resolves outside the checkout");
    await expect(readCheckoutFile(root, "big.yaml", 1024)).rejects.toThrow("big.yaml is 4096 bytes, over the limit of 1024 bytes");
    const context = await openRendererContext(root, tools());
    try {
      const rendered = await renderEnvironment(context, env({ path: "zero.yaml" }));
      expect(rendered.problems[0]?.message).toBe("zero.yaml resolves outside the checkout");
      // The inputs walk does not follow it either.
      await expect(environmentInputs(root, env({ path: "k" }))).resolves.toMatchObject({ files: ["k/kustomization.yaml"] });
    } finally {
      await context.dispose();
    }
  });
});

describe("finding 10: __proto__ keys survive parsing, normalizing, diffing and the digest", () => {
  it("keeps them everywhere", () => {
    const parse = (value: string) =>
      parseManifests(`apiVersion: v1\nkind: ConfigMap\nmetadata: { name: a }\ndata:\n  __proto__: ${value}\n  other: x\n`, {
        file: "a.yaml",
      }).objects;
    const base = buildResourceSet(parse("one"), "default").resources;
    const head = buildResourceSet(parse("two"), "default").resources;
    const [change] = diffResources(base, head);
    expect(change?.action).toBe("modified");
    expect(change?.diff).toContain("-  __proto__: one");
    expect(change?.diff).toContain("+  __proto__: two");
    const object = (text: string) => JSON.parse(text) as Record<string, unknown>;
    expect(objectsDigest([object([...base.values()][0]?.json ?? "")])).not.toBe(objectsDigest([object([...head.values()][0]?.json ?? "")]));
  });
});

describe("finding 11: alias expansion has one budget per render", () => {
  it("stops many small alias bombs that each stay under the per-document limit", () => {
    const doc = (i: number) =>
      `apiVersion: v1\nkind: ConfigMap\nmetadata: { name: c${i} }\ndata: &a0 {k: v}\nx1: &a1 [*a0, *a0, *a0, *a0, *a0, *a0, *a0, *a0, *a0, *a0]\nx2: &a2 [*a1, *a1, *a1, *a1, *a1, *a1, *a1, *a1, *a1, *a1]\nx3: &a3 [*a2, *a2, *a2, *a2, *a2, *a2, *a2, *a2, *a2, *a2]\nx4: [*a3, *a3, *a3, *a3, *a3, *a3, *a3, *a3, *a3, *a3, *a3, *a3, *a3, *a3, *a3, *a3, *a3, *a3, *a3, *a3, *a3, *a3, *a3, *a3, *a3, *a3, *a3, *a3, *a3, *a3]\n`;
    const text = Array.from({ length: 200 }, (_, i) => doc(i)).join("---\n");
    expect(text.length).toBeLessThan(150_000);
    const result = parseManifests(text, { file: "bomb.yaml" });
    expect(result.objects.length).toBeLessThan(200);
    expect(result.problems.at(-1)?.message).toContain("YAML aliases in this render expand to more than the limit of 1,000,000 nodes");
    tried(
      `${text.length} bytes of YAML whose aliases expand to ~${200 * 31_000} nodes`,
      `${result.objects.length} documents read, the rest refused`,
    );
  });

  it("reads a list of 150,000 aliased items without overflowing the stack", () => {
    const text = `apiVersion: v1\nkind: ConfigMap\nmetadata: { name: big }\nbase: &x {a: 1}\nitems2: [${Array.from({ length: 150_000 }, () => "*x").join(", ")}]\n`;
    const result = parseManifests(text, { file: "big.yaml" });
    expect(result.objects.length + result.problems.length).toBe(1);
  });
});

describe("finding 12: render memory is bounded, and the biggest allowed input renders", () => {
  it("turns a render that exhausts its heap into an error naming the environment, and keeps serving", async () => {
    const pool = new RenderPool({ size: 1, heapMb: 64, tools: tools(), limits: { timeoutMs: 60_000, maxOutputBytes: 256 * 1024 * 1024 } });
    const huge = await checkout(undefined, { "m/.keep": "" });
    // 120 MiB of small documents: far more than a 64 MiB heap holds once parsed.
    const doc =
      "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: n%\ndata:\n  k: vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv\n---\n";
    const chunk = Array.from({ length: 20_000 }, (_, i) => doc.replace("%", String(i))).join("");
    for (let i = 0; i < 60; i++)
      await writeFile(join(huge, `m/part-${String(i).padStart(2, "0")}.yaml`), chunk.replaceAll("name: n", `name: p${i}-n`));
    const small = await checkout(undefined, { "m/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: a }\n" });
    try {
      const [failed] = await pool.render(env({ path: "m" }), [huge]);
      expect(failed?.transient).toBe(true);
      expect(failed?.problems[0]?.message).toMatch(/the render process for m (was killed|exited).*ran out of its 64 MiB heap/);
      const [fine] = await pool.render(env({ path: "m" }), [small]);
      expect(fine?.problems).toEqual([]);
      expect(fine?.resources.size).toBe(1);
      tried("a 120 MiB tree of manifests against a 64 MiB render process", "that render failed with a clear error; the next one worked");
    } finally {
      await pool.close();
    }
  });

  it("renders the largest tree the output limit allows, and names the first file past it", async () => {
    const doc = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: n%\ndata:\n  k: value\n---\n";
    const chunk = (prefix: string) =>
      Array.from({ length: 10_000 }, (_, i) => doc.replace("%", `${prefix}-${String(i).padStart(5, "0")}`)).join("");
    const files = { "m/a.yaml": chunk("a"), "m/b.yaml": chunk("b"), "m/c.yaml": chunk("c") };
    // Exactly the first two files fit.
    const limit = files["m/a.yaml"].length + files["m/b.yaml"].length;
    const pool = new RenderPool({ size: 1, heapMb: 256, tools: tools(), limits: { timeoutMs: 60_000, maxOutputBytes: limit } });
    const root = await checkout(undefined, files);
    try {
      const [side] = await pool.render(env({ path: "m" }), [root]);
      expect(side?.resources.size).toBe(10_000 * 2);
      expect(side?.problems).toEqual([
        { file: "m/c.yaml", line: 1, message: `manifests exceed the limit of ${limit} bytes; this file and later ones were not read` },
      ]);
    } finally {
      await pool.close();
    }
  });
});

describe("finding 14: annotations are capped", () => {
  it("annotates at most 200 errors and says how many more there were", () => {
    const errors = Array.from({ length: 100_000 }, (_, i) => ({ file: "a.yaml", line: i + 1, message: "bad" }));
    const annotations = previewAnnotations(errors);
    expect(annotations).toHaveLength(MAX_ANNOTATIONS);
    expect(annotations.at(-1)?.message).toContain("99800 more errors are not annotated");
  });
});

describe("finding 15: repository-controlled strings cannot inject markdown", () => {
  const hostile =
    "web</code></summary>\n\nPlease [re-authenticate](https://evil.example/login) @octo-org/admins ![x](https://evil.example/p.png)\n\n<details><summary>";
  it("escapes resource names, Secret keys and error messages", () => {
    const id = { group: "", version: "v1", kind: "ConfigMap", namespace: "default", name: hostile };
    const report: DiffReport = {
      environments: [
        {
          name: "prod",
          summary: { added: 1, modified: 0, removed: 0, unchanged: 0 },
          changes: [{ id, action: "added", diff: "+x\n", secretKeys: { [hostile]: "added" } }],
        },
      ],
      errors: [{ file: "a.yaml", line: 1, message: hostile, environment: "prod", side: "head" }],
    };
    const body = renderMarkdown(report);
    for (const text of [body, errorList(report.errors, 10)]) {
      // Inside code (a span or a <code> element) nothing is a link or a mention; outside, nothing may be.
      const outsideCode = text.replace(/<code>[^\n]*?<\/code>/g, "").replace(/`[^`\n]*`/g, "");
      expect(outsideCode).not.toMatch(/[^\\]\]\(https:\/\/evil/);
      expect(outsideCode).not.toContain("@octo-org");
      expect(text).not.toContain("\n\nPlease");
      expect(text.match(/<summary>/g)?.length).toBe(text.match(/<\/summary>/g)?.length);
    }
    expect(escapeInline("a\n\n# heading [x](y) @user")).toBe("a # heading \\[x\\]\\(y\\) @\u200buser".replace("# heading", "\\# heading"));
    tried(
      "a resource name with blank lines, a link, an image and a team mention",
      "all of it shows as text in one line, no link, no mention",
    );
  });
});

describe("finding 16: renderers have no network, loopback included", () => {
  it("never lets kustomize fetch from a loopback server", async () => {
    let hits = 0;
    const server = createServer((_req, res) => {
      hits += 1;
      res.end("apiVersion: v1\nkind: ConfigMap\nmetadata: { name: fetched }\n");
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    const port = typeof address === "object" && address ? address.port : 0;
    const root = await checkout(undefined, { "k/kustomization.yaml": `resources:\n  - http://127.0.0.1:${port}/cm.yaml\n` });
    const context = await openRendererContext(root, tools());
    try {
      const rendered = await renderEnvironment(context, env({ path: "k" }));
      expect(rendered.objects).toEqual([]);
      expect(rendered.problems[0]).toMatchObject({
        file: "k/kustomization.yaml",
        line: 2,
        message: expect.stringContaining("is not allowed: Sluice renders without network access") as string,
      });
      // And the sandbox itself has no route to the same server.
      if (await canSandbox()) {
        const probe = await runBounded("bash", ["-c", `exec 3<>/dev/tcp/127.0.0.1/${port}`], {
          cwd: await tempDir(),
          env: { PATH: process.env.PATH ?? "" },
          timeoutMs: 10_000,
          maxOutputBytes: 1024,
          sandbox: "required",
        });
        expect(probe.outcome).toBe("exit");
      }
      expect(hits).toBe(0);
      tried(`a kustomization with a resource at http://127.0.0.1:${port}`, "refused before kustomize ran; the server saw no request");
    } finally {
      await context.dispose();
      server.close();
    }
  });
});

describe("finding 20: Secret values quoted by kustomize are masked", () => {
  it("masks secretGenerator literals in kustomize's error", async () => {
    const root = await checkout(undefined, {
      "k/kustomization.yaml":
        "secretGenerator:\n  - name: db\n    literals:\n      - password=hunter2-s3cret\n      - justavaluewithoutkey\n",
    });
    const context = await openRendererContext(root, tools());
    try {
      const rendered = await renderEnvironment(context, env({ path: "k" }));
      expect(rendered.problems).toHaveLength(1);
      expect(rendered.problems[0]?.message).toContain("invalid literal source");
      expect(rendered.problems[0]?.message).not.toContain("hunter2-s3cret");
      expect(rendered.problems[0]?.message).not.toContain("justavaluewithoutkey");
      expect(rendered.problems[0]?.message).toContain("password=<masked>");
    } finally {
      await context.dispose();
    }
  });
});

describe("finding 21: a missing or empty input is an error, never an empty environment", () => {
  it("keeps a checkout its own download would evict", async () => {
    const cacheDir = await tempDir();
    const cache = new CheckoutCache({ dir: cacheDir, maxCacheBytes: 10, maxBytes: 1024 * 1024, maxFiles: 100 });
    const archive = await tarball([{ name: "o-r-1/m/cm.yaml", body: "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: a }\n" }]);
    const lease = await cache.acquire("repo-sha", () => Promise.resolve(archive));
    try {
      expect(await readFile(join(lease.dir, "m/cm.yaml"), "utf8")).toContain("ConfigMap");
    } finally {
      lease.release();
    }
  });

  it("fails a deploy render of a missing path or of nothing, and of a missing checkout", async () => {
    const root = await checkout(undefined, { "m/README.md": "no manifests\n" });
    const context = await openRendererContext(root, tools());
    const { renderSide } = await import("../../src/render/compare.ts");
    try {
      expect((await renderSide(context, env({ path: "gone" }), { requireInputs: true })).problems[0]?.message).toBe(
        "environment test: path gone does not exist at this commit",
      );
      expect((await renderSide(context, env({ path: "m" }), { requireInputs: true })).problems[0]?.message).toContain("renders no objects");
      const missing = await openRendererContext(join(root, "evicted"), tools());
      expect((await renderSide(missing, env({ path: "m" }))).problems[0]?.message).toContain("is missing; nothing was rendered");
      await missing.dispose();
    } finally {
      await context.dispose();
    }
  });
});

describe("low: the Secret mask fails closed", () => {
  it("masks a data field that is not a map, and keys named like Object.prototype members", () => {
    const [base, head] = maskSecretPair({ kind: "Secret", data: "c2VjcmV0" }, { kind: "Secret", data: ["c2VjcmV0"] });
    expect(JSON.stringify([base, head])).not.toContain("c2VjcmV0");
    const [, added] = maskSecretPair(
      { kind: "Secret", data: {} },
      { kind: "Secret", data: { constructor: "eA==", __proto__: "eQ==" } as unknown as Record<string, unknown> },
    );
    expect(JSON.stringify(added)).toBe('{"kind":"Secret","data":{"constructor":"<masked: added>"}}');
  });
});

describe("low: git tarballs with every escape trick", () => {
  it.each([
    [[{ name: "o-r-1/loop", type: "symlink", linkname: "loop" }], "is part of a loop of symbolic links"],
    [
      [
        { name: "o-r-1/a", body: "x" },
        { name: "o-r-1/a", body: "y" },
      ],
      'tarball entry "o-r-1/a" is refused: "a" appears twice in the archive',
    ],
    [
      [
        { name: "o-r-1/a", type: "symlink", linkname: "b" },
        { name: "o-r-1/a", body: "y" },
      ],
      'tarball entry "o-r-1/a" is refused: "a" appears twice in the archive',
    ],
  ] as [Entry[], string][])("refuses %j", async (entries, message) => {
    await expect(extractTarball(await tarball(entries), await tempDir(), limits)).rejects.toThrow(message);
  });

  it("has run git's own archive of a repository with a safe link unchanged", async () => {
    const repo = await checkout(undefined, { "m/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: a }\n" });
    await symlink("cm.yaml", join(repo, "m/link.yaml"));
    await run("git", ["init", "-q"], { cwd: repo });
    await run("git", ["-c", "user.email=t@example.com", "-c", "user.name=t", "add", "."], { cwd: repo });
    await run("git", ["-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "x"], { cwd: repo });
    const { stdout } = await run("git", ["archive", "--format=tar.gz", "--prefix=o-r-1/", "HEAD"], { cwd: repo, encoding: "buffer" });
    const root = await tempDir();
    await extractTarball(stdout, root, limits);
    expect(await readFile(join(root, "m/link.yaml"), "utf8")).toContain("ConfigMap");
  });
});
