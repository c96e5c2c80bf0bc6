import { mkdir, symlink, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { extractTarball } from "../../src/app/checkouts/unpack-tarball.ts";
import { parseConfig, type Environment } from "../../src/core/config.ts";
import { canSandbox, probeSandbox, probeSandboxOn, runBounded, type SandboxSetting } from "../../src/render/process.ts";
import { renderEnvironment } from "../../src/render/render-environment.ts";
import { RenderPool } from "../../src/render/render-pool.ts";
import { goRuntimeEnv } from "../../src/render/sandbox.ts";
import { openRendererContext } from "../../src/render/setup.ts";
import { checkout, removeCheckouts, tempDir } from "../helpers/checkouts.ts";
import { tarball, type Entry } from "../helpers/tarballs.ts";

// Every way a repository has been found to read a file outside its checkout, played in both
// sandbox modes: with the namespace sandbox (bubblewrap), and without it, as in a pod whose
// seccomp profile forbids user namespaces. Without the sandbox, the checkout itself is the
// boundary: it holds no links, and references outside it are refused before a renderer runs.

afterAll(removeCheckouts);

/** Says what a test tried as an attacker and what came of it. */
function tried(attempt: string, outcome: string): void {
  process.stdout.write(`  [attacker] tried: ${attempt}\n  [attacker] result: ${outcome}\n`);
}

const tools = () => ({ kustomize: inject("kustomize"), helm: inject("helm") });
const limits = { maxBytes: 4 * 1024 * 1024, maxFiles: 1000 };

function env(fields: Partial<Environment> = {}): Environment {
  const base = parseConfig("version: 1\nenvironments:\n  - name: test\n").environments[0];
  if (!base) throw new Error("no environment");
  return { ...base, ...fields };
}

/** A secret beside the checkouts, readable by this user, as the app's mounted keys are by the app. */
let secretFile: string;
const SECRET = "-----BEGIN PRIVATE KEY----- not-to-be-read";

beforeAll(async () => {
  secretFile = join(await tempDir("sluice-keys-"), "private-key.pem");
  await writeFile(secretFile, SECRET);
  // CI installs bubblewrap; a machine without it would pass the sandbox half of this file vacuously.
  if (process.env.CI) expect(await probeSandbox()).toMatchObject({ available: true });
});

const chart = (template: string): Entry[] => [
  { name: "o-r-1/chart/Chart.yaml", body: "apiVersion: v2\nname: leak\nversion: 1.0.0\n" },
  { name: "o-r-1/chart/templates/cm.yaml", body: `apiVersion: v1\nkind: ConfigMap\nmetadata: { name: leak }\ndata:\n${template}` },
];

/** Unpacks an archive as the app does, then renders it as the app does, in the given mode. */
async function unpackAndRender(entries: Entry[], path: string, sandbox: SandboxSetting) {
  const root = await tempDir();
  await extractTarball(await tarball(entries), root, limits);
  const context = await openRendererContext(root, tools(), { timeoutMs: 60_000, maxOutputBytes: 16 * 1024 * 1024, sandbox });
  try {
    return await renderEnvironment(context, env({ path }));
  } finally {
    await context.dispose();
  }
}

/** A render pool whose helm and kustomize runs may take 1536 MiB of address space: 128 MiB to hold, past what Go reserves. */
function cappedPool(size: number, sandbox: SandboxSetting): RenderPool {
  return new RenderPool({
    size,
    heapMb: 128,
    tools: tools(),
    limits: { timeoutMs: 60_000, maxOutputBytes: 16 * 1024 * 1024, sandbox, toolMemoryBytes: 1536 * 1024 * 1024 },
  });
}

const MODES: [string, SandboxSetting][] = [
  ["the namespace sandbox", "required"],
  ["no sandbox", "off"],
];

describe.each(MODES)("with %s, a renderer reads nothing outside its checkout", (mode, sandbox) => {
  it("refuses every link trick before a renderer runs", async () => {
    if (sandbox === "required" && !(await canSandbox())) return;
    const tricks: [string, Entry[], RegExp][] = [
      [
        "a link named s\\t that a split on backslashes reads as s/t",
        [
          ...chart('  p: {{ .Files.Get "p" | quote }}\n'),
          { name: "o-r-1/a/b/l/s\\t", type: "symlink", linkname: "../../.." },
          { name: "o-r-1/chart/p", type: "symlink", linkname: `../a/b/l/s\\t/${"../".repeat(4)}etc/passwd` },
        ],
        /"a\/b\/l\/s\\t" has a backslash in its name/,
      ],
      [
        "chained links that stay inside lexically and climb out really",
        [
          ...chart('  p: {{ .Files.Get "leak" | quote }}\n'),
          { name: "o-r-1/a/b/c/s", type: "symlink", linkname: "../../.." },
          { name: "o-r-1/chart/leak", type: "symlink", linkname: "../a/b/c/s/../../../../etc/passwd" },
        ],
        /tarball symlink "o-r-1\/chart\/leak" resolves outside the checkout/,
      ],
      [
        "an absolute link target",
        [...chart('  p: {{ .Files.Get "p" | quote }}\n'), { name: "o-r-1/chart/p", type: "symlink", linkname: "/etc/passwd" }],
        /points outside the checkout \(\/etc\/passwd\)/,
      ],
      ["a .. climb in an entry's name", [{ name: "o-r-1/../../etc/cron.d/x", body: "x" }], /escapes the checkout/],
      [
        "a link to a device",
        [{ name: "o-r-1/m/zero.yaml", type: "symlink", linkname: "/dev/zero" }],
        /points outside the checkout \(\/dev\/zero\)/,
      ],
      [
        "helm's .Files.Glob into a linked directory that leads out",
        [
          ...chart('  p: {{ .Files.Glob "etc/*" | toJson | quote }}\n'),
          { name: "o-r-1/chart/etc", type: "symlink", linkname: "../../../../etc" },
        ],
        /points outside the checkout/,
      ],
    ];
    for (const [what, entries, refusal] of tricks) {
      await expect(unpackAndRender(entries, "chart", sandbox), what).rejects.toThrow(refusal);
      tried(`${what} (${mode})`, "the archive is refused, naming the entry; no renderer ran");
    }
  });

  it("renders helm's .Files.Get and .Files.Glob through links inside the checkout from copies", async () => {
    if (sandbox === "required" && !(await canSandbox())) return;
    const rendered = await unpackAndRender(
      [
        ...chart('  one: {{ .Files.Get "files/a.txt" | quote }}\n  all: {{ .Files.Glob "files/*" | len | quote }}\n'),
        { name: "o-r-1/shared/a.txt", body: "from shared" },
        { name: "o-r-1/shared/b.txt", body: "also shared" },
        { name: "o-r-1/chart/files", type: "symlink", linkname: "../shared" },
      ],
      "chart",
      sandbox,
    );
    expect(rendered.problems).toEqual([]);
    expect(rendered.objects[0]?.object).toMatchObject({ data: { one: "from shared", all: "2" } });
  });

  it("refuses kustomize references outside the checkout before kustomize runs", async () => {
    if (sandbox === "required" && !(await canSandbox())) return;
    const other = await checkout(undefined, {
      "secret/kustomization.yaml": "resources:\n  - cm.yaml\n",
      "secret/cm.yaml": "kind: ConfigMap\n",
    });
    const refs: [string, string, number][] = [
      ["resources:\n  - /etc/passwd\n", "/etc/passwd", 2],
      [`resources:\n  - ../../../..${other}/secret\n`, `../../../..${other}/secret`, 2],
      [`configMapGenerator:\n  - name: x\n    files:\n      - key=${secretFile}\n`, secretFile, 4],
      ["secretGenerator:\n  - name: x\n    envs:\n      - /proc/self/environ\n", "/proc/self/environ", 4],
    ];
    for (const [kustomization, ref, line] of refs) {
      const rendered = await unpackAndRender([{ name: "o-r-1/k/kustomization.yaml", body: kustomization }], "k", sandbox);
      expect(rendered.objects).toEqual([]);
      expect(rendered.problems).toEqual([
        {
          file: "k/kustomization.yaml",
          line,
          message: `reference "${ref}" leads outside the repository: Sluice renders only what the repository holds`,
        },
      ]);
      tried(`a kustomization referring to ${ref} (${mode})`, "refused at its line before kustomize ran");
    }
  });

  it("gives helm's values schema no file outside the checkout through $ref or $id", async () => {
    if (sandbox === "required" && !(await canSandbox())) return;
    const schemas = [
      `{"properties":{"a":{"$ref":"file://${secretFile}"}}}`,
      `{"properties":{"a":{"$ref":"${"../".repeat(12)}${secretFile.slice(1)}"}}}`,
      `{"$id":"file://${secretFile}","properties":{"a":{"$ref":"#"}}}`,
    ];
    for (const schema of schemas) {
      const rendered = await unpackAndRender(
        [
          ...chart("  a: b\n"),
          { name: "o-r-1/chart/values.schema.json", body: schema },
          { name: "o-r-1/chart/values.yaml", body: "a: 1\n" },
        ],
        "chart",
        sandbox,
      );
      // Never a word of the key: not its content, not its first character in a JSON error.
      expect(JSON.stringify(rendered)).not.toMatch(/BEGIN PRIVATE KEY|invalid character '-'/);
      tried(`a values.schema.json whose reference reads ${secretFile} (${mode})`, "the key is never read");
    }
  });

  it("refuses a kustomization it cannot read as kustomize does, rather than let a reference to another checkout pass unseen", async () => {
    if (sandbox === "required" && !(await canSandbox())) return;
    // Another repository's checkout beside this one, as the app's checkout cache keeps them.
    const cache = await tempDir();
    await mkdir(join(cache, "111-victim/base"), { recursive: true });
    await writeFile(join(cache, "111-victim/base/kustomization.yaml"), "resources:\n  - cm.yaml\n");
    await writeFile(
      join(cache, "111-victim/base/cm.yaml"),
      "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: victim }\ndata: { k: VICTIM-SECRET }\n",
    );
    const out = "../../111-victim/base";
    // The UTF-16 form is written over the unpacked file: the archive helper writes UTF-8 bodies.
    const utf16 = Buffer.from(`\ufeffresources: [${out}]\n`, "utf16le");
    const forms: [string, Entry[], RegExp][] = [
      [
        "a duplicate key",
        [{ name: "o-r-1/k/kustomization.yaml", body: `resources: []\nresources: [${out}]\n` }],
        /repeats a key, which kustomize reads otherwise than Sluice/,
      ],
      ["a merge key", [{ name: "o-r-1/k/kustomization.yaml", body: `<<: { resources: [${out}] }\n` }], /merge key/],
      [
        "a second document",
        [{ name: "o-r-1/k/kustomization.yaml", body: `resources: []\n---\nresources: [${out}]\n` }],
        /several YAML documents/,
      ],
      [
        "padding past the size Sluice reads",
        [{ name: "o-r-1/k/kustomization.yaml", body: `resources: [${out}]\n#${"x".repeat(1024 * 1024)}\n` }],
        /over the limit/,
      ],
      ["UTF-16", [{ name: "o-r-1/k/kustomization.yaml", body: "resources: []\n" }], /UTF-16/],
      ["lone carriage returns", [{ name: "o-r-1/k/kustomization.yaml", body: `resources:\r- ${out}\r` }], /lone carriage return/],
      [
        "a directory named kustomization.yaml beside kustomization.yml",
        [
          { name: "o-r-1/k/kustomization.yaml/x", body: "x" },
          { name: "o-r-1/k/kustomization.yml", body: `resources: [${out}]\n` },
        ],
        /is a directory/,
      ],
    ];
    for (const [what, entries, refusal] of forms) {
      const root = join(cache, `222-attacker-${forms.findIndex(([w]) => w === what)}`);
      await mkdir(root);
      await extractTarball(await tarball(entries), root, { maxBytes: 4 * 1024 * 1024, maxFiles: 100 });
      if (what === "UTF-16") await writeFile(join(root, "k/kustomization.yaml"), utf16);
      const context = await openRendererContext(root, tools(), { timeoutMs: 60_000, maxOutputBytes: 16 * 1024 * 1024, sandbox });
      try {
        const rendered = await renderEnvironment(context, env({ path: "k" }));
        expect(JSON.stringify(rendered), what).not.toContain("VICTIM-SECRET");
        expect(rendered.objects, what).toEqual([]);
        expect(rendered.problems[0]?.message, what).toMatch(refusal);
      } finally {
        await context.dispose();
      }
      tried(
        `a kustomization referring to another checkout, hidden by ${what} (${mode})`,
        "the render is refused at the kustomization; nothing of the other checkout is read",
      );
    }
  });

  it("refuses plugin configurations that read a URL or a file outside the checkout, and never calls the URL", async () => {
    if (sandbox === "required" && !(await canSandbox())) return;
    let hits = 0;
    const server = createServer((_request, response) => {
      hits += 1;
      response.end("secret: from-loopback\n");
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    const url = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}/metrics`;
    const generator = `apiVersion: builtin\nkind: ConfigMapGenerator\nmetadata: { name: m }\nfiles: [m=${url}]\n`;
    const transformer = `apiVersion: builtin\nkind: PatchTransformer\nmetadata: { name: p }\npath: ${url}\ntarget: { kind: ConfigMap }\n`;
    const cases: [string, Entry[], string][] = [
      [
        "a generator file",
        [
          { name: "o-r-1/k/kustomization.yaml", body: "generators: [gen.yaml]\n" },
          { name: "o-r-1/k/gen.yaml", body: generator },
        ],
        `remote reference "${url}"`,
      ],
      [
        "an inline generator",
        [{ name: "o-r-1/k/kustomization.yaml", body: `generators:\n  - |\n${generator.replace(/^/gm, "    ")}` }],
        `remote reference "${url}"`,
      ],
      [
        "an inline transformer",
        [{ name: "o-r-1/k/kustomization.yaml", body: `transformers:\n  - |\n${transformer.replace(/^/gm, "    ")}` }],
        `remote reference "${url}"`,
      ],
      [
        "a generator reading a file outside",
        [
          { name: "o-r-1/k/kustomization.yaml", body: "generators: [gen.yaml]\n" },
          { name: "o-r-1/k/gen.yaml", body: generator.replace(`m=${url}`, `m=${secretFile}`) },
        ],
        `reference "${secretFile}" leads outside the repository`,
      ],
    ];
    try {
      for (const [what, entries, refusal] of cases) {
        const rendered = await unpackAndRender(entries, "k", sandbox);
        expect(rendered.objects, what).toEqual([]);
        expect(rendered.problems[0]?.message, what).toContain(refusal);
        expect(JSON.stringify(rendered), what).not.toMatch(/from-loopback|BEGIN PRIVATE KEY/);
        tried(`${what} (${mode})`, "refused before kustomize ran");
      }
      expect(hits).toBe(0);
    } finally {
      server.close();
    }
  });

  it("fails one render that takes too much memory, with a clear error, while the others go on", async () => {
    if (sandbox === "required" && !(await canSandbox())) return;
    const root = await checkout(undefined, {
      "hog/Chart.yaml": "apiVersion: v2\nname: hog\nversion: 1.0.0\n",
      // About 300 bytes that ask helm for 1.5 GB.
      "hog/templates/cm.yaml":
        'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: hog }\ndata:\n  x: {{ repeat 1500000000 "x" | len | quote }}\n',
      "fine/Chart.yaml": "apiVersion: v2\nname: fine\nversion: 1.0.0\n",
      "fine/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: fine }\n",
    });
    const pool = cappedPool(2, sandbox);
    try {
      const [[hog], [fine]] = await Promise.all([pool.render(env({ path: "hog" }), [root]), pool.render(env({ path: "fine" }), [root])]);
      expect(hog?.problems).toEqual([
        {
          file: "hog/Chart.yaml",
          line: 1,
          message: "helm needed more than the 1536 MiB of address space one render may take (SLUICE_RENDER_TOOL_MEMORY_MB)",
        },
      ]);
      expect(fine?.problems).toEqual([]);
      expect([...(fine?.resources.keys() ?? [])]).toEqual(["/ConfigMap/default/fine"]);
      tried(
        `a 300-byte chart template that allocates 1.5 GB (${mode})`,
        "that render fails at its 1536 MiB of address space, naming the chart; the other renders",
      );
    } finally {
      await pool.close();
    }
  });

  it("collects a render's garbage before it reaches the tool's memory cap (its collector otherwise off)", async () => {
    if (sandbox === "required" && !(await canSandbox())) return;
    // 400 strings of 2 MB, each dropped at once: 800 MB allocated, never more than a few MB held,
    // against 128 MiB the tool may hold under a 1536 MiB cap.
    const root = await checkout(undefined, {
      "churn/Chart.yaml": "apiVersion: v2\nname: churn\nversion: 1.0.0\n",
      "churn/templates/cm.yaml":
        'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: churn }\ndata:\n{{- range $i := until 400 }}\n  k{{ $i }}: {{ repeat 2000000 "x" | len | quote }}\n{{- end }}\n',
    });
    const pool = cappedPool(1, sandbox);
    try {
      const [side] = await pool.render(env({ path: "churn" }), [root]);
      expect(side?.problems).toEqual([]);
      expect(JSON.parse(side?.resources.get("/ConfigMap/default/churn")?.json ?? "{}")).toMatchObject({
        data: { k0: "2000000", k399: "2000000" },
      });
    } finally {
      await pool.close();
    }
  });
});

describe("the namespace sandbox holds even where a path check fails", () => {
  // These checkouts are built by hand, with the links an archive can never bring: they stand for a
  // future bug in Sluice's own checks. The mount namespace must still show the renderer nothing.
  it("shows helm nothing of the machine through links out of the checkout", async () => {
    if (!(await canSandbox())) {
      tried("links out of a hand-built checkout", "skipped: this machine cannot create namespaces");
      return;
    }
    const root = await checkout(undefined, {
      "chart/Chart.yaml": "apiVersion: v2\nname: leak\nversion: 1.0.0\n",
      "chart/templates/cm.yaml":
        'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: leak }\ndata:\n  key: {{ .Files.Get "key" | quote }}\n  passwd: {{ .Files.Get "passwd" | quote }}\n  environ: {{ .Files.Get "environ" | quote }}\n',
    });
    await symlink(secretFile, join(root, "chart/key"));
    await symlink(`${"../".repeat(20)}etc/passwd`, join(root, "chart/passwd"));
    await symlink(`/proc/${process.pid}/environ`, join(root, "chart/environ"));
    const result = await runBounded(inject("helm"), ["template", "x", join(root, "chart")], {
      cwd: await tempDir(),
      env: { PATH: "/usr/bin:/bin", HOME: "/nonexistent" },
      timeoutMs: 60_000,
      maxOutputBytes: 1024 * 1024,
      sandbox: "required",
      readable: [root],
    });
    const everything = JSON.stringify(result);
    expect(everything).not.toContain(SECRET);
    expect(everything).not.toContain("root:x:0:0");
    expect(everything).not.toContain("PATH=");
    tried("helm .Files.Get through links to the app's key, /etc/passwd and the app's /proc environ", "none of them exists in the sandbox");
  });

  it("gives a renderer no file of the app's, not its keys, not its other checkouts, not its /proc", async () => {
    if (!(await canSandbox())) return;
    const root = await checkout(undefined, { "m/cm.yaml": "kind: ConfigMap\n" });
    const neighbour = await checkout(undefined, { "other.yaml": "kind: Secret\n" });
    const reads = await Promise.all(
      [secretFile, `${neighbour}/other.yaml`, `/proc/${process.pid}/environ`, "/etc/passwd", `${root}/m/cm.yaml`].map(async (path) => {
        const one = await runBounded("/bin/sh", ["-c", `read -r line < ${path} && echo "$line"`], {
          cwd: await tempDir(),
          env: { PATH: "/usr/bin:/bin" },
          timeoutMs: 30_000,
          maxOutputBytes: 1024,
          sandbox: "required",
          readable: [root],
        });
        return [path, one.outcome === "ok" ? one.stdout.trim() : "unreadable"];
      }),
    );
    expect(Object.fromEntries(reads)).toEqual({
      [secretFile]: "unreadable",
      [`${neighbour}/other.yaml`]: "unreadable",
      [`/proc/${process.pid}/environ`]: "unreadable",
      "/etc/passwd": "unreadable",
      [`${root}/m/cm.yaml`]: "kind: ConfigMap",
    });
    const write = await runBounded("/bin/sh", ["-c", `echo x > ${root}/m/written`], {
      cwd: await tempDir(),
      env: { PATH: "/usr/bin:/bin" },
      timeoutMs: 30_000,
      maxOutputBytes: 1024,
      sandbox: "required",
      readable: [root],
    });
    expect(write.outcome).toBe("exit");
    tried(
      "reading the app's key, another checkout, the app's environ and /etc/passwd from a renderer",
      "only the checkout is there, read-only",
    );
  });

  it("says why it cannot run where bubblewrap is missing", async () => {
    expect(await probeSandboxOn("/nonexistent")).toEqual({ available: false, reason: "bubblewrap (bwrap) is not on PATH" });
  });
});

describe("a renderer's scratch", () => {
  it("turns Go's collector off below three quarters of what a tool may hold, and bounds it where nothing is capped", () => {
    const mib = 1024 * 1024;
    expect(goRuntimeEnv(3584 * mib)).toEqual({ GOGC: "off", GOMEMLIMIT: "1632MiB" });
    expect(goRuntimeEnv(1536 * mib)).toEqual({ GOGC: "off", GOMEMLIMIT: "96MiB" });
    // A cap below what Go reserves still leaves the collector a target.
    expect(goRuntimeEnv(1024 * mib)).toEqual({ GOGC: "off", GOMEMLIMIT: "64MiB" });
    expect(goRuntimeEnv(undefined, 24 * 1024 * mib)).toEqual({ GOGC: "off", GOMEMLIMIT: "1024MiB" });
    expect(goRuntimeEnv(undefined, 2048 * mib)).toEqual({ GOGC: "off", GOMEMLIMIT: "512MiB" });
  });

  it("is never the root directory, which the sandbox would hand over writable", async () => {
    if (!(await canSandbox())) return;
    const result = await runBounded("/bin/true", [], { cwd: "/", env: {}, timeoutMs: 10_000, maxOutputBytes: 1024, sandbox: "required" });
    expect(result).toMatchObject({
      outcome: "spawn",
      error: { message: expect.stringContaining("cannot be the root directory") as string },
    });
  });
});
