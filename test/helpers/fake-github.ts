import { execFile } from "node:child_process";
import { createHash, generateKeyPairSync, randomBytes } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { join } from "node:path";
import { promisify } from "node:util";
import { bodyErrors, matchOperation } from "./openapi.ts";

const run = promisify(execFile);

/** A request the app sent to GitHub, as the fake understood it. */
export interface RecordedRequest {
  method: string;
  path: string;
  operationId: string;
  params: Record<string, string>;
  body: unknown;
  /** When it arrived (ms since the epoch). */
  at: number;
  /** How it was authenticated: as the app (a JWT), as an installation (a token), or not at all. */
  auth: "app" | "installation" | "none";
}

/** A webhook delivery of the app as `GET /app/hook/deliveries` lists it. */
export interface FakeHookDelivery {
  id: number;
  guid: string;
  delivered_at: string;
  redelivery: boolean;
  duration: number;
  status: string;
  status_code: number;
  event: string;
  action: string | null;
  installation_id: number | null;
  repository_id: number | null;
}

/** Operations GitHub answers only for the app itself (a JWT), never for an installation token. */
const APP_ONLY = new Set(["apps/list-webhook-deliveries", "apps/redeliver-webhook-delivery", "apps/get-repo-installation"]);

/** A comment as the fake stores it. */
export interface FakeComment {
  id: number;
  issue: number;
  body: string;
  user: string;
  /** The repository's name, for comments the app made. */
  repo?: string;
  /** When the app made it (ms since the epoch). */
  at?: number;
}

/** A check run as the fake stores it (the latest of every field written). */
export interface FakeCheckRun {
  id: number;
  name: string;
  head_sha: string;
  /** The repository's name. */
  repo?: string;
  status?: string;
  conclusion?: string;
  external_id?: string;
  details_url?: string;
  output?: { title?: string; summary?: string; text?: string };
  actions?: { label: string; description: string; identifier: string }[];
  annotations: { path: string; start_line: number; message: string; annotation_level: string }[];
}

interface FakeRepo {
  owner: string;
  name: string;
  id: number;
  commits: Map<string, { dir: string; tarball: Buffer; tree: string; parents: string[]; message: string }>;
  /** Every tree of every commit (the root and each directory), by id: the directory it is. */
  trees: Map<string, string>;
  pulls: Map<
    number,
    {
      number: number;
      base: { sha: string; ref: string };
      head: { sha: string; ref: string };
      state: "open" | "closed";
      draft: boolean;
      merged: boolean;
      merge_commit_sha?: string | null;
      /** The head is in a fork. */
      fork?: boolean;
      html_url?: string;
      title?: string;
      body?: string;
      /** Who opened it. */
      user?: { login: string };
    }
  >;
  branches: Map<string, string>;
  permissions: Map<string, string>;
  deployments: { id: number; sha: string; environment: string; state: string }[];
  defaultBranch: string;
  /** The installation of the app that holds it (`GET /repos/{owner}/{repo}/installation`); not installed when undefined. */
  installationId: number | undefined;
}

type Reply = { status: number; body?: unknown; headers?: Record<string, string> };

/**
 * GitHub, faked at the HTTP layer: a real HTTP server that the app's Octokit talks to. Every
 * request is matched against GitHub's OpenAPI description and its JSON body validated against the
 * operation's schema; anything unknown or invalid is recorded as a violation (and answered with
 * 404 or 422, as GitHub would). Unhandled operations are violations too.
 */
export class FakeGitHub {
  /** The id of the app under test, which the harness configures as APP_ID. */
  static readonly APP_ID = 12345;
  readonly requests: RecordedRequest[] = [];
  /** Answers sent so far: what the fake holds changes only before one is sent. */
  answered = 0;
  readonly violations: string[] = [];
  /** The code GitHub would hand the manifest flow's redirect; converting it works once. */
  manifestCode: string | undefined;
  /** When true, `GET /app` answers 401, as GitHub does for a wrong private key or app id. */
  refuseAppCredentials = false;
  readonly comments: FakeComment[] = [];
  readonly checkRuns = new Map<number, FakeCheckRun>();
  readonly reactions: { commentId: number; content: string }[] = [];
  readonly deploymentStatuses: { deploymentId: number; state: string; log_url?: string }[] = [];
  readonly deploymentsCreated: {
    id: number;
    ref: string;
    environment: string;
    auto_merge?: boolean;
    required_contexts?: unknown[];
    payload?: unknown;
  }[] = [];
  /** Pull requests the app opened. */
  readonly pullsCreated: { number: number; head: string; base: string; title: string }[] = [];
  /** The app's webhook deliveries (every attempt), as GitHub keeps them. */
  readonly hookDeliveries: FakeHookDelivery[] = [];
  /** The delivery attempts the app asked to redeliver, by id, in order. */
  readonly redeliveries: number[] = [];
  readonly #repos = new Map<string, FakeRepo>();
  /** Team memberships by `org/team-slug`, then login, both lower-cased (GitHub ignores their case). */
  readonly #teams = new Map<string, Map<string, "active" | "pending">>();
  readonly #paused = new Map<string, Promise<void>>();
  readonly #failures = new Map<string, Reply[]>();
  #server: Server | undefined;
  #nextId = 1000;
  url = "";

  /** Starts listening on a free loopback port. */
  async start(): Promise<this> {
    this.#server = createServer((req, res) => {
      this.#handle(req, res).catch((error: unknown) => {
        this.violations.push(`fake GitHub crashed on ${req.method ?? ""} ${req.url ?? ""}: ${String(error)}`);
        res.writeHead(500).end();
      });
    });
    await new Promise<void>((resolve) => this.#server?.listen(0, "127.0.0.1", resolve));
    const address = this.#server.address();
    if (typeof address !== "object" || !address) throw new Error("fake GitHub has no address");
    this.url = `http://127.0.0.1:${address.port}`;
    return this;
  }

  /** Stops the server. */
  async stop(): Promise<void> {
    await new Promise<void>((resolve) => {
      if (this.#server)
        this.#server.close(() => {
          resolve();
        });
      else resolve();
    });
  }

  /** Adds a repository. */
  addRepo(owner: string, name: string, id: number): FakeRepo {
    const repo: FakeRepo = {
      owner,
      name,
      id,
      installationId: undefined,
      commits: new Map(),
      trees: new Map(),
      pulls: new Map(),
      branches: new Map(),
      permissions: new Map(),
      deployments: [],
      defaultBranch: "main",
    };
    this.#repos.set(`${owner}/${name}`, repo);
    return repo;
  }

  /**
   * Makes a commit whose tree is `dir`, served as a GitHub-shaped tarball (`owner-repo-sha/…`).
   * Its tree id is a hash of the files, so two commits of the same files share a tree.
   */
  async addCommit(owner: string, name: string, sha: string, dir: string, parents: string[] = []): Promise<void> {
    const repo = this.#repo(owner, name);
    const top = `${owner}-${name}-${sha.slice(0, 7)}`;
    const { stdout } = await run("tar", ["-czf", "-", "--transform", `s,^\\.,${top},S`, "-C", dir, "."], {
      encoding: "buffer",
      maxBuffer: 512 * 1024 * 1024,
    });
    repo.commits.set(sha, { dir, tarball: stdout, tree: await treeId(dir), parents, message: `commit ${sha}` });
    for (const sub of [
      dir,
      ...(await readdir(dir, { recursive: true, withFileTypes: true }))
        .filter((e) => e.isDirectory())
        .map((e) => join(e.parentPath, e.name)),
    ])
      repo.trees.set(await treeId(sub), sub);
  }

  /** A commit as the fake stores it (for the commits the app creates). */
  commit(owner: string, name: string, sha: string): { dir: string; tree: string; parents: string[]; message: string } | undefined {
    return this.#repo(owner, name).commits.get(sha);
  }

  /** The commit a branch points at. */
  branch(owner: string, name: string, branch: string): string | undefined {
    return this.#repo(owner, name).branches.get(branch);
  }

  /** Sets a pull request as `pulls/get` returns it. */
  setPull(owner: string, name: string, pull: FakeRepo["pulls"] extends Map<number, infer P> ? P : never): void {
    this.#repo(owner, name).pulls.set(pull.number, pull);
  }

  /**
   * Sets pull request `number` as merged, as the commit `merge`: from its head (`merge` unless
   * given, on `headRef`, `feature-<number>` unless given) onto `branch` (`main` unless given) at
   * `base` (`merge` unless given), written by `author` when given.
   */
  setMergedPull(
    owner: string,
    name: string,
    pull: { number: number; merge: string; base?: string; head?: string; branch?: string; headRef?: string; author?: string },
  ): void {
    this.setPull(owner, name, {
      number: pull.number,
      base: { sha: pull.base ?? pull.merge, ref: pull.branch ?? "main" },
      head: { sha: pull.head ?? pull.merge, ref: pull.headRef ?? `feature-${String(pull.number)}` },
      state: "closed",
      draft: false,
      merged: true,
      merge_commit_sha: pull.merge,
      ...(pull.author ? { user: { login: pull.author } } : {}),
    });
  }

  /** Sets a user's role on a repository. */
  setPermission(owner: string, name: string, user: string, role: string): void {
    this.#repo(owner, name).permissions.set(user, role);
  }

  /** Makes `user` a member of an organization's team: active, or invited and not yet accepted (pending). */
  setTeamMember(org: string, teamSlug: string, user: string, state: "active" | "pending" = "active"): void {
    const key = `${org}/${teamSlug}`.toLowerCase();
    const members = this.#teams.get(key) ?? new Map<string, "active" | "pending">();
    members.set(user.toLowerCase(), state);
    this.#teams.set(key, members);
  }

  /** Records a deployment (newest first, as GitHub lists them) with its latest state. */
  addDeployment(owner: string, name: string, deployment: { sha: string; environment: string; state: string }): void {
    this.#repo(owner, name).deployments.unshift({ id: this.#nextId++, ...deployment });
  }

  /** Records an attempt at delivering a webhook to the app (`statusCode` 0: GitHub could not connect). */
  addHookDelivery(delivery: {
    guid: string;
    event: string;
    statusCode: number;
    deliveredAt: string;
    redelivery?: boolean;
  }): FakeHookDelivery {
    const attempt: FakeHookDelivery = {
      id: this.#nextId++,
      guid: delivery.guid,
      delivered_at: delivery.deliveredAt,
      redelivery: delivery.redelivery ?? false,
      duration: 0.1,
      status: delivery.statusCode === 0 ? "failed to connect" : delivery.statusCode < 400 ? "OK" : "Internal Server Error",
      status_code: delivery.statusCode,
      event: delivery.event,
      action: null,
      installation_id: null,
      repository_id: null,
    };
    this.hookDeliveries.push(attempt);
    return attempt;
  }

  /** Installs the app on a repository, as `installationId`. */
  setInstallation(owner: string, name: string, installationId: number): void {
    this.#repo(owner, name).installationId = installationId;
  }

  /** A comment someone else wrote, as GitHub would list it. */
  addUserComment(issue: number, user: string, body: string): FakeComment {
    const comment = { id: this.#nextId++, issue, body, user };
    this.comments.push(comment);
    return comment;
  }

  /** Points a branch at a commit. */
  setBranch(owner: string, name: string, branch: string, sha: string): void {
    this.#repo(owner, name).branches.set(branch, sha);
  }

  /**
   * Holds every request for `operationId` (answered in order once released), as a slow GitHub
   * would. Returns the release.
   */
  pause(operationId: string): () => void {
    let release = (): void => undefined;
    this.#paused.set(
      operationId,
      new Promise((resolve) => {
        release = () => {
          this.#paused.delete(operationId);
          resolve();
        };
      }),
    );
    return release;
  }

  /** Answers the next requests for `operationId` with `replies`, one each, as a failing GitHub would. */
  failNext(operationId: string, ...replies: Reply[]): void {
    this.#failures.set(operationId, [...(this.#failures.get(operationId) ?? []), ...replies]);
  }

  /** The requests made for one operation. */
  calls(operationId: string): RecordedRequest[] {
    return this.requests.filter((r) => r.operationId === operationId);
  }

  /** A repository's GitHub Deployments, newest first, with their newest state. */
  deploymentsOf(owner: string, name: string): readonly { id: number; sha: string; environment: string; state: string }[] {
    return this.#repo(owner, name).deployments;
  }

  #repo(owner: string, name: string): FakeRepo {
    const repo = this.#repos.get(`${owner}/${name}`);
    if (!repo) throw new Error(`fake GitHub has no repository ${owner}/${name}`);
    return repo;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", this.url);
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks).toString("utf8");
    if (url.pathname.startsWith("/_codeload/")) {
      const [, , owner = "", name = "", file = ""] = url.pathname.split("/");
      const commit = this.#repos.get(`${owner}/${name}`)?.commits.get(file.replace(/\.tar\.gz$/, ""));
      if (!commit) {
        this.#send(res, { status: 404, body: { message: "Not Found" } });
        return;
      }
      res.writeHead(200, { "content-type": "application/x-gzip", "content-length": String(commit.tarball.length) }).end(commit.tarball);
      return;
    }
    const method = req.method ?? "GET";
    const matched = matchOperation(method, url.pathname);
    if (!matched) {
      this.violations.push(`${method} ${url.pathname} is not a GitHub REST endpoint`);
      this.#send(res, { status: 404, body: { message: "Not Found" } });
      return;
    }
    let body: unknown;
    if (raw) {
      try {
        body = JSON.parse(raw);
      } catch {
        this.violations.push(`${matched.operation.operationId}: body is not JSON`);
      }
    }
    const errors = method === "GET" ? [] : bodyErrors(matched.operation, body);
    const authorization = req.headers.authorization ?? "";
    const auth = /^bearer ey/i.test(authorization) ? "app" : authorization ? "installation" : "none";
    this.requests.push({
      method,
      path: url.pathname,
      operationId: matched.operation.operationId,
      params: matched.params,
      body,
      at: Date.now(),
      auth,
    });
    if (APP_ONLY.has(matched.operation.operationId) && auth !== "app") {
      this.violations.push(`${matched.operation.operationId} needs the app's JWT, got ${auth} authentication`);
      this.#send(res, { status: 401, body: { message: "A JSON web token could not be decoded" } });
      return;
    }
    if (errors.length > 0) {
      this.violations.push(`${matched.operation.operationId} (${method} ${url.pathname}): ${errors.join("; ")}`);
      this.#send(res, { status: 422, body: { message: "Validation Failed", errors } });
      return;
    }
    await this.#paused.get(matched.operation.operationId);
    const failure = this.#failures.get(matched.operation.operationId)?.shift();
    if (failure) {
      this.#send(res, failure);
      return;
    }
    const reply = await this.#operation(matched.operation.operationId, matched.params, body as Record<string, unknown>, url);
    if (!reply) {
      this.violations.push(`the fake does not implement ${matched.operation.operationId}`);
      this.#send(res, { status: 501, body: { message: "not implemented by the fake" } });
      return;
    }
    this.#send(res, reply);
  }

  #send(res: ServerResponse, reply: Reply): void {
    this.answered += 1;
    // As GitHub does, every answer says how much of the hour's budget is left.
    const headers = {
      "x-ratelimit-limit": "5000",
      "x-ratelimit-remaining": String(Math.max(0, 5000 - this.requests.length)),
      ...(reply.headers ?? {}),
    };
    if (typeof reply.body === "string") {
      res.writeHead(reply.status, { "content-type": "text/plain; charset=utf-8", ...headers }).end(reply.body);
    } else {
      res
        .writeHead(reply.status, { "content-type": "application/json; charset=utf-8", ...headers })
        .end(reply.body === undefined ? "" : JSON.stringify(reply.body));
    }
  }

  async #operation(operationId: string, p: Record<string, string>, body: Record<string, unknown>, url: URL): Promise<Reply | undefined> {
    const repo = (): FakeRepo => this.#repo(p.owner ?? "", p.repo ?? "");
    switch (operationId) {
      case "apps/create-from-manifest": {
        // The manifest flow's last step: the new app's credentials, once per code.
        if (p.code !== this.manifestCode) return { status: 404, body: { message: "Not Found" } };
        this.manifestCode = undefined;
        const pem = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs1", format: "pem" }).toString();
        return {
          status: 201,
          body: {
            id: FakeGitHub.APP_ID,
            slug: "sluice-test",
            name: "Sluice",
            html_url: "https://github.example/apps/sluice-test",
            client_id: "Iv1.fake",
            client_secret: "fake-client-secret",
            webhook_secret: "fake-webhook-secret-from-the-manifest-flow",
            pem,
          },
        };
      }
      case "apps/get-authenticated":
        if (this.refuseAppCredentials) return { status: 401, body: { message: "A JSON web token could not be decoded" } };
        return { status: 200, body: { id: 1, slug: "sluice", name: "Sluice", owner: { login: "sluice-test" } } };
      case "apps/create-installation-access-token":
        return {
          status: 201,
          body: {
            token: `ghs_fake${p.installation_id ?? ""}`,
            expires_at: "2099-01-01T00:00:00Z",
            permissions: {},
            repository_selection: "all",
          },
        };
      case "apps/list-webhook-deliveries": {
        // Newest first, a page at a time, the next page's cursor in the link header.
        const perPage = Number(url.searchParams.get("per_page") ?? "30");
        const start = Number(url.searchParams.get("cursor") ?? "0");
        const sorted = [...this.hookDeliveries].sort((a, b) => Date.parse(b.delivered_at) - Date.parse(a.delivered_at));
        const next =
          start + perPage < sorted.length ? `${this.url}/app/hook/deliveries?per_page=${perPage}&cursor=${start + perPage}` : undefined;
        return { status: 200, body: sorted.slice(start, start + perPage), ...(next ? { headers: { link: `<${next}>; rel="next"` } } : {}) };
      }
      case "apps/redeliver-webhook-delivery": {
        if (!this.hookDeliveries.some((d) => d.id === Number(p.delivery_id))) return { status: 404, body: { message: "Not Found" } };
        this.redeliveries.push(Number(p.delivery_id));
        return { status: 202, body: {} };
      }
      case "apps/get-repo-installation": {
        const r = repo();
        if (r.installationId === undefined) return { status: 404, body: { message: "Not Found" } };
        return {
          status: 200,
          body: {
            id: r.installationId,
            account: { login: r.owner },
            app_id: FakeGitHub.APP_ID,
            target_type: "Organization",
            permissions: {},
          },
        };
      }
      case "repos/get": {
        const r = repo();
        return {
          status: 200,
          body: { id: r.id, name: r.name, full_name: `${r.owner}/${r.name}`, owner: { login: r.owner }, default_branch: r.defaultBranch },
        };
      }
      case "repos/get-content": {
        const commit = repo().commits.get(url.searchParams.get("ref") ?? "");
        if (!commit) return { status: 404, body: { message: "No commit found for the ref" } };
        try {
          return { status: 200, body: await readFile(join(commit.dir, p.path ?? ""), "utf8") };
        } catch {
          return { status: 404, body: { message: "Not Found" } };
        }
      }
      case "repos/download-tarball-archive": {
        if (!repo().commits.has(p.ref ?? "")) return { status: 404, body: { message: "Not Found" } };
        return { status: 302, headers: { location: `${this.url}/_codeload/${p.owner ?? ""}/${p.repo ?? ""}/${p.ref ?? ""}.tar.gz` } };
      }
      case "pulls/get": {
        const r = repo();
        const pull = r.pulls.get(Number(p.pull_number));
        if (!pull) return { status: 404, body: { message: "Not Found" } };
        // The head's repository: this one, or a fork's.
        const head = { ...pull.head, repo: { id: pull.fork ? r.id + 1_000_000 : r.id } };
        return { status: 200, body: { merge_commit_sha: null, ...pull, head } };
      }
      case "pulls/list": {
        const r = repo();
        const head = url.searchParams.get("head");
        const base = url.searchParams.get("base");
        const state = url.searchParams.get("state") ?? "open";
        return {
          status: 200,
          body: [...r.pulls.values()]
            .filter((pull) => (state === "all" || pull.state === state) && (!base || pull.base.ref === base))
            .filter((pull) => !head || `${r.owner}:${pull.head.ref}` === head)
            .map((pull) => ({ number: pull.number, html_url: pull.html_url ?? "", state: pull.state })),
        };
      }
      case "pulls/create": {
        const r = repo();
        const head = String(body.head);
        const base = String(body.base);
        const headSha = r.branches.get(head);
        const baseSha = r.branches.get(base);
        if (!headSha || !baseSha) return { status: 422, body: { message: "Validation Failed", errors: [{ field: "head" }] } };
        const number = this.#nextId++;
        const html_url = `https://github.example/${r.owner}/${r.name}/pull/${number}`;
        r.pulls.set(number, {
          number,
          base: { sha: baseSha, ref: base },
          head: { sha: headSha, ref: head },
          state: "open",
          draft: false,
          merged: false,
          html_url,
          title: String(body.title),
          body: typeof body.body === "string" ? body.body : "",
        });
        this.pullsCreated.push({ number, head, base, title: String(body.title) });
        return { status: 201, body: { number, html_url } };
      }
      case "git/get-commit": {
        const commit = repo().commits.get(p.commit_sha ?? "");
        if (!commit) return { status: 404, body: { message: "Not Found" } };
        return {
          status: 200,
          body: { sha: p.commit_sha, tree: { sha: commit.tree }, parents: commit.parents.map((sha) => ({ sha })), message: commit.message },
        };
      }
      case "git/create-commit": {
        const r = repo();
        const tree = String(body.tree);
        const same = [...r.commits.values()].find((c) => c.tree === tree);
        const parents = (body.parents as string[] | undefined) ?? [];
        if (!same || parents.some((parent) => !r.commits.has(parent)))
          return { status: 422, body: { message: "Tree or parent not found" } };
        const sha = randomBytes(20).toString("hex");
        r.commits.set(sha, { ...same, parents, message: String(body.message) });
        return { status: 201, body: { sha, tree: { sha: tree }, parents: parents.map((parent) => ({ sha: parent })) } };
      }
      case "git/get-tree": {
        const dir = repo().trees.get(p.tree_sha ?? "");
        if (!dir) return { status: 404, body: { message: "Not Found" } };
        const tree = await treeEntries(dir, url.searchParams.has("recursive"));
        return { status: 200, body: { sha: p.tree_sha, url: url.href, truncated: false, tree } };
      }
      case "git/create-ref": {
        const r = repo();
        const ref = String(body.ref);
        if (!ref.startsWith("refs/heads/")) return { status: 422, body: { message: "Reference name must start with refs/heads/" } };
        const branch = ref.slice("refs/heads/".length);
        if (r.branches.has(branch)) return { status: 422, body: { message: "Reference already exists" } };
        const refused = await workflowRefusal(r, String(body.sha));
        if (refused) return refused;
        r.branches.set(branch, String(body.sha));
        return { status: 201, body: { ref, object: { sha: body.sha, type: "commit" } } };
      }
      case "git/update-ref": {
        const r = repo();
        const branch = (p.ref ?? "").replace(/^heads\//, "");
        if (!r.branches.has(branch)) return { status: 422, body: { message: "Reference does not exist" } };
        const refused = await workflowRefusal(r, String(body.sha));
        if (refused) return refused;
        r.branches.set(branch, String(body.sha));
        for (const pull of r.pulls.values()) if (pull.head.ref === branch && pull.state === "open") pull.head.sha = String(body.sha);
        return { status: 200, body: { ref: `refs/heads/${branch}`, object: { sha: body.sha, type: "commit" } } };
      }
      case "issues/list-comments":
        return {
          status: 200,
          body: this.comments
            .filter((c) => c.issue === Number(p.issue_number) && (c.repo === undefined || c.repo === p.repo))
            .map((c) => ({
              id: c.id,
              body: c.body,
              user: { login: c.user, type: c.user.endsWith("[bot]") ? "Bot" : "User" },
              performed_via_github_app: c.user === "sluice[bot]" ? { id: FakeGitHub.APP_ID, slug: "sluice" } : null,
            })),
        };
      case "issues/create-comment": {
        const comment = {
          id: this.#nextId++,
          issue: Number(p.issue_number),
          body: String(body.body),
          user: "sluice[bot]",
          repo: p.repo ?? "",
          at: Date.now(),
        };
        this.comments.push(comment);
        return { status: 201, body: { id: comment.id, body: comment.body } };
      }
      case "issues/update-comment": {
        const comment = this.comments.find((c) => c.id === Number(p.comment_id) && (c.repo === undefined || c.repo === p.repo));
        if (!comment) return { status: 404, body: { message: "Not Found" } };
        comment.body = String(body.body);
        return { status: 200, body: { id: comment.id, body: comment.body } };
      }
      case "reactions/create-for-issue-comment":
        this.reactions.push({ commentId: Number(p.comment_id), content: String(body.content) });
        return { status: 201, body: { id: this.#nextId++, content: body.content } };
      case "repos/get-collaborator-permission-level": {
        const permission = repo().permissions.get(p.username ?? "") ?? "none";
        const legacy = permission === "maintain" ? "write" : permission === "triage" ? "read" : permission;
        return { status: 200, body: { permission: legacy, role_name: permission, user: { login: p.username } } };
      }
      case "teams/get-membership-for-user-in-org": {
        const state = this.#teams.get(`${p.org ?? ""}/${p.team_slug ?? ""}`.toLowerCase())?.get((p.username ?? "").toLowerCase());
        if (!state) return { status: 404, body: { message: "Not Found" } };
        const href = `${this.url}/teams/${p.team_slug ?? ""}/memberships/${p.username ?? ""}`;
        return { status: 200, body: { url: href, role: "member", state } };
      }
      case "repos/get-branch": {
        const sha = repo().branches.get(p.branch ?? "");
        return sha ? { status: 200, body: { name: p.branch, commit: { sha } } } : { status: 404, body: { message: "Branch not found" } };
      }
      case "repos/list-deployments":
        return {
          status: 200,
          body: repo()
            .deployments.filter((d) => d.environment === url.searchParams.get("environment"))
            .map((d) => ({ id: d.id, sha: d.sha, environment: d.environment })),
        };
      case "repos/list-deployment-statuses": {
        const deployment = repo().deployments.find((d) => d.id === Number(p.deployment_id));
        return { status: 200, body: deployment ? [{ state: deployment.state }] : [] };
      }
      case "repos/create-deployment": {
        const deployment = {
          id: this.#nextId++,
          ref: String(body.ref),
          environment: String(body.environment),
          auto_merge: body.auto_merge as boolean,
          required_contexts: body.required_contexts as unknown[],
          payload: body.payload,
        };
        this.deploymentsCreated.push(deployment);
        repo().deployments.unshift({ id: deployment.id, sha: deployment.ref, environment: deployment.environment, state: "pending" });
        return { status: 201, body: { id: deployment.id, sha: deployment.ref, environment: deployment.environment } };
      }
      case "repos/create-deployment-status": {
        const state = String(body.state);
        this.deploymentStatuses.push({
          deploymentId: Number(p.deployment_id),
          state,
          ...(typeof body.log_url === "string" ? { log_url: body.log_url } : {}),
        });
        const deployment = repo().deployments.find((d) => d.id === Number(p.deployment_id));
        if (deployment) deployment.state = state;
        return { status: 201, body: { id: this.#nextId++, state } };
      }
      case "repos/list-pull-requests-associated-with-commit":
        return {
          status: 200,
          body: [...repo().pulls.values()]
            .filter((pull) => pull.merged && (pull.head.sha === p.commit_sha || pull.merge_commit_sha === p.commit_sha))
            .map((pull) => ({ number: pull.number, merged_at: "2026-11-27T00:00:00Z" })),
        };
      case "checks/list-for-ref": {
        const name = url.searchParams.get("check_name");
        const runs = [...this.checkRuns.values()]
          .filter((r) => r.repo === p.repo && r.head_sha === p.ref && (name === null || r.name === name))
          .map((r) => ({
            id: r.id,
            name: r.name,
            head_sha: r.head_sha,
            status: r.status,
            conclusion: r.conclusion ?? null,
            external_id: r.external_id ?? null,
          }));
        return { status: 200, body: { total_count: runs.length, check_runs: runs } };
      }
      case "checks/create": {
        const run: FakeCheckRun = {
          id: this.#nextId++,
          name: String(body.name),
          head_sha: String(body.head_sha),
          repo: p.repo ?? "",
          annotations: [],
        };
        this.checkRuns.set(run.id, run);
        this.#applyCheckRun(run, body);
        return { status: 201, body: { id: run.id } };
      }
      case "checks/update": {
        const run = this.checkRuns.get(Number(p.check_run_id));
        if (!run) return { status: 404, body: { message: "Not Found" } };
        this.#applyCheckRun(run, body);
        return { status: 200, body: { id: run.id } };
      }
      default:
        return undefined;
    }
  }

  #applyCheckRun(run: FakeCheckRun, body: Record<string, unknown>): void {
    for (const field of ["status", "conclusion", "external_id", "details_url"] as const) {
      if (typeof body[field] === "string") run[field] = body[field];
    }
    if (Array.isArray(body.actions)) run.actions = body.actions as FakeCheckRun["actions"];
    const output = body.output as
      { title?: string; summary?: string; text?: string; annotations?: FakeCheckRun["annotations"] } | undefined;
    if (output) {
      run.output = {
        ...(output.title ? { title: output.title } : {}),
        ...(output.summary ? { summary: output.summary } : {}),
        ...(output.text ? { text: output.text } : {}),
      };
      run.annotations.push(...(output.annotations ?? []));
    }
  }
}

/**
 * GitHub's answer to an app without the `workflows` permission that points a branch at a commit
 * changing a file under .github/workflows/ (against its first parent), or undefined.
 */
async function workflowRefusal(repo: FakeRepo, sha: string): Promise<Reply | undefined> {
  const commit = repo.commits.get(sha);
  const parent = repo.commits.get(commit?.parents[0] ?? "");
  if (!commit || !parent) return undefined;
  const [after, before] = await Promise.all([workflowFiles(commit.dir), workflowFiles(parent.dir)]);
  const changed = [...new Set([...after.keys(), ...before.keys()])].sort().find((path) => after.get(path) !== before.get(path));
  if (changed === undefined) return undefined;
  const message = `refusing to allow a GitHub App to create or update workflow \`.github/workflows/${changed}\` without \`workflows\` permission`;
  return { status: 422, body: { message } };
}

/** The files under a checkout's .github/workflows/, by path below it, with their contents. */
async function workflowFiles(dir: string): Promise<Map<string, string>> {
  const base = join(dir, ".github", "workflows");
  const entries = await readdir(base, { recursive: true, withFileTypes: true }).catch(() => []);
  const files = new Map<string, string>();
  for (const e of entries.filter((x) => x.isFile())) {
    const path = join(e.parentPath, e.name);
    files.set(path.slice(base.length + 1), await readFile(path, "utf8"));
  }
  return files;
}

/** A directory as `git/get-tree` lists it: its entries, or with `recursive` everything below it, with Git's blob ids. */
async function treeEntries(
  dir: string,
  recursive: boolean,
): Promise<{ path: string; mode: string; type: string; sha: string; size?: number }[]> {
  const entries = (await readdir(dir, { recursive, withFileTypes: true })).filter((e) => e.isFile() || e.isDirectory());
  const out = [];
  for (const e of entries) {
    const full = join(e.parentPath, e.name);
    const path = full.slice(dir.length + 1);
    if (e.isDirectory()) out.push({ path, mode: "040000", type: "tree", sha: await treeId(full) });
    else {
      const content = await readFile(full);
      const sha = createHash("sha1").update(`blob ${content.length}\0`).update(content).digest("hex");
      out.push({ path, mode: "100644", type: "blob", sha, size: content.length });
    }
  }
  return out.sort((a, b) => a.path.localeCompare(b.path));
}

/** A tree id for a directory: a hash of its files' paths and contents, so equal files give equal trees. */
async function treeId(dir: string): Promise<string> {
  const hash = createHash("sha1");
  const files = (await readdir(dir, { recursive: true, withFileTypes: true })).filter((e) => e.isFile());
  const paths = files.map((e) => join(e.parentPath, e.name)).sort();
  for (const path of paths)
    hash
      .update(path.slice(dir.length))
      .update("\0")
      .update(await readFile(path))
      .update("\0");
  return hash.digest("hex");
}
