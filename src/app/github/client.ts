import { Readable } from "node:stream";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import type { ProbotOctokit } from "probot";
import { z } from "zod";
import { errorMessage } from "../../core/errors.ts";
import { fullName, type RepositoryRef } from "../../core/git-ref.ts";
import { PERMISSION_ORDER, type Permission } from "../../core/permission.ts";
import type { Annotation } from "../../core/preview-comment.ts";
import type { TreeFile } from "../../core/rollback.ts";
import { WriteNotSent, type Supersede, type WriteGuard } from "./pacing.ts";
import { pullRequestInfo, pullRequestSliceSchema, type PullRequestInfo } from "./schemas.ts";
import type { Logger } from "../log-context.ts";

export { PERMISSION_ORDER, permits, type Permission } from "../../core/permission.ts";

/** The repository an API call is about: Sluice's `RepositoryRef`, or just its owner and name. */
export type RepoName = Pick<RepositoryRef, "owner" | "name">;

/** The web page of a check run. */
export function checkRunUrl(webUrl: string, repository: RepoName, checkRunId: number): string {
  return `${webUrl}/${fullName(repository)}/runs/${checkRunId}`;
}

/** GitHub's REST parameters for a repository. */
function coordinates(repository: RepoName): { owner: string; repo: string } {
  return { owner: repository.owner, repo: repository.name };
}

/** How a write of one object's state goes out: combined with its newer states while it waits (`coalesce`, see `Supersede`), and sent only if its `guard` lets it when its turn comes. */
export interface WriteOptions {
  coalesce?: boolean;
  guard?: WriteGuard;
}

/**
 * Lets a write of a state that is not its object's last go on in the background: it waits its turn
 * in the write pacing while the caller goes on, and one that fails is logged (`message`, with
 * `about`), for the object's next state is written whole.
 */
export function writeInBackground(write: Promise<void>, log: Logger, about: Record<string, unknown>, message: string): void {
  write.catch((error: unknown) => {
    log.warn({ ...about, error: errorMessage(error) }, message);
  });
}

/** Waits for a write; false when its guard turned it down ({@link WriteNotSent}): what it wrote was moved past, and nothing is wrong. */
async function unlessTurnedDown(write: Promise<unknown>): Promise<boolean> {
  try {
    await write;
    return true;
  } catch (error) {
    if (error instanceof WriteNotSent) return false;
    throw error;
  }
}

/** The request options that carry `options` to the write pacing, for the object `key`. */
function writeRequest(options: WriteOptions, key: string, final: boolean): { request?: { supersede?: Supersede; guard?: WriteGuard } } {
  if (!options.coalesce && !options.guard) return {};
  return {
    request: {
      ...(options.coalesce ? { supersede: { key, final } } : {}),
      ...(options.guard ? { guard: options.guard } : {}),
    },
  };
}

/** A comment found on an issue or pull request. */
export interface IssueComment {
  id: number;
  body: string;
}

/** A button on a check run (`requested_action`); GitHub allows three, with short texts. */
export interface CheckRunAction {
  /** At most 20 characters. */
  label: string;
  /** At most 40 characters. */
  description: string;
  /** At most 20 characters; comes back in the `check_run.requested_action` webhook. */
  identifier: string;
}

/** Fields of a check run Sluice writes. */
export interface CheckRunFields {
  actions?: readonly CheckRunAction[];
  status?: "queued" | "in_progress" | "completed";
  conclusion?: "success" | "failure" | "neutral" | "cancelled" | "skipped" | "timed_out" | "action_required";
  detailsUrl?: string;
  output?: { title: string; summary: string; text?: string; annotations?: Annotation[] };
}

/** GitHub accepts at most this many annotations per check-run request. */
export const ANNOTATIONS_PER_REQUEST = 50;

const commentSchema = z.object({
  id: z.number(),
  body: z.string().nullable().optional(),
  performed_via_github_app: z.object({ id: z.number() }).nullable().optional(),
});
const permissionSchema = z.object({ permission: z.string(), role_name: z.string().optional() });

/** One attempt at delivering a webhook of this app, as GitHub lists them. */
export interface WebhookDelivery {
  /** The attempt's id: what a redelivery is asked for. */
  id: number;
  /** The delivery's GUID (`X-GitHub-Delivery`), shared by its redeliveries. */
  guid: string;
  deliveredAt: string;
  redelivery: boolean;
  /** The app's answer; 0 when GitHub could not connect or timed out. */
  statusCode: number;
  event: string;
}

const deliverySchema = z.object({
  id: z.number(),
  guid: z.string().min(1),
  delivered_at: z.string(),
  redelivery: z.boolean(),
  status_code: z.number(),
  event: z.string(),
});

function status(error: unknown): number | undefined {
  return typeof error === "object" && error !== null && "status" in error && typeof error.status === "number" ? error.status : undefined;
}

/** Whether GitHub answered 404: the object is gone (or was never there), or the app may not see it. */
export function isNotFound(error: unknown): boolean {
  return status(error) === 404;
}

/**
 * GitHub refused a commit or branch write because it changes an Actions workflow: a GitHub App
 * needs the `workflows` permission for that. `files` are the workflow files GitHub named (it
 * names one, or none).
 */
export class WorkflowsPermissionError extends Error {
  readonly files: readonly string[];

  constructor(repository: RepoName, files: readonly string[], cause: unknown) {
    super(
      `GitHub refused to write to ${fullName(repository)}: the change touches ${files.length > 0 ? files.join(", ") : "a workflow file"} and the app has no \`workflows\` permission`,
      { cause },
    );
    this.name = "WorkflowsPermissionError";
    this.files = files;
  }
}

/**
 * The workflow files of GitHub's refusal of a write that changes a workflow ("refusing to allow a
 * GitHub App to create or update workflow `.github/workflows/ci.yml` without `workflows`
 * permission", 403 or 422), or undefined when `error` is another failure.
 */
function workflowRefusal(error: unknown): string[] | undefined {
  const code = status(error);
  if (code !== 403 && code !== 422) return undefined;
  const message = error instanceof Error ? error.message : "";
  if (!/refusing to allow .* to create or update workflow/i.test(message)) return undefined;
  return [...message.matchAll(/`(\.github\/workflows\/[^`]+)`/g)].flatMap((m) => (m[1] ? [m[1]] : []));
}

const treeSchema = z.object({
  truncated: z.boolean(),
  tree: z.array(z.object({ path: z.string(), mode: z.string(), type: z.string(), sha: z.string() })),
});

/**
 * The one place that calls GitHub. Every method maps GitHub's REST shapes to Sluice's types at
 * this edge, validating what it reads.
 */
export class GitHubClient {
  readonly #octokit: ProbotOctokit;
  readonly #appId: number;

  /** `appId` is this GitHub App's id: comments are Sluice's only when this app wrote them. */
  constructor(octokit: ProbotOctokit, appId: number) {
    this.#octokit = octokit;
    this.#appId = appId;
  }

  /** A file's text at a commit, or undefined when it does not exist there. */
  async fileAt(repository: RepoName, path: string, ref: string): Promise<string | undefined> {
    try {
      const response = await this.#octokit.rest.repos.getContent({ ...coordinates(repository), path, ref, mediaType: { format: "raw" } });
      const data: unknown = response.data;
      if (typeof data === "string") return data;
      if (data instanceof ArrayBuffer) return Buffer.from(data).toString("utf8");
      throw new Error(`GET contents ${path}@${ref} did not return the raw file`);
    } catch (error) {
      if (status(error) === 404) return undefined;
      throw error;
    }
  }

  /**
   * The gzipped tarball of a commit as a stream (one request; GitHub redirects to its archive
   * host). It is never held in memory whole: the caller unpacks it as it arrives.
   */
  async tarball(repository: RepoName, ref: string): Promise<Readable> {
    const response = await this.#octokit.rest.repos.downloadTarballArchive({
      ...coordinates(repository),
      ref,
      request: { parseSuccessResponseBody: false },
    });
    const data: unknown = response.data;
    if (data instanceof ReadableStream) return Readable.fromWeb(data as WebReadableStream<Uint8Array>);
    if (data instanceof ArrayBuffer) return Readable.from([Buffer.from(data)]);
    if (Buffer.isBuffer(data)) return Readable.from([data]);
    throw new Error(`GET tarball ${fullName(repository)}@${ref} returned ${typeof data}, not bytes`);
  }

  /** A pull request's commits, branch and state. */
  async pullRequest(repository: RepositoryRef, number: number): Promise<PullRequestInfo> {
    const { data } = await this.#octokit.rest.pulls.get({ ...coordinates(repository), pull_number: number });
    return pullRequestInfo(pullRequestSliceSchema.parse(data), repository.id);
  }

  /**
   * The first comment this app wrote on an issue or pull request whose body contains `marker`.
   * Anyone can paste the marker into a comment of their own; only the app's own comment counts.
   */
  async findComment(repository: RepoName, issueNumber: number, marker: string): Promise<IssueComment | undefined> {
    const iterator = this.#octokit.paginate.iterator(this.#octokit.rest.issues.listComments, {
      ...coordinates(repository),
      issue_number: issueNumber,
      per_page: 100,
    });
    for await (const page of iterator) {
      for (const raw of page.data) {
        const comment = commentSchema.parse(raw);
        if (comment.performed_via_github_app?.id === this.#appId && comment.body?.includes(marker))
          return { id: comment.id, body: comment.body };
      }
    }
    return undefined;
  }

  /** Creates a comment; returns its id. */
  async createComment(repository: RepoName, issueNumber: number, body: string): Promise<number> {
    const { data } = await this.#octokit.rest.issues.createComment({ ...coordinates(repository), issue_number: issueNumber, body });
    return commentSchema.parse(data).id;
  }

  /** Replaces a comment's body. */
  async updateComment(repository: RepoName, commentId: number, body: string): Promise<void> {
    await this.#octokit.rest.issues.updateComment({ ...coordinates(repository), comment_id: commentId, body });
  }

  /** Adds a reaction to an issue comment. */
  async react(repository: RepoName, commentId: number, content: "eyes" | "+1" | "-1" | "rocket" | "confused"): Promise<void> {
    await this.#octokit.rest.reactions.createForIssueComment({ ...coordinates(repository), comment_id: commentId, content });
  }

  /** A user's permission on the repository (the fine-grained role when GitHub gives one). */
  async permission(repository: RepoName, username: string): Promise<Permission> {
    try {
      const { data } = await this.#octokit.rest.repos.getCollaboratorPermissionLevel({ ...coordinates(repository), username });
      const parsed = permissionSchema.parse(data);
      const role = parsed.role_name && PERMISSION_ORDER.includes(parsed.role_name as Permission) ? parsed.role_name : parsed.permission;
      return PERMISSION_ORDER.includes(role as Permission) ? (role as Permission) : "none";
    } catch (error) {
      if (status(error) === 404) return "none";
      throw error;
    }
  }

  /**
   * Whether a user is an active member of an organization's team (a pending invitation is not).
   * GitHub answers 404 for a non-member, an unknown team, and an organization the app cannot see;
   * the app needs the organization's Members permission (read) to ask.
   */
  async teamMembership(org: string, teamSlug: string, username: string): Promise<boolean> {
    try {
      const { data } = await this.#octokit.rest.teams.getMembershipForUserInOrg({ org, team_slug: teamSlug, username });
      return z.object({ state: z.enum(["active", "pending"]) }).parse(data).state === "active";
    } catch (error) {
      if (status(error) === 404) return false;
      if (status(error) === 403) {
        const question = `whether ${username} is in team @${org}/${teamSlug}`;
        throw new Error(`GitHub refused to tell ${question}: the app needs the organization's Members permission (read)`, { cause: error });
      }
      throw error;
    }
  }

  /** The repository's default branch. */
  async defaultBranch(repository: RepoName): Promise<string> {
    const { data } = await this.#octokit.rest.repos.get(coordinates(repository));
    return z.object({ default_branch: z.string().min(1) }).parse(data).default_branch;
  }

  /** The commit a branch points at. */
  async branchSha(repository: RepoName, branch: string): Promise<string> {
    const { data } = await this.#octokit.rest.repos.getBranch({ ...coordinates(repository), branch });
    return z.object({ commit: z.object({ sha: z.string() }) }).parse(data).commit.sha;
  }

  /** Creates a GitHub Deployment of a commit to an environment; returns its id. */
  async createDeployment(
    repository: RepoName,
    fields: {
      sha: string;
      environment: string;
      description: string;
      payload: Record<string, unknown>;
      production: boolean;
      transient: boolean;
    },
  ): Promise<number> {
    const { data } = await this.#octokit.rest.repos.createDeployment({
      ...coordinates(repository),
      ref: fields.sha,
      environment: fields.environment,
      description: fields.description.slice(0, 140),
      payload: fields.payload,
      auto_merge: false,
      required_contexts: [],
      transient_environment: fields.transient,
      production_environment: fields.production,
    });
    return z.object({ id: z.number() }).parse(data).id;
  }

  /**
   * Adds a status to a deployment. With `coalesce`, a newer status of the deployment written before
   * this one goes out replaces it (a final one is never replaced): see `Supersede` in pacing.ts.
   */
  async deploymentStatus(
    repository: RepoName,
    deploymentId: number,
    fields: { state: "queued" | "in_progress" | "success" | "failure" | "error" | "inactive"; description: string; logUrl?: string },
    options: WriteOptions = {},
  ): Promise<void> {
    // GitHub's auto_inactive marks the earlier successful deployments of the environment inactive:
    // right for a success, which is now what runs there, and for nothing else.
    await unlessTurnedDown(
      this.#octokit.rest.repos.createDeploymentStatus({
        ...coordinates(repository),
        deployment_id: deploymentId,
        state: fields.state,
        description: fields.description.slice(0, 140),
        ...(fields.logUrl ? { log_url: fields.logUrl } : {}),
        auto_inactive: fields.state === "success",
        ...writeRequest(options, `deployment ${deploymentId}`, fields.state !== "queued" && fields.state !== "in_progress"),
      }),
    );
  }

  /** The tree of a commit (Git Data API). */
  async commitTree(repository: RepoName, sha: string): Promise<string> {
    const { data } = await this.#octokit.rest.git.getCommit({ ...coordinates(repository), commit_sha: sha });
    return z.object({ tree: z.object({ sha: z.string() }) }).parse(data).tree.sha;
  }

  /**
   * The id of the tree at `path` (slash-separated, below the root) in the tree `root`, or
   * undefined when there is none: one non-recursive listing per directory on the way, so a large
   * repository is never listed whole.
   */
  async subtree(repository: RepoName, root: string, path: string): Promise<string | undefined> {
    let tree = root;
    for (const name of path.split("/")) {
      const response = await this.#octokit.rest.git.getTree({ ...coordinates(repository), tree_sha: tree });
      const entry = treeSchema.parse(response.data).tree.find((e) => e.path === name && e.type === "tree");
      if (!entry) return undefined;
      tree = entry.sha;
    }
    return tree;
  }

  /** Every file below a tree (recursively), with its path below it. */
  async treeFiles(repository: RepoName, tree: string): Promise<TreeFile[]> {
    const { data } = await this.#octokit.rest.git.getTree({ ...coordinates(repository), tree_sha: tree, recursive: "true" });
    const listing = treeSchema.parse(data);
    // GitHub truncates a listing past 100,000 entries or 7 MB; a partial one would hide changes.
    if (listing.truncated) throw new Error(`GitHub truncated the listing of tree ${tree} in ${fullName(repository)} (truncated: true)`);
    return listing.tree.filter((e) => e.type === "blob").map(({ path, sha, mode }) => ({ path, sha, mode }));
  }

  /**
   * Creates a commit of a tree on top of parents (Git Data API); returns its SHA. Throws
   * {@link WorkflowsPermissionError} when GitHub refuses it for changing a workflow.
   */
  async createCommit(repository: RepoName, fields: { message: string; tree: string; parents: string[] }): Promise<string> {
    try {
      const { data } = await this.#octokit.rest.git.createCommit({ ...coordinates(repository), ...fields });
      return z.object({ sha: z.string() }).parse(data).sha;
    } catch (error) {
      const files = workflowRefusal(error);
      throw files ? new WorkflowsPermissionError(repository, files, error) : error;
    }
  }

  /**
   * Points a branch at a commit, creating it or moving it (forced) when it exists. Throws
   * {@link WorkflowsPermissionError} when GitHub refuses it for changing a workflow.
   */
  async setBranch(repository: RepoName, branch: string, sha: string): Promise<void> {
    try {
      try {
        await this.#octokit.rest.git.createRef({ ...coordinates(repository), ref: `refs/heads/${branch}`, sha });
      } catch (error) {
        // 422: the reference already exists.
        if (status(error) !== 422 || workflowRefusal(error)) throw error;
        await this.#octokit.rest.git.updateRef({ ...coordinates(repository), ref: `heads/${branch}`, sha, force: true });
      }
    } catch (error) {
      const files = workflowRefusal(error);
      throw files ? new WorkflowsPermissionError(repository, files, error) : error;
    }
  }

  /** The open pull request from `head` (a branch of this repository) into `base`, or undefined. */
  async openPullFrom(repository: RepoName, head: string, base: string): Promise<{ number: number; url: string } | undefined> {
    const { data } = await this.#octokit.rest.pulls.list({
      ...coordinates(repository),
      head: `${repository.owner}:${head}`,
      base,
      state: "open",
      per_page: 1,
    });
    const [first] = z.array(z.object({ number: z.number(), html_url: z.string() })).parse(data);
    return first ? { number: first.number, url: first.html_url } : undefined;
  }

  /** Opens a pull request from a branch of this repository. */
  async createPull(
    repository: RepoName,
    fields: { title: string; head: string; base: string; body: string },
  ): Promise<{ number: number; url: string }> {
    const { data } = await this.#octokit.rest.pulls.create({ ...coordinates(repository), ...fields, maintainer_can_modify: true });
    const pull = z.object({ number: z.number(), html_url: z.string() }).parse(data);
    return { number: pull.number, url: pull.html_url };
  }

  /** Merged pull requests that contain a commit. */
  async mergedPullsFor(repository: RepoName, sha: string): Promise<number[]> {
    const { data } = await this.#octokit.rest.repos.listPullRequestsAssociatedWithCommit({ ...coordinates(repository), commit_sha: sha });
    return z
      .array(z.object({ number: z.number(), merged_at: z.string().nullable().optional() }))
      .parse(data)
      .filter((p) => p.merged_at)
      .map((p) => p.number);
  }

  /**
   * This app's webhook deliveries, newest first, a page at a time (`GET /app/hook/deliveries`;
   * the client must be authenticated as the app, not an installation). The caller stops reading
   * when it has gone back far enough.
   */
  async *webhookDeliveries(signal?: AbortSignal): AsyncGenerator<WebhookDelivery[]> {
    const iterator = this.#octokit.paginate.iterator(this.#octokit.rest.apps.listWebhookDeliveries, {
      per_page: 100,
      ...(signal ? { request: { signal } } : {}),
    });
    for await (const page of iterator) {
      yield z
        .array(deliverySchema)
        .parse(page.data)
        .map((d) => ({
          id: d.id,
          guid: d.guid,
          deliveredAt: d.delivered_at,
          redelivery: d.redelivery,
          statusCode: d.status_code,
          event: d.event,
        }));
    }
  }

  /** Asks GitHub to deliver a webhook again (`POST /app/hook/deliveries/{id}/attempts`, authenticated as the app). */
  async redeliver(deliveryId: number, signal?: AbortSignal): Promise<void> {
    await this.#octokit.rest.apps.redeliverWebhookDelivery({ delivery_id: deliveryId, ...(signal ? { request: { signal } } : {}) });
  }

  /**
   * The installation of this app that holds a repository (`GET /repos/{owner}/{repo}/installation`,
   * authenticated as the app), or undefined when the app is not installed there.
   */
  async repositoryInstallation(repository: RepoName): Promise<number | undefined> {
    try {
      const { data } = await this.#octokit.rest.apps.getRepoInstallation(coordinates(repository));
      return z.object({ id: z.number().int().positive() }).parse(data).id;
    } catch (error) {
      if (status(error) === 404) return undefined;
      throw error;
    }
  }

  /** The repository's numeric id, which a rename does not change. */
  async repositoryId(repository: RepoName): Promise<number> {
    const { data } = await this.#octokit.rest.repos.get(coordinates(repository));
    return z.object({ id: z.number().int().positive() }).parse(data).id;
  }

  /** Creates a check run on a commit; returns its id. */
  async createCheckRun(
    repository: RepoName,
    name: string,
    headSha: string,
    fields: CheckRunFields & { externalId?: string },
  ): Promise<number> {
    const [first, rest] = splitAnnotations(fields.output);
    const { data } = await this.#octokit.rest.checks.create({
      ...coordinates(repository),
      name,
      head_sha: headSha,
      ...(fields.externalId ? { external_id: fields.externalId } : {}),
      ...checkRunBody({ ...fields, ...(first ? { output: first } : {}) }),
    });
    const id = z.object({ id: z.number() }).parse(data).id;
    await this.#moreAnnotations(repository, id, fields.output, rest);
    return id;
  }

  /** This app's check run named `name` on a commit with `externalId`, if one was made (by a replica that died before saving its id). */
  async findCheckRun(repository: RepoName, headSha: string, name: string, externalId: string): Promise<number | undefined> {
    const { data } = await this.#octokit.rest.checks.listForRef({
      ...coordinates(repository),
      ref: headSha,
      check_name: name,
      filter: "all",
      app_id: this.#appId,
      per_page: 100,
    });
    const runs = z.object({ check_runs: z.array(z.object({ id: z.number(), external_id: z.string().nullable() })) }).parse(data).check_runs;
    return runs.find((r) => r.external_id === externalId)?.id;
  }

  /**
   * Updates a check run; annotations beyond GitHub's 50 per request go in further requests. With
   * `coalesce` (and no annotations), a newer state of the check run written before this one goes
   * out replaces it (a completed one is never replaced): see `Supersede` in pacing.ts.
   */
  async updateCheckRun(repository: RepoName, checkRunId: number, fields: CheckRunFields, options: WriteOptions = {}): Promise<void> {
    const [first, rest] = splitAnnotations(fields.output);
    const coalesce = options.coalesce === true && !fields.output?.annotations?.length;
    const sent = await unlessTurnedDown(
      this.#octokit.rest.checks.update({
        ...coordinates(repository),
        check_run_id: checkRunId,
        ...checkRunBody({ ...fields, ...(first ? { output: first } : {}) }),
        ...writeRequest({ ...options, coalesce }, `check-run ${checkRunId}`, fields.status === "completed"),
      }),
    );
    if (sent) await this.#moreAnnotations(repository, checkRunId, fields.output, rest);
  }

  async #moreAnnotations(repository: RepoName, id: number, output: CheckRunFields["output"], rest: Annotation[]): Promise<void> {
    if (!output) return;
    for (let i = 0; i < rest.length; i += ANNOTATIONS_PER_REQUEST) {
      await this.#octokit.rest.checks.update({
        ...coordinates(repository),
        check_run_id: id,
        // The text goes again: an output without one would leave the check run with none.
        output: {
          title: output.title,
          summary: output.summary,
          ...(output.text !== undefined ? { text: output.text } : {}),
          annotations: rest.slice(i, i + ANNOTATIONS_PER_REQUEST),
        },
      });
    }
  }
}

function splitAnnotations(output: CheckRunFields["output"]): [CheckRunFields["output"], Annotation[]] {
  if (!output?.annotations || output.annotations.length <= ANNOTATIONS_PER_REQUEST) return [output, []];
  return [
    { ...output, annotations: output.annotations.slice(0, ANNOTATIONS_PER_REQUEST) },
    output.annotations.slice(ANNOTATIONS_PER_REQUEST),
  ];
}

function checkRunBody(fields: CheckRunFields) {
  return {
    ...(fields.actions ? { actions: [...fields.actions] } : {}),
    ...(fields.status ? { status: fields.status } : {}),
    ...(fields.conclusion ? { conclusion: fields.conclusion } : {}),
    ...(fields.detailsUrl ? { details_url: fields.detailsUrl } : {}),
    ...(fields.output ? { output: fields.output } : {}),
  };
}
