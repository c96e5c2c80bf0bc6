import { createHash } from "node:crypto";
import { inventorySchema, type Inventory } from "../core/inventory.ts";
import { MANAGED_BY } from "../core/inventory.ts";
import type { Cluster } from "./kube/cluster.ts";
import { errorMessage } from "../core/errors.ts";

/** Where inventories live: one ConfigMap per repository environment in the agent's namespace. */
export class InventoryStore {
  readonly #cluster: Cluster;
  readonly #namespace: string;

  constructor(cluster: Cluster, namespace: string) {
    this.#cluster = cluster;
    this.#namespace = namespace;
  }

  /** Keyed by the repository's id, so a rename keeps the inventory and a new repository with the old name does not get it. */
  #name(repositoryId: number, environment: string): string {
    return `sluice-inventory-${createHash("sha256").update(`${repositoryId}\n${environment}`).digest("hex").slice(0, 16)}`;
  }

  /** The stored inventory, or undefined before the first deploy. A corrupt one is an error. */
  async read(repositoryId: number, environment: string): Promise<Inventory | undefined> {
    const name = this.#name(repositoryId, environment);
    const live = await this.#cluster.get({ apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace: this.#namespace } });
    const data = live?.data as Record<string, string> | undefined;
    if (!data?.inventory) return undefined;
    let json: unknown;
    try {
      json = JSON.parse(data.inventory);
    } catch (error) {
      throw new Error(`inventory ConfigMap ${this.#namespace}/${name} is corrupt: ${errorMessage(error)}`, { cause: error });
    }
    const parsed = inventorySchema.safeParse(json);
    if (!parsed.success) throw new Error(`inventory ConfigMap ${this.#namespace}/${name} is corrupt: ${parsed.error.message}`);
    return parsed.data;
  }

  /** Writes the inventory with server-side apply. */
  async write(inventory: Inventory): Promise<void> {
    await this.#cluster.apply({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: {
        name: this.#name(inventory.repositoryId, inventory.environment),
        namespace: this.#namespace,
        labels: { [MANAGED_BY]: "sluice", "sluice.dev/inventory": "true" },
        annotations: {
          "sluice.dev/repository": inventory.repository,
          "sluice.dev/repository-id": String(inventory.repositoryId),
          "sluice.dev/environment": inventory.environment,
        },
      },
      data: { inventory: JSON.stringify(inventory) },
    });
  }
}
