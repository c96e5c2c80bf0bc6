import fc from "fast-check";

/**
 * Nested values as YAML and JSON hold them: mappings of `key` to values, lists, and `scalar`
 * leaves, a few levels deep, for property tests of readers and writers.
 */
export function nestedValues(
  scalar: fc.Arbitrary<unknown>,
  key: fc.Arbitrary<string>,
  options: { maxKeys: number },
): fc.Arbitrary<unknown> {
  return fc.letrec((tie) => ({
    node: fc.oneof({ depthSize: "small", withCrossShrink: true }, scalar, tie("list"), tie("map")),
    list: fc.array(tie("node"), { maxLength: 4 }),
    map: fc.dictionary(key, tie("node"), { maxKeys: options.maxKeys }),
  })).node;
}
