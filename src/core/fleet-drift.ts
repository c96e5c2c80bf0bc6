import type { DriftReport } from "./agent-protocol.ts";
import { driftCheckOutput } from "./deploy-status.ts";
import { shortSha } from "./git-ref.ts";
import { displayName } from "./identity.ts";
import { CHECK_RUN_TEXT_LIMIT, code, escapeInline, namesWithin, plural, prefixWithin, tableRow, utf8Length } from "./markdown.ts";

/** A drifted cluster's objects are named up to this many; its detail keeps to this many characters. */
const NAMED_OBJECTS = 10;
const NAME_LIMIT = 200;
const DETAIL_LIMIT = 4_000;
/** The check run's summary keeps to this many bytes, its text to GitHub's limit less room for the notes. */
const SUMMARY_BUDGET = 60_000;

/** What one cluster of a fleet last found drifted from a deploy: one row of the environment's drift check run. */
export interface FleetDriftRow {
  /** When the cluster's agent checked (its report's time). */
  at: string;
  checked: number;
  /** How many objects differ, and the first of them by name. */
  count: number;
  drifted: string[];
  healed: number;
  gaveUp: number;
  /** Objects whose live status is not current, the first of them with their health and why (older rows have none). */
  unhealthy?: string[];
  /** The cluster's own drift summary (its per-object table), cut to `DETAIL_LIMIT`. */
  detail: string;
}

/** An object a drift report names not healthy, as people read it: `Deployment shop/web (in-progress: 1 of 3 replicas available)`. */
export function unhealthyLine(object: NonNullable<DriftReport["unhealthy"]>[number]): string {
  return `${displayName(object)} (${object.health}: ${object.message})`;
}

/** One cluster's drift report as a row of the fleet's table. */
export function fleetDriftRow(report: DriftReport): FleetDriftRow {
  const detail = driftCheckOutput(report).summary;
  return {
    at: report.at,
    checked: report.checked,
    count: report.drifted.length,
    drifted: report.drifted.slice(0, NAMED_OBJECTS).map((o) => {
      const name = displayName(o);
      return name.length > NAME_LIMIT ? `${prefixWithin(name, NAME_LIMIT)}…` : name;
    }),
    healed: report.healed.length,
    gaveUp: report.gaveUp.length,
    unhealthy: (report.unhealthy ?? []).slice(0, NAMED_OBJECTS).map((o) => prefixWithin(unhealthyLine(o), NAME_LIMIT)),
    detail:
      detail.length > DETAIL_LIMIT ? `${prefixWithin(detail, DETAIL_LIMIT)}\n\n… cut here; the cluster's agent log has the rest.` : detail,
  };
}

/**
 * The one `sluice/drift (<env>)` check run of a deploy that reached several clusters: which
 * clusters drifted and how (a row each, their per-object tables in the text), and the clusters in
 * sync by name. Neutral when any cluster drifted, success when none did; it fits a check run at
 * any number of clusters.
 */
export function fleetDriftOutput(
  sha: string,
  rows: Readonly<Record<string, FleetDriftRow>>,
): { conclusion: "success" | "neutral"; output: { title: string; summary: string; text?: string } } {
  const clusters = Object.keys(rows).sort();
  const drifted = clusters.filter((c) => (rows[c]?.count ?? 0) > 0);
  const inSync = clusters.filter((c) => (rows[c]?.count ?? 0) === 0);
  const ailing = clusters.filter((c) => (rows[c]?.unhealthy?.length ?? 0) > 0);
  const n = clusters.length;
  const drift = drifted.length === 0 ? `In sync on ${plural(n, "cluster")}` : `Drifted on ${drifted.length} of ${plural(n, "cluster")}`;
  const title = ailing.length === 0 ? drift : `${drift}; ${ailing.length} not healthy`;
  const lines = [`Each cluster's agent compared its live objects with what Sluice applied at \`${shortSha(sha)}\`.`];
  let used = utf8Length(lines[0] ?? "");
  /** A table of `rowLines` under `header`, skipping each row that would take the summary past `limit` bytes: how many it shows. */
  const table = (header: string, rowLines: readonly string[], limit: number): number => {
    const kept = [header];
    for (const line of rowLines) {
      if (used + utf8Length(line) > limit) continue;
      kept.push(line);
      used += utf8Length(line) + 1;
    }
    lines.push(kept.join("\n"));
    return kept.length - 1;
  };
  if (drifted.length > 0) {
    const rowLines = drifted.flatMap((cluster) => {
      const row = rows[cluster];
      if (!row) return [];
      const names =
        row.drifted.map(code).join(", ") + (row.count > row.drifted.length ? ` and ${row.count - row.drifted.length} more` : "");
      const heal = [row.healed > 0 ? `applied ${row.healed} again` : "", row.gaveUp > 0 ? `stopped for ${row.gaveUp}` : ""].filter(Boolean);
      return [tableRow([code(cluster), `${row.count}: ${names}`, heal.join("; ") || "off", escapeInline(row.at)])];
    });
    const shown = table("| Cluster | Objects drifted | Self-heal | Checked |\n|---|---|---|---|", rowLines, SUMMARY_BUDGET / 2);
    if (shown < drifted.length)
      lines.push(
        `${drifted.length - shown} more drifted clusters are not listed here: ${plural(drifted.length, "cluster")} drifted in all.`,
      );
  }
  if (ailing.length > 0)
    table(
      "| Cluster | Objects not healthy |\n|---|---|",
      ailing.map((cluster) => tableRow([code(cluster), (rows[cluster]?.unhealthy ?? []).map(code).join(", ")])),
      (SUMMARY_BUDGET * 3) / 4,
    );
  if (inSync.length > 0) lines.push(`In sync: ${namesWithin(inSync, SUMMARY_BUDGET - used - 100)}.`);
  let text = "";
  for (const cluster of drifted) {
    const block = `#### ${code(cluster)}\n\n${rows[cluster]?.detail ?? ""}\n\n`;
    if (text.length + block.length > CHECK_RUN_TEXT_LIMIT - 1_000) continue;
    text += block;
  }
  return {
    conclusion: drifted.length === 0 && ailing.length === 0 ? "success" : "neutral",
    output: { title, summary: lines.join("\n\n"), ...(text ? { text } : {}) },
  };
}
