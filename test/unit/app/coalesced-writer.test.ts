import { describe, expect, it } from "vitest";
import { CoalescedWriter } from "../../../src/app/preview/coalesced-writer.ts";

/** A write that goes through only when the test lets it, as one waiting for GitHub's write pacing does. */
class HeldWrites {
  readonly written: string[] = [];
  readonly #waiting: (() => void)[] = [];

  readonly write = async (body: string): Promise<void> => {
    await new Promise<void>((resolve) => this.#waiting.push(resolve));
    this.written.push(body);
  };

  get waiting(): number {
    return this.#waiting.length;
  }

  /** Lets the oldest write through and waits for the writer to go on. */
  async next(): Promise<void> {
    const release = this.#waiting.shift();
    if (!release) throw new Error("HeldWrites.next: no write is waiting");
    release();
    await new Promise((resolve) => setImmediate(resolve));
  }
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe("CoalescedWriter", () => {
  it("writes one value at a time, and of the values given meanwhile only the newest, made only then", async () => {
    const writes = new HeldWrites();
    const made: number[] = [];
    const writer = new CoalescedWriter<string>(writes.write, (error) => {
      throw error;
    });
    const body = (n: number) => () => {
      made.push(n);
      return `body ${n}`;
    };

    writer.update(body(1));
    await settle();
    for (const n of [2, 3, 4]) writer.update(body(n));
    await settle();
    expect(writes.waiting).toBe(1);
    await writes.next();
    await writes.next();

    expect(writes.written).toEqual(["body 1", "body 4"]);
    expect(made).toEqual([1, 4]);
    expect(writes.waiting).toBe(0);
  });

  it("waits on close for the write in flight, drops the value not written, and writes nothing after", async () => {
    const writes = new HeldWrites();
    const writer = new CoalescedWriter<string>(writes.write, (error) => {
      throw error;
    });
    writer.update(() => "progress 1");
    await settle();
    writer.update(() => "progress 2");

    let closed = false;
    const closing = writer.close().then(() => (closed = true));
    await settle();
    expect(closed).toBe(false);
    await writes.next();
    await closing;
    writer.update(() => "progress 3");
    await settle();

    expect(writes.written).toEqual(["progress 1"]);
    expect(writes.waiting).toBe(0);
  });

  it("reports a write that fails and goes on with the next value", async () => {
    const failures: unknown[] = [];
    const written: string[] = [];
    const writer = new CoalescedWriter<string>(
      (body) => {
        if (body === "bad") return Promise.reject(new Error("GitHub answered 502"));
        written.push(body);
        return Promise.resolve();
      },
      (error) => failures.push(error),
    );

    writer.update(() => "bad");
    await settle();
    writer.update(() => "good");
    await settle();
    await writer.close();
    writer.update(() => {
      throw new Error("a value made after close");
    });

    expect(failures.map(String)).toEqual(["Error: GitHub answered 502"]);
    expect(written).toEqual(["good"]);
  });

  it("writes nothing for a value made as undefined when its turn comes: whether to write is decided then, not when it was given", async () => {
    const writes = new HeldWrites();
    const writer = new CoalescedWriter<string>(writes.write, (error) => {
      throw error;
    });
    let wanted = true;
    writer.update(() => "progress 1");
    await settle();
    writer.update(() => (wanted ? "progress 2" : undefined));
    wanted = false;
    await writes.next();
    await settle();

    expect(writes.written).toEqual(["progress 1"]);
    expect(writes.waiting).toBe(0);
    await writer.close();
  });
});
